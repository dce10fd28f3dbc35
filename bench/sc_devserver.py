"""Scenario 6: our dev server running a workflow with ``--worker-python`` as its worker.

Runs in this project's environment (the client is ours in every case); only the
worker process differs: this project's ``Workflows`` or the official 0.6.1 one.
Measures a trivial ``run_task`` round trip (p50/p95), runs per second with
``--burst`` runs awaited at once, and a task that fans out ``--fan`` subtasks with
``asyncio.gather``.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time

from _common import TOKEN, arg, emit

HERE = pathlib.Path(__file__).resolve().parent
SLUG = "bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    from render_sdk import Render, RenderAsync

    worker = arg("worker-python")
    rounds = int(arg("rounds", "20"))
    burst = int(arg("burst", "40"))
    fan = int(arg("fan", "100"))
    port = free_port()
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RENDER_")}
    env["RENDER_API_KEY"] = TOKEN
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "render_devserver", "--port", str(port), "--db", ":memory:"),
            *("--workflow-slug", SLUG, "--", worker, str(HERE / "programs" / "workflow.py")),
        ],
        cwd=str(HERE / "programs"),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        render = Render(base_url=url, env={})
        deadline = time.monotonic() + 60
        while True:
            try:
                if len(render.workflows.list_tasks()) >= 2:
                    break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        render.workflows.run_task(f"{SLUG}/noop", [1])  # warm-up
        latencies = []
        for index in range(rounds):
            began = time.perf_counter()
            render.workflows.run_task(f"{SLUG}/noop", [index])
            latencies.append(time.perf_counter() - began)

        async def many() -> float:
            async with RenderAsync(base_url=url, env={}) as client:
                began = time.perf_counter()
                runs = await asyncio.gather(
                    *(client.workflows.start_task(f"{SLUG}/noop", [i]) for i in range(burst))
                )
                await asyncio.gather(*(run.wait(timeout=600) for run in runs))
                return time.perf_counter() - began

        burst_seconds = asyncio.run(many())
        began = time.perf_counter()
        details = render.workflows.run_task(f"{SLUG}/fan", [fan], timeout=600)
        fan_seconds = time.perf_counter() - began
        assert details.results == [sum(range(fan))], details.results
        render.close()
        quantiles = statistics.quantiles(latencies, n=20)
        emit(
            {
                "worker": worker,
                "round_trip_p50_ms": statistics.median(latencies) * 1000,
                "round_trip_p95_ms": quantiles[18] * 1000,
                "runs_per_s": burst / burst_seconds,
                "fan_out_s": fan_seconds,
            }
        )
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


if __name__ == "__main__":
    main()
