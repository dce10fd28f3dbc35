"""The dev server's dashboard: one static page, served at ``/``, that drives the REST API.

The page is plain HTML, CSS and JavaScript shipped in this package: no build step, no
fonts or scripts from elsewhere, nothing fetched but this server. It starts, reads and
cancels runs through the same ``/v1/`` API every client uses (tasks, runs, cancel, logs,
the event stream). Dev-only endpoints add what ``/v1/`` has no field for: this module's
``GET /dev/tasks`` (each task's parameters and options as it registered them, which
the page turns into a hint for the input of a new run, and how task processes start,
``processes``: forked from a warm template, or cold, shown in the page's header), and
the run views of ``render_devserver.api`` (``/dev/runs`` search, a tree with its
timeline, the trace file, a run's stored input for "Run again", and ``/dev/metrics``).

The static files are public (the page holds no data of its own); any bearer token the
server asks for is sent by the page on its API calls, never needed to load the page.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources

from aiohttp import web

from render_core import codec
from render_devserver.store import TaskRecord

__all__ = ["ASSET_PREFIX", "DEV_TASKS_PATH", "add_routes"]

ASSET_PREFIX = "/dashboard/"
DEV_TASKS_PATH = "/dev/tasks"

# The only files served: a fixed table, so no request path ever reaches the file system.
_ASSETS = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}

# The page loads nothing from anywhere else, and may not be framed by another site.
_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def _load(name: str) -> bytes:
    return resources.files(__package__).joinpath(name).read_bytes()


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static(name: str) -> _Handler:
    body = _load(name)
    content_type = _ASSETS[name]

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type=content_type, charset="utf-8", headers=_HEADERS)

    return handler


def _task_details(task: TaskRecord, workflow_slug: str) -> dict[str, object]:
    registration = task.registration
    return {
        "id": task.id,
        "name": task.name,
        "slug": f"{workflow_slug}/{task.name}",
        "createdAt": codec.format_timestamp(task.created_at),
        "parameters": registration.get("parameters") or [],
        "options": registration.get("options") or {},
    }


def add_routes(
    router: web.UrlDispatcher,
    *,
    tasks: Callable[[], Sequence[TaskRecord]],
    workflow_slug: str,
    processes: Callable[[], Mapping[str, str]] | None = None,
) -> None:
    """Serve the page at ``/`` and ``/dashboard/``, its files, and ``GET /dev/tasks``.

    ``tasks`` returns the registered tasks when called (read on every request, so a
    re-registration shows at once); ``processes`` the scheduler's process mode
    (``{"mode": "fork" | "cold", "reason", "description"}``).
    """
    index = _static("index.html")
    router.add_get("/", index)
    router.add_get(ASSET_PREFIX, index)
    for name in _ASSETS:
        router.add_get(ASSET_PREFIX + name, _static(name))

    async def dev_tasks(request: web.Request) -> web.StreamResponse:
        document: dict[str, object] = {
            "tasks": [_task_details(task, workflow_slug) for task in tasks()]
        }
        if processes is not None:
            document["processes"] = dict(processes())
        return web.Response(
            text=json.dumps(document, separators=(",", ":"), ensure_ascii=False),
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    router.add_get(DEV_TASKS_PATH, dev_tasks, allow_head=False)
