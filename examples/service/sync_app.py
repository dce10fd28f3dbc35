"""A synchronous program (a web handler, a cron job) triggering runs of the service.

With the service running on the dev server (see ``workflows/main.py``):

    RENDER_USE_LOCAL_DEV=true python sync_app.py

Against Render, set ``RENDER_API_KEY`` instead and use your workflow's slug.
"""

from render_sdk import Render
from render_sdk.client.errors import TaskRunError
from render_sdk.client.types import ListTaskRunsParams

TEXTS = ["the quick brown fox", "jumps over", "the lazy dog", ""]


def main() -> None:
    with Render() as render:
        # Start a run and wait for it.
        details = render.workflows.run_task("service/square", [12])
        print(f"square(12) = {details.results[0]}")

        # Start several, then handle each as it finishes.
        started = [render.workflows.start_task("service/word_count", [text]) for text in TEXTS]
        counts = {}
        for done in render.workflows.as_completed([run.id for run in started], timeout=300):
            counts[done.id] = done.results[0]
        print("word counts:", [counts[run.id] for run in started])

        # A task that fans out to tasks of other modules.
        report = render.workflows.run_task("service/report", ["hello render workflows"])
        print("report:", report.results[0])
        subtasks = render.workflows.list_task_runs(
            ListTaskRunsParams(root_task_run_id=report.id, limit=100)
        )
        print(f"report ran {len(subtasks) - 1} subtasks")

        # A run that fails (after the task's retries) raises TaskRunError.
        try:
            render.workflows.run_task("service/square", ["not a number"])
        except TaskRunError as exc:
            print(f"square('not a number') failed: {exc}")


if __name__ == "__main__":
    main()
