"""A checker for Chrome trace-event files (the JSON object format), for the tests.

It enforces what the format's documentation requires of the events this project
writes, and what Perfetto and ``chrome://tracing`` rely on to draw them: a
``traceEvents`` list; every event with a string ``name``, a known ``ph``, integer
``pid``/``tid``; complete events (``X``) with non-negative ``ts`` and ``dur`` in
microseconds; metadata events (``M``) naming processes and threads; flow events
(``s``/``f``) in matching pairs, each start inside a slice of its thread; and
complete events on one thread that nest (no partial overlaps).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

__all__ = ["check_trace"]

_PHASES = {"X", "B", "E", "i", "I", "M", "s", "t", "f", "C"}
_METADATA = {"process_name", "thread_name", "process_sort_index", "thread_sort_index"}


def _fail(message: str, event: Any = None) -> None:
    raise AssertionError(message + (f": {event!r}" if event is not None else ""))


def check_trace(document: Any) -> None:
    """Raise AssertionError naming the first problem; return quietly when the file is valid."""
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        _fail("a trace file is a JSON object with a traceEvents list")
    if document.get("displayTimeUnit", "ms") not in ("ms", "ns"):
        _fail("displayTimeUnit must be ms or ns")
    slices: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    flows: dict[Any, dict[str, Any]] = {}
    named_threads: set[tuple[int, int]] = set()
    for event in document["traceEvents"]:
        if not isinstance(event, dict):
            _fail("every event is an object", event)
        if not isinstance(event.get("name"), str) or not event["name"]:
            _fail("every event has a name", event)
        phase = event.get("ph")
        if phase not in _PHASES:
            _fail("unknown phase", event)
        for key in ("pid", "tid"):
            if not isinstance(event.get(key), int) or isinstance(event.get(key), bool):
                _fail(f"{key} must be an integer", event)
        if "args" in event and not isinstance(event["args"], dict):
            _fail("args must be an object", event)
        if phase == "M":
            if event["name"] not in _METADATA:
                _fail("unknown metadata event", event)
            args = event.get("args") or {}
            if event["name"].endswith("_name") and not isinstance(args.get("name"), str):
                _fail("a name metadata event needs args.name", event)
            if event["name"].endswith("_sort_index") and not isinstance(
                args.get("sort_index"), int
            ):
                _fail("a sort-index metadata event needs args.sort_index", event)
            if event["name"] == "thread_name":
                named_threads.add((event["pid"], event["tid"]))
            continue
        ts = event.get("ts")
        if not isinstance(ts, int | float) or ts < 0:
            _fail("ts must be a non-negative number of microseconds", event)
        if phase == "X":
            dur = event.get("dur")
            if not isinstance(dur, int | float) or dur < 0:
                _fail("a complete event needs a non-negative dur", event)
            slices[event["pid"], event["tid"]].append((int(ts), int(ts + dur)))
        if phase in ("s", "t", "f"):
            if "id" not in event or not isinstance(event.get("cat"), str):
                _fail("a flow event needs an id and a cat", event)
            flows.setdefault((event["cat"], event["id"]), {})[phase] = event
    for thread, spans in slices.items():
        if thread not in named_threads:
            _fail(f"thread {thread} has events but no thread_name")
        spans.sort(key=lambda span: (span[0], -span[1]))
        stack: list[tuple[int, int]] = []
        for start, end in spans:
            while stack and stack[-1][1] <= start:
                stack.pop()
            if stack and end > stack[-1][1]:
                _fail(
                    f"slices on thread {thread} overlap without nesting: {stack[-1]} {start, end}"
                )
            stack.append((start, end))
    for key, ends in flows.items():
        if set(ends) != {"s", "f"}:
            _fail(f"flow {key} needs one start and one finish")
        start = ends["s"]
        enclosing = slices.get((start["pid"], start["tid"]), [])
        if not any(a <= start["ts"] <= b for a, b in enclosing):
            _fail("a flow starts inside a slice of its thread", start)
