"""Effects and the two drivers that run effect generators (the only two-colour code).

An operation is a generator that yields what it needs and receives the answer:

- ``response = yield Send(request)``: the driver performs the request and sends
  back the :class:`Response` (any status), or throws the transport's
  :class:`~render_core.errors.NetworkError` / :class:`~render_core.errors.TimeoutError`
  into the generator;
- ``yield Sleep(seconds)``: the driver waits, then resumes the generator.

The generator's return value is the operation's result; an exception it raises is
the operation's error. :func:`run_sync` and :func:`run_async` take a ``send`` and a
``sleep`` callable from a transport. This module is deliberately tiny: the worker's
cold-start path imports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeAlias, TypeVar

from render_core.errors import RenderError
from render_core.http import Request, Response
from render_core.values import Value, init_fields

__all__ = ["Effect", "Flow", "Send", "Sleep", "run_async", "run_sync"]

T = TypeVar("T")


class Send(Value):
    """Perform ``request``; answer with its :class:`Response`."""

    __slots__ = ("request",)
    request: Request

    def __init__(self, request: Request) -> None:
        init_fields(self, request=request)


class Sleep(Value):
    """Wait ``seconds``; answer with None."""

    __slots__ = ("seconds",)
    seconds: float

    def __init__(self, seconds: float) -> None:
        init_fields(self, seconds=seconds)


Effect: TypeAlias = Send | Sleep
Flow: TypeAlias = Generator[Effect, Any, T]


def run_sync(
    flow: Flow[T],
    send: Callable[[Request], Response],
    sleep: Callable[[float], object],
) -> T:
    """Run ``flow`` to completion with a blocking ``send`` and ``sleep``."""
    try:
        effect = next(flow)
        while True:
            if isinstance(effect, Send):
                try:
                    response = send(effect.request)
                except RenderError as exc:
                    effect = flow.throw(exc)
                else:
                    effect = flow.send(response)
            else:
                sleep(effect.seconds)
                effect = flow.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()


async def run_async(
    flow: Flow[T],
    send: Callable[[Request], Awaitable[Response]],
    sleep: Callable[[float], Awaitable[object]],
) -> T:
    """Run ``flow`` to completion with an awaitable ``send`` and ``sleep``."""
    try:
        effect = next(flow)
        while True:
            if isinstance(effect, Send):
                try:
                    response = await send(effect.request)
                except RenderError as exc:
                    effect = flow.throw(exc)
                else:
                    effect = flow.send(response)
            else:
                await sleep(effect.seconds)
                effect = flow.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        flow.close()
