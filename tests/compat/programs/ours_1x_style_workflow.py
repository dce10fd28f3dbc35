"""A workflow written the way the official ``render`` 1.x SDK documents, run on THIS SDK.

Imported ``from render`` (our second import name), every task takes a context first:
annotated ``TaskContext`` or a bare, unannotated ``ctx``. Served by our dev server in
``test_1x_style_workflow.py`` and driven there by our client and by the official one.
"""

from __future__ import annotations

import asyncio
import os
import pathlib

from render import Retry, TaskContext, Workflows
from render.client.errors import TaskRunError

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def add(ctx: TaskContext, a: int, b: int = 2) -> int:
    return a + b


@app.task
def square(ctx, a):
    return a * a


@app.task
def nothing(ctx) -> str:
    return "nothing to do"


@app.task
def boom(ctx: TaskContext, message: str) -> None:
    raise ValueError(message)


def _ids(ctx: TaskContext) -> dict[str, str | None]:
    meta = ctx.metadata
    return {
        "task_run_id": meta.task_run_id,
        "root_task_run_id": meta.root_task_run_id,
        "parent_task_run_id": meta.parent_task_run_id,
    }


@app.task
def whoami(context) -> dict[str, str | None]:
    return _ids(context)


@app.task
async def family(ctx: TaskContext) -> dict[str, dict[str, str | None]]:
    return {"self": _ids(ctx), "child": await ctx.run(whoami)}


@app.task
async def calls(ctx: TaskContext) -> dict[str, object]:
    return {
        "positional": await ctx.run(add, 1, 2),
        "named": await ctx.run(add, a=5, b=6),
        "default": await ctx.run(add, 10),
        "bare_ctx": await ctx.run(square, 7),
        "empty": await ctx.run(nothing),
    }


@app.task
async def fan_out(ctx, n: int) -> list[int]:
    return list(await asyncio.gather(*(ctx.run(square, i) for i in range(n))))


@app.task
async def catches(ctx: TaskContext) -> str:
    try:
        await ctx.run(boom, "bad input")
    except TaskRunError as exc:
        return f"caught: {exc}"
    return "not raised"


@app.task
async def propagates(ctx: TaskContext) -> int:
    return await ctx.run(boom, "from the child")


@app.task
async def mixes(ctx: TaskContext) -> str:
    try:
        ctx.run(add, 1, b=2)
    except ValueError as exc:
        return f"refused: {exc}"
    return "accepted"


@app.task(retry={"max_retries": 2, "wait_duration_ms": 10, "backoff_scaling": 1.0})
def flaky(ctx: TaskContext, marker: str) -> int:
    """Fails twice, then succeeds: counts its attempts in a file named by ``marker``."""
    path = pathlib.Path(os.environ.get("FLAKY_DIR", ".")) / marker
    attempts = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempts))
    if attempts < 3:
        raise RuntimeError(f"attempt {attempts} fails")
    return attempts
