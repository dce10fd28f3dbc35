"""The public client faces: :class:`Render` (sync) and :class:`RenderAsync` (asyncio).

Both are thin: every operation is a flow from :mod:`render_core.flows` run by the
colour's driver over a transport, and waiting is the core's
:class:`~render_core.waiter.RunWaiter` driven by :mod:`render_sdk.client.waiting`.
Neither module-level import pulls in ``requests`` or ``aiohttp``: each face imports
its default transport when it is constructed without one.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import logging
import os
import random
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast

from render_core import api, flows
from render_core.backoff import Backoff, RetryDecision
from render_core.config import ClientConfig, Timeouts, resolve_config
from render_core.effects import Flow
from render_core.errors import ConfigurationError, TimeoutError, ValidationError
from render_core.models import (
    TERMINAL_STATUSES,
    ListTaskRunsParams,
    ListTasksParams,
    Task,
    TaskRun,
    TaskRunDetails,
    TaskRunStatus,
)
from render_core.tasks import TaskSpec, typed_result, typed_start
from render_core.waiter import KnownRuns, RunResult, RunWaiter, wait_timed_out
from render_sdk import _otel
from render_sdk.client.waiting import AsyncWaitHub, wait_sync
from render_transports.base import AsyncTransport, SyncTransport

if TYPE_CHECKING:
    import aiohttp
    import requests

    from render_sdk.worker.runtime import TaskDefinition

__all__ = [
    "AsyncWorkflowsService",
    "AwaitableTaskRun",
    "Render",
    "RenderAsync",
    "SyncWorkflowsService",
]

logger = logging.getLogger("render_sdk")
logger.addHandler(logging.NullHandler())


def _log_retry(decision: RetryDecision) -> None:
    logger.info("retrying in %.2f s after %s", decision.delay, decision.reason)


def _run_ids(task_run_ids: Iterable[str]) -> list[str]:
    if isinstance(task_run_ids, str):
        raise ValidationError("task_run_ids must be a list of run ids, not a single string")
    ids = list(dict.fromkeys(task_run_ids))
    for run_id in ids:
        if not isinstance(run_id, str) or not run_id:
            raise ValidationError(f"a task run id must be a non-empty str, got {run_id!r}")
    return ids


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is not None and not timeout >= 0:
        raise ValidationError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
    return timeout


class _Outcomes:
    """What a caller of one wait sees, given the waiter's results: the same in both faces.

    A run's final details are handed back (failed and canceled runs too); the first
    error ends the wait. A deadline that passed names every run not finished yet.
    """

    def __init__(self, run_ids: list[str], timeout: float | None) -> None:
        self.run_ids = run_ids
        self.timeout = timeout
        self.finished: dict[str, TaskRunDetails] = {}

    def take(self, result: RunResult) -> TaskRunDetails:
        if result.error is not None:
            if isinstance(result.error, TimeoutError) and self.timeout is not None:
                missing = [run_id for run_id in self.run_ids if run_id not in self.finished]
                raise wait_timed_out(missing, self.timeout) from result.error
            raise result.error
        assert result.details is not None
        self.finished[result.run_id] = result.details
        return result.details

    def in_order(self) -> list[TaskRunDetails]:
        return [self.finished[run_id] for run_id in self.run_ids]


SessionT = TypeVar("SessionT")
TransportT = TypeVar("TransportT")
ServiceT = TypeVar("ServiceT")


class _Client(Generic[SessionT, TransportT, ServiceT]):
    """What both clients are: where and as whom, the bound operations, the waiter's
    inputs, a transport and the ``workflows`` service. One constructor for both
    colours; each face says how to build its default transport and its service."""

    def __init__(
        self,
        *,
        token: str | None = None,
        base_url: str | None = None,
        session: SessionT | None = None,
        transport: TransportT | None = None,
        timeouts: Timeouts | None = None,
        retry: Backoff | None = None,
        allow_insecure_http: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._config: ClientConfig = resolve_config(
            token=token,
            base_url=base_url,
            env=os.environ if env is None else env,
            allow_insecure_http=allow_insecure_http,
        )
        self._timeouts = timeouts if timeouts is not None else Timeouts()
        self._retry = retry if retry is not None else flows.DEFAULT_REQUEST_BACKOFF
        self._rng = random.Random()
        self._ops = flows.Operations(self._config, self._retry, self._rng, on_retry=_log_retry)
        self._known_runs = KnownRuns()
        if transport is not None and session is not None:
            raise ConfigurationError("pass either session= or transport=, not both")
        self._transport: TransportT = (
            transport if transport is not None else self._default_transport(session)
        )
        self.workflows: ServiceT = self._service()

    def _default_transport(self, session: SessionT | None) -> TransportT:
        """The face's own transport, over ``session`` when one was given."""
        raise NotImplementedError

    def _service(self) -> ServiceT:
        raise NotImplementedError

    def _start(
        self,
        task_identifier: str,
        input_data: Sequence[Any] | dict[str, Any],
        idempotency_key: str | None,
    ) -> Flow[TaskRun]:
        """Start a run, and remember it: waiting for it then needs no confirming GET."""
        run = yield from self._ops.start_task(
            task_identifier, input_data, idempotency_key=idempotency_key
        )
        self._known_runs.add(run.id)
        return run

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def _waiter(self) -> RunWaiter:
        return RunWaiter(
            self._config,
            idle_timeout=self._timeouts.stream_idle,
            rng=self._rng,
            known_runs=self._known_runs,
        )

    def __repr__(self) -> str:
        auth = "token" if self._config.has_token else "no token"
        return f"{type(self).__name__}(base_url={self._config.base_url!r}, {auth})"


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _spec_of(task: Any) -> TaskSpec:
    spec = getattr(task, "spec", None)
    if not isinstance(spec, TaskSpec):
        raise ValidationError(
            f"run() takes a task definition (what @app.task returned), got "
            f"{type(task).__name__}; start a task by name with run_task('slug/name', ...)",
            operation="start task",
        )
    return spec


def _unseen(run_id: str) -> TaskRun:
    """A run known only by its id: waiting for it starts with no status."""
    return TaskRun(id=run_id, status="pending")


# ---------------------------------------------------------------------------
# Sync


class SyncWorkflowsService:
    """``Render().workflows``: start, inspect, wait for and cancel task runs (blocking)."""

    def __init__(self, client: Render) -> None:
        self._client = client

    def _run(self, flow: Flow[T]) -> T:
        return _otel.run_sync(flow, self._client._transport.send, time.sleep)

    def start_task(
        self,
        task_identifier: str,
        input_data: Sequence[Any] | dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> TaskRun:
        """Start a run of ``task_identifier`` (``"workflow-slug/task-name"``).

        Returns the run's initial :class:`TaskRun`. Raises :class:`ClientError`
        (bad input, unknown task), :class:`ServerError`, :class:`TimeoutError`.
        """
        return self._run(self._client._start(task_identifier, input_data, idempotency_key))

    def run_task(
        self,
        task_identifier: str,
        input_data: Sequence[Any] | dict[str, Any],
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> TaskRunDetails:
        """Start a run and wait for it; raises :class:`TaskRunError` if it fails or is canceled."""
        _check_timeout(timeout)
        run = self.start_task(task_identifier, input_data, idempotency_key=idempotency_key)
        return self._wait_one(run, timeout).unwrap()

    def run(self, task: TaskDefinition[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a task by its definition and return its result, typed and converted.

        ``task`` is what ``@app.task`` returned, on an app created with
        ``Workflows(slug=...)``. The arguments are checked against the task's
        signature and written by its annotations (a dataclass as an object...), and
        the result is read back as its return annotation. Raises
        :class:`ValidationError` before any request when the arguments do not fit,
        and :class:`TaskRunError` when the run fails.
        """
        identifier, input_data = typed_start(_spec_of(task), task.workflow_slug, args, kwargs)
        details = self.run_task(identifier, input_data)
        return cast("R", typed_result(_spec_of(task), details.results, details.id))

    def wait_for_run(self, task_run_id: str, *, timeout: float | None = None) -> TaskRunDetails:
        """Wait for one run to finish; raises :class:`TaskRunError` if it did not succeed.

        An id that names no run raises :class:`NotFoundError` within about a second.
        """
        _check_timeout(timeout)
        return self._wait_one(_unseen(task_run_id), timeout).unwrap()

    def _wait_one(self, run: TaskRun, timeout: float | None) -> RunResult:
        if run.status.is_terminal:  # already finished: one GET, no stream
            return RunResult(run.id, details=self.get_task_run(run.id))
        (result,) = self._results([run.id], timeout)
        return result

    def _results(self, run_ids: list[str], timeout: float | None) -> Iterator[RunResult]:
        waiter = self._client._waiter()
        waiter.add(run_ids, time.monotonic(), timeout=timeout)
        results = wait_sync(waiter, self._client._transport)
        results = _otel.traced_wait(results, run_ids, self._client.base_url)
        try:
            yield from results
        finally:
            results.close()

    def as_completed(
        self, task_run_ids: Iterable[str], *, timeout: float | None = None
    ) -> Iterator[TaskRunDetails]:
        """Yield each run's final details as it finishes (failed and canceled runs too).

        Raises :class:`TimeoutError` when ``timeout`` seconds pass first, and the
        error of a run that cannot be waited for (e.g. :class:`NotFoundError`).
        """
        ids = _run_ids(task_run_ids)
        outcomes = _Outcomes(ids, _check_timeout(timeout))
        for result in self._results(ids, timeout):
            yield outcomes.take(result)

    def wait_for_runs(
        self, task_run_ids: Iterable[str], *, timeout: float | None = None
    ) -> list[TaskRunDetails]:
        """Wait for every run; their final details in the order the ids were given.

        Failed and canceled runs are returned, not raised: check ``.status``.
        """
        ids = _run_ids(task_run_ids)
        outcomes = _Outcomes(ids, _check_timeout(timeout))
        for result in self._results(ids, timeout):
            outcomes.take(result)
        return outcomes.in_order()

    def task_run_events(self, task_run_ids: Iterable[str]) -> Iterator[TaskRunDetails]:
        """Yield each run's final details once, as it finishes; ends when all have been seen."""
        return self.as_completed(task_run_ids)

    def get_task_run(self, task_run_id: str) -> TaskRunDetails:
        """The current details of a run. Raises :class:`NotFoundError` for an unknown id."""
        return self._run(self._client._ops.get_task_run(task_run_id))

    def cancel_task_run(self, task_run_id: str) -> None:
        """Cancel a run. Raises :class:`ClientError` if it is unknown or already finished."""
        self._run(self._client._ops.cancel_task_run(task_run_id))

    def list_task_runs(self, params: ListTaskRunsParams | None = None) -> list[TaskRun]:
        """One page of runs; each carries its ``cursor`` for the next page."""
        return self._run(self._client._ops.list_task_runs(params))

    def iter_task_runs(self, params: ListTaskRunsParams | None = None) -> Iterator[TaskRun]:
        """Every run matching ``params``, fetching pages as needed."""
        current: ListTaskRunsParams | None = params or ListTaskRunsParams()
        while current is not None:
            page, current = self._run(self._client._ops.task_run_page(current))
            yield from page

    def list_tasks(self, params: ListTasksParams | None = None) -> list[Task]:
        """One page of registered tasks."""
        return self._run(self._client._ops.list_tasks(params))

    def get_task(self, task_id: str) -> Task:
        """One task, by id (``tsk-...``) or slug."""
        return self._run(self._client._ops.get_task(task_id))

    def list_logs(
        self,
        task_run_ids: Iterable[str],
        *,
        owner_id: str | None = None,
        start_time: _dt.datetime | None = None,
        end_time: _dt.datetime | None = None,
        direction: str | None = None,
        limit: int | None = None,
    ) -> api.LogPage:
        """One page of the output of task runs (``GET /v1/logs``).

        Render's log API needs ``owner_id`` (the workspace id); the dev server does
        not. ``direction="forward"`` lists oldest first.
        """
        logs = self._client._ops.list_logs(
            task_run_ids,
            owner_id=owner_id,
            start_time=start_time,
            end_time=end_time,
            direction=direction,
            limit=limit,
        )
        return self._run(logs)


class Render(_Client["requests.Session", SyncTransport, SyncWorkflowsService]):
    """The synchronous Render client: ``Render().workflows.run_task(...)``.

    ``token`` defaults to ``RENDER_API_KEY``; ``base_url`` to the Render API, or to
    the local dev server when ``RENDER_USE_LOCAL_DEV`` / ``RENDER_LOCAL_DEV_URL``
    is set (an explicit ``base_url`` always wins). Pass ``session`` to use your own
    ``requests.Session`` (never closed by the client) or ``transport`` for any
    object with ``send``/``stream``/``close``. The other keywords: ``timeouts``
    (a :class:`~render_core.config.Timeouts`), ``retry`` (the backoff of REST calls),
    ``allow_insecure_http`` (send a token over ``http://`` to a non-loopback host)
    and ``env`` (the environment to read instead of ``os.environ``).
    """

    def _default_transport(self, session: requests.Session | None) -> SyncTransport:
        from render_transports.requests_transport import RequestsTransport

        return RequestsTransport(session, timeouts=self._timeouts)

    def _service(self) -> SyncWorkflowsService:
        return SyncWorkflowsService(self)

    def close(self) -> None:
        """Release connections (a session you passed in stays open)."""
        self._transport.close()

    def __enter__(self) -> Render:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------------
# Async


class AwaitableTaskRun:
    """A started run: ``.id`` and ``.status`` now, ``await`` it for the final details.

    ``await`` returns :class:`TaskRunDetails` or raises :class:`TaskRunError` (failed
    or canceled). Awaiting again returns the same outcome without waiting again.
    Other attributes of the initial :class:`TaskRun` (``task_id``, ``attempts``...)
    are available too.
    """

    def __init__(self, run: TaskRun, service: AsyncWorkflowsService) -> None:
        self._run = run
        self._service = service
        self._outcome: RunResult | None = None

    @property
    def id(self) -> str:
        return self._run.id

    @property
    def status(self) -> TaskRunStatus:
        """The status when the run was started (not refreshed)."""
        return self._run.status

    @property
    def task_run(self) -> TaskRun:
        return self._run

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._run, name)

    def is_terminal_status(self) -> bool:
        """Whether the run has finished: it had when started, or it was awaited."""
        return self._outcome is not None or self._run.status in TERMINAL_STATUSES

    def __await__(self) -> Generator[Any, None, TaskRunDetails]:
        return self.wait().__await__()

    async def wait(self, *, timeout: float | None = None) -> TaskRunDetails:
        """Wait for the run to finish, at most ``timeout`` seconds (our :class:`TimeoutError`)."""
        if self._outcome is None:
            self._outcome = await self._service._wait_one(self._run, _check_timeout(timeout))
        return self._outcome.unwrap()

    def __repr__(self) -> str:
        return f"AwaitableTaskRun(id={self.id!r}, status={str(self.status)!r})"


class AsyncWorkflowsService:
    """``RenderAsync().workflows``: the same operations as coroutines."""

    def __init__(self, client: RenderAsync) -> None:
        self._client = client

    async def _run(self, flow: Flow[T]) -> T:
        return await _otel.run_async(flow, self._client._transport.send, asyncio.sleep)

    async def start_task(
        self,
        task_identifier: str,
        input_data: Sequence[Any] | dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> AwaitableTaskRun:
        """Start a run; ``await`` the returned object to wait for its result."""
        run = await self._run(self._client._start(task_identifier, input_data, idempotency_key))
        return AwaitableTaskRun(run, self)

    async def run_task(
        self,
        task_identifier: str,
        input_data: Sequence[Any] | dict[str, Any],
        *,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> TaskRunDetails:
        """Start a run and wait for it; raises :class:`TaskRunError` if it fails or is canceled."""
        _check_timeout(timeout)
        started = await self.start_task(
            task_identifier, input_data, idempotency_key=idempotency_key
        )
        return await started.wait(timeout=timeout)

    async def run(self, task: TaskDefinition[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a task by its definition; its result, typed and converted (see the sync
        face's :meth:`SyncWorkflowsService.run`)."""
        identifier, input_data = typed_start(_spec_of(task), task.workflow_slug, args, kwargs)
        details = await self.run_task(identifier, input_data)
        return cast("R", typed_result(_spec_of(task), details.results, details.id))

    async def wait_for_run(
        self, task_run_id: str, *, timeout: float | None = None
    ) -> TaskRunDetails:
        """Wait for one run to finish; raises :class:`TaskRunError` if it did not succeed.

        An id that names no run raises :class:`NotFoundError` within about a second.
        """
        _check_timeout(timeout)
        return (await self._wait_one(_unseen(task_run_id), timeout)).unwrap()

    async def _wait_one(self, run: TaskRun, timeout: float | None) -> RunResult:
        if run.status.is_terminal:  # already finished: one GET, no stream
            return RunResult(run.id, details=await self.get_task_run(run.id))
        (result,) = [r async for r in self._results([run.id], timeout)]
        return result

    async def _results(
        self, run_ids: list[str], timeout: float | None
    ) -> AsyncGenerator[RunResult, None]:
        """Each run's result as it resolves, over the client's shared streams."""
        hub = self._client._hub()
        loop = asyncio.get_running_loop()
        since = loop.time()
        base = self._client.base_url
        pending = {
            loop.create_task(
                _otel.traced_wait_async(hub.wait(run_id, timeout, since=since), [run_id], base)
            ): run_id
            for run_id in run_ids
        }
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: run_ids.index(pending[t])):
                    pending.pop(task)
                    yield task.result()
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def as_completed(
        self, task_run_ids: Iterable[str], *, timeout: float | None = None
    ) -> AsyncIterator[TaskRunDetails]:
        """Yield each run's final details as it finishes (failed and canceled runs too)."""
        ids = _run_ids(task_run_ids)
        outcomes = _Outcomes(ids, _check_timeout(timeout))
        results = self._results(ids, timeout)
        try:
            async for result in results:
                yield outcomes.take(result)
        finally:
            await results.aclose()

    async def wait_for_runs(
        self, task_run_ids: Iterable[str], *, timeout: float | None = None
    ) -> list[TaskRunDetails]:
        """Wait for every run; final details in the order the ids were given."""
        ids = _run_ids(task_run_ids)
        outcomes = _Outcomes(ids, _check_timeout(timeout))
        results = self._results(ids, timeout)
        try:
            async for result in results:
                outcomes.take(result)
        finally:
            await results.aclose()
        return outcomes.in_order()

    async def task_run_events(self, task_run_ids: Iterable[str]) -> AsyncIterator[TaskRunDetails]:
        """Yield each run's final details once, as it finishes; ends when all have been seen."""
        async for details in self.as_completed(task_run_ids):
            yield details

    async def get_task_run(self, task_run_id: str) -> TaskRunDetails:
        return await self._run(self._client._ops.get_task_run(task_run_id))

    async def cancel_task_run(self, task_run_id: str) -> None:
        await self._run(self._client._ops.cancel_task_run(task_run_id))

    async def list_task_runs(self, params: ListTaskRunsParams | None = None) -> list[TaskRun]:
        return await self._run(self._client._ops.list_task_runs(params))

    async def iter_task_runs(
        self, params: ListTaskRunsParams | None = None
    ) -> AsyncIterator[TaskRun]:
        current: ListTaskRunsParams | None = params or ListTaskRunsParams()
        while current is not None:
            page, current = await self._run(self._client._ops.task_run_page(current))
            for run in page:
                yield run

    async def list_tasks(self, params: ListTasksParams | None = None) -> list[Task]:
        return await self._run(self._client._ops.list_tasks(params))

    async def get_task(self, task_id: str) -> Task:
        return await self._run(self._client._ops.get_task(task_id))

    async def list_logs(
        self,
        task_run_ids: Iterable[str],
        *,
        owner_id: str | None = None,
        start_time: _dt.datetime | None = None,
        end_time: _dt.datetime | None = None,
        direction: str | None = None,
        limit: int | None = None,
    ) -> api.LogPage:
        """One page of the output of task runs (``GET /v1/logs``); see ``Render``'s."""
        logs = self._client._ops.list_logs(
            task_run_ids,
            owner_id=owner_id,
            start_time=start_time,
            end_time=end_time,
            direction=direction,
            limit=limit,
        )
        return await self._run(logs)


class RenderAsync(_Client["aiohttp.ClientSession", AsyncTransport, AsyncWorkflowsService]):
    """The asyncio Render client: ``await RenderAsync().workflows.run_task(...)``.

    Configuration as :class:`Render`; pass ``session`` to use your own
    ``aiohttp.ClientSession`` (never closed by the client). All runs awaited through
    one client share event-stream connections (one per batch of up to 100 runs).
    """

    _wait_hub: AsyncWaitHub | None = None

    def _default_transport(self, session: aiohttp.ClientSession | None) -> AsyncTransport:
        from render_transports.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(session, timeouts=self._timeouts)

    def _service(self) -> AsyncWorkflowsService:
        return AsyncWorkflowsService(self)

    @property
    def streams_opened(self) -> int:
        """Event-stream connections opened so far (shared by all awaited runs)."""
        return 0 if self._wait_hub is None else self._wait_hub.streams_opened

    def _hub(self) -> AsyncWaitHub:
        if self._wait_hub is None:
            self._wait_hub = AsyncWaitHub(self._waiter(), self._transport)
        return self._wait_hub

    async def aclose(self) -> None:
        """Stop waiting, release connections (a session you passed in stays open)."""
        if self._wait_hub is not None:
            await self._wait_hub.aclose()
            self._wait_hub = None
        await self._transport.aclose()

    close = aclose

    async def __aenter__(self) -> RenderAsync:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
