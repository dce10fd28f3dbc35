"""A forked attempt's own code, run on canned data by the template and by each spare.

Why
---
A forked child copies every page of the template it writes to, one page fault each,
and Python writes where it only seems to read: reference counts, and (3.11 and later)
the warm-up counters and inline caches of the bytecode of every function that runs for
the first time. On a small machine those copies are most of a trivial attempt's CPU
time. So before it freezes its heap, the template runs the attempt path's own code a
few times (:func:`warm`): the bytecode is specialised and the tables that are built on
first use exist, in pages every child shares, and each child copies fewer of them. A
spare runs it once more while it waits for its request (:func:`touch`): the pages an
attempt writes anyway are then copied before the request comes, not on its way.

What runs: reading a fork request and a handed input, binding a task's arguments,
encoding its result, building the callback request and reading its answer with the
socket transport's own HTTP/1.1 code, and setting and removing an environment
variable. It runs against a private task defined here and a transport that answers
from memory: no socket, no user code, no thread, nothing left behind that an attempt
could see. It is skipped when the application uses OpenTelemetry (a rehearsal must
never make a span), and a failure is ignored: it only ever saves time.
"""

from __future__ import annotations

import os
import sys

from render_core import callback
from render_core import template as protocol
from render_core.http import Request, Response
from render_core.tasks import Options, TaskRegistry, TaskSpec

__all__ = ["touch", "warm"]

_NAME = "render-sdk-rehearsal"
_VARIABLE = "RENDER_SDK_REHEARSAL"
_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
# Specialisation needs a function to run a few times (8 calls in CPython 3.11).
_WARM_ROUNDS = 12


def _task(value: int) -> int:
    return value


class _CannedTransport:
    """The socket transport's request encoding and answer parsing, with no socket."""

    def __init__(self) -> None:
        from render_transports.h11_transport import UnixSocketTransport

        self._endpoint = UnixSocketTransport(os.devnull)  # never dialled

    def send(self, request: Request) -> Response:
        exchange = self._endpoint.exchange(request)
        response = exchange.receive(_ANSWER)
        if response is None:
            raise RuntimeError("the canned answer did not parse")
        return response


def _registry() -> TaskRegistry:
    registry = TaskRegistry()
    registry.add(TaskSpec.from_function(_task, name=_NAME, options=Options()))
    return registry


def _once(registry: TaskRegistry) -> None:
    from render_sdk.worker.runtime import _Runtime

    body = callback.build_input_response(
        _NAME, [1], task_run_id="trn-rehearsal", root_task_run_id="trn-rehearsal", attempt=1
    )
    message = protocol.build_fork(0, {_VARIABLE: "run"}, [_VARIABLE], body)
    request = protocol.parse_server_message(message)
    if not isinstance(request, protocol.ForkRequest) or request.input is None:
        raise RuntimeError("the canned fork request did not parse")
    for name, value in request.set:
        os.environ[name] = value
    for name in request.unset:
        os.environ.pop(name, None)
    answer = Response(status=200, headers={"Content-Type": "application/json"}, body=request.input)
    task_input = callback.parse_input(answer)
    if _Runtime(_CannedTransport(), registry).run_one_sync(task_input) != 0:
        raise RuntimeError("the rehearsal's task failed")


def _rehearse(rounds: int) -> None:
    if "opentelemetry.trace" in sys.modules or _VARIABLE in os.environ:
        return
    try:
        registry = _registry()
        for _ in range(rounds):
            _once(registry)
    except Exception:  # an optimisation only: the real path reports its own errors
        os.environ.pop(_VARIABLE, None)


def warm() -> None:
    """In the template, before it freezes its heap: run the attempt path a few times."""
    _rehearse(_WARM_ROUNDS)


def touch() -> None:
    """In a spare, while it waits: run the attempt path once more."""
    _rehearse(1)
