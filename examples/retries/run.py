"""Trigger the retry and timeout examples and print what each attempt did.

    RENDER_USE_LOCAL_DEV=true python run.py

``too_slow`` needs its 30 s timeout to pass; the whole script takes about 35 s.
"""

import os
import tempfile

from render_sdk import Render
from render_sdk.client.errors import TaskRunError
from render_sdk.client.types import TaskRunDetails


def show(run: TaskRunDetails) -> None:
    print(f"  status={run.status} retries={run.retries} attempts={len(run.attempts)}")
    for number, attempt in enumerate(run.attempts, 1):
        print(f"  attempt {number}: {attempt.status} {attempt.error or ''}".rstrip())


def main() -> None:
    with Render() as render, tempfile.TemporaryDirectory() as scratch:
        counter = os.path.join(scratch, "attempts")
        run = render.workflows.run_task("retries/flaky", [counter, 2])
        print(f"flaky: {run.results[0]}")
        show(run)

        for task, args in [("always_fails", ["bad input"]), ("too_slow", [3600])]:
            started = render.workflows.start_task(f"retries/{task}", args)
            try:
                render.workflows.wait_for_run(started.id, timeout=300)
            except TaskRunError as exc:
                print(f"{task}: failed: {exc}")
            show(render.workflows.get_task_run(started.id))

        run = render.workflows.run_task("retries/careful_parent", ["no good"])
        print(f"careful_parent: {run.results[0]}")


if __name__ == "__main__":
    main()
