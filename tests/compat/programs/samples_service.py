"""The workflow the official 1.x samples' client code talks to (``my-workflow``)."""

import time

from render import TaskContext, Workflows

app = Workflows()


@app.task(name="my-task")
def my_task_two(ctx: TaskContext, a: int, b: int) -> int:
    time.sleep(1.5)  # long enough for the samples to cancel a run they started
    return a * b


@app.task
def my_task(ctx: TaskContext, x: int) -> int:
    return x * 2


@app.task
def charge(ctx: TaskContext, order_id: str) -> str:
    return f"charged {order_id}"
