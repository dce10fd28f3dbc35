"""Using the client inside a task: start independent runs and look at past ones.

A subtask (calling a task from a task) ties the child to its parent: the parent
waits and gets the result. A task can also use ``Render`` like any program, to start
runs that live on their own or to query the API. The dev server sets
``RENDER_USE_LOCAL_DEV`` for its task processes; on Render, give the workflow a
``RENDER_API_KEY`` environment variable.

    render-workflows dev -- python main.py
"""

from render_sdk import Render, Workflows

app = Workflows()


@app.task
def square(a: int) -> int:
    return a * a


@app.task
def launch_batch(numbers: list[int]) -> list[str]:
    """Start one independent ``square`` run per number; return their ids at once."""
    with Render() as render:
        task = next(t for t in render.workflows.list_tasks() if t.name == "square")
        return [render.workflows.start_task(task.id, [n]).id for n in numbers]


@app.task
def run_counts() -> dict[str, int]:
    """How many runs of this workflow ended in each status, read from the API."""
    counts: dict[str, int] = {}
    with Render() as render:
        for run in render.workflows.iter_task_runs():
            counts[str(run.status)] = counts.get(str(run.status), 0) + 1
    return counts


if __name__ == "__main__":
    app.start()
