"""Run a task and its subtasks in this process, on this event loop, with no subprocess.

Theory of operation
-------------------
Each attempt is run by the worker's own runtime (``render_sdk.worker.runtime``), the
code a task process runs in production. Only its transport differs: instead of HTTP
on a Unix socket, the runtime's requests go to an :class:`_AttemptSocket`, an
in-memory task socket answered by :class:`render_core.taskserver.TaskSocket`, the
same server the dev server's sockets use. So arguments reach the task after a
base64 JSON round trip, results come back the same way, and a value JSON cannot carry
fails exactly as it would on Render.

What the runner adds is the platform's part, kept small:

- runs follow :mod:`render_core.lifecycle`, the dev server's state machine: a failed
  attempt is retried under the task's registered policy (the platform default when it
  has none); the waits between attempts are skipped unless ``retry_waits=True``;
- a subtask started over the socket becomes a run of its own, executed as an asyncio
  task on the same loop; ``POST /get-subtask-result`` answers once the child has
  finished, so waiting for a child costs no polling;
- a failed child reaches its parent as ``TaskRunError("Subtask failed: ...")``, the
  error the worker raises in production;
- every run is recorded (:class:`LocalRun`): task, input, status, result or error,
  attempts, subtasks.

What it does not do: enforce timeouts (a synchronous task in its worker thread cannot
be stopped), limit concurrency, or isolate tasks from each other (they share the
process, its globals and its environment). Use the dev server harness for those.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

from render_core import lifecycle
from render_core.http import Request, Response
from render_core.models import TaskRunDetails, TaskRunStatus
from render_core.tasks import TaskRegistry, TaskSpec, task_name
from render_core.taskserver import (
    CallbackResult,
    SubtaskPoll,
    SubtaskRequest,
    TaskFailure,
    TaskSocket,
    apply_report,
)
from render_core.waiter import task_run_error
from render_sdk.worker.runtime import TaskDefinition, Workflows, _Runtime

__all__ = ["LocalRun", "LocalRunner", "run_local", "run_local_async"]


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _new_id() -> str:
    return "trn-local-" + uuid.uuid4().hex[:16]


class LocalRun:
    """One run of the in-process runner, updated as it progresses.

    ``status`` is a :class:`~render_core.models.TaskRunStatus`; ``result`` is the
    task's return value after its JSON round trip (None unless ``completed``);
    ``error`` is the message the run failed with; ``subtasks`` are the runs it
    started, in order; ``details`` is the same
    :class:`~render_core.models.TaskRunDetails` a client would get for the run.
    """

    def __init__(self, run: lifecycle.Run, parent: LocalRun | None) -> None:
        self._run = run
        self.parent = parent
        self.subtasks: list[LocalRun] = []
        self.stack_trace: str | None = None
        """The traceback the last failed attempt reported, if any."""
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def id(self) -> str:
        return self._run.id

    @property
    def task_name(self) -> str:
        return self._run.task_name

    @property
    def input(self) -> list[Any] | dict[str, Any]:
        """The arguments as the task received them: a JSON array or object."""
        return self._run.input

    @property
    def status(self) -> TaskRunStatus:
        return self._run.status

    @property
    def result(self) -> Any:
        results = self._run.results
        if self._run.status is not TaskRunStatus.COMPLETED or results is None:
            return None
        # One level of the ``[value]`` wrapping removed, as a parent task sees it.
        return results[0] if len(results) == 1 else results

    @property
    def error(self) -> str | None:
        return self._run.error

    @property
    def attempts(self) -> int:
        """How many attempts ran (1 + retries)."""
        return len(self._run.attempts)

    @property
    def details(self) -> TaskRunDetails:
        return lifecycle.to_details(self._run)

    @property
    def done(self) -> bool:
        return self._run.is_terminal

    def value(self) -> Any:
        """The result; :class:`~render_core.errors.TaskRunError` if the run did not complete."""
        if not self._run.is_terminal:
            raise RuntimeError(f"task run {self.id} ({self.task_name}) has not finished")
        error = task_run_error(self.details)
        if error is not None:
            raise error
        return self.result

    def walk(self) -> Iterator[LocalRun]:
        """This run and every run below it, depth first, in the order they started."""
        yield self
        for child in self.subtasks:
            yield from child.walk()

    def __repr__(self) -> str:
        return (
            f"<LocalRun {self.task_name!r} {self.status.value} attempts={self.attempts} "
            f"subtasks={len(self.subtasks)}>"
        )


class _AttemptSocket:
    """The task socket of one attempt, in memory: what the runtime's ``send`` reaches.

    A host of :class:`render_core.taskserver.TaskSocket` that only moves values: a
    subtask poll is held until the child has finished, so waiting costs no polling.
    """

    def __init__(self, runner: LocalRunner, record: LocalRun, attempt: int) -> None:
        self._runner = runner
        self.server = TaskSocket.for_attempt(_RunnerHandler(runner), record.id, attempt)

    async def send(self, request: Request) -> Response:
        answer = self.server.respond(request.method, request.url, request.body)
        if isinstance(answer, SubtaskPoll):
            await asyncio.wait({self._runner._by_id[answer.task_run_id]._done})
            answer = self.server.answer_poll(answer)
        return Response(status=answer.status, headers=answer.headers, body=answer.body)


class _RunnerHandler:
    """What the task socket asks of the runner (:class:`render_core.taskserver.AttemptHandler`)."""

    def __init__(self, runner: LocalRunner) -> None:
        self._runner = runner

    def get_run(self, task_run_id: str) -> lifecycle.Run | None:
        record = self._runner._by_id.get(task_run_id)
        return None if record is None else record._run

    def report(self, result: CallbackResult) -> None:
        pass  # read from the socket once the attempt is over

    def start_subtask(self, parent: lifecycle.Run, request: SubtaskRequest) -> str | None:
        child = self._runner._start_child(self._runner._by_id[parent.id], request)
        return None if child is None else child.id


def _input_of(
    definition: TaskSpec, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[Any] | dict[str, Any]:
    name = definition.name
    if args and kwargs:
        raise ValueError(f"task {name!r}: pass arguments either positionally or by name, not both")
    try:
        value: list[Any] | dict[str, Any] = definition.conversion.unstructure_input(args, kwargs)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task {name!r}: arguments do not fit: {exc}") from None
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task {name!r}: arguments must be JSON-serialisable: {exc}") from None
    decoded: list[Any] | dict[str, Any] = json.loads(text)
    return decoded


class LocalRunner:
    """Runs the tasks of ``app`` in this process (see the module docstring).

    ``retries=False`` gives every run a single attempt. ``retry_waits=True`` waits
    between attempts as the task's policy says; by default retries start at once.
    ``runs`` lists every run started through this runner, subtasks included.
    """

    def __init__(self, app: Workflows, *, retries: bool = True, retry_waits: bool = False) -> None:
        if not isinstance(app, Workflows):
            raise TypeError(f"LocalRunner takes a Workflows object, got {type(app).__name__}")
        self._registry = TaskRegistry()
        for definition in app.tasks.values():
            self._registry.add(definition)
        self.retries = retries
        self.retry_waits = retry_waits
        self.runs: list[LocalRun] = []
        self._by_id: dict[str, LocalRun] = {}
        self._by_key: dict[str, LocalRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _definition(self, task: TaskDefinition[Any, Any] | TaskSpec | str) -> TaskSpec:
        if isinstance(task, TaskDefinition | TaskSpec):
            name = task.name
        elif isinstance(task, str):
            name = task_name(task)  # "slug/name" as clients write it
        else:
            raise TypeError(f"a task is a task function or its name, got {type(task).__name__}")
        definition = self._registry.get(name)
        if definition is None:
            known = ", ".join(self._registry.names()) or "none"
            raise ValueError(f"this app has no task named {name!r} (its tasks: {known})")
        return definition

    def _new_run(
        self,
        definition: TaskSpec,
        input_data: list[Any] | dict[str, Any],
        parent: LocalRun | None,
        idempotency_key: str | None = None,
    ) -> LocalRun:
        policy = lifecycle.policy_from_registration(definition.payload())
        if not self.retries:
            policy = lifecycle.RetryPolicy(max_retries=0, wait_duration_ms=0)
        run = lifecycle.new_run(
            run_id=_new_id(),
            task_id=definition.name,
            task_name=definition.name,
            input_data=input_data,
            now=_now(),
            policy=policy,
            timeout_seconds=lifecycle.timeout_from_registration(definition.payload()),
            parent=parent._run if parent is not None else None,
            idempotency_key=idempotency_key,
        )
        record = LocalRun(run, parent)
        if parent is not None:
            parent.subtasks.append(record)
        self.runs.append(record)
        self._by_id[record.id] = record
        if idempotency_key:
            self._by_key[idempotency_key] = record
        return record

    def _spawn(self, record: LocalRun) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._execute(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_child(self, parent: LocalRun, request: SubtaskRequest) -> LocalRun | None:
        """The child ``request`` asks for (None if no task has its name)."""
        if request.idempotency_key:
            existing = self._by_key.get(request.idempotency_key)
            if existing is not None:
                return existing  # a retried POST /run-subtask starts nothing new
        definition = self._registry.get(task_name(request.task_name))
        if definition is None:
            return None
        record = self._new_run(definition, request.input, parent, request.idempotency_key)
        self._spawn(record)
        return record

    async def _execute(self, record: LocalRun) -> None:
        try:
            while True:
                record._run = lifecycle.start_attempt(record._run, _now())
                attempt = record._run.current_attempt
                assert attempt is not None
                outcome = await self._attempt(record, attempt.number)
                if outcome.error is not None:
                    record.stack_trace = outcome.error.stack_trace
                record._run = apply_report(record._run, outcome, _now())
                if record._run.is_terminal:
                    return
                if self.retry_waits and record._run.retry_at is not None:
                    await asyncio.sleep(max(0.0, (record._run.retry_at - _now()).total_seconds()))
        except asyncio.CancelledError:
            if not record._run.is_terminal:
                record._run = lifecycle.cancel(record._run, _now())
            raise
        finally:
            if not record._done.done():
                record._done.set_result(None)

    async def _attempt(self, record: LocalRun, number: int) -> CallbackResult:
        socket = _AttemptSocket(self, record, number)
        runtime = _Runtime(socket, self._registry)
        try:
            code: object = await runtime.run_one()
        except SystemExit as exc:  # what ends a task process ends this attempt
            code = exc.code
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return CallbackResult(error=TaskFailure(details=f"the worker failed: {reason}"))
        if socket.server.reported is not None:
            return socket.server.reported
        return CallbackResult(
            error=TaskFailure(details=f"the task exited (status {code}) before reporting a result")
        )

    async def run_async(
        self, task: TaskDefinition[Any, Any] | TaskSpec | str, /, *args: Any, **kwargs: Any
    ) -> LocalRun:
        """Run ``task`` with these arguments; the finished root run (it never raises for a
        failed run: see :meth:`LocalRun.value`).

        Returns once the run and every subtask below it have finished.
        """
        definition = self._definition(task)
        record = self._new_run(definition, _input_of(definition, args, kwargs), None)
        await self._spawn(record)
        while True:
            pending = {run._done for run in record.walk() if not run._done.done()}
            if not pending:
                return record
            await asyncio.wait(pending)

    def run(
        self, task: TaskDefinition[Any, Any] | TaskSpec | str, /, *args: Any, **kwargs: Any
    ) -> LocalRun:
        """:meth:`run_async` on a new event loop (not from a running one)."""
        _no_running_loop("LocalRunner.run()", "await LocalRunner.run_async()")
        return asyncio.run(self.run_async(task, *args, **kwargs))


def _no_running_loop(what: str, instead: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{what} cannot be called from a running event loop; use {instead}")


async def run_local_async(
    app: Workflows, task: TaskDefinition[Any, Any] | TaskSpec | str, /, *args: Any, **kwargs: Any
) -> Any:
    """Run ``task`` of ``app`` in process and return its result (read back as the
    task's return annotation, for typed tasks).

    Raises :class:`~render_core.errors.TaskRunError` when the run fails (after its
    retries, which start without waiting). Use :class:`LocalRunner` for options and
    the record of the runs.
    """
    runner = LocalRunner(app)
    record = await runner.run_async(task, *args, **kwargs)
    return runner._definition(task).conversion.structure_result(record.value())


def run_local(
    app: Workflows, task: TaskDefinition[Any, Any] | TaskSpec | str, /, *args: Any, **kwargs: Any
) -> Any:
    """:func:`run_local_async` on a new event loop (not from a running one)."""
    _no_running_loop("run_local()", "await run_local_async()")
    runner = LocalRunner(app)
    value = runner.run(task, *args, **kwargs).value()
    return runner._definition(task).conversion.structure_result(value)
