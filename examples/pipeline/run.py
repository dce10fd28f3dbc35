"""Run the pipeline and show its tree of runs.

RENDER_USE_LOCAL_DEV=true python run.py
"""

from render_sdk import Render
from render_sdk.client.types import ListTaskRunsParams

TEXT = """\
It was the best of times, it was the worst of times,
it was the age of wisdom, it was the age of foolishness,
it was the epoch of belief, it was the epoch of incredulity,
it was the season of Light, it was the season of Darkness,
it was the spring of hope, it was the winter of despair,
we had everything before us, we had nothing before us,
"""


def main() -> None:
    with Render() as render:
        run = render.workflows.run_task("pipeline/top_words", [TEXT, 2, 3])
        print("top words:", run.results[0])
        tree = render.workflows.list_task_runs(ListTaskRunsParams(root_task_run_id=run.id))
        children = sorted(r.task_id for r in tree if r.id != run.id)
        tasks = {task.id: task.name for task in render.workflows.list_tasks()}
        names = [tasks.get(task_id, task_id) for task_id in children]
        print(
            f"subtasks: {names.count('count_words')} x count_words, "
            f"{names.count('merge_counts')} x merge_counts"
        )


if __name__ == "__main__":
    main()
