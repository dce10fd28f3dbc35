"""Scenario 6: our dev server running a workflow with ``--worker-python`` as its worker.

Runs in this project's environment (the client is ours in every case); only the
worker process differs: this project's ``Workflows`` or the official 0.6.1 one.
``--no-fork`` starts the dev server with warm templates off (a cold process per
attempt; the official worker gets one anyway). Measures a trivial ``run_task``
round trip (p50/p95), runs per second with ``--burst`` runs queued at once, the dev
server's CPU time per trivial run (over that burst), a task that fans out ``--fan``
subtasks with ``asyncio.gather``, and the median spawn of ``python -c pass`` on this
machine at the same time (the unit the goals are written in).
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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _common import TOKEN, arg, emit

HERE = pathlib.Path(__file__).resolve().parent
SLUG = "bench"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (from /proc), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn_ms(count: int = 10) -> float:
    times = []
    for _ in range(count):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


@contextmanager
def dev_server(
    worker: str, *flags: str, pythonpath: str | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Our dev server running the bench workflow under ``worker`` (an interpreter), with
    ``flags``; ``pythonpath`` (inherited by its worker) picks the packages' source tree.
    Yields the server's process and URL; stops it (by its pid) at the end."""
    port = free_port()
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RENDER_")}
    env["RENDER_API_KEY"] = TOKEN
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "render_devserver", "--port", str(port), "--db", ":memory:"),
            *flags,
            *("--workflow-slug", SLUG, "--", worker, str(HERE / "programs" / "workflow.py")),
        ],
        cwd=str(HERE / "programs"),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_registered(render: Any, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the workflow's two tasks are registered (raises if the server exits first)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if len(render.workflows.list_tasks()) >= 2:
                return
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def main() -> None:
    from render_sdk import Render, RenderAsync

    worker = arg("worker-python")
    no_fork = "--no-fork" in sys.argv
    rounds = int(arg("rounds", "20"))
    burst = int(arg("burst", "40"))
    fan = int(arg("fan", "100"))
    with dev_server(worker, *(["--no-fork"] if no_fork else [])) as (server, url):
        render = Render(base_url=url, env={})
        wait_registered(render, server)
        from render_transports.keepalive_transport import KeepAliveTransport

        keepalive = Render(base_url=url, env={}, transport=KeepAliveTransport())
        for warm_up in range(5):  # the template's first forks, both faces' connections
            render.workflows.run_task(f"{SLUG}/noop", [warm_up])
            keepalive.workflows.run_task(f"{SLUG}/noop", [warm_up])
        latencies: list[float] = []
        keepalive_latencies: list[float] = []
        for index in range(rounds):  # the two faces in turn
            for client, times in ((render, latencies), (keepalive, keepalive_latencies)):
                began = time.perf_counter()
                client.workflows.run_task(f"{SLUG}/noop", [index])
                times.append(time.perf_counter() - began)
        keepalive.close()

        async def many() -> float:
            async with RenderAsync(base_url=url, env={}) as client:
                began = time.perf_counter()
                runs = await asyncio.gather(
                    *(client.workflows.start_task(f"{SLUG}/noop", [i]) for i in range(burst))
                )
                await asyncio.gather(*(run.wait(timeout=600) for run in runs))
                return time.perf_counter() - began

        cpu_before = server_cpu_seconds(server.pid)
        burst_seconds = asyncio.run(many())
        cpu_per_run_ms = (server_cpu_seconds(server.pid) - cpu_before) * 1000 / burst
        spawn = spawn_ms()
        began = time.perf_counter()
        details = render.workflows.run_task(f"{SLUG}/fan", [fan], timeout=600)
        fan_seconds = time.perf_counter() - began
        assert details.results == [sum(range(fan))], details.results
        render.close()
        quantiles = statistics.quantiles(latencies, n=20)
        keepalive_quantiles = statistics.quantiles(keepalive_latencies, n=20)
        emit(
            {
                "worker": worker,
                "round_trip_p50_ms": statistics.median(latencies) * 1000,
                "round_trip_p95_ms": quantiles[18] * 1000,
                "keepalive_round_trip_p50_ms": statistics.median(keepalive_latencies) * 1000,
                "keepalive_round_trip_p95_ms": keepalive_quantiles[18] * 1000,
                "runs_per_s": burst / burst_seconds,
                "server_cpu_ms_per_run": cpu_per_run_ms,
                "fan_out_s": fan_seconds,
                "spawn_ms": spawn,
                "forked": not no_fork,
            }
        )


if __name__ == "__main__":
    main()
