"""The REST + SSE API of the dev server (aiohttp.web), as Render serves it.

Exact paths and success codes (202/200/204), camelCase JSON with every required
key, errors as ``{"id": ..., "message": ...}`` with the right 4xx (never a 500 or a
dropped connection for a client mistake), cursor pagination, and an event stream
that starts with ``retry:``, numbers its events, honours ``Last-Event-ID``, replays
terminal states (canceled too) on subscribe, sends ``: ping`` keep-alives and never
lets a slow subscriber hold anything up.

Beside ``/v1/``, the dashboard's dev-only views: ``GET /dev/runs`` (the runs list with
id-prefix and time search), ``/dev/runs/{id}/tree`` (a tree with the timeline
segments of :mod:`render_core.trace`), ``/dev/runs/{id}/trace`` (a trace-event
file), ``/dev/runs/{id}/input`` and ``/dev/metrics``. ``POST /v1/task-runs`` also
reads the dev-only ``Render-Dev-Rerun-Of`` header and records where a run came from;
no ``/v1/`` shape changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as _dt
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web, web_protocol

from render_core import codec, lifecycle, trace
from render_core.api import DEV_RERUN_HEADER, LogEntry, LogPage, log_page_json
from render_core.lifecycle import LifecycleError, Run
from render_core.models import TaskRunStatus
from render_devserver import dashboard
from render_devserver.ids import new_id
from render_devserver.scheduler import Scheduler, TaskNotFound, utcnow
from render_devserver.security import RequestPolicy
from render_devserver.store import TaskRecord

__all__ = ["DEFAULT_MAX_BODY_BYTES", "AppRunner", "EventHub", "build_app"]

logger = logging.getLogger("render_devserver")

# Request bodies above this are refused with 413: task inputs are JSON arguments,
# not file uploads, and a bound keeps one request from exhausting memory.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# Comment lines on idle streams, shorter than every client's idle timeout.
DEFAULT_PING_INTERVAL = 15.0
# Events a subscriber may fall behind by before its connection is closed; it
# reconnects with Last-Event-ID and loses nothing.
SUBSCRIBER_BACKLOG = 1000
RETRY_MS = 2000
EVENTS_PATH = "/v1/task-runs/events"
# The dashboard's "Run again" and ``render-workflows runs rerun`` name the run they
# re-run in this header of POST /v1/task-runs; the store records the link.
RERUN_HEADER = DEV_RERUN_HEADER
# Runs returned for one tree (the timeline and the trace file); more are cut off.
TREE_LIMIT = 5000
# Errors in tree documents are cut to this many characters (the run page has them whole).
TREE_ERROR_CHARS = 2000
STATUS_NAMES = ("pending", "running", "completed", "failed", "canceled")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# JSON is never to be read as a script or a page by a browser that was tricked
# into loading it (a <script src> pointing here gets nothing it can run).
_NO_SNIFF = {"X-Content-Type-Options": "nosniff"}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = json.dumps({"id": new_id("err-"), "message": message})
    return web.Response(
        status=status,
        text=body,
        content_type="application/json",
        headers={**_NO_SNIFF, **(headers or {})},
    )


def _json(status: int, document: Any) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(document, separators=(",", ":"), ensure_ascii=False),
        content_type="application/json",
    )


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Subscriber:
    """One event stream's share of the hub: the events it has yet to write, and the
    future its handler waits on while there are none (set by the hub, or by the ping
    timer), so that an event is written on the loop's next turn."""

    def __init__(self, run_ids: frozenset[str]) -> None:
        self.run_ids = run_ids
        self.items: collections.deque[tuple[int, str, str] | None] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def put(self, item: tuple[int, str, str] | None) -> bool:
        """Queue ``item`` (None: the stream ends); False if the subscriber is too far behind."""
        if len(self.items) >= SUBSCRIBER_BACKLOG and item is not None:
            return False
        self.items.append(item)
        self.wake()
        return True

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next(self, timeout: float) -> tuple[int, str, str] | Literal[False] | None:
        """The next item, or False if none came within ``timeout`` seconds (time to ping)."""
        if not self.items:
            loop = asyncio.get_running_loop()
            self.waiter = loop.create_future()
            timer = loop.call_later(timeout, self.wake)
            try:
                await self.waiter
            finally:
                timer.cancel()
                self.waiter = None
            if not self.items:
                return False
        return self.items.popleft()


class EventHub:
    """Fans terminal events out to event-stream subscribers without ever blocking."""

    def __init__(self) -> None:
        self._subscribers: set[_Subscriber] = set()

    def subscribe(self, run_ids: frozenset[str]) -> _Subscriber:
        subscriber = _Subscriber(run_ids)
        self._subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, event_id: int, run_id: str, data: str) -> None:
        for subscriber in list(self._subscribers):
            if run_id not in subscriber.run_ids:
                continue
            if not subscriber.put((event_id, run_id, data)):
                # Too slow: drop it rather than wait; it resumes with Last-Event-ID.
                subscriber.overflowed = True
                subscriber.wake()
                self._subscribers.discard(subscriber)

    def close_all(self) -> None:
        for subscriber in list(self._subscribers):
            subscriber.put(None)
        self._subscribers.clear()


def _limit(request: web.Request, default: int = 20) -> int:
    raw = request.query.getall("limit", [])
    if not raw:
        return default
    try:
        value = int(raw[-1])
    except ValueError:
        raise _BadRequest(400, f"limit: not an integer: {raw[-1]!r}") from None
    if value < 1:
        raise _BadRequest(400, "limit: must be at least 1")
    return min(value, 100)


def _ids(request: web.Request, key: str) -> list[str]:
    """Repeated and comma-separated values, in order, without duplicates."""
    values: list[str] = []
    for raw in request.query.getall(key, []):
        for piece in raw.split(","):
            value = piece.strip()
            if value and value not in values:
                values.append(value)
    return values


class _Api:
    def __init__(
        self,
        scheduler: Scheduler,
        hub: EventHub,
        *,
        workflow_slug: str,
        ping_interval: float,
        policy: RequestPolicy,
    ) -> None:
        self.policy = policy
        self.scheduler = scheduler
        self.store = scheduler.store
        self.hub = hub
        self.workflow_slug = workflow_slug
        self.ping_interval = ping_interval
        self.auth_token: str | None = None

    # -- middleware ------------------------------------------------------------------

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host, Origin and body type (``security.py``), before anything else runs."""
        refusal = self.policy.check(
            method=request.method,
            target=request.raw_path,
            headers=request.headers,
            host_values=request.headers.getall("Host", []),
            has_body=request.body_exists,
            routed=request.match_info.http_exception is None,
        )
        if refusal is not None:
            return _error(refusal.status, refusal.message)
        return await handler(request)

    @web.middleware
    async def auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """With a token set, everything but the dashboard's static shell needs it."""
        if self.auth_token is None or _is_public(request.path):
            return await handler(request)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode("utf-8", "replace"), self.auth_token.encode()
        ):
            return await handler(request)
        return _error(
            401,
            "unauthorized: send Authorization: Bearer <token> (the dev server's --auth-token)",
            {"WWW-Authenticate": 'Bearer realm="render-workflows-dev"'},
        )

    @web.middleware
    async def errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except _BadRequest as exc:
            return _error(exc.status, exc.message)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body too large (limit {DEFAULT_MAX_BODY_BYTES} bytes)")
        except web.HTTPMethodNotAllowed as exc:
            return _error(
                405,
                f"method {request.method} not allowed on {request.path}",
                {"Allow": exc.headers["Allow"]},
            )
        except web.HTTPNotFound:
            return _error(404, f"not found: {request.method} {request.path}")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("internal error on %s %s", request.method, request.path)
            return _error(500, "internal error in the dev server (see its log)")

    # -- task runs ---------------------------------------------------------------------

    async def create_run(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except ValueError:
            raise _BadRequest(400, "request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _BadRequest(400, "request body must be a JSON object")
        task = payload.get("task")
        if not isinstance(task, str) or not task.strip():
            raise _BadRequest(400, "task: a task slug (workflow-slug/task-name) is required")
        if "input" not in payload:
            raise _BadRequest(400, "input: required (an array or an object of arguments)")
        input_data = payload["input"]
        if not isinstance(input_data, list | dict):
            raise _BadRequest(400, "input: must be an array (positional) or an object (named)")
        key = payload.get("idempotencyKey")
        if key is not None and (not isinstance(key, str) or not key):
            raise _BadRequest(400, "idempotencyKey: must be a non-empty string")
        origin = request.headers.get(RERUN_HEADER, "").strip() or None
        if origin is not None and self.store.get_run(origin) is None:
            raise _BadRequest(400, f"{RERUN_HEADER}: task run not found: {origin}")
        try:
            run, created = self.scheduler.start_run(task, input_data, idempotency_key=key)
        except TaskNotFound as exc:
            raise _BadRequest(404, str(exc)) from None
        if created and origin is not None:
            self.store.set_rerun_of(run.id, origin)
        return _json(202, codec.unstructure(lifecycle.to_summary(run)))

    async def get_run(self, request: web.Request) -> web.StreamResponse:
        run = self.store.get_run(request.match_info["run_id"])
        if run is None:
            raise _BadRequest(404, f"task run not found: {request.match_info['run_id']}")
        return _json(200, codec.unstructure(lifecycle.to_details(run)))

    async def cancel_run(self, request: web.Request) -> web.StreamResponse:
        run_id = request.match_info["run_id"]
        try:
            self.scheduler.cancel_run(run_id)
        except KeyError:
            raise _BadRequest(404, f"task run not found: {run_id}") from None
        except LifecycleError as exc:
            raise _BadRequest(409, str(exc)) from None
        return web.Response(status=204)

    def _task_ids(self, refs: list[str]) -> list[str]:
        ids = []
        for ref in refs:
            with contextlib.suppress(TaskNotFound):
                ids.append(self.scheduler.resolve_task(ref).id)
        return ids

    async def list_runs(self, request: web.Request) -> web.StreamResponse:
        limit = _limit(request)
        slugs = _ids(request, "taskSlug")
        task_ids = self._task_ids(slugs)
        if slugs and not task_ids:
            return _json(200, [])
        page = self.store.list_runs(
            limit=limit,
            cursor=request.query.get("cursor"),
            task_ids=task_ids,
            root_ids=_ids(request, "rootTaskRunId"),
            statuses=_ids(request, "status"),
        )
        if page is None:
            # A cursor this server never issued (the reference docs' sample cursor,
            # or one from another server): an empty page ends any pagination loop.
            page = []
        return _json(
            200,
            [
                {"taskRun": codec.unstructure(lifecycle.to_summary(run)), "cursor": run.id}
                for run in page
            ],
        )

    # -- dev-only views of runs (the dashboard's) ----------------------------------------

    def _task_names(self) -> dict[str, str]:
        return {task.id: task.name for task in self.store.tasks(active_only=False)}

    async def dev_runs(self, request: web.Request) -> web.StreamResponse:
        """``GET /dev/runs``: the runs list with search (see docs/dev-server.md)."""
        limit = _limit(request, default=50)
        refs = _ids(request, "task")
        task_ids = self._task_ids(refs)
        statuses = _ids(request, "status")
        for status in statuses:
            if status not in STATUS_NAMES and status not in {s.value for s in TaskRunStatus}:
                raise _BadRequest(400, f"status: unknown status {status!r}")
        prefix = request.query.get("q", "").strip() or None
        if prefix is not None and not _is_id_prefix(prefix):
            raise _BadRequest(
                400, "q: an id prefix has only letters, digits, '-' and '_' (at most 64)"
            )
        after = _time(request, "after")
        before = _time(request, "before")
        if after is not None and before is not None and after >= before:
            raise _BadRequest(400, "after: must be earlier than before")
        roots = request.query.get("roots", "") in ("1", "true")
        page: list[Run] | None = []
        if not refs or task_ids:
            page = self.store.list_runs(
                limit=limit + 1,
                cursor=request.query.get("cursor"),
                task_ids=task_ids,
                statuses=statuses,
                id_prefix=prefix,
                created_after=after,
                created_before=before,
                roots_only=roots,
            )
        page = page or []
        names = self._task_names()
        items = []
        for run in page[:limit]:
            item = codec.unstructure(lifecycle.to_summary(run))
            item["taskName"] = names.get(run.task_id, run.task_name)
            item["createdAt"] = codec.format_timestamp(run.created_at)
            items.append(item)
        more = len(page) > limit
        return _json(200, {"runs": items, "nextCursor": items[-1]["id"] if more else None})

    def _tree(self, run_id: str) -> tuple[str, list[tuple[Run, str | None]], bool]:
        try:
            return self.store.run_tree(run_id, TREE_LIMIT)
        except KeyError:
            raise _BadRequest(404, f"task run not found: {run_id}") from None

    async def dev_tree(self, request: web.Request) -> web.StreamResponse:
        """``GET /dev/runs/{id}/tree``: every run of the tree with its timeline segments."""
        run_id = request.match_info["run_id"]
        root_id, runs, truncated = self._tree(run_id)
        names = self._task_names()
        documents = [_tree_run(run, origin, names) for run, origin in runs]
        return _json(
            200,
            {
                "taskRunId": run_id,
                "rootTaskRunId": root_id,
                "now": codec.format_timestamp(utcnow()),
                "truncated": truncated,
                "reruns": self.store.reruns(run_id),
                "runs": documents,
            },
        )

    async def dev_trace(self, request: web.Request) -> web.StreamResponse:
        """``GET /dev/runs/{id}/trace``: the tree as a Chrome trace-event file (a download)."""
        run_id = request.match_info["run_id"]
        root_id, runs, truncated = self._tree(run_id)
        names = self._task_names()
        timeline = [
            trace.TimelineRun(
                id=run.id,
                task_name=names.get(run.task_id, run.task_name),
                status=run.status,
                parent_id=run.parent_id,
                segments=_segments(run),
            )
            for run, _ in runs
        ]
        document = trace.chrome_trace(
            timeline,
            now=utcnow(),
            root_id=root_id,
            metadata={"source": "render-workflows dev server", "truncated": truncated},
        )
        response = _json(200, document)
        response.headers["Content-Disposition"] = f'attachment; filename="trace-{root_id}.json"'
        return response

    async def dev_input(self, request: web.Request) -> web.StreamResponse:
        """``GET /dev/runs/{id}/input``: a run's input as stored, the whole body (for "Run again").

        The page splices this text into its start request unparsed, so integers
        beyond 2**53 survive the round trip.
        """
        run_id = request.match_info["run_id"]
        run = self.store.get_run(run_id)
        if run is None:
            raise _BadRequest(404, f"task run not found: {run_id}")
        if not isinstance(run.input, list | dict):
            raise _BadRequest(409, f"task run {run_id} has no input to run again with")
        return _json(200, run.input)

    async def dev_metrics(self, request: web.Request) -> web.StreamResponse:
        """``GET /dev/metrics``: runs by status, the queue, attempt durations per task."""
        counts = self.store.count_by_status()
        by_status = {name: counts.get(name, 0) for name in STATUS_NAMES}
        for name, count in counts.items():
            by_status.setdefault(name, count)
        queue = self.scheduler.queue_state()
        queue["queued"] = max(0, by_status["pending"] - queue["waitingRetry"])
        names = self._task_names()
        durations = [
            {
                "taskId": task_id,
                "taskName": names.get(task_id, task_id),
                "attempts": count,
                "p50Ms": round(p50, 3),
                "p95Ms": round(p95, 3),
            }
            for task_id, count, p50, p95 in self.store.attempt_durations()
        ]
        return _json(
            200,
            {
                "runsByStatus": by_status,
                "total": sum(counts.values()),
                "queue": queue,
                "attemptDurations": durations,
            },
        )

    # -- tasks -------------------------------------------------------------------------

    def _task_json(self, task: TaskRecord) -> dict[str, Any]:
        return {
            "id": task.id,
            "name": task.name,
            "slug": f"{self.workflow_slug}/{task.name}",
            "createdAt": codec.format_timestamp(task.created_at),
        }

    async def list_tasks(self, request: web.Request) -> web.StreamResponse:
        limit = _limit(request)
        tasks = self.store.tasks()
        slugs = _ids(request, "taskSlug")
        if slugs:
            wanted = set(self._task_ids(slugs))
            tasks = [t for t in tasks if t.id in wanted]
        cursor = request.query.get("cursor")
        if cursor is not None:
            ids = [t.id for t in tasks]
            tasks = tasks[ids.index(cursor) + 1 :] if cursor in ids else []
        return _json(200, [{"task": self._task_json(t), "cursor": t.id} for t in tasks[:limit]])

    async def get_task(self, request: web.Request) -> web.StreamResponse:
        ref = request.match_info["task_ref"]
        try:
            task = self.scheduler.resolve_task(ref)
        except TaskNotFound:
            raise _BadRequest(404, f"task not found: {ref}") from None
        return _json(200, self._task_json(task))

    # -- events ------------------------------------------------------------------------

    async def events(self, request: web.Request) -> web.StreamResponse:
        run_ids = frozenset(_ids(request, "taskRunIds"))
        if not run_ids:
            raise _BadRequest(400, "taskRunIds: at least one task run id is required")
        after = 0
        last = request.headers.get("Last-Event-ID", "").strip()
        if last.isdigit():
            after = int(last)
        subscriber = self.hub.subscribe(run_ids)
        response = _EventStreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "Connection": "keep-alive",
                "X-Accel-Buffering": "no",
            },
        )
        try:
            await response.prepare(request)
            # The headers, the retry line and the replay in one write: a client
            # waiting for a run that has already ended wakes once, not three times.
            opening = [f"retry: {RETRY_MS}\n\n".encode()]
            sent = after
            replay, ended = self.store.event_replay(run_ids, after)
            for event_id, _, data in replay:
                opening.append(_frame(event_id, data))
                sent = max(sent, event_id)
            # The stream ends once every run it names has ended (an event is a run's
            # end): in the same write as the last event, so that a client can put the
            # connection back in its pool instead of closing it. An id of no run never
            # ends: such a stream stays open (and pinged) until the client leaves.
            waiting = set(run_ids) - ended
            if not waiting:
                await response.write_eof(b"".join(opening))
                return response
            await response.write(b"".join(opening))
            while not subscriber.overflowed:
                item = await subscriber.next(self.ping_interval)
                if item is False:
                    await response.write(b": ping\n\n")
                    continue
                if item is None:
                    break
                event_id, run_id, data = item
                if event_id > sent:
                    waiting.discard(run_id)
                    sent = event_id
                    if not waiting:
                        await response.write_eof(_frame(event_id, data))
                        return response
                    await response.write(_frame(event_id, data))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.hub.unsubscribe(subscriber)
        return response

    # -- logs --------------------------------------------------------------------------

    async def logs(self, request: web.Request) -> web.StreamResponse:
        run_ids = _ids(request, "taskRunID") + _ids(request, "taskRun") + _ids(request, "taskRunId")
        start = _time(request, "startTime")
        end = _time(request, "endTime")
        text = _ids(request, "text")
        limit = _limit(request, default=100)
        records = self.store.logs(run_ids=run_ids, start=start, end=end, text=text, limit=limit + 1)
        more = len(records) > limit
        records = records[:limit]
        page = LogPage(
            logs=[
                LogEntry(
                    id=str(r.id),
                    message=r.message,
                    timestamp=r.timestamp,
                    labels={"taskRun": r.run_id, "stream": r.stream},
                )
                for r in records
            ],
            has_more=more,
            next_start_time=records[-1].timestamp if records else None,
        )
        return _json(200, log_page_json(page))


def _is_id_prefix(text: str) -> bool:
    return 0 < len(text) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in text)


def _segments(run: Run) -> list[trace.Segment]:
    waiting = run.status is TaskRunStatus.PENDING and bool(run.attempts)
    return trace.run_segments(
        lifecycle.to_details(run),
        created_at=run.created_at,
        next_enqueued_at=run.enqueued_at if waiting else None,
    )


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= TREE_ERROR_CHARS:
        return text
    return text[:TREE_ERROR_CHARS] + " [...]"


def _tree_run(run: Run, origin: str | None, names: dict[str, str]) -> dict[str, Any]:
    segments = []
    for segment in _segments(run):
        document = trace.segment_json(segment)
        if "error" in document:
            document["error"] = _cut(document["error"])
        segments.append(document)
    return {
        "id": run.id,
        "taskId": run.task_id,
        "taskName": names.get(run.task_id, run.task_name),
        "status": run.status.value,
        "parentTaskRunId": run.parent_id,
        "rootTaskRunId": run.root_id or run.id,
        "parentTaskAttempt": run.parent_attempt,
        "createdAt": codec.format_timestamp(run.created_at),
        "startedAt": None if run.started_at is None else codec.format_timestamp(run.started_at),
        "completedAt": (
            None if run.completed_at is None else codec.format_timestamp(run.completed_at)
        ),
        "attempts": len(run.attempts),
        "error": _cut(run.error),
        "rerunOf": origin,
        "segments": segments,
    }


class _EventStreamResponse(web.StreamResponse):
    """An event stream whose headers go out with its first write (the opening
    above), as aiohttp's buffered responses do, rather than in a packet of their own.

    ``_send_headers_immediately`` is aiohttp's switch for that (``web.Response``
    turns it off); should a version lack it, the headers simply go out at once.
    """

    _send_headers_immediately = False


def _frame(event_id: int, data: str) -> bytes:
    return f"id: {event_id}\nevent: task.completed\ndata: {data}\n\n".encode()


def _time(request: web.Request, key: str) -> _dt.datetime | None:
    raw = request.query.get(key)
    if not raw:
        return None
    try:
        return codec.parse_timestamp(raw)
    except codec.DecodeError:
        raise _BadRequest(400, f"{key}: not an RFC 3339 timestamp: {raw!r}") from None


def _is_public(path: str) -> bool:
    """The dashboard's HTML/JS/CSS shell: no data, served without the token."""
    return path == "/" or path.startswith(dashboard.ASSET_PREFIX)


def build_app(
    scheduler: Scheduler,
    hub: EventHub,
    *,
    workflow_slug: str,
    ping_interval: float = DEFAULT_PING_INTERVAL,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    auth_token: str | None = None,
    policy: RequestPolicy | None = None,
) -> web.Application:
    """The aiohttp application; ``auth_token`` makes every data route require it.

    ``policy`` decides which Host, Origin and body types are accepted (loopback
    names by default); its ``port`` must be set once the server is bound. Serve
    the application with :class:`AppRunner` so that even requests aiohttp cannot
    parse get a JSON answer.
    """
    api = _Api(
        scheduler,
        hub,
        workflow_slug=workflow_slug,
        ping_interval=ping_interval,
        policy=policy if policy is not None else RequestPolicy(),
    )
    api.auth_token = auth_token or None
    app = web.Application(
        middlewares=[api.guard, api.auth, api.errors], client_max_size=max_body_bytes
    )
    app.on_response_prepare.append(_no_sniff)
    router = app.router
    router.add_post("/v1/task-runs", api.create_run)
    router.add_get("/v1/task-runs", api.list_runs, allow_head=False)
    router.add_get(EVENTS_PATH, api.events, allow_head=False)
    router.add_get("/v1/task-runs/{run_id}", api.get_run, allow_head=False)
    router.add_delete("/v1/task-runs/{run_id}", api.cancel_run)
    router.add_get("/v1/tasks", api.list_tasks, allow_head=False)
    router.add_get("/v1/tasks/{task_ref:.+}", api.get_task, allow_head=False)
    router.add_get("/v1/logs", api.logs, allow_head=False)
    router.add_get("/dev/runs", api.dev_runs, allow_head=False)
    router.add_get("/dev/runs/{run_id}/tree", api.dev_tree, allow_head=False)
    router.add_get("/dev/runs/{run_id}/trace", api.dev_trace, allow_head=False)
    router.add_get("/dev/runs/{run_id}/input", api.dev_input, allow_head=False)
    router.add_get("/dev/metrics", api.dev_metrics, allow_head=False)

    def processes() -> dict[str, str]:
        return scheduler.process_mode.as_json()  # read each time: the mode changes

    dashboard.add_routes(
        router, tasks=api.store.tasks, workflow_slug=workflow_slug, processes=processes
    )
    return app


async def _no_sniff(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


# -- errors raised below the application -----------------------------------------------
#
# aiohttp answers a request it cannot parse (garbage bytes, a broken header) and an
# HTTP error raised before the middlewares run (an unknown ``Expect``) by itself, in
# plain text, and offers no hook for either (aio-libs/aiohttp#3287). The runner below
# installs the two smallest overrides that make those answers JSON too: the
# connection handler's ``handle_error`` (which produces the parser's 400s and the
# last-resort 500) and a wrapper around the application's entry point.


def _protocol_error_message(status: int, exc: BaseException | None) -> str:
    if status == 500:
        return "internal error in the dev server (see its log)"
    if status == 504:
        return "the request took too long"
    detail = getattr(exc, "message", None) or (str(exc) if exc is not None else "")
    first = str(detail).strip().splitlines()[0].rstrip(": ") if str(detail).strip() else ""
    if len(first) > 200:
        first = first[:200] + "..."
    return "malformed HTTP request" + (f": {first}" if first else "")


class _JsonErrorProtocol(web_protocol.RequestHandler):
    """aiohttp's connection handler, with its own error answers in JSON."""

    __slots__ = ()

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # The parent logs, and raises if part of a response was already sent.
        super().handle_error(request, status, exc, message)
        response = _error(status, _protocol_error_message(status, exc))
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        handler = super().__call__()
        handler.__class__ = _JsonErrorProtocol  # same layout: it only adds a method
        return handler


_LowLevelHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def _json_http_errors(handler: _LowLevelHandler) -> _LowLevelHandler:
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            detail = exc.text or ""
            # aiohttp's default text is "417: Expectation Failed"; a specific one says more.
            message = detail if detail and detail != f"{exc.status}: {exc.reason}" else exc.reason
            return _error(exc.status, message)

    return handle


class AppRunner(web.AppRunner):
    """``aiohttp.web.AppRunner`` whose every error answer is JSON (see above)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        server.request_handler = _json_http_errors(server.request_handler)
        return server
