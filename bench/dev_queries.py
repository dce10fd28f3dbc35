"""The dashboard's queries against a large dev-server database (our side only).

Usage::

    python bench/dev_queries.py                      # 10,000 runs, prints a Markdown table
    python bench/dev_queries.py --runs 300 --reps 3  # seconds; what the smoke test runs

It writes ``--runs`` runs into a fresh SQLite file through the store (as the
scheduler would: finished runs with their attempts, some retried, some failed, over
a week of creation times, five tasks, one tree of 500 runs and many small ones),
then times each query the dashboard makes, median of ``--reps``:

- in the store (``Store.list_runs``, ``run_tree``, ``count_by_status``...);
- over HTTP against a dev server on that file (``GET /dev/runs...``, ``/tree``,
  ``/trace``, ``/dev/metrics``, ``/v1/task-runs``), the time a page waits for.

Nothing is compared with the official SDK: it has no such views.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from render_core import lifecycle  # noqa: E402
from render_core.lifecycle import RetryPolicy  # noqa: E402
from render_devserver.store import Store  # noqa: E402

UTC = _dt.timezone.utc
TASKS = ["noop", "fan", "alpha", "beta", "gamma"]
BIG_TREE = 500


def populate(path: str, total: int, now: _dt.datetime) -> dict[str, Any]:
    """``total`` finished runs; returns ids worth querying."""
    store = Store(path)
    names = iter(f"tsk-bench{index}" for index in range(len(TASKS)))
    store.replace_tasks([{"name": name} for name in TASKS], now, lambda prefix: next(names))
    task_ids = {task.name: task.id for task in store.tasks()}
    week = _dt.timedelta(days=7)
    count = 0
    big_root = ""
    some_id = ""

    def finish(run: lifecycle.Run, created: _dt.datetime, index: int) -> lifecycle.Run:
        start = created + _dt.timedelta(milliseconds=5 + index % 7)
        run = lifecycle.start_attempt(run, start)
        if index % 9 == 0:
            run = lifecycle.fail_attempt(run, "ValueError: flaky", start + _dt.timedelta(seconds=1))
            if run.is_terminal:
                return run
            run = lifecycle.start_attempt(run, start + _dt.timedelta(seconds=3))
        if index % 23 == 0:
            return lifecycle.fail_attempt(run, "ValueError: no", start + _dt.timedelta(seconds=4))
        return lifecycle.complete(
            run, [index], start + _dt.timedelta(seconds=4, milliseconds=index % 300)
        )

    while count < total:
        created = now - week + week * (count / max(total, 1))
        big = not big_root and count >= total // 2
        size = BIG_TREE if big else 1 + count % 10
        size = min(size, total - count)
        root = lifecycle.new_run(
            run_id=f"trn-b{count:07d}",
            task_id=task_ids["fan"],
            task_name="fan",
            input_data=[size],
            now=created,
            policy=RetryPolicy(1, 2000, 1.0),
        )
        root = lifecycle.start_attempt(root, created)
        store.put_run(root)
        for index in range(1, size):
            name = "noop" if big else TASKS[(count + index) % len(TASKS)]
            child = lifecycle.new_run(
                run_id=f"trn-b{count + index:07d}",
                task_id=task_ids[name],
                task_name=name,
                input_data=[index],
                now=created + _dt.timedelta(milliseconds=index),
                parent=root,
                policy=RetryPolicy(1, 2000, 1.0),
            )
            store.put_run(finish(child, created + _dt.timedelta(milliseconds=index), count + index))
        store.put_run(lifecycle.complete(root, [], created + _dt.timedelta(seconds=10)))
        if big:
            big_root = root.id
        some_id = root.id
        count += size
    store.close()
    return {"big_root": big_root, "small_root": some_id}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def median_ms(action: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--output", help="also write the table to this file")
    args = parser.parse_args()
    import requests

    now = _dt.datetime.now(UTC)
    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as directory:
        db = str(pathlib.Path(directory) / "dev.sqlite3")
        began = time.perf_counter()
        ids = populate(db, args.runs, now)
        build_s = time.perf_counter() - began
        store = Store(db)
        hour_ago = now - _dt.timedelta(hours=30)
        # Ten characters of an id, as someone pastes the start of one.
        prefix = ids["small_root"][: len("trn-b00000")]
        store_queries: list[tuple[str, Callable[[], Any]]] = [
            ("newest 50 runs", lambda: store.list_runs(limit=51)),
            ("status = failed, 50", lambda: store.list_runs(limit=51, statuses=["failed"])),
            ("task = alpha, 50", lambda: store.list_runs(limit=51, task_ids=["tsk-bench2"])),
            ("id prefix, 50", lambda: store.list_runs(limit=51, id_prefix=prefix)),
            (
                "created in the last 30 h, 50",
                lambda: store.list_runs(limit=51, created_after=hour_ago),
            ),
            (
                "failed + task + time, 50",
                lambda: store.list_runs(
                    limit=51, statuses=["failed"], task_ids=["tsk-bench2"], created_after=hour_ago
                ),
            ),
            (
                "page 20 by cursor, 50",
                lambda: store.list_runs(limit=51, cursor=f"trn-b{args.runs - 1000:07d}"),
            ),
            (f"tree of {BIG_TREE} runs", lambda: store.run_tree(ids["big_root"], 5000)),
            ("tree of a small root", lambda: store.run_tree(ids["small_root"], 5000)),
            (f"descendants of the {BIG_TREE}-run tree", lambda: store.descendants(ids["big_root"])),
            ("runs by status", store.count_by_status),
            ("attempt p50/p95 per task", store.attempt_durations),
        ]
        for name, action in store_queries:
            rows.append(("store", name, median_ms(action, args.reps)))
        store.close()

        # The server in its own process, as a developer runs it: the client's
        # threads share no interpreter lock with it.
        port = free_port()
        server = subprocess.Popen(
            [
                *(sys.executable, "-m", "render_devserver", "--port", str(port), "--db", db),
                *("--workflow-slug", "bench", "--", sys.executable, "workflow.py"),
            ],
            cwd=str(HERE / "programs"),
            env={**os.environ, "PYTHONPATH": str(HERE.parent)},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            http = requests.Session()
            deadline = time.monotonic() + 60
            while True:
                try:
                    http.get(url + "/v1/tasks", timeout=5).raise_for_status()
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.1)

            def get(path: str, **params: Any) -> Callable[[], Any]:
                def action() -> Any:
                    response = http.get(url + path, params=params, timeout=60)
                    response.raise_for_status()
                    return response.content

                return action

            after = hour_ago.isoformat()
            http_queries = [
                ("GET /dev/runs (50)", get("/dev/runs")),
                ("GET /dev/runs?status=failed", get("/dev/runs", status="failed")),
                ("GET /dev/runs?task=bench/alpha", get("/dev/runs", task="bench/alpha")),
                ("GET /dev/runs?q=prefix", get("/dev/runs", q=prefix)),
                ("GET /dev/runs?after=30 h ago", get("/dev/runs", after=after)),
                ("GET /v1/task-runs (100)", get("/v1/task-runs", limit=100)),
                (
                    f"GET /dev/runs/{{id}}/tree ({BIG_TREE} runs)",
                    get(f"/dev/runs/{ids['big_root']}/tree"),
                ),
                ("GET /dev/runs/{id}/tree (small)", get(f"/dev/runs/{ids['small_root']}/tree")),
                (
                    f"GET /dev/runs/{{id}}/trace ({BIG_TREE} runs)",
                    get(f"/dev/runs/{ids['big_root']}/trace"),
                ),
                ("GET /dev/metrics", get("/dev/metrics")),
            ]
            for name, action in http_queries:
                action()  # warm
                rows.append(("http", name, median_ms(action, args.reps)))
            http.close()
        finally:
            server.terminate()
            server.wait(30)

    lines = [
        f"Dashboard queries with {args.runs:,} runs in the database"
        f" (built in {build_s:.1f} s; median of {args.reps}, milliseconds)",
        "",
        "| Where | Query | ms |",
        "|---|---|---:|",
        *(f"| {where} | {name} | {ms:.2f} |" for where, name, ms in rows),
    ]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.output:
        pathlib.Path(args.output).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
