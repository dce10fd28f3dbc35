"""Tests of the JSON dialects (render_core.codec) against the wire schemas.

Four contracts, each tested with tables and with Hypothesis:

- the documented examples (Render's API reference) parse into exactly the values they show;
- the reader is tolerant (unknown keys land in ``extra``, unknown statuses are
  pseudo-members, ``null`` lists read as ``[]``, 0.6.1 and 1.x shapes both parse)
  yet every wrong shape is a :class:`DecodeError` naming the field, never a stray
  ``KeyError``/``TypeError``/``AttributeError``;
- the writer is strict: only the documented camelCase keys, required keys always
  present, ``None`` omitted, client-side ``extra``/``cursor`` never written;
- every model survives ``unstructure -> json -> structure`` in both dialects.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_core.codec import (
    REST,
    DecodeError,
    Dialect,
    format_timestamp,
    make_converter,
    parse_timestamp,
    structure,
    unstructure,
)
from render_core.models import (
    Error,
    Task,
    TaskAttempt,
    TaskAttemptDetails,
    TaskRun,
    TaskRunDetails,
    TaskRunStatus,
    TaskRunWithCursor,
    TaskWithCursor,
)

PROPERTY_SETTINGS = settings(max_examples=50, deadline=None)
FUZZ_SETTINGS = settings(max_examples=100, deadline=None)

SNAKE = make_converter(Dialect.SNAKE)

UTC = dt.timezone.utc
PLUS_2 = dt.timezone(dt.timedelta(hours=2))


def tz(hours: int = 0, minutes: int = 0) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=hours, minutes=minutes))


def roundtrip_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


# ---------------------------------------------------------------------------
# The API documentation's examples, verbatim

TASK_RUN_202 = """
{
  "id": "trn-d2k4l6o2j5r3ldc4k0ug",
  "taskId": "tsk-d2k4l4g2j5r3ldc4k0t0",
  "status": "running",
  "startedAt": "2026-08-20T12:00:00.123456789+02:00",
  "parentTaskRunId": "",
  "rootTaskRunId": "trn-d2k4l6o2j5r3ldc4k0ug",
  "retries": 0,
  "attempts": [
    {"attempt": 0, "status": "running", "startedAt": "2026-08-20T12:00:00.123456789+02:00"}
  ]
}
"""

DETAILS_FAILED_AFTER_RETRY = """
{
  "id": "trn-d2k4l6o2j5r3ldc4k0ug",
  "taskId": "tsk-d2k4l4g2j5r3ldc4k0t0",
  "status": "failed",
  "results": [],
  "input": [2, 0],
  "error": "division by zero",
  "startedAt": "2026-08-20T12:00:00Z",
  "completedAt": "2026-08-20T12:00:03Z",
  "parentTaskRunId": "",
  "rootTaskRunId": "trn-d2k4l6o2j5r3ldc4k0ug",
  "retries": 1,
  "attempts": [
    {"attempt": 0, "status": "failed", "startedAt": "2026-08-20T12:00:00Z",
     "completedAt": "2026-08-20T12:00:01Z", "error": "division by zero"},
    {"attempt": 1, "status": "failed", "startedAt": "2026-08-20T12:00:02Z",
     "completedAt": "2026-08-20T12:00:03Z", "error": "division by zero"}
  ]
}
"""

RUN_ID = "trn-d2k4l6o2j5r3ldc4k0ug"
TASK_ID = "tsk-d2k4l4g2j5r3ldc4k0t0"
STARTED_202 = dt.datetime(2026, 8, 20, 12, 0, 0, 123456, tzinfo=PLUS_2)


def at(second: int) -> dt.datetime:
    return dt.datetime(2026, 8, 20, 12, 0, second, tzinfo=UTC)


def test_example_task_run_202() -> None:
    run = structure(json.loads(TASK_RUN_202), TaskRun)
    assert run.id == RUN_ID
    assert run.task_id == TASK_ID
    assert run.status is TaskRunStatus.RUNNING
    # Nanoseconds truncated, the +02:00 offset kept.
    assert run.started_at == STARTED_202
    assert run.started_at is not None
    assert run.started_at.utcoffset() == dt.timedelta(hours=2)
    assert run.started_at.microsecond == 123456
    assert run.completed_at is None
    assert run.parent_task_run_id == ""
    assert run.is_root
    assert run.root_task_run_id == RUN_ID
    assert run.retries == 0
    assert run.parent_task_attempt is None
    assert run.cursor is None
    assert run.extra == {}
    assert run.attempts == [
        TaskAttempt(attempt=0, status=TaskRunStatus.RUNNING, started_at=STARTED_202)
    ]
    only = run.attempts[0]
    assert (only.enqueued_at, only.completed_at, only.task_run_id) == (None, None, None)
    assert only.extra == {}


def test_example_details_failed_after_retry() -> None:
    details = structure(json.loads(DETAILS_FAILED_AFTER_RETRY), TaskRunDetails)
    assert details.id == RUN_ID
    assert details.task_id == TASK_ID
    assert details.status is TaskRunStatus.FAILED
    assert details.status.is_terminal
    assert not details.status.is_success
    assert details.results == []
    assert details.input_ == [2, 0]
    assert details.error == "division by zero"
    assert details.started_at == at(0)
    assert details.completed_at == at(3)
    assert details.parent_task_run_id == ""
    assert details.root_task_run_id == RUN_ID
    assert details.retries == 1
    assert details.parent_task_attempt is None
    assert details.extra == {}
    assert details.attempts == [
        TaskAttemptDetails(
            attempt=0,
            status="failed",
            started_at=at(0),
            completed_at=at(1),
            error="division by zero",
        ),
        TaskAttemptDetails(
            attempt=1,
            status="failed",
            started_at=at(2),
            completed_at=at(3),
            error="division by zero",
        ),
    ]
    for attempt in details.attempts:
        assert attempt.results is None
        assert attempt.enqueued_at is None
        assert attempt.task_run_id is None
    with pytest.raises(ValueError, match="no result"):
        _ = details.result


def test_example_success() -> None:
    document = json.loads(DETAILS_FAILED_AFTER_RETRY)
    document.update(status="completed", results=[5])
    del document["error"]
    details = structure(document, TaskRunDetails)
    assert details.status is TaskRunStatus.COMPLETED
    assert details.results == [5]
    assert details.result == 5
    assert details.error is None


def test_example_list_item() -> None:
    document = [{"taskRun": json.loads(TASK_RUN_202), "cursor": RUN_ID}]
    items = structure(document, list[TaskRunWithCursor])
    assert items == [
        TaskRunWithCursor(task_run=structure(json.loads(TASK_RUN_202), TaskRun), cursor=RUN_ID)
    ]
    assert items[0].cursor == RUN_ID
    assert items[0].task_run.id == RUN_ID
    assert items[0].extra == {}


def test_example_task_list_item() -> None:
    document = [
        {
            "task": {"id": "tsk-1", "name": "my-workflow/add", "createdAt": "2026-08-20T12:00:00Z"},
            "cursor": "tsk-1",
        }
    ]
    [item] = structure(document, list[TaskWithCursor])
    assert item == TaskWithCursor(
        task=Task(id="tsk-1", name="my-workflow/add", created_at=at(0)), cursor="tsk-1"
    )
    assert item.task.workflow_id is None
    assert item.task.workflow_version_id is None


def test_example_error() -> None:
    error = structure(
        json.loads('{"id": "…", "message": "task not found: my-workflow/nope"}'), Error
    )
    assert error.id == "…"
    assert error.message == "task not found: my-workflow/nope"
    assert error.code is None
    assert error.extra == {}


@pytest.mark.parametrize(
    ("text", "cls"),
    [(TASK_RUN_202, TaskRun), (DETAILS_FAILED_AFTER_RETRY, TaskRunDetails)],
    ids=["TaskRun", "TaskRunDetails"],
)
def test_examples_write_back_the_same_keys_and_instants(text: str, cls: type) -> None:
    original = json.loads(text)
    written = unstructure(structure(original, cls))
    assert same_shape(written, original)
    assert structure(written, cls) == structure(original, cls)


def same_shape(written: Any, original: Any) -> bool:
    """Equal JSON, except that timestamps compare as instants."""
    if isinstance(original, dict):
        return written.keys() == original.keys() and all(
            same_shape(written[key], value) for key, value in original.items()
        )
    if isinstance(original, list):
        return len(written) == len(original) and all(map(same_shape, written, original))
    if isinstance(original, str) and original.startswith("2026-"):
        return parse_timestamp(written) == parse_timestamp(original)
    return bool(written == original)


# ---------------------------------------------------------------------------
# Timestamps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-08-20T12:00:00Z", dt.datetime(2026, 8, 20, 12, tzinfo=UTC)),
        ("2026-08-20T12:00:00z", dt.datetime(2026, 8, 20, 12, tzinfo=UTC)),
        ("2026-08-20t12:00:00Z", dt.datetime(2026, 8, 20, 12, tzinfo=UTC)),
        ("2026-08-20 12:00:00Z", dt.datetime(2026, 8, 20, 12, tzinfo=UTC)),
        ("2026-08-20T12:00:00+02:00", dt.datetime(2026, 8, 20, 12, tzinfo=tz(2))),
        ("2026-08-20T12:00:00-05:30", dt.datetime(2026, 8, 20, 12, tzinfo=tz(-5, -30))),
        ("2026-08-20T12:00:00+0530", dt.datetime(2026, 8, 20, 12, tzinfo=tz(5, 30))),
        ("2026-08-20T12:00:00+0000", dt.datetime(2026, 8, 20, 12, tzinfo=UTC)),
        ("2026-08-20T12:00:00-00:00", dt.datetime(2026, 8, 20, 12, tzinfo=UTC)),
        ("2026-08-20T12:00:00+23:59", dt.datetime(2026, 8, 20, 12, tzinfo=tz(23, 59))),
        ("2026-08-20T12:00:00.1Z", dt.datetime(2026, 8, 20, 12, 0, 0, 100000, tzinfo=UTC)),
        ("2026-08-20T12:00:00.123Z", dt.datetime(2026, 8, 20, 12, 0, 0, 123000, tzinfo=UTC)),
        ("2026-08-20T12:00:00.123456Z", dt.datetime(2026, 8, 20, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-08-20T12:00:00.123456789Z", dt.datetime(2026, 8, 20, 12, 0, 0, 123456, tzinfo=UTC)),
        ("2026-08-20T12:00:00.999999999Z", dt.datetime(2026, 8, 20, 12, 0, 0, 999999, tzinfo=UTC)),
        ("2026-08-20T12:00:00.000001Z", dt.datetime(2026, 8, 20, 12, 0, 0, 1, tzinfo=UTC)),
        # A leap second reads as the last representable instant of that minute.
        ("2016-12-31T23:59:60Z", dt.datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2016-12-31T23:59:60.5Z", dt.datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", dt.datetime(1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", dt.datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: dt.datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_parse_timestamp_uses_the_utc_singleton_for_zero_offsets() -> None:
    for text in ("2026-08-20T12:00:00Z", "2026-08-20T12:00:00+00:00", "2026-08-20T12:00:00-0000"):
        assert parse_timestamp(text).tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-01T00:00:00Z",  # month 13
        "2026-00-10T00:00:00Z",  # month 0
        "2026-02-30T00:00:00Z",  # no such day
        "2025-02-29T00:00:00Z",  # not a leap year
        "2026-08-20T24:00:00Z",  # hour 24
        "2026-08-20T12:60:00Z",  # minute 60
        "2026-08-20T12:00:61Z",  # second 61
        "2026-08-20T12:00:00+24:00",  # offset hour 24
        "2026-08-20T12:00:00+02:60",  # offset minute 60
        "2026-08-20T12:00:00",  # no offset: local time has no meaning on the wire
        "2026-08-20",
        "2026-08-20T12:00Z",
        "2026-08-20T12:00:00.Z",
        "2026-08-20T12:00:00+2:00",
        "2026-08-20T12:00:00+02",
        "2026-08-20T12:00:00Z\n",
        " 2026-08-20T12:00:00Z",
        "2026-08-20X12:00:00Z",
        "26-08-20T12:00:00Z",
        "\u0662\u0660\u0662\u0666-08-20T12:00:00Z",  # Arabic-Indic digits are not RFC 3339
        "garbage",
        "",
    ],
)
def test_parse_timestamp_rejects_invalid_text(text: str) -> None:
    with pytest.raises(DecodeError):
        parse_timestamp(text)


@pytest.mark.parametrize("value", [None, 1755691200, 1.5, b"2026-08-20T12:00:00Z", ["x"]])
def test_parse_timestamp_rejects_non_strings(value: Any) -> None:
    with pytest.raises(DecodeError, match="string"):
        parse_timestamp(value)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(DecodeError, ValueError)


def test_long_garbage_is_truncated_in_the_message() -> None:
    with pytest.raises(DecodeError) as info:
        parse_timestamp("x" * 10_000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.datetime(2026, 8, 20, 12, tzinfo=UTC), "2026-08-20T12:00:00.000000Z"),
        (dt.datetime(2026, 8, 20, 12, tzinfo=tz(0)), "2026-08-20T12:00:00.000000Z"),
        (dt.datetime(2026, 8, 20, 12, 0, 0, 5, tzinfo=UTC), "2026-08-20T12:00:00.000005Z"),
        (
            dt.datetime(2026, 8, 20, 12, 0, 0, 123456, tzinfo=tz(2)),
            "2026-08-20T12:00:00.123456+02:00",
        ),
        (dt.datetime(2026, 8, 20, 12, tzinfo=tz(-5, -30)), "2026-08-20T12:00:00.000000-05:30"),
        # An offset with seconds has no RFC 3339 spelling: the same instant in UTC.
        (
            dt.datetime(1900, 1, 1, tzinfo=dt.timezone(dt.timedelta(minutes=19, seconds=32))),
            "1899-12-31T23:40:28.000000Z",
        ),
    ],
)
def test_format_timestamp(value: dt.datetime, text: str) -> None:
    assert format_timestamp(value) == text
    assert parse_timestamp(text) == value


def test_format_timestamp_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_timestamp(dt.datetime(2026, 8, 20, 12))


class _NoOffset(dt.tzinfo):
    """A tzinfo that does not know its offset: as naive as no tzinfo at all."""

    def utcoffset(self, _: dt.datetime | None) -> None:
        return None


def test_format_timestamp_refuses_a_tzinfo_without_offset() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_timestamp(dt.datetime(2026, 8, 20, 12, tzinfo=_NoOffset()))


minute_offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
second_offsets = st.integers(min_value=-(24 * 3600 - 1), max_value=24 * 3600 - 1).map(
    lambda seconds: dt.timezone(dt.timedelta(seconds=seconds))
)
# Keep one day away from the ends of datetime's range so that converting an
# offset with seconds to UTC cannot overflow.
aware_datetimes = st.datetimes(
    min_value=dt.datetime(1, 1, 2),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.just(UTC) | minute_offsets,
)


@PROPERTY_SETTINGS
@given(aware_datetimes)
def test_timestamps_round_trip_with_their_offset(value: dt.datetime) -> None:
    parsed = parse_timestamp(format_timestamp(value))
    assert parsed == value
    assert parsed.utcoffset() == value.utcoffset()


@PROPERTY_SETTINGS
@given(
    st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=second_offsets,
    )
)
def test_timestamps_round_trip_as_instants_for_any_offset(value: dt.datetime) -> None:
    assert parse_timestamp(format_timestamp(value)) == value


@PROPERTY_SETTINGS
@given(aware_datetimes, st.integers(min_value=0, max_value=999))
def test_nanosecond_fractions_are_truncated(value: dt.datetime, nanos: int) -> None:
    text = format_timestamp(value)
    with_nanos = text.replace(f".{value.microsecond:06d}", f".{value.microsecond:06d}{nanos:03d}")
    assert with_nanos != text
    assert parse_timestamp(with_nanos) == value


# ---------------------------------------------------------------------------
# The tolerant reader


def minimal_details(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "trn-1",
        "taskId": "tsk-1",
        "status": "running",
        "parentTaskRunId": "",
        "rootTaskRunId": "trn-1",
        "retries": 0,
        "attempts": [],
        "results": [],
        "input": [],
    }
    document.update(changes)
    return document


def test_unknown_keys_are_kept_in_extra_and_never_written() -> None:
    document = minimal_details(
        futureField={"nested": [1, 2]},
        extra="a key named extra is just another unknown key",
        attempts=[{"attempt": 0, "status": "running", "startedAt": "2026-08-20T12:00:00Z", "x": 1}],
    )
    details = structure(document, TaskRunDetails)
    assert details.extra == {
        "futureField": {"nested": [1, 2]},
        "extra": "a key named extra is just another unknown key",
    }
    assert details.attempts[0].extra == {"x": 1}
    assert details == structure(minimal_details(attempts=[at_zero()]), TaskRunDetails)
    written = unstructure(details)
    assert "futureField" not in written
    assert "extra" not in written
    assert "x" not in written["attempts"][0]
    assert "extra" not in written["attempts"][0]


def at_zero() -> dict[str, Any]:
    return {"attempt": 0, "status": "running", "startedAt": "2026-08-20T12:00:00Z"}


@pytest.mark.parametrize(
    ("document", "cls", "path"),
    [
        ({"taskRun": {"id": "t", "status": "running", "new": 1}, "cursor": "c", "page": 2},
         TaskRunWithCursor, ["task_run"]),
        ({"task": {"id": "t", "new": 1}, "cursor": "c", "page": 2}, TaskWithCursor, ["task"]),
        ({"id": "t", "name": "n", "new": 1, "page": 2}, Task, []),
        ({"message": "m", "new": 1, "page": 2}, Error, []),
        ({"status": "running", "new": 1, "page": 2}, TaskAttempt, []),
    ],
)  # fmt: skip
def test_unknown_keys_everywhere(document: dict[str, Any], cls: type, path: list[str]) -> None:
    value = structure(document, cls)
    inner = value
    for name in path:
        inner = getattr(inner, name)
    assert inner.extra["new"] == 1
    assert value.extra["page"] == 2
    assert "new" not in json.dumps(unstructure(value))
    assert "page" not in json.dumps(unstructure(value))


def test_unknown_status_parses_everywhere() -> None:
    document = minimal_details(
        status="paused_later",
        attempts=[{"attempt": 0, "status": "throttled", "startedAt": "2026-08-20T12:00:00Z"}],
    )
    details = structure(document, TaskRunDetails)
    assert details.status == "paused_later"
    assert not details.status.is_known
    assert not details.status.is_terminal
    assert details.attempts[0].status == "throttled"
    # Written back as the very string it came as.
    assert unstructure(details)["status"] == "paused_later"
    assert unstructure(details)["attempts"][0]["status"] == "throttled"


@pytest.mark.parametrize("key", ["results", "input", "attempts"])
def test_null_lists_read_as_empty(key: str) -> None:
    details = structure(minimal_details(**{key: None}), TaskRunDetails)
    assert getattr(details, key.replace("input", "input_")) == []


def test_null_attempts_on_a_task_run_read_as_empty() -> None:
    run = structure({"id": "trn-1", "status": "pending", "attempts": None}, TaskRun)
    assert run.attempts == []


def test_null_list_of_items_reads_as_empty() -> None:
    assert structure(None, list[TaskRunWithCursor]) == []
    assert structure([], list[TaskWithCursor]) == []


def test_null_optional_values_read_as_none() -> None:
    document = minimal_details(
        startedAt=None, completedAt=None, error=None, parentTaskAttempt=None,
        attempts=[{"status": "failed", "startedAt": None, "attempt": None, "results": None,
                   "error": None, "enqueuedAt": None, "completedAt": None, "taskRunId": None}],
    )  # fmt: skip
    details = structure(document, TaskRunDetails)
    assert (details.started_at, details.completed_at, details.error) == (None, None, None)
    assert details.parent_task_attempt is None
    assert details.attempts == [TaskAttemptDetails(status="failed")]


def test_missing_optional_keys_take_defaults() -> None:
    details = structure({"id": "trn-1", "status": "pending"}, TaskRunDetails)
    assert details == TaskRunDetails(id="trn-1", status="pending")
    assert details.task_id == ""
    assert details.parent_task_run_id == ""
    assert details.root_task_run_id == ""
    assert details.retries == 0
    assert (details.attempts, details.results, details.input_) == ([], [], [])
    assert structure({"id": "trn-1", "status": "pending"}, TaskRun) == TaskRun(
        id="trn-1", status="pending"
    )
    assert structure({"id": "tsk-1"}, Task) == Task(id="tsk-1")
    assert structure({}, Error) == Error()
    assert structure({"status": "running"}, TaskAttempt) == TaskAttempt(status="running")
    assert structure({"taskRun": {"id": "t", "status": "running"}}, TaskRunWithCursor).cursor == ""


def test_newer_1x_fields_parse() -> None:
    document = minimal_details(
        parentTaskRunId="trn-0",
        rootTaskRunId="trn-0",
        parentTaskAttempt=2,
        attempts=[
            {
                "attempt": 3,
                "status": "completed",
                "startedAt": "2026-08-20T12:00:02Z",
                "enqueuedAt": "2026-08-20T12:00:01Z",
                "completedAt": "2026-08-20T12:00:03Z",
                "taskRunId": "trn-1",
                "results": [5],
            }
        ],
    )
    details = structure(document, TaskRunDetails)
    assert details.parent_task_attempt == 2
    assert not details.is_root
    [attempt] = details.attempts
    assert attempt.attempt == 3
    assert attempt.enqueued_at == at(1)
    assert attempt.started_at == at(2)
    assert attempt.completed_at == at(3)
    assert attempt.task_run_id == "trn-1"
    assert attempt.results == [5]

    error = structure({"id": "e", "message": "m", "code": "too_many_resources"}, Error)
    assert error.code == "too_many_resources"
    task = structure(
        {"id": "tsk-1", "name": "wf/t", "createdAt": "2026-08-20T12:00:00Z",
         "workflowId": "wfl-1", "workflowVersionId": "wfv-1"},
        Task,
    )  # fmt: skip
    assert (task.workflow_id, task.workflow_version_id) == ("wfl-1", "wfv-1")
    assert task.created_at == at(0)


def test_0_6_1_server_output_without_attempt_parses() -> None:
    document = json.loads(DETAILS_FAILED_AFTER_RETRY)
    for attempt in document["attempts"]:
        del attempt["attempt"]
    details = structure(document, TaskRunDetails)
    assert [attempt.attempt for attempt in details.attempts] == [None, None]
    run = json.loads(TASK_RUN_202)
    del run["attempts"][0]["attempt"]
    assert structure(run, TaskRun).attempts[0].attempt is None


def test_input_may_be_an_object() -> None:
    details = structure(minimal_details(input={"a": 2, "b": [3]}), TaskRunDetails)
    assert details.input_ == {"a": 2, "b": [3]}
    assert unstructure(details)["input"] == {"a": 2, "b": [3]}


def test_results_hold_any_json() -> None:
    results = [None, True, 1, 1.5, "s", [1, [2]], {"k": {"v": None}}]
    details = structure(minimal_details(status="completed", results=results), TaskRunDetails)
    assert details.results == results
    assert unstructure(details)["results"] == results


def test_numbers_are_tolerated_for_strings_and_integral_floats_for_ints() -> None:
    details = structure(minimal_details(id=123, retries=2.0, taskId=1.5), TaskRunDetails)
    assert details.id == "123"
    assert details.task_id == "1.5"
    assert details.retries == 2
    assert type(details.retries) is int


def test_a_cursor_inside_a_task_run_is_read_but_never_written() -> None:
    run = structure({"id": "trn-1", "status": "running", "cursor": "c1"}, TaskRun)
    assert run.cursor == "c1"
    assert "cursor" not in unstructure(run)
    task = structure({"id": "tsk-1", "cursor": "c1"}, Task)
    assert task.cursor == "c1"
    assert "cursor" not in unstructure(task)


# ---------------------------------------------------------------------------
# Errors: always DecodeError, naming the field


@pytest.mark.parametrize("key", ["id", "status"])
@pytest.mark.parametrize("cls", [TaskRun, TaskRunDetails], ids=lambda c: c.__name__)
def test_missing_required_key(cls: type, key: str) -> None:
    document = minimal_details()
    del document[key]
    with pytest.raises(DecodeError, match=rf"required key missing @ {cls.__name__}\.{key}"):
        structure(document, cls)


def test_missing_required_keys_of_the_other_models() -> None:
    with pytest.raises(DecodeError, match=r"Task\.id"):
        structure({"name": "n"}, Task)
    with pytest.raises(DecodeError, match=r"TaskAttempt\.status"):
        structure({"attempt": 0}, TaskAttempt)
    with pytest.raises(DecodeError, match=r"TaskRunWithCursor\.task_run"):
        structure({"cursor": "c"}, TaskRunWithCursor)
    with pytest.raises(DecodeError, match=r"TaskWithCursor\.task"):
        structure({"cursor": "c"}, TaskWithCursor)
    with pytest.raises(DecodeError, match=r"task_run\.status"):
        structure({"taskRun": {"id": "t"}, "cursor": "c"}, TaskRunWithCursor)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("results", {"a": 1}, r"expected a JSON array, got dict @ TaskRunDetails\.results"),
        ("results", "[]", r"expected a JSON array, got str @ TaskRunDetails\.results"),
        ("status", 1, r"expected a status string, got int @ TaskRunDetails\.status"),
        ("status", None, r"expected a status string, got NoneType @ TaskRunDetails\.status"),
        ("retries", "3", r"expected an integer, got '3' @ TaskRunDetails\.retries"),
        ("retries", True, r"expected an integer, got True @ TaskRunDetails\.retries"),
        ("retries", 2.5, r"expected an integer, got 2.5 @ TaskRunDetails\.retries"),
        ("input", "2,3", r"expected a JSON array or object, got str @ TaskRunDetails\.input"),
        ("input", 5, r"expected a JSON array or object, got int @ TaskRunDetails\.input"),
        ("attempts", {}, r"expected a JSON array, got dict @ TaskRunDetails\.attempts"),
        ("attempts", {"a": 1}, r"expected a JSON array, got dict @ TaskRunDetails\.attempts"),
        ("attempts", "", r"expected a JSON array, got str @ TaskRunDetails\.attempts"),
        ("attempts", [1], r"TaskAttemptDetails, got int @ TaskRunDetails\.attempts\[0\]"),
        ("id", None, r"expected a string, got NoneType @ TaskRunDetails\.id"),
        ("id", False, r"expected a string, got bool @ TaskRunDetails\.id"),
        ("taskId", ["t"], r"expected a string, got list @ TaskRunDetails\.task_id"),
        ("error", {}, r"expected a string, got dict @ TaskRunDetails\.error"),
        ("startedAt", "yesterday", r"RFC 3339 timestamp: 'yesterday' @ TaskRunDetails\.started_at"),
        ("completedAt", 1755691200, r"timestamp string, got int @ TaskRunDetails\.completed_at"),
        ("parentTaskAttempt", "0", r"integer, got '0' @ TaskRunDetails\.parent_task_attempt"),
    ],
)  # fmt: skip
def test_wrong_json_types_name_the_field(key: str, value: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        structure(minimal_details(**{key: value}), TaskRunDetails)


def test_every_problem_is_reported_with_its_path() -> None:
    document = minimal_details(
        status=3,
        attempts=[
            {"status": "failed", "startedAt": "2026-13-01T00:00:00Z"},
            {"status": "failed"},
            {"status": ["x"], "attempt": "1", "results": {}},
        ],
    )
    with pytest.raises(DecodeError) as info:
        structure(document, TaskRunDetails)
    message = str(info.value)
    assert "TaskRunDetails.status" in message
    assert "TaskRunDetails.attempts[0].started_at" in message
    assert "TaskRunDetails.attempts[1]" not in message
    assert "TaskRunDetails.attempts[2].status" in message
    assert "TaskRunDetails.attempts[2].attempt" in message
    assert "TaskRunDetails.attempts[2].results" in message


@pytest.mark.parametrize(
    "cls", [TaskRun, TaskRunDetails, Task, TaskAttempt, Error, TaskRunWithCursor], ids=str
)
@pytest.mark.parametrize("document", [[], [{"id": "x"}], "x", 5, None, True])
def test_a_non_object_is_not_a_model(cls: type, document: Any) -> None:
    with pytest.raises(DecodeError, match=f"expected a JSON object for {cls.__name__}"):
        structure(document, cls)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "expected a JSON array, got dict"),
        ("", "expected a JSON array, got str"),
        (5, "expected a JSON array, got int"),
        ([{"taskRun": []}], r"JSON object for TaskRun, got list @ list\[0\]\.task_run"),
        ([{"taskRun": {"id": "t", "status": "x"}}, 3], r"got int @ list\[1\]"),
    ],
)
def test_a_bad_list_of_items(document: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        structure(document, list[TaskRunWithCursor])


@pytest.mark.parametrize(
    ("document", "cls", "message"),
    [
        # Shapes no model uses still come back as DecodeError, not a cattrs or
        # builtin exception.
        (5, dict[str, int], r"invalid dict: invalid value \(AttributeError"),
        ([], Mapping[str, Any], "expected a JSON object, got list"),
        (5, list[Any], "expected a JSON array, got int"),
        ("x", list[Any] | dict[str, Any], "expected a JSON array or object, got str"),
        (5, TaskRunStatus, "expected a status string, got int"),
        (5.5, int, "expected an integer"),
        ({"a": "x"}, dict[str, int], r"expected an integer, got 'x' @ dict\['a'\]"),
    ],
)
def test_structure_wraps_every_failure_in_decode_error(
    document: Any, cls: Any, message: str
) -> None:
    with pytest.raises(DecodeError, match=message):
        structure(document, cls)


# Arbitrary JSON, and documents that are almost right.

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

VALID_DOCUMENTS: dict[Any, Any] = {
    TaskRun: json.loads(TASK_RUN_202),
    TaskRunDetails: json.loads(DETAILS_FAILED_AFTER_RETRY),
    Task: {"id": "tsk-1", "name": "wf/t", "createdAt": "2026-08-20T12:00:00Z", "workflowId": "w"},
    TaskRunWithCursor: {"taskRun": json.loads(TASK_RUN_202), "cursor": "c"},
    list[TaskRunWithCursor]: [{"taskRun": json.loads(TASK_RUN_202), "cursor": "c"}],
}
FUZZED_TYPES = list(VALID_DOCUMENTS)


@st.composite
def nearly_valid(draw: st.DrawFn, cls: Any) -> Any:
    """A valid document with one value somewhere replaced or removed."""
    document = copy.deepcopy(VALID_DOCUMENTS[cls])
    node = document
    # Walk down a few levels, then damage the node reached.
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        children = (
            list(node.values())
            if isinstance(node, dict)
            else node
            if isinstance(node, list)
            else []
        )
        containers = [child for child in children if isinstance(child, dict | list)]
        if not containers:
            break
        node = draw(st.sampled_from(containers))
    if isinstance(node, dict):
        key = draw(st.sampled_from([*node, "unknownKey"]))
        if draw(st.booleans()):
            node.pop(key, None)
        else:
            node[key] = draw(json_values)
    elif node:
        node[draw(st.integers(min_value=0, max_value=len(node) - 1))] = draw(json_values)
    return document


def structure_or_decode_error(document: Any, cls: Any) -> None:
    try:
        value = structure(document, cls)
    except DecodeError as exc:
        failure: DecodeError | None = exc
    else:
        failure = None
    if failure is not None:
        assert str(failure), "a DecodeError says what is wrong"
        return
    if isinstance(value, list):
        assert all(isinstance(item, TaskRunWithCursor) for item in value)
    else:
        assert isinstance(value, cls)
        # Whatever was read can be written and read back unchanged.
        assert structure(roundtrip_json(unstructure(value)), cls) == value


@FUZZ_SETTINGS
@given(json_values | st.dictionaries(st.sampled_from(list(minimal_details())), json_values))
def test_arbitrary_json_is_a_model_or_a_decode_error(document: Any) -> None:
    for cls in FUZZED_TYPES:
        structure_or_decode_error(document, cls)


@FUZZ_SETTINGS
@given(st.data(), st.sampled_from(FUZZED_TYPES))
def test_damaged_documents_are_a_model_or_a_decode_error(data: st.DataObject, cls: Any) -> None:
    structure_or_decode_error(data.draw(nearly_valid(cls)), cls)


# ---------------------------------------------------------------------------
# Round trips and the strict writer

texts = st.text(max_size=12)
ids = st.text(min_size=1, max_size=12)
statuses = st.sampled_from(list(TaskRunStatus))
optional_datetimes = st.none() | aware_datetimes
optional_ints = st.none() | st.integers(min_value=0, max_value=2**40)
json_arrays = st.lists(json_values, max_size=3)
json_args = json_arrays | st.dictionaries(st.text(max_size=8), json_values, max_size=3)

attempt_common: dict[str, Any] = {
    "status": statuses,
    "started_at": optional_datetimes,
    "attempt": optional_ints,
    "enqueued_at": optional_datetimes,
    "completed_at": optional_datetimes,
    "task_run_id": st.none() | ids,
}
task_attempts = st.builds(TaskAttempt, **attempt_common)
task_attempt_details = st.builds(
    TaskAttemptDetails,
    **attempt_common,
    error=st.none() | texts,
    results=st.none() | json_arrays,
)
run_common: dict[str, Any] = {
    "id": ids,
    "task_id": texts,
    "status": statuses,
    "parent_task_run_id": texts,
    "root_task_run_id": texts,
    "retries": st.integers(min_value=0, max_value=100),
    "started_at": optional_datetimes,
    "completed_at": optional_datetimes,
    "parent_task_attempt": optional_ints,
}
task_runs = st.builds(
    TaskRun,
    **run_common,
    attempts=st.lists(task_attempts, max_size=3),
    cursor=st.none() | texts,
)
task_run_details = st.builds(
    TaskRunDetails,
    **run_common,
    attempts=st.lists(task_attempt_details, max_size=3),
    results=json_arrays,
    input_=json_args,
    error=st.none() | texts,
)
tasks = st.builds(
    Task,
    id=ids,
    name=texts,
    created_at=optional_datetimes,
    workflow_id=st.none() | ids,
    workflow_version_id=st.none() | ids,
    cursor=st.none() | texts,
)
errors = st.builds(Error, id=st.none() | texts, message=st.none() | texts, code=st.none() | texts)
task_runs_with_cursor = st.builds(TaskRunWithCursor, task_run=task_runs, cursor=texts)
tasks_with_cursor = st.builds(TaskWithCursor, task=tasks, cursor=texts)

MODELS: dict[type, st.SearchStrategy[Any]] = {
    TaskAttempt: task_attempts,
    TaskAttemptDetails: task_attempt_details,
    TaskRun: task_runs,
    TaskRunDetails: task_run_details,
    Task: tasks,
    TaskRunWithCursor: task_runs_with_cursor,
    TaskWithCursor: tasks_with_cursor,
    Error: errors,
}
any_model = st.one_of(*MODELS.values())

# The only keys each model may write, and those it always writes.
RUN_KEYS = {"id", "taskId", "status", "parentTaskRunId", "rootTaskRunId", "retries", "attempts"}
ATTEMPT_KEYS = {"status", "startedAt", "attempt", "enqueuedAt", "completedAt", "taskRunId"}
ALLOWED_KEYS: dict[type, set[str]] = {
    TaskRun: RUN_KEYS | {"startedAt", "completedAt", "parentTaskAttempt"},
    TaskRunDetails: RUN_KEYS | {"startedAt", "completedAt", "parentTaskAttempt"}
    | {"results", "input", "error"},
    TaskAttempt: ATTEMPT_KEYS,
    TaskAttemptDetails: ATTEMPT_KEYS | {"error", "results"},
    Task: {"id", "name", "createdAt", "workflowId", "workflowVersionId"},
    TaskRunWithCursor: {"taskRun", "cursor"},
    TaskWithCursor: {"task", "cursor"},
    Error: {"id", "message", "code"},
}  # fmt: skip
REQUIRED_KEYS: dict[type, set[str]] = {
    TaskRun: RUN_KEYS,
    TaskRunDetails: RUN_KEYS | {"results", "input"},
    TaskAttempt: {"status"},
    TaskAttemptDetails: {"status"},
    Task: {"id", "name"},
    TaskRunWithCursor: {"taskRun", "cursor"},
    TaskWithCursor: {"task", "cursor"},
    Error: set(),
}
# The nested models, by wire key, for walking a written document.
NESTED: dict[type, dict[str, type]] = {
    TaskRun: {"attempts": TaskAttempt},
    TaskRunDetails: {"attempts": TaskAttemptDetails},
    TaskRunWithCursor: {"taskRun": TaskRun},
    TaskWithCursor: {"task": Task},
}
TIMESTAMP_KEYS = {"startedAt", "completedAt", "enqueuedAt", "createdAt"}


def test_the_key_table_covers_every_model() -> None:
    assert set(ALLOWED_KEYS) == set(REQUIRED_KEYS) == set(MODELS)


def check_written(document: Any, cls: type) -> None:
    """``document`` holds only documented keys, all required ones, and no nulls."""
    assert isinstance(document, dict)
    keys = set(document)
    assert keys <= ALLOWED_KEYS[cls], keys - ALLOWED_KEYS[cls]
    assert keys >= REQUIRED_KEYS[cls], REQUIRED_KEYS[cls] - keys
    assert None not in document.values()
    for key in keys & TIMESTAMP_KEYS:
        assert parse_timestamp(document[key]).tzinfo is not None
    assert isinstance(document.get("status", ""), str)
    for key, inner in NESTED.get(cls, {}).items():
        if inner is TaskAttempt or inner is TaskAttemptDetails:
            for item in document[key]:
                check_written(item, inner)
        else:
            check_written(document[key], inner)


@PROPERTY_SETTINGS
@given(any_model)
def test_every_model_round_trips_through_json(value: Any) -> None:
    text = json.dumps(unstructure(value))
    assert structure(json.loads(text), type(value)) == value


@PROPERTY_SETTINGS
@given(any_model)
def test_every_model_round_trips_through_the_snake_dialect(value: Any) -> None:
    written = roundtrip_json(unstructure(value, SNAKE))
    assert structure(written, type(value), SNAKE) == value


@PROPERTY_SETTINGS
@given(st.lists(task_runs_with_cursor, max_size=3))
def test_lists_of_items_round_trip(items: list[TaskRunWithCursor]) -> None:
    written = roundtrip_json(unstructure(items))
    assert [item["cursor"] for item in written] == [item.cursor for item in items]
    assert structure(written, list[TaskRunWithCursor]) == items


@PROPERTY_SETTINGS
@given(any_model)
def test_the_writer_is_strict(value: Any) -> None:
    check_written(unstructure(value), type(value))


@PROPERTY_SETTINGS
@given(any_model, st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=3))
def test_extra_is_never_written(value: Any, extra: dict[str, Any]) -> None:
    annotated = attrs.evolve(value, extra=extra)
    assert unstructure(annotated) == unstructure(value)


@pytest.mark.parametrize("cls", list(MODELS), ids=lambda c: c.__name__)
def test_the_writer_uses_documented_keys_for_a_fully_populated_value(cls: type) -> None:
    value = full(cls)
    written = unstructure(value)
    check_written(written, cls)
    if cls not in (TaskRunWithCursor, TaskWithCursor):
        # Every documented key is written when every field is set.
        assert set(written) == ALLOWED_KEYS[cls]
    assert structure(roundtrip_json(written), cls) == value


def full(cls: type) -> Any:
    """An instance of ``cls`` with every field set (and an ``extra``)."""
    t = dt.datetime(2026, 8, 20, 12, 0, 0, 123456, tzinfo=tz(-5, -30))
    attempt: dict[str, Any] = {
        "status": "completed",
        "started_at": t,
        "attempt": 1,
        "enqueued_at": t,
        "completed_at": t,
        "task_run_id": "trn-1",
        "extra": {"x": 1},
    }
    run: dict[str, Any] = {
        "id": "trn-1",
        "task_id": "tsk-1",
        "status": "completed",
        "parent_task_run_id": "trn-0",
        "root_task_run_id": "trn-0",
        "retries": 1,
        "started_at": t,
        "completed_at": t,
        "parent_task_attempt": 0,
        "extra": {"x": 1},
    }
    task = Task(
        id="tsk-1", name="wf/t", created_at=t, workflow_id="w", workflow_version_id="v",
        cursor="c", extra={"x": 1},
    )  # fmt: skip
    values: dict[type, Any] = {
        TaskAttempt: TaskAttempt(**attempt),
        TaskAttemptDetails: TaskAttemptDetails(**attempt, error="e", results=[1]),
        TaskRun: TaskRun(**run, attempts=[TaskAttempt(**attempt)], cursor="c"),
        TaskRunDetails: TaskRunDetails(
            **run,
            attempts=[TaskAttemptDetails(**attempt, error="e", results=[1])],
            results=[1],
            input_={"a": 1},
            error="e",
        ),
        Task: task,
        TaskRunWithCursor: TaskRunWithCursor(
            task_run=TaskRun(**run, cursor="c"), cursor="c", extra={"x": 1}
        ),
        TaskWithCursor: TaskWithCursor(task=task, cursor="c", extra={"x": 1}),
        Error: Error(id="e", message="m", code="c", extra={"x": 1}),
    }
    return values[cls]


def test_details_always_write_the_required_keys_with_their_defaults() -> None:
    written = unstructure(TaskRunDetails(id="trn-1", status="pending"))
    assert written == {
        "id": "trn-1",
        "taskId": "",
        "status": "pending",
        "parentTaskRunId": "",
        "rootTaskRunId": "",
        "retries": 0,
        "attempts": [],
        "results": [],
        "input": [],
    }


def test_none_values_are_omitted() -> None:
    assert unstructure(Error()) == {}
    assert unstructure(TaskAttempt(status="running")) == {"status": "running"}
    assert unstructure(TaskAttemptDetails(status="running", attempt=0)) == {
        "status": "running",
        "attempt": 0,
    }
    # Falsy but not None is data.
    assert unstructure(TaskRunDetails(id="t", status="failed", error=""))["error"] == ""


def test_extra_from_a_parse_is_not_written() -> None:
    parsed = structure(json.loads(TASK_RUN_202) | {"newKey": [1], "cursor": "c"}, TaskRun)
    assert parsed.extra == {"newKey": [1]}
    assert parsed.cursor == "c"
    written = unstructure(parsed)
    assert "newKey" not in written
    assert "cursor" not in written
    check_written(written, TaskRun)


def test_cursor_is_written_only_on_the_wrapper_items() -> None:
    run = TaskRun(id="trn-1", status="running", cursor="c-run")
    item = TaskRunWithCursor(task_run=run, cursor="c-item")
    written = unstructure(item)
    assert written["cursor"] == "c-item"
    assert "cursor" not in written["taskRun"]
    task_item = TaskWithCursor(task=Task(id="tsk-1", cursor="c-task"), cursor="c-item")
    written = unstructure(task_item)
    assert written["cursor"] == "c-item"
    assert "cursor" not in written["task"]


def test_timestamps_are_written_in_rfc_3339() -> None:
    run = TaskRun(
        id="t",
        status="running",
        started_at=dt.datetime(2026, 8, 20, 12, tzinfo=UTC),
        completed_at=dt.datetime(2026, 8, 20, 12, 0, 0, 5, tzinfo=tz(2)),
    )
    written = unstructure(run)
    assert written["startedAt"] == "2026-08-20T12:00:00.000000Z"
    assert written["completedAt"] == "2026-08-20T12:00:00.000005+02:00"


def test_writing_a_naive_datetime_is_refused() -> None:
    run = TaskRun(id="t", status="running", started_at=dt.datetime(2026, 8, 20, 12))
    with pytest.raises(ValueError, match="naive"):
        unstructure(run)


def test_structure_uses_the_rest_converter_by_default() -> None:
    assert isinstance(REST, cattrs.Converter)
    document = json.loads(TASK_RUN_202)
    assert structure(document, TaskRun) == structure(document, TaskRun, REST)
    assert unstructure(structure(document, TaskRun)) == unstructure(
        structure(document, TaskRun), REST
    )


# ---------------------------------------------------------------------------
# The snake_case dialect


def test_snake_dialect_reads_and_writes_snake_keys() -> None:
    document = {
        "id": "trn-1",
        "task_id": "tsk-1",
        "status": "completed",
        "parent_task_run_id": "",
        "root_task_run_id": "trn-1",
        "retries": 0,
        "attempts": [
            {"status": "completed", "started_at": "2026-08-20T12:00:00Z", "attempt": 0,
             "task_run_id": "trn-1", "results": [5]}
        ],
        "results": [5],
        "input": [2, 3],
        "parent_task_attempt": 1,
    }  # fmt: skip
    details = structure(document, TaskRunDetails, SNAKE)
    assert details.task_id == "tsk-1"
    assert details.input_ == [2, 3]
    assert details.results == [5]
    assert details.parent_task_attempt == 1
    assert details.attempts[0].started_at == at(0)
    assert details.attempts[0].task_run_id == "trn-1"
    assert details.extra == {}
    written = unstructure(details, SNAKE)
    assert set(written) == set(document)
    assert set(written["attempts"][0]) == set(document["attempts"][0])
    assert structure(written, TaskRunDetails, SNAKE) == details


def test_snake_dialect_treats_camel_keys_as_unknown() -> None:
    details = structure({"id": "t", "status": "running", "taskId": "tsk-1"}, TaskRunDetails, SNAKE)
    assert details.task_id == ""
    assert details.extra == {"taskId": "tsk-1"}
    camel = structure({"id": "t", "status": "running", "task_id": "tsk-1"}, TaskRunDetails)
    assert camel.task_id == ""
    assert camel.extra == {"task_id": "tsk-1"}


def test_snake_dialect_wrapper_and_task_keys() -> None:
    item = TaskRunWithCursor(task_run=TaskRun(id="t", status="running", cursor="x"), cursor="c")
    written = unstructure(item, SNAKE)
    assert set(written) == {"task_run", "cursor"}
    assert "cursor" not in written["task_run"]
    assert set(written["task_run"]) >= {"task_id", "parent_task_run_id", "root_task_run_id"}
    task = Task(id="tsk-1", name="n", created_at=at(0), workflow_version_id="v")
    assert set(unstructure(task, SNAKE)) == {"id", "name", "created_at", "workflow_version_id"}


def test_snake_dialect_errors_name_the_field() -> None:
    with pytest.raises(DecodeError, match=r"TaskRunDetails\.input_"):
        structure({"id": "t", "status": "running", "input": "x"}, TaskRunDetails, SNAKE)
    with pytest.raises(DecodeError, match=r"TaskRun\.attempts"):
        structure({"id": "t", "status": "running", "attempts": {}}, TaskRun, SNAKE)
    assert structure({"id": "t", "status": "running", "attempts": None}, TaskRun, SNAKE) == (
        TaskRun(id="t", status="running")
    )
