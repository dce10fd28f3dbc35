"""A workflow written for the OFFICIAL ``render`` 1.x SDK, run by OUR dev server.

1.x tasks take a ``TaskContext`` first and chain with ``await ctx.run(task, ...)``.
Same task names and behaviour as ``official_061_workflow.py``, plus ``whoami``
(the run ids 1.5+ exposes on ``ctx.metadata``, from our ``/input`` answer).
"""

from __future__ import annotations

import asyncio
import os
import time

from render import Render, Retry, TaskContext, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def square(ctx: TaskContext, x: int) -> int:
    return x * x


@app.task
def add(ctx: TaskContext, a: int, b: int = 2) -> int:
    return a + b


@app.task
def pair(ctx: TaskContext) -> list:
    return [1, 2]


@app.task
def single_list(ctx: TaskContext) -> list:
    return [5]


@app.task
def nothing(ctx: TaskContext) -> None:
    return None


@app.task
def as_dict(ctx: TaskContext) -> dict:
    return {"k": [1, "\u00e9\u2028"], "n": None}


@app.task
async def sum_squares(ctx: TaskContext, n: int) -> int:
    return sum(await asyncio.gather(*(ctx.run(square, i) for i in range(n))))


@app.task
async def chain(ctx: TaskContext, x: int) -> int:
    y = await ctx.run(square, x)
    return await ctx.run(add, a=y)


@app.task
async def child_results(ctx: TaskContext) -> dict:
    keys = ("pair", "single_list", "nothing", "as_dict")
    values = await asyncio.gather(
        ctx.run(pair), ctx.run(single_list), ctx.run(nothing), ctx.run(as_dict)
    )
    return dict(zip(keys, values, strict=True))


@app.task
def fails(ctx: TaskContext, message: str) -> None:
    raise ValueError(message)


@app.task
async def catches_child_failure(ctx: TaskContext) -> str:
    try:
        await ctx.run(fails, "inner")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


@app.task
async def propagates_child_failure(ctx: TaskContext) -> None:
    await ctx.run(fails, "inner")


@app.task(retry=Retry(max_retries=2, wait_duration_ms=100, backoff_scaling=3.0))
def flaky(ctx: TaskContext, marker: str) -> str:
    count = 0
    if os.path.exists(marker):
        with open(marker) as f:
            count = int(f.read())
    with open(marker, "w") as f:
        f.write(str(count + 1))
    if count < 2:
        raise RuntimeError(f"attempt {count} failed")
    return f"ok after {count} failures"


@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def always_fails(ctx: TaskContext) -> None:
    raise RuntimeError("still broken")


@app.task(name="renamed", timeout_seconds=3600, plan="starter")
def original_name(ctx: TaskContext, value: str) -> str:
    return value


@app.task(timeout_seconds=30)
def too_slow(ctx: TaskContext) -> str:
    time.sleep(600)
    return "never"


@app.task
def sleeper(ctx: TaskContext, seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


@app.task
async def parent_of_sleeper(ctx: TaskContext) -> str:
    return await ctx.run(sleeper, 600)


@app.task
def nested_rest(ctx: TaskContext, x: int) -> list:
    # The official REST client inside an official worker (no token: local dev).
    return Render().workflows.run_task("wf/square", [x]).results


@app.task
def whoami(ctx: TaskContext) -> dict:
    meta = ctx.metadata
    return {
        "task_run_id": meta.task_run_id,
        "root_task_run_id": meta.root_task_run_id,
        "parent_task_run_id": meta.parent_task_run_id,
    }


@app.task
async def parent_whoami(ctx: TaskContext) -> dict:
    return {"self": await ctx.run(whoami), "me": ctx.metadata.task_run_id}


# A task of another app: never registered with the dev server.
elsewhere = Workflows()


@elsewhere.task
def ghost(ctx: TaskContext) -> int:
    return 1


@app.task
async def calls_unregistered(ctx: TaskContext) -> str:
    try:
        await ctx.run(ghost)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


if __name__ == "__main__":
    app.start()
