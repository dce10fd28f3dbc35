"""Effects, the one retry loop that yields them, and the two drivers that run them.

An operation is a generator that yields what it needs and receives the answer:

- ``response = yield Send(request)``: the driver performs the request and sends
  back the :class:`Response` (any status), or throws the transport's
  :class:`~render_core.errors.NetworkError` / :class:`~render_core.errors.TimeoutError`
  into the generator;
- ``yield Sleep(seconds)``: the driver waits, then resumes the generator.

The generator's return value is the operation's result; an exception it raises is
the operation's error.

:func:`send_with_retries` is the loop every request of the SDK goes through, REST
calls (:mod:`render_core.flows`) and task-socket calls (:mod:`render_core.callback`)
alike: send, look the outcome up in the context's table of
:mod:`render_core.backoff`, sleep and send again, or stop.

:func:`run_sync` and :func:`run_async` take a ``send`` and a ``sleep`` callable
from a transport. Both step the generator through one :class:`_Steps`, so all that
differs between the colours is whether ``send`` and ``sleep`` are awaited. This
module is deliberately small: the worker's cold-start path imports it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, TypeAlias, TypeVar

from render_core.backoff import Backoff, Next, Outcome, RandomSource, RetryDecision, decide
from render_core.errors import NetworkError, RenderError, TimeoutError, with_operation
from render_core.http import Request, Response
from render_core.values import Value, init_fields

__all__ = ["Effect", "Flow", "Send", "Sleep", "run_async", "run_sync", "send_with_retries"]

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


def send_with_retries(
    request: Request,
    operation: str,
    error_for: Callable[[Response], RenderError | None],
    rules: Mapping[Outcome, Next],
    *,
    policy: Backoff,
    rng: RandomSource | None = None,
    server_wait: Callable[[Response], float | None] | None = None,
    on_retry: Callable[[RetryDecision], object] | None = None,
) -> Flow[Response]:
    """Send ``request`` until it succeeds, fails for good, or ``policy``'s budget is spent.

    ``error_for(response)`` is None for a success, which is returned, and otherwise
    the error to raise should the answer not be retried. ``rules`` is the context's
    table (:func:`render_core.backoff.decide` applies it); ``server_wait`` reads the
    server's ``Retry-After`` from a response, in seconds, where the context honours
    it. ``on_retry`` hears each decision to retry before its ``Sleep`` (for a log
    line). A transport error that is not retried is raised naming ``operation``;
    any other error from the transport propagates as it is.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            response: Response = yield Send(request)
        except (NetworkError, TimeoutError) as exc:
            decision = decide(policy, rules, attempt=attempt, error=exc, rng=rng)
            if not decision.retry:
                raise with_operation(exc, operation) from exc
        else:
            error = error_for(response)
            if error is None:
                return response
            decision = decide(
                policy,
                rules,
                attempt=attempt,
                status=response.status,
                retry_after=None if server_wait is None else server_wait(response),
                rng=rng,
            )
            if not decision.retry:
                raise error
        if on_retry is not None:
            on_retry(decision)
        yield Sleep(decision.delay)


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
