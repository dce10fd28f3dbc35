"""The workflow the testing-harness tests serve (dev server) and run (in process).

Task names are unique in the test suite: every app of a process shares one registry.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from render_core.errors import TaskRunError
from render_sdk import Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def square_it(a: int) -> int:
    return a * a


@app.task
async def sum_squares(n: int) -> int:
    return sum(await asyncio.gather(*(square_it(i) for i in range(n))))


@app.task
def echo_value(value: Any) -> Any:
    return value


@app.task
def not_json_result() -> Any:
    return {1, 2}


@app.task
def broken(reason: str) -> None:
    raise ValueError(reason)


@app.task
async def catches_broken_child() -> str:
    try:
        await broken("child says no")
    except TaskRunError as exc:
        return f"caught: {exc}"
    return "not reached"


@app.task
async def propagates_broken_child() -> None:
    await broken("deep down")


@app.task(retry=Retry(max_retries=2, wait_duration_ms=60_000))
async def third_time_lucky(ctx: TaskContext) -> int:
    """Fails on attempts 0 and 1: with the dev server's real waits this takes minutes."""
    if (ctx.attempt or 0) < 2:
        raise RuntimeError(f"attempt {ctx.attempt} failed")
    return ctx.attempt or 0


@app.task
async def describe_run(ctx: TaskContext, label: str) -> dict[str, Any]:
    child = await ctx.run(square_it, 5)
    return {"label": label, "attempt": ctx.attempt, "has_id": bool(ctx.task_run_id), "child": child}


@app.task
async def calls_unknown_task(ctx: TaskContext) -> None:
    await ctx.run("no_such_task_here")


@app.task
def sync_calls_subtask() -> int:
    return int(square_it(3))


@app.task
def env_value(name: str) -> str | None:
    return os.environ.get(name)


@app.task
def shout(text: str) -> str:
    print(text.upper(), flush=True)
    return text.upper()
