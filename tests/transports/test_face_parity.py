"""Every documented failure raises the same exception, with the same message, in both faces.

Each case runs once through ``Render`` and once through ``RenderAsync``, over real
loopback sockets (the fake Render server, or a closed port), and the two errors
must agree in type and text. Run ids differ between the two runs of a case, so
they (and the ids of error answers) are replaced by a placeholder before the texts are compared.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from render_core.errors import (
    ClientError,
    ConnectionFailed,
    NotFoundError,
    RenderError,
    ServerError,
    TaskRunError,
    TimeoutError,
    ValidationError,
)
from render_sdk import Render, RenderAsync
from tests.support.fake_render import FAST_RETRY, FakeRender
from tests.transports.conftest import Face

UNKNOWN = "trn-00000000000000000000"


def _wait_timeout(face: Face, fake: FakeRender) -> None:
    run = face.start("my-workflow/forever", [])
    face.call("wait_for_run", run.id, timeout=0.5)


def _wait_timeout_many(face: Face, fake: FakeRender) -> None:
    done = face.start("my-workflow/square", [3])
    forever = face.start("my-workflow/forever", [])
    face.call("wait_for_runs", [done.id, forever.id], timeout=1.0)


def _as_completed_timeout(face: Face, fake: FakeRender) -> None:
    forever = [face.start("my-workflow/forever", []) for _ in range(2)]
    face.call("as_completed", [run.id for run in forever], timeout=0.5)


def _run_task_timeout(face: Face, fake: FakeRender) -> None:
    face.call("run_task", "my-workflow/forever", [], timeout=0.5)


def _unknown_run(face: Face, fake: FakeRender) -> None:
    face.call("get_task_run", UNKNOWN)


def _unknown_run_waited_for(face: Face, fake: FakeRender) -> None:
    face.call("wait_for_run", UNKNOWN, timeout=10)


def _unknown_task(face: Face, fake: FakeRender) -> None:
    face.call("start_task", "my-workflow/nope", [])


def _bad_input(face: Face, fake: FakeRender) -> None:
    face.call("start_task", "my-workflow/square", [object()])


def _bad_timeout(face: Face, fake: FakeRender) -> None:
    face.call("wait_for_runs", [UNKNOWN], timeout=-1)


def _failed_run(face: Face, fake: FakeRender) -> None:
    face.call("run_task", "my-workflow/boom", [], timeout=10)


def _canceled_run(face: Face, fake: FakeRender) -> None:
    run = face.start("my-workflow/forever", [])
    face.call("cancel_task_run", run.id)
    face.call("wait_for_run", run.id, timeout=10)


def _client_error(face: Face, fake: FakeRender) -> None:
    fake.fail_next(1, 422, method="GET", path_prefix="/v1/task-runs")
    face.call("list_task_runs")


def _server_error_after_retries(face: Face, fake: FakeRender) -> None:
    fake.fail_next(FAST_RETRY.max_attempts, 503, method="GET", path_prefix="/v1/tasks")
    face.call("list_tasks")


Case = Callable[[Face, FakeRender], None]

CASES: dict[str, tuple[Case, type[RenderError]]] = {
    "wait timeout": (_wait_timeout, TimeoutError),
    "wait timeout, several runs": (_wait_timeout_many, TimeoutError),
    "as_completed timeout": (_as_completed_timeout, TimeoutError),
    "run_task timeout": (_run_task_timeout, TimeoutError),
    "unknown run": (_unknown_run, NotFoundError),
    "unknown run, waited for": (_unknown_run_waited_for, NotFoundError),
    "unknown task": (_unknown_task, NotFoundError),
    "bad input": (_bad_input, ValidationError),
    "bad timeout": (_bad_timeout, ValidationError),
    "failed run": (_failed_run, TaskRunError),
    "canceled run": (_canceled_run, TaskRunError),
    "4xx": (_client_error, ClientError),
    "5xx after retries": (_server_error_after_retries, ServerError),
}


def _faces(fake: FakeRender) -> Iterator[Face]:
    for cls in (Render, RenderAsync):
        face = Face(cls(base_url=fake.url, env={}, retry=FAST_RETRY))
        try:
            yield face
        finally:
            face.close()


def _failure(case: Case, face: Face, fake: FakeRender) -> BaseException:
    with pytest.raises(RenderError) as caught:
        case(face, fake)
    return caught.value


def _text(error: BaseException) -> str:
    return re.sub(r"\b(trn|err)-[0-9a-v]{20}\b", r"\1-<id>", str(error))


@pytest.mark.parametrize("name", list(CASES))
def test_each_failure_is_the_same_in_both_faces(name: str, fake: FakeRender) -> None:
    case, expected = CASES[name]
    sync, async_ = (_failure(case, face, fake) for face in _faces(fake))
    assert type(sync) is type(async_)
    assert isinstance(sync, expected)
    assert _text(sync) == _text(async_)


def test_the_wait_timeout_names_the_run_and_the_seconds(fake: FakeRender) -> None:
    for face in _faces(fake):
        run = face.start("my-workflow/forever", [])
        with pytest.raises(TimeoutError) as caught:
            face.call("wait_for_run", run.id, timeout=0.5)
        assert str(caught.value) == (
            f"wait for task runs failed: 1 task run(s) still not finished after 0.5 s: {run.id}"
        )


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    ("method", "args"),
    [("get_task_run", (UNKNOWN,)), ("start_task", ("my-workflow/square", [2]))],
)
def test_a_refused_connection_is_the_same_in_both_faces(
    closed_port: int, method: str, args: tuple[Any, ...]
) -> None:
    errors = []
    for cls in (Render, RenderAsync):
        face = Face(cls(base_url=f"http://127.0.0.1:{closed_port}", env={}, retry=FAST_RETRY))
        try:
            with pytest.raises(ConnectionFailed) as caught:
                face.call(method, *args)
        finally:
            face.close()
        errors.append(caught.value)
    sync, async_ = errors
    assert type(sync) is type(async_)
    # What the SDK says is the same; the reason after it is the HTTP library's own words.
    assert (
        str(sync).split(": could not connect: ")[0] == str(async_).split(": could not connect: ")[0]
    )
    assert sync.operation == async_.operation
