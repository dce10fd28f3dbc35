"""``render-workflows runs rerun`` and ``runs trace``: built on the public REST API only.

A rerun reads the run (``GET /v1/task-runs/{id}``) and starts its task again with
the input exactly as the server returned it (``POST /v1/task-runs``). Two things
need the request level rather than the client's methods, so this module runs the
core's flows on the client's own transport: telling a run that has no input from
one whose input is ``[]`` (the models read a missing input as ``[]``), and adding
the dev-only ``Render-Dev-Rerun-Of`` header, sent only to servers on this machine,
with which a dev server records where the run came from.

A trace reads the tree (``rootTaskRunId`` filter, every page) and lays it out with
:mod:`render_core.trace`; it works against Render as well as the dev server.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import TYPE_CHECKING, Any

from render_core import api, flows
from render_core.errors import NotFoundError, RenderError
from render_core.http import Request, Response
from render_core.models import ListTaskRunsParams, TaskRun, TaskRunDetails
from render_core.trace import TimelineRun, chrome_trace, run_segments
from render_sdk._cli_format import TaskNames, task_label

if TYPE_CHECKING:
    from render_sdk.client.clients import Render

__all__ = ["NoInputError", "start_rerun", "tree_trace"]

# Runs read for one trace; a tree this large is cut (the file says so).
TRACE_MAX_RUNS = 20_000


class NoInputError(RenderError):
    """The run to run again has no input on the server."""


def _run(client: Render, flow: flows.Flow[Any]) -> Any:
    # The faces' own driver, on the client's transport (retries and errors as theirs).
    return client.workflows._run(flow)


def _with_input_flag(response: Response) -> tuple[TaskRunDetails, bool]:
    details = api.parse_get_task_run(response)
    try:
        document = json.loads(response.body)
    except ValueError:  # pragma: no cover - parse_get_task_run has refused it already
        return details, False
    value = document.get("input") if isinstance(document, dict) else None
    return details, isinstance(value, list | dict)


def _task_reference(client: Render, task_id: str) -> str:
    """The slug to start ``task_id`` by, when the server gives one; else the id itself."""
    try:
        task = client.workflows.get_task(task_id)
    except NotFoundError:
        return task_id
    label = task_label(task)
    return label if "/" in label else task_id


def start_rerun(client: Render, run_id: str) -> TaskRun:
    """Start the task of ``run_id`` again with its input; raises :class:`NoInputError`."""
    config = client._config
    request = api.build_get_task_run(config, run_id)
    details, has_input = _run(
        client,
        flows.call(
            api.GET_TASK_RUN, request, _with_input_flag, policy=client._retry, rng=client._rng
        ),
    )
    if not has_input:
        raise NoInputError(f"task run {details.id} has no input to run again with")
    task = _task_reference(client, details.task_id)
    start = api.build_start_task(config, task, details.input_)
    if config.local_dev:
        start = Request(
            method=start.method,
            url=start.url,
            headers=[*start.headers, (api.DEV_RERUN_HEADER, details.id)],
            body=start.body,
        )
    run: TaskRun = _run(
        client,
        flows.call(
            api.START_TASK, start, api.parse_start_task, policy=client._retry, rng=client._rng
        ),
    )
    return run


def tree_trace(client: Render, run_id: str, *, now: _dt.datetime | None = None) -> dict[str, Any]:
    """The trace-event document of the tree that ``run_id`` belongs to."""
    details = client.workflows.get_task_run(run_id)
    root = details.root_task_run_id or details.id
    listed: list[TaskRun] = []
    params = ListTaskRunsParams(limit=100, root_task_run_id=(root,))
    for run in client.workflows.iter_task_runs(params):
        listed.append(run)
        if len(listed) >= TRACE_MAX_RUNS:
            break
    by_id: dict[str, TaskRun | TaskRunDetails] = {run.id: run for run in reversed(listed)}
    by_id[details.id] = details  # the one read whole: its attempts carry their errors
    if root not in by_id:
        by_id = {root: client.workflows.get_task_run(root), **by_id}
    names = TaskNames(client.workflows.list_tasks)
    timeline = [
        TimelineRun(
            id=run.id,
            task_name=names(run.task_id),
            status=run.status,
            parent_id=run.parent_task_run_id,
            segments=run_segments(run),
        )
        for run in by_id.values()
    ]
    return chrome_trace(
        timeline,
        now=now or _dt.datetime.now(_dt.timezone.utc),
        root_id=root,
        metadata={
            "source": "render-workflows runs trace",
            "baseUrl": client.base_url,
            "truncated": len(listed) >= TRACE_MAX_RUNS,
        },
    )
