"""The main job: start the embedded dev server with main.py and run tasks on it.

    python examples/quickstart/demo.py

Runs a task with the sync client, a subtask fan-out, a retried failure, a failing
task, and fifty runs awaited at once with the async client, then prints where to look.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile

from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync
from render_sdk.client.errors import TaskRunError

HERE = os.path.dirname(os.path.abspath(__file__))


async def many_at_once(url: str) -> list[int]:
    async with RenderAsync(base_url=url) as render:
        started = [await render.workflows.start_task("quickstart/square", [n]) for n in range(50)]
        finished = await asyncio.gather(*started)
        print(f"  event streams used for 50 runs: {render.streams_opened}")
        return [run.results[0] for run in finished]


def main() -> int:
    server = DevServer([sys.executable, "main.py"], port=0, db=":memory:", cwd=HERE)
    with server.run_in_thread() as running, Render(base_url=running.url) as render:
        print(
            f"dev server on {running.url}, tasks:",
            ", ".join(t.name for t in render.workflows.list_tasks()),
        )

        run = render.workflows.run_task("quickstart/square", [7])
        print(f"square(7) = {run.results[0]}  ({run.id})")

        run = render.workflows.run_task("quickstart/sum_of_squares", [10])
        children = list(render.workflows.iter_task_runs())
        subtasks = [r for r in children if r.root_task_run_id == run.id and r.id != run.id]
        print(f"sum_of_squares(10) = {run.results[0]} from {len(subtasks)} subtasks")

        with tempfile.TemporaryDirectory() as scratch:
            run = render.workflows.run_task("quickstart/flaky", [os.path.join(scratch, "marker")])
        errors = [a.error for a in run.attempts if a.error]
        print(
            f"flaky: {run.results[0]!r} after {len(run.attempts)} attempts (retries={run.retries})"
        )
        print(f"  first attempt's error: {errors[0]}")

        try:
            render.workflows.run_task("quickstart/divide", [1, 0])
        except TaskRunError as exc:
            print(f"divide(1, 0) failed as expected: {exc}")

        results = asyncio.run(many_at_once(running.url))
        print(f"async: 50 runs of square, sum of results = {sum(results)}")

        print(
            "\nTo keep a server running and explore it (runs, logs, events):\n"
            "  cd examples/quickstart && render-workflows dev -- python main.py\n"
            "  curl 'http://127.0.0.1:8120/v1/task-runs?limit=5'"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
