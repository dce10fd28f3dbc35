"""Type-only checks: mypy --strict must accept this file (it is never run).

``ctx.run`` takes a task definition and exactly that task's inputs, and its result
has the task's return type, for sync and async tasks, in both context styles.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import assert_type

from render import Options, Render, RenderAsync, Retry, TaskContext, TaskRunMetadata, Workflows
from render.workflows import TaskDefinition

app = Workflows()


@app.task
def add(ctx: TaskContext, a: int, b: int = 2) -> int:
    return a + b


@app.task
async def greet(ctx: TaskContext, name: str) -> str:
    return f"hello {name}"


@app.task(options=Options(retry=Retry(1, 10), timeout_seconds=60))
def with_options(ctx: TaskContext, values: list[int]) -> list[int]:
    return values


@app.task
def seed_style(a: int) -> float:
    return a / 2


# The definitions' inputs exclude the context; their results are the return types.
add_ok: TaskDefinition[[int, int], int] = add
greet_ok: TaskDefinition[[str], str] = greet
options_ok: TaskDefinition[[list[int]], list[int]] = with_options
seed_ok: TaskDefinition[[int], float] = seed_style


@app.task
async def pipeline(ctx: TaskContext, n: int) -> str:
    total = await ctx.run(add, n)
    assert_type(total, int)
    assert_type(await ctx.run(add, a=1, b=2), int)
    assert_type(await ctx.run(greet, "x"), str)
    assert_type(await ctx.run(with_options, [1, 2]), list[int])
    assert_type(ctx.metadata, TaskRunMetadata)
    assert_type(ctx.metadata.root_task_run_id, str | None)
    return str(total)


class StandIn:
    """A test double satisfies the protocol without subclassing it."""

    @property
    def metadata(self) -> TaskRunMetadata:
        return TaskRunMetadata()

    async def run(self, task: Any, /, *args: Any, **kwargs: Any) -> Any:
        return None


def use(ctx: TaskContext) -> None: ...


use(StandIn())


def typed_handles(render: Render) -> None:
    assert_type(render.workflows.run(add, 1), int)
    assert_type(render.workflows.run(add, a=1, b=2), int)
    assert_type(render.workflows.run(with_options, [1]), list[int])


async def typed_handles_async(render: RenderAsync) -> None:
    assert_type(await render.workflows.run(greet, "x"), str)
    assert_type(await render.workflows.run(seed_style, 2), float)
