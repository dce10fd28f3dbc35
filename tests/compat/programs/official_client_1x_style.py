"""Runs in the official SDK's venv: its client drives the 1.x-style workflow served by
our dev server (``ours_1x_style_workflow.py``). Prints one JSON line per step."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import traceback
from typing import Any

sdk = importlib.import_module(sys.argv[1])
errors = importlib.import_module(sys.argv[1] + ".client.errors")


def emit(step: str, **record: Any) -> None:
    print(json.dumps({"step": step, **record}), flush=True)


def details(run: Any) -> dict[str, Any]:
    status = run.status
    return {
        "id": run.id,
        "status": getattr(status, "value", status),
        "results": list(run.results or []),
    }


def step(name: str, call: Any) -> None:
    try:
        emit(name, value=details(call()))
    except errors.TaskRunError as exc:
        emit(name, task_run_error=str(exc))
    except Exception as exc:
        emit(
            name,
            error={"type": type(exc).__name__, "message": str(exc)},
            trace=traceback.format_exc(),
        )


render = sdk.Render()
step("add", lambda: render.workflows.run_task("wf/add", [2, 3]))
step("add_named", lambda: render.workflows.run_task("wf/add", {"a": 4}))
step("square", lambda: render.workflows.run_task("wf/square", [9]))
step("calls", lambda: render.workflows.run_task("wf/calls", []))
step("fan_out", lambda: render.workflows.run_task("wf/fan_out", [5]))
step("family", lambda: render.workflows.run_task("wf/family", []))
step("catches", lambda: render.workflows.run_task("wf/catches", []))
step("propagates", lambda: render.workflows.run_task("wf/propagates", []))
step("flaky", lambda: render.workflows.run_task("wf/flaky", ["official-marker"]))


async def main() -> None:
    client = sdk.RenderAsync()
    started = await client.workflows.start_task("wf/mixes", [])
    try:
        emit("async_mixes", value=details(await started))
    except Exception as exc:
        emit("async_mixes", error={"type": type(exc).__name__, "message": str(exc)})


asyncio.run(main())
emit("done")
