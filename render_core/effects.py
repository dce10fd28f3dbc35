"""Effects, and the two drivers that run a generator of them.

An operation is a generator that yields what it needs and receives the answer:

- ``response = yield Send(request)``: the driver performs the request and sends
  back the :class:`Response` (any status), or throws the transport's
  :class:`~render_core.errors.NetworkError` / :class:`~render_core.errors.TimeoutError`
  into the generator;
- ``yield Sleep(seconds)``: the driver waits, then resumes the generator.

The generator's return value is the operation's result; an exception it raises is
the operation's error. :func:`run_sync` and :func:`run_async` take a ``send`` and a
``sleep`` callable from a transport. Both step the generator through one
:class:`_Steps`, so all that differs between the colours is whether ``send`` and
``sleep`` are awaited. This module is deliberately tiny: the worker's cold-start
path imports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeAlias, TypeVar

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


class _Steps(Generic[T]):
    """A flow being driven: iterate for its effects, :meth:`answer` each one.

    The answer to a :class:`Send` is its :class:`Response` or the transport's
    :class:`~render_core.errors.RenderError` (thrown into the flow); a
    :class:`Sleep` needs none. When the flow returns, the iteration stops and
    :attr:`result` holds its value; leaving the ``with`` block closes the flow.
    """

    result: T

    def __init__(self, flow: Flow[T]) -> None:
        self._flow = flow
        self._started = False
        self._answer: Response | RenderError | None = None

    def __enter__(self) -> _Steps[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._flow.close()

    def __iter__(self) -> _Steps[T]:
        return self

    def __next__(self) -> Effect:
        answer, self._answer = self._answer, None
        try:
            if not self._started:
                self._started = True
                return next(self._flow)
            if isinstance(answer, RenderError):
                return self._flow.throw(answer)
            return self._flow.send(answer)
        except StopIteration as stop:
            self.result = stop.value
            raise StopIteration from None

    def answer(self, answer: Response | RenderError) -> None:
        self._answer = answer


def run_sync(
    flow: Flow[T],
    send: Callable[[Request], Response],
    sleep: Callable[[float], object],
) -> T:
    """Run ``flow`` to completion with a blocking ``send`` and ``sleep``."""
    with _Steps(flow) as steps:
        for effect in steps:
            if isinstance(effect, Sleep):
                sleep(effect.seconds)
                continue
            try:
                steps.answer(send(effect.request))
            except RenderError as exc:
                steps.answer(exc)
        return steps.result


async def run_async(
    flow: Flow[T],
    send: Callable[[Request], Awaitable[Response]],
    sleep: Callable[[float], Awaitable[object]],
) -> T:
    """Run ``flow`` to completion with an awaitable ``send`` and ``sleep``."""
    with _Steps(flow) as steps:
        for effect in steps:
            if isinstance(effect, Sleep):
                await sleep(effect.seconds)
                continue
            try:
                steps.answer(await send(effect.request))
            except RenderError as exc:
                steps.answer(exc)
        return steps.result
