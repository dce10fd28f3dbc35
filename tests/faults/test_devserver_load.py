"""1,000 queued runs on a real dev server process with ``--concurrency 8``.

All complete, attempts start in submission order (FIFO), and the server's resident
memory stays bounded while the queue drains.
"""

from __future__ import annotations

import os
import threading

from render_core.models import TaskRunStatus
from render_sdk import Render
from tests.faults.support import DevServerProcess, rss_kib

RUNS = 1000
CONCURRENCY = 8
# The server holds 1,000 run records, a queue and 8 processes' pipes; far below this.
RSS_LIMIT_MIB = 200


def test_thousand_queued_runs_complete_in_fifo_order_with_bounded_memory(
    tiny_project: tuple[str, list[str]],
) -> None:
    cwd, command = tiny_project
    server = DevServerProcess(
        cwd,
        command,
        db=os.path.join(cwd, "dev.sqlite3"),
        args=["--concurrency", str(CONCURRENCY), "--workflow-slug", "wf"],
    )
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_kib(server.pid))
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        baseline = rss_kib(server.pid)
        sampler.start()
        with Render(base_url=server.url) as render:
            ids = [render.workflows.start_task("wf/noop", [i]).id for i in range(RUNS)]
            assert len(set(ids)) == RUNS
            finished = {d.id: d for d in render.workflows.as_completed(ids, timeout=170)}
            stop.set()
            sampler.join(10)
            assert len(finished) == RUNS
            for i, run_id in enumerate(ids):
                details = finished[run_id]
                assert details.status is TaskRunStatus.COMPLETED, details
                assert details.results == [i]
            # FIFO: first attempts start in submission order (details from the server).
            starts = []
            for run_id in ids:
                attempts = render.workflows.get_task_run(run_id).attempts
                assert len(attempts) == 1
                assert attempts[0].started_at is not None
                starts.append(attempts[0].started_at)
            assert starts == sorted(starts)
            listed = list(render.workflows.iter_task_runs())
            assert sorted(run.id for run in listed) == sorted(ids)
    finally:
        stop.set()
        assert server.stop() == 0
    peak = max(samples)
    print(f"\nload: {RUNS} runs, rss baseline {baseline} KiB, peak {peak} KiB")
    assert peak < RSS_LIMIT_MIB * 1024, (baseline, peak)
