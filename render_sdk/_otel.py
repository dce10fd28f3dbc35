"""OpenTelemetry spans for the clients and the worker, when the application uses OpenTelemetry.

Theory of operation
-------------------
Nothing here imports OpenTelemetry. Each hook first looks for ``opentelemetry.trace``
in ``sys.modules`` and for a tracer provider that is not the API's placeholder: an
application that set one (``trace.set_tracer_provider(...)``, or
``opentelemetry-instrument`` from the ``OTEL_*`` variables) has imported it already.
Otherwise every hook hands back what it was given, or a no-op, and the SDK runs as if
this module did not exist: no import, no span, a dictionary lookup per call. This
module never configures a provider, a processor or an exporter.

Spans (names, kinds and attributes are documented in ``docs/observability.md``):

- **client operations** (:func:`run_sync` / :func:`run_async` around one flow): a
  ``CLIENT`` span named ``render.workflows.<operation>`` with ``http.*``, ``url.full``,
  ``server.*`` attributes, and ``render.*`` ones for run ids and task names; waiting
  (:func:`traced_wait`, :func:`traced_wait_async`) is one span per wait;
- **a task attempt** (:func:`attempt_started`) in the task process: a ``CONSUMER`` span
  named after the task, with its status and an exception event when it fails;
- **a subtask call** (:func:`subtask_call`): a ``PRODUCER`` span, child of the attempt.

One trace per run tree, with nothing new on the wire: every process of a tree derives
the trace id from the root run's id (:func:`render_core.trace.trace_id_for`). A root
run's attempts are the trace's root spans; a subtask's attempts are children of the
call that started it, whose span id both processes derive from the subtask's run id.
Choosing those ids needs the OpenTelemetry SDK's tracer (its ``id_generator``, wrapped
for this module's own tracer only); with another tracer the trace id is still shared
and the parent links are left as they come. The span of ``start_task`` carries the
tree's trace id as ``render.trace_id`` and links to the root run's first attempt.
"""

from __future__ import annotations

import contextvars
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from render_core import effects

if TYPE_CHECKING:
    from render_core.http import Request, Response

# Everything else (render_core.trace, which needs the JSON codec, urllib, json) is
# imported only once the application is found to trace: a task process's start-up
# time is on every attempt's critical path.

__all__ = [
    "attempt_started",
    "flush",
    "run_async",
    "run_sync",
    "subtask_call",
    "traced_wait",
    "traced_wait_async",
]

T = TypeVar("T")

INSTRUMENTATION_NAME = "render_sdk"
# How long the worker waits for spans to be exported before its process exits.
FLUSH_TIMEOUT_MILLIS = 5000

# (trace id, span id) for the next span this module starts, when it chooses them.
_CHOSEN: contextvars.ContextVar[tuple[int | None, int | None] | None] = contextvars.ContextVar(
    "render_sdk_otel_ids", default=None
)


class _Otel:
    """The application's OpenTelemetry, as this module uses it."""

    def __init__(self, api: Any, provider: Any) -> None:
        self.api = api
        self.provider = provider
        from render_core import __version__

        self.tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)
        generator = getattr(self.tracer, "id_generator", None)
        self.chooses_ids = generator is not None and hasattr(generator, "generate_span_id")
        if self.chooses_ids:
            self.tracer.id_generator = _ChosenIds(generator)
        self.context = sys.modules["opentelemetry.context"]

    def start(
        self,
        name: str,
        *,
        kind: str,
        context: Any = None,
        trace_id: int | None = None,
        span_id: int | None = None,
        start_time: int | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> Any:
        token = _CHOSEN.set((trace_id, span_id)) if self.chooses_ids else None
        try:
            return self.tracer.start_span(
                name,
                context=context,
                kind=getattr(self.api.SpanKind, kind),
                attributes=attributes,
                start_time=start_time,
            )
        finally:
            if token is not None:
                _CHOSEN.reset(token)

    def remote_parent(self, trace_id: int, span_id: int) -> Any:
        """A context whose current span is the (remote) span ``span_id`` of ``trace_id``."""
        api = self.api
        parent = api.NonRecordingSpan(
            api.SpanContext(
                trace_id=trace_id,
                span_id=span_id,
                is_remote=True,
                trace_flags=api.TraceFlags(api.TraceFlags.SAMPLED),
            )
        )
        return api.set_span_in_context(parent, self.context.Context())

    def fail(self, span: Any, exc: BaseException, description: str | None = None) -> None:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.record_exception(exc)
        span.set_status(self.api.Status(self.api.StatusCode.ERROR, description or str(exc)))


class _ChosenIds:
    """The SDK tracer's id generator, except for ids this module has chosen."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def generate_span_id(self) -> int:
        chosen = _CHOSEN.get()
        if chosen is not None and chosen[1] is not None:
            return chosen[1]
        return int(self._inner.generate_span_id())

    def generate_trace_id(self) -> int:
        chosen = _CHOSEN.get()
        if chosen is not None and chosen[0] is not None:
            return chosen[0]
        return int(self._inner.generate_trace_id())

    def is_trace_id_random(self) -> bool:
        chosen = _CHOSEN.get()
        if chosen is not None and chosen[0] is not None:
            return False  # derived from a run id, not drawn at random
        method = getattr(self._inner, "is_trace_id_random", None)
        return bool(method()) if method is not None else False


_CACHED: list[_Otel] = []


def _active() -> _Otel | None:
    """The application's OpenTelemetry if it has set a tracer provider, else None."""
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return None
    provider = api.get_tracer_provider()
    if isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider):
        return None
    if _CACHED and _CACHED[0].provider is provider:
        return _CACHED[0]
    otel = _Otel(api, provider)
    _CACHED[:] = [otel]
    return otel


# -- client operations -----------------------------------------------------------------

_OPERATIONS = {
    ("POST", "task-runs"): "start_task",
    ("GET", "task-runs"): "list_task_runs",
    ("GET", "task-runs/"): "get_task_run",
    ("DELETE", "task-runs/"): "cancel_task_run",
    ("GET", "tasks"): "list_tasks",
    ("GET", "tasks/"): "get_task",
    ("GET", "logs"): "list_logs",
}


def _operation(request: Request) -> tuple[str, str | None]:
    """``(operation, the id in the path)`` of a REST request."""
    import urllib.parse

    path = urllib.parse.urlsplit(request.url).path
    _, _, tail = path.partition("/v1/")
    resource, _, rest = tail.partition("/")
    key = (request.method, f"{resource}/" if rest else resource)
    name = _OPERATIONS.get(key, f"{request.method.lower()}_{resource or 'request'}")
    return name, urllib.parse.unquote(rest) if rest else None


class _ClientCall:
    """One client operation's span: opened at its first request, closed with its result."""

    def __init__(self, otel: _Otel) -> None:
        self.otel = otel
        self.span: Any = None
        self.sent = 0
        self.operation = ""

    def request(self, request: Request) -> None:
        self.sent += 1
        if self.span is not None:
            self.span.set_attribute("http.request.resend_count", self.sent - 1)
            return
        import json
        import urllib.parse

        self.operation, path_id = _operation(request)
        url = urllib.parse.urlsplit(request.url)
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "url.full": request.url,
            "server.address": url.hostname or "",
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        if path_id and self.operation in ("get_task_run", "cancel_task_run"):
            attributes["render.task_run.id"] = path_id
        elif path_id:
            attributes["render.task.id"] = path_id
        if self.operation == "start_task":
            try:
                task = json.loads(request.body).get("task")
            except (ValueError, AttributeError):
                task = None
            if isinstance(task, str):
                attributes["render.task.name"] = task
        self.span = self.otel.start(
            f"render.workflows.{self.operation}", kind="CLIENT", attributes=attributes
        )

    def response(self, response: Response) -> None:
        self.span.set_attribute("http.response.status_code", response.status)
        if response.status >= 400:
            self.span.set_attribute("error.type", str(response.status))

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        span = self.span
        if span is None:
            return
        if error is not None:
            self.otel.fail(span, error)
        else:
            _describe_result(self.otel, span, result)
        span.end()


def _describe_result(otel: _Otel, span: Any, result: Any) -> None:
    from render_core import trace

    if isinstance(result, list):
        span.set_attribute("render.result.count", len(result))
        return
    run_id = getattr(result, "id", None)
    status = getattr(result, "status", None)
    if not isinstance(run_id, str) or not hasattr(result, "root_task_run_id"):
        return
    root = result.root_task_run_id or run_id
    span.set_attribute("render.task_run.id", run_id)
    span.set_attribute("render.task_run.root_id", root)
    span.set_attribute("render.trace_id", f"{trace.trace_id_for(root):032x}")
    if status is not None:
        span.set_attribute("render.task_run.status", str(status))
    if getattr(result, "task_id", None):
        span.set_attribute("render.task.id", result.task_id)
    if hasattr(span, "add_link") and run_id == root:
        # The tree's trace begins with the root's first attempt (see the module docstring).
        api = otel.api
        span.add_link(
            api.SpanContext(
                trace_id=trace.trace_id_for(root),
                span_id=trace.span_id_for("attempt", root, 0),
                is_remote=True,
                trace_flags=api.TraceFlags(api.TraceFlags.SAMPLED),
            ),
            {"render.link": "task run tree"},
        )


def run_sync(
    flow: effects.Flow[T],
    send: Callable[[Request], Response],
    sleep: Callable[[float], object],
) -> T:
    """:func:`render_core.effects.run_sync`, in a span when the application traces."""
    otel = _active()
    if otel is None:
        return effects.run_sync(flow, send, sleep)
    call = _ClientCall(otel)

    def traced(request: Request) -> Response:
        call.request(request)
        response = send(request)
        call.response(response)
        return response

    try:
        result = effects.run_sync(flow, traced, sleep)
    except BaseException as exc:
        call.finish(error=exc)
        raise
    call.finish(result)
    return result


async def run_async(
    flow: effects.Flow[T],
    send: Callable[[Request], Awaitable[Response]],
    sleep: Callable[[float], Awaitable[object]],
) -> T:
    """:func:`render_core.effects.run_async`, in a span when the application traces."""
    otel = _active()
    if otel is None:
        return await effects.run_async(flow, send, sleep)
    call = _ClientCall(otel)

    async def traced(request: Request) -> Response:
        call.request(request)
        response = await send(request)
        call.response(response)
        return response

    try:
        result = await effects.run_async(flow, traced, sleep)
    except BaseException as exc:
        call.finish(error=exc)
        raise
    call.finish(result)
    return result


def _wait_span(otel: _Otel, run_ids: list[str], base_url: str) -> Any:
    import urllib.parse

    url = urllib.parse.urlsplit(base_url)
    attributes: dict[str, Any] = {
        "render.task_run.ids": run_ids[:100],
        "render.task_run.count": len(run_ids),
        "server.address": url.hostname or "",
        "server.port": url.port or (443 if url.scheme == "https" else 80),
        "url.full": base_url.rstrip("/") + "/v1/task-runs/events",
        "http.request.method": "GET",
    }
    if len(run_ids) == 1:
        attributes["render.task_run.id"] = run_ids[0]
    return otel.start("render.workflows.wait", kind="CLIENT", attributes=attributes)


def _record_result(span: Any, result: Any) -> None:
    details = getattr(result, "details", None)
    error = getattr(result, "error", None)
    run_id = getattr(result, "run_id", "")
    attributes: dict[str, Any] = {"render.task_run.id": run_id}
    if details is not None:
        attributes["render.task_run.status"] = str(details.status)
    if error is not None:
        attributes["error.type"] = type(error).__qualname__
    span.add_event("render.task_run.finished", attributes)


def traced_wait(
    results: Generator[T, None, None], run_ids: Iterable[str], base_url: str
) -> Generator[T, None, None]:
    """``results`` (the waiter's results), in one span while they are read."""
    otel = _active()
    if otel is None:
        yield from results
        return
    span = _wait_span(otel, list(run_ids), base_url)
    try:
        for result in results:
            _record_result(span, result)
            yield result
    except GeneratorExit:
        raise
    except BaseException as exc:
        otel.fail(span, exc)
        raise
    finally:
        results.close()
        span.end()


async def traced_wait_async(
    waiting: Coroutine[Any, Any, T], run_ids: Iterable[str], base_url: str
) -> T:
    """``await waiting`` (one run's result), in a span while it is awaited."""
    otel = _active()
    if otel is None:
        return await waiting
    span = _wait_span(otel, list(run_ids), base_url)
    try:
        result = await waiting
    except BaseException as exc:
        otel.fail(span, exc, "stopped waiting" if type(exc).__name__ == "CancelledError" else None)
        raise
    _record_result(span, result)
    span.end()
    return result


# -- the worker --------------------------------------------------------------------------


class _NoSpan:
    """What the worker's hooks get when the application does not trace."""

    def failed(self, exc: BaseException) -> None:
        pass

    def end(self) -> None:
        pass

    def started(self, child_id: str) -> None:
        pass

    def finished(self, awaitable: Awaitable[T]) -> Awaitable[T]:
        return awaitable


_NO_SPAN = _NoSpan()


class _Attempt:
    def __init__(self, otel: _Otel, span: Any) -> None:
        self.otel = otel
        self.span = span
        self.ok = True
        self._token = otel.context.attach(otel.api.set_span_in_context(span))

    def failed(self, exc: BaseException) -> None:
        self.ok = False
        self.otel.fail(self.span, exc, f"{type(exc).__name__}: {exc}" if str(exc) else None)

    def end(self) -> None:
        self.span.set_attribute("render.task_run.status", "completed" if self.ok else "failed")
        self.span.end()
        self.otel.context.detach(self._token)


def attempt_started(task_input: Any, task_name: str) -> _Attempt | _NoSpan:
    """The span of the attempt ``task_input`` describes, made current until ``end()``."""
    otel = _active()
    if otel is None:
        return _NO_SPAN
    from render_core import trace

    run_id = task_input.task_run_id
    root_id = task_input.root_task_run_id or run_id
    parent_id = task_input.parent_task_run_id or ""
    number = task_input.attempt
    attributes: dict[str, Any] = {"render.task.name": task_name}
    context: Any = None
    trace_id = span_id = None
    if run_id:
        attributes["render.task_run.id"] = run_id
        attributes["render.task_run.root_id"] = root_id
        if parent_id:
            attributes["render.task_run.parent_id"] = parent_id
        if number is not None:
            attributes["render.task_run.attempt"] = number
        trace_id = trace.trace_id_for(root_id)
        span_id = trace.span_id_for("attempt", run_id, number or 0)
        if parent_id and parent_id != run_id:
            context = otel.remote_parent(trace_id, trace.span_id_for("subtask", run_id))
        elif otel.chooses_ids:
            context = otel.context.Context()  # a root span of the tree's own trace
        else:
            context = otel.remote_parent(trace_id, trace.span_id_for("root", root_id))
    span = otel.start(
        task_name,
        kind="CONSUMER",
        context=context,
        trace_id=trace_id,
        span_id=span_id,
        attributes=attributes,
    )
    return _Attempt(otel, span)


class _SubtaskCall:
    def __init__(self, otel: _Otel, name: str) -> None:
        self.otel = otel
        self.name = name
        self.began = time.time_ns()
        self.parent = otel.context.get_current()
        self.span: Any = None

    def _open(self, child_id: str | None) -> Any:
        from render_core import trace

        attributes: dict[str, Any] = {"render.task.name": self.name}
        if child_id:
            attributes["render.task_run.id"] = child_id
        return self.otel.start(
            f"subtask {self.name}",
            kind="PRODUCER",
            context=self.parent,
            span_id=trace.span_id_for("subtask", child_id) if child_id else None,
            start_time=self.began,
            attributes=attributes,
        )

    def started(self, child_id: str) -> None:
        self.span = self._open(child_id)

    async def finished(self, awaitable: Awaitable[T]) -> T:
        try:
            result = await awaitable
        except BaseException as exc:
            self.otel.fail(self.span, exc)
            self.span.end()
            raise
        self.span.end()
        return result


def subtask_call(name: str) -> _SubtaskCall | _NoSpan:
    """The span of one subtask call: ``call.started(child id)``, then ``await call.finished(wait)``.

    The span begins when this is called (before the subtask is requested) and takes
    its id from the child's run id once that is known.
    """
    otel = _active()
    return _NO_SPAN if otel is None else _SubtaskCall(otel, name)


def flush() -> None:
    """Export what the task process recorded before it exits (the provider's own flush)."""
    otel = _active()
    if otel is not None and hasattr(otel.provider, "force_flush"):
        otel.provider.force_flush(FLUSH_TIMEOUT_MILLIS)
