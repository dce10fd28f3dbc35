"""Start a batch from inside a task, wait for the runs it started, then count runs.

RENDER_USE_LOCAL_DEV=true python run.py
"""

from render_sdk import Render


def main() -> None:
    with Render() as render:
        launched = render.workflows.run_task("client_in_task/launch_batch", [[1, 2, 3, 4]])
        ids = launched.results[0]
        print(f"launch_batch started {len(ids)} independent runs")
        finished = render.workflows.wait_for_runs(ids, timeout=120)
        print("their results:", [run.results[0] for run in finished])
        counts = render.workflows.run_task("client_in_task/run_counts", []).results[0]
        print("runs by status:", dict(sorted(counts.items())))


if __name__ == "__main__":
    main()
