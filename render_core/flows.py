"""The REST operations as generators of effects, bound to one client's settings.

An operation is written once, as a generator that *yields what it needs* and
receives the answer (the psycopg/httpx model; the effects, the retry loop and the
two drivers are in :mod:`render_core.effects`):

- ``response = yield Send(request)``: the driver performs the request and sends
  back the :class:`Response` (any status), or throws the transport's
  :class:`NetworkError` / :class:`TimeoutError` into the generator;
- ``yield Sleep(seconds)``: the driver waits, then resumes the generator.

The generator's return value is the operation's result; an exception it raises
is the operation's error. :func:`call` sends one REST request through the retry
loop with the REST column of the retry table in :mod:`render_core.backoff`, so the
sync and async clients share one retry loop and one answer to "is this retried?".
:class:`Operations` binds every operation to one client's configuration, retry
policy and randomness, so a face method is
``return self._run(self._ops.get_task_run(task_run_id))``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from render_core import api, models
from render_core.backoff import Backoff, RandomSource, RetryDecision, rest_rules
from render_core.config import ClientConfig
from render_core.effects import Effect, Flow, Send, Sleep, run_async, run_sync, send_with_retries
from render_core.errors import RenderError, with_operation
from render_core.http import Request, Response

__all__ = [
    "DEFAULT_REQUEST_BACKOFF",
    "Effect",
    "Flow",
    "Operations",
    "Send",
    "Sleep",
    "call",
    "next_page",
    "run_async",
    "run_sync",
    "with_operation",
]

T = TypeVar("T")
A = ParamSpec("A")


# REST calls: four attempts over about 1.75 s before jitter (0.25, 0.5, 1 s):
# enough to ride out a proxy restart or a short 503 burst, short enough that a
# caller with a dead server hears about it quickly.
DEFAULT_REQUEST_BACKOFF = Backoff(base=0.25, factor=2.0, cap=8.0, max_attempts=4)


def call(
    operation: api.Operation,
    request: Request,
    parse: Callable[[Response], T],
    *,
    policy: Backoff = DEFAULT_REQUEST_BACKOFF,
    rng: RandomSource | None = None,
    idempotency_key: bool = False,
    on_retry: Callable[[RetryDecision], object] | None = None,
) -> Flow[T]:
    """Send ``request`` until it succeeds, fails for good, or the budget is spent.

    Which failures are retried is the REST column of the table in
    :mod:`render_core.backoff`: GET and DELETE on 429/502/503/504 and connection
    failures, honouring ``Retry-After``; a POST only when it provably never reached
    the server (or carries an idempotency key). The last failure is raised, naming
    ``operation``; ``on_retry`` hears each retry before its wait.
    """

    def error_for(response: Response) -> RenderError | None:
        if response.status == operation.success:
            return None
        return api.error_for_response(operation, response)

    response = yield from send_with_retries(
        request,
        operation.name,
        error_for,
        rest_rules(request.method, idempotency_key=idempotency_key),
        policy=policy,
        rng=rng,
        # Measured against the response's own Date header, immune to clock skew.
        server_wait=api.retry_after_seconds,
        on_retry=on_retry,
    )
    return parse(response)


def _operation(
    operation: api.Operation,
    build: Callable[Concatenate[ClientConfig, A], Request],
    parse: Callable[[Response], T],
) -> Callable[Concatenate[Operations, A], Flow[T]]:
    """An :class:`Operations` method: ``build`` the request from its arguments and the
    bound configuration, then :func:`call` it. The method takes ``build``'s arguments
    after ``config``, so each operation's parameters are written once, in
    :mod:`render_core.api`."""

    def method(self: Operations, /, *args: A.args, **kwargs: A.kwargs) -> Flow[T]:
        return self._call(operation, build(self.config, *args, **kwargs), parse)

    method.__name__ = method.__qualname__ = build.__name__.removeprefix("build_")
    return method


class Operations:
    """Every REST operation as a flow, bound once to one client's settings.

    ``config`` says where and as whom; ``policy``, ``rng`` and ``on_retry`` drive the
    retries of :func:`call`. Nothing here performs I/O: each method returns a generator for a
    driver to run, e.g. ``run_sync(Operations(config).get_task_run(run_id), send, sleep)``.
    """

    def __init__(
        self,
        config: ClientConfig,
        policy: Backoff = DEFAULT_REQUEST_BACKOFF,
        rng: RandomSource | None = None,
        *,
        on_retry: Callable[[RetryDecision], object] | None = None,
    ) -> None:
        self.config = config
        self.policy = policy
        self.rng = rng
        self.on_retry = on_retry

    def _call(
        self,
        operation: api.Operation,
        request: Request,
        parse: Callable[[Response], T],
        *,
        idempotency_key: bool = False,
    ) -> Flow[T]:
        return call(
            operation,
            request,
            parse,
            policy=self.policy,
            rng=self.rng,
            idempotency_key=idempotency_key,
            on_retry=self.on_retry,
        )

    def start_task(
        self,
        task_identifier: str,
        input_data: Sequence[Any] | dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> Flow[models.TaskRun]:
        request = api.build_start_task(
            self.config, task_identifier, input_data, idempotency_key=idempotency_key
        )
        keyed = idempotency_key is not None
        return self._call(api.START_TASK, request, api.parse_start_task, idempotency_key=keyed)

    get_task_run = _operation(api.GET_TASK_RUN, api.build_get_task_run, api.parse_get_task_run)
    cancel_task_run = _operation(
        api.CANCEL_TASK_RUN, api.build_cancel_task_run, api.parse_cancel_task_run
    )
    list_task_runs = _operation(
        api.LIST_TASK_RUNS, api.build_list_task_runs, api.parse_list_task_runs
    )
    list_tasks = _operation(api.LIST_TASKS, api.build_list_tasks, api.parse_list_tasks)
    get_task = _operation(api.GET_TASK, api.build_get_task, api.parse_get_task)
    list_logs = _operation(api.LIST_LOGS, api.build_list_logs, api.parse_list_logs)

    def task_run_page(
        self, params: models.ListTaskRunsParams
    ) -> Flow[tuple[list[models.TaskRun], models.ListTaskRunsParams | None]]:
        """One page of runs and the parameters of the next page (None after the last)."""
        page = yield from self.list_task_runs(params)
        return page, next_page(params, page)


P = TypeVar("P", models.ListTaskRunsParams, models.ListTasksParams)


def next_page(params: P, page: Sequence[models.TaskRun] | Sequence[models.Task]) -> P | None:
    """The parameters of the page after ``page``, or None when ``page`` was the last.

    Render's convention: pass the last item's cursor; a page shorter
    than ``limit`` (or an empty page when no limit was given) is the end. A page
    whose last item has no cursor also ends the walk rather than looping.
    """
    if not page:
        return None
    if params.limit is not None and len(page) < params.limit:
        return None
    cursor = page[-1].cursor
    if not cursor or cursor == params.cursor:
        return None
    return params.with_cursor(cursor)
