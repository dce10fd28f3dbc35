"""Type-only checks: mypy --strict must reject each line marked ``# rejected: CODE``
with that error code, and nothing else (the file is never run)."""

from __future__ import annotations

from render import Render, TaskContext, Workflows
from render.workflows import TaskDefinition

app = Workflows()


@app.task
def add(ctx: TaskContext, a: int, b: int = 2) -> int:
    return a + b


@app.task
async def pipeline(ctx: TaskContext) -> None:
    await ctx.run(add, "one")  # rejected: arg-type
    await ctx.run(add)  # rejected: call-arg
    await ctx.run(add, 1, 2, 3)  # rejected: call-arg
    await ctx.run(add, a=1, c=2)  # rejected: call-arg
    ctx.metadata.task_run_id = "x"  # rejected: misc


async def wrong_result(ctx: TaskContext) -> str:
    return await ctx.run(add, 1)  # rejected: arg-type


wrong: TaskDefinition[[str], int] = add  # rejected: assignment


class NotAContext:
    async def run(self, task: object) -> None: ...


def use(ctx: TaskContext) -> None: ...


use(NotAContext())  # rejected: arg-type


def typed_handles(render: Render) -> None:
    render.workflows.run(add, "one")  # rejected: arg-type
    render.workflows.run(add, 1, c=3)  # rejected: call-arg
    render.workflows.run("wf/add", 1)  # rejected: arg-type
