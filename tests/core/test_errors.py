"""Tests of the exception hierarchy (render_core.errors).

The documented names keep their official parents, finer classes add
machine-readable attributes, ``str()`` names the operation, and every class
survives pickling with its attributes (multiprocessing, concurrent.futures).
"""

from __future__ import annotations

import builtins
import copy
import datetime as dt
import pickle
from typing import Any

import pytest

from render_core import errors, models
from render_core.errors import (
    ClientError,
    ConfigurationError,
    ConnectionFailed,
    ConnectTimeout,
    NetworkError,
    NotFoundError,
    ProtocolError,
    RateLimitError,
    ReadTimeout,
    RenderError,
    ServerError,
    TaskRunError,
    UnexpectedResponseError,
    ValidationError,
)

# ---------------------------------------------------------------------------
# Hierarchy


@pytest.mark.parametrize(
    ("cls", "parents"),
    [
        (RenderError, (Exception,)),
        (ClientError, (RenderError,)),
        (RateLimitError, (ClientError, RenderError)),
        (NotFoundError, (ClientError, RenderError)),
        (ValidationError, (ClientError, RenderError, ValueError)),
        (ConfigurationError, (ClientError, RenderError, ValueError)),
        (ServerError, (RenderError,)),
        (NetworkError, (ServerError, RenderError)),
        (ConnectionFailed, (NetworkError, ServerError, RenderError)),
        (errors.TimeoutError, (RenderError, builtins.TimeoutError, OSError)),
        (ConnectTimeout, (errors.TimeoutError, RenderError, builtins.TimeoutError)),
        (ReadTimeout, (errors.TimeoutError, RenderError, builtins.TimeoutError)),
        (UnexpectedResponseError, (RenderError,)),
        (ProtocolError, (RenderError,)),
        (TaskRunError, (RenderError,)),
    ],
)
def test_parents(cls: type[Exception], parents: tuple[type[Exception], ...]) -> None:
    for parent in parents:
        assert issubclass(cls, parent), (cls, parent)


@pytest.mark.parametrize(
    ("cls", "not_parents"),
    [
        (ServerError, (ClientError,)),
        (ClientError, (ServerError, ValueError)),
        (RateLimitError, (ServerError, ValueError)),
        (errors.TimeoutError, (ClientError, ServerError)),
        (TaskRunError, (ClientError, ServerError, builtins.TimeoutError)),
        (UnexpectedResponseError, (ClientError, ServerError)),
        (NetworkError, (builtins.TimeoutError, ConnectionError)),
    ],
)
def test_non_parents(cls: type[Exception], not_parents: tuple[type[Exception], ...]) -> None:
    for parent in not_parents:
        assert not issubclass(cls, parent), (cls, parent)


def test_the_documented_timeout_shadows_but_extends_the_builtin() -> None:
    assert errors.TimeoutError is not builtins.TimeoutError
    assert errors.TimeoutError.__name__ == "TimeoutError"
    for exc in (errors.TimeoutError("t"), ReadTimeout("r"), ConnectTimeout("c")):
        with pytest.raises(builtins.TimeoutError):
            raise exc
        caught: BaseException | None = None
        try:
            raise exc
        except TimeoutError as builtin_caught:  # the builtin name, as user code writes it
            caught = builtin_caught
        assert caught is exc


def test_every_exported_name_is_a_render_error() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, RenderError), name


def test_request_sent() -> None:
    assert NetworkError("x").request_sent is True
    assert NetworkError("x", request_sent=False).request_sent is False
    assert ConnectionFailed("x").request_sent is False
    assert ConnectionFailed("x", request_sent=True).request_sent is True
    assert errors.TimeoutError("x").request_sent is True
    assert ConnectTimeout("x").request_sent is False
    assert ReadTimeout("x").request_sent is True


def test_rate_limit_defaults() -> None:
    exc = RateLimitError("slow down")
    assert exc.status == 429
    assert exc.retry_after is None
    assert str(exc) == "slow down (HTTP 429)"
    assert RateLimitError("x", retry_after=2.5).retry_after == 2.5


# ---------------------------------------------------------------------------
# Messages


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        ({}, "boom"),
        ({"operation": "get task run"}, "get task run failed: boom"),
        ({"status": 500}, "boom (HTTP 500)"),
        ({"request_id": "req-1"}, "boom (ID: req-1)"),
        ({"request_id": ""}, "boom"),
        ({"status": 0}, "boom (HTTP 0)"),
        (
            {"operation": "start task", "status": 400, "request_id": "err-9"},
            "start task failed: boom (HTTP 400, ID: err-9)",
        ),
        (
            {"operation": "cancel task run", "status": 404},
            "cancel task run failed: boom (HTTP 404)",
        ),
        ({"operation": "", "status": 503}, "boom (HTTP 503)"),
    ],
)
def test_message_formatting(kwargs: dict[str, Any], text: str) -> None:
    for cls in (RenderError, ClientError, ServerError, UnexpectedResponseError, ReadTimeout):
        exc = cls("boom", **kwargs)
        assert str(exc) == text
        assert exc.message == "boom"
        assert exc.args == (text,)
        assert exc.operation == kwargs.get("operation")
        assert exc.status == kwargs.get("status")
        assert exc.request_id == kwargs.get("request_id")


def test_timeout_keeps_the_render_message_not_oserror_formatting() -> None:
    exc = ReadTimeout("no data for 60 s", operation="task run events")
    assert str(exc) == "task run events failed: no data for 60 s"
    assert exc.errno is None
    assert exc.strerror is None


DETAILS = models.TaskRunDetails(
    id="trn-1",
    task_id="tsk-1",
    status=models.TaskRunStatus.FAILED,
    error="division by zero",
    input_=[2, 0],
    started_at=dt.datetime(2026, 8, 20, 12, 0, tzinfo=dt.timezone.utc),
    attempts=[
        models.TaskAttemptDetails(
            status=models.TaskRunStatus.FAILED, attempt=0, error="division by zero"
        )
    ],
    extra={"newKey": [1]},
)


def test_task_run_error_is_the_message_verbatim() -> None:
    exc = TaskRunError("division by zero", details=DETAILS)
    assert str(exc) == "division by zero"
    assert exc.details is DETAILS
    assert exc.task_run_id == "trn-1"
    assert exc.status is None
    assert exc.operation is None


def test_task_run_error_ids() -> None:
    assert TaskRunError("x").task_run_id is None
    assert TaskRunError("x").details is None
    assert TaskRunError("x", task_run_id="trn-9").task_run_id == "trn-9"
    # An explicit id wins over the details' id.
    assert TaskRunError("x", details=DETAILS, task_run_id="trn-other").task_run_id == "trn-other"


def test_subtask_failure_message() -> None:
    exc = TaskRunError("Subtask failed: boom", task_run_id="trn-2")
    assert str(exc) == "Subtask failed: boom"


def _send_on_a_reset_connection() -> None:
    try:
        raise ConnectionResetError("reset by peer")
    except ConnectionResetError as cause:
        raise NetworkError("connection reset", operation="get task run") from cause


def test_chaining_with_raise_from() -> None:
    with pytest.raises(ServerError) as info:
        _send_on_a_reset_connection()
    assert isinstance(info.value.__cause__, ConnectionResetError)
    assert str(info.value) == "get task run failed: connection reset"


# ---------------------------------------------------------------------------
# Pickling keeps every attribute

EXAMPLES: list[RenderError] = [
    RenderError("plain"),
    RenderError("full", operation="get task run", status=500, request_id="req-1"),
    ClientError("bad", operation="start task", status=400, request_id="err-1"),
    ValidationError("input_data is not JSON-serialisable"),
    ConfigurationError("no API token"),
    NotFoundError("gone", operation="get task", status=404, request_id="e-404"),
    RateLimitError("slow", operation="list tasks", request_id="r", retry_after=1.5),
    RateLimitError("odd", status=None),
    ServerError("down", operation="cancel task run", status=503),
    NetworkError("reset", operation="start task", request_sent=False, status=None),
    NetworkError("reset"),
    ConnectionFailed("refused", operation="get task run"),
    ConnectionFailed("refused after all", request_sent=True),
    errors.TimeoutError("slow", operation="wait"),
    ConnectTimeout("connect", operation="get task run"),
    ReadTimeout("read", operation="task run events", status=200),
    UnexpectedResponseError("redirect", operation="start task", status=302),
    ProtocolError("line too long", operation="task run events"),
    TaskRunError("division by zero", details=DETAILS),
    TaskRunError("canceled", task_run_id="trn-3", operation="run task", request_id="x"),
]

ATTRIBUTES = (
    "message",
    "operation",
    "status",
    "request_id",
    "retry_after",
    "request_sent",
    "details",
    "task_run_id",
    "args",
)


def _attributes(exc: BaseException) -> dict[str, object]:
    return {name: getattr(exc, name) for name in ATTRIBUTES if hasattr(exc, name)}


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda e: f"{type(e).__name__}-{e.message}")
def test_pickle_round_trip(exc: RenderError) -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        clone = pickle.loads(pickle.dumps(exc, protocol=protocol))
        assert type(clone) is type(exc)
        assert str(clone) == str(exc)
        assert _attributes(clone) == _attributes(exc)


@pytest.mark.parametrize("exc", EXAMPLES, ids=lambda e: f"{type(e).__name__}-{e.message}")
def test_copy_keeps_attributes(exc: RenderError) -> None:
    assert _attributes(copy.copy(exc)) == _attributes(exc)
    assert _attributes(copy.deepcopy(exc)) == _attributes(exc)


def test_pickled_task_run_error_keeps_the_run() -> None:
    clone = pickle.loads(pickle.dumps(TaskRunError("division by zero", details=DETAILS)))
    assert clone.details == DETAILS
    assert clone.details is not None
    assert clone.details.extra == {"newKey": [1]}
    assert clone.task_run_id == "trn-1"


def test_every_class_is_covered_by_the_pickle_examples() -> None:
    exported = {getattr(errors, name) for name in errors.__all__}
    assert {type(exc) for exc in EXAMPLES} == exported
