"""Benchmark driver: this SDK vs the official ``render_sdk==0.6.1`` vs a raw floor.

Usage (``nox -s bench`` runs the first form)::

    python bench/run.py                       # every scenario, writes bench/RESULTS.md
    python bench/run.py --quick               # fewer repetitions
    python bench/run.py --scenario sse --scenario sync
    python bench/run.py --smoke --no-official --output /tmp/r.md   # seconds; for the tests

The official SDK has our import name, so it lives in its own virtual environment
(``bench/.venvs/official-0.6.1``, created on first use with pip) and every
measurement is a subprocess: each scenario script runs once per side per
repetition, sides interleaved (the order rotates every repetition), and the table
shows medians. All traffic stays on 127.0.0.1: a stub of the REST API
(``stub.py``) or our dev server.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
VENV = HERE / ".venvs" / "official-0.6.1"
OFFICIAL_REQUIREMENT = "render_sdk==0.6.1"
ROOT = HERE.parent
OUR_PACKAGES = ("render_core", "render_transports", "render_sdk", "render_devserver")
SCENARIOS = ("import", "sync", "async", "sse", "wait", "devserver", "memory", "typed")
SCRIPT_TIMEOUT = 900.0


@dataclass(frozen=True)
class Profile:
    """Sizes and repetitions for one kind of run."""

    reps: int
    import_runs: int
    sync_n: int
    async_n: int
    async_inflight: int
    sse_small: int
    sse_large: int
    sse_official_large_reps: int
    wait_sizes: tuple[int, ...]
    wait_official_large_reps: int
    run_seconds: float
    dev_rounds: int
    """Round trips per face and repetition: cold processes and the official worker."""
    dev_burst: int
    dev_fan: int
    dev_reps: int
    memory_n: int
    typed_n: int = 20000
    dev_rounds_forked: int = 0
    """The same for forked attempts (0: ``dev_rounds``): at about 1% of a cold round trip
    each, enough of them for the p95 to be a 95th percentile, not the slowest of a few."""


FULL = Profile(
    5,
    20,
    2000,
    1000,
    100,
    1000,
    20000,
    3,
    (200, 1000),
    1,
    1.0,
    30,
    200,
    100,
    3,
    10000,
    dev_rounds_forked=200,
)
QUICK = Profile(
    3,
    8,
    1000,
    1000,
    100,
    1000,
    20000,
    1,
    (200, 1000),
    1,
    1.0,
    15,
    200,
    100,
    1,
    10000,
    dev_rounds_forked=100,
)
SMOKE = Profile(1, 2, 30, 100, 10, 100, 2000, 1, (20,), 1, 0.2, 2, 2, 3, 1, 300, 50)


@dataclass
class Row:
    scenario: str
    unit: str
    ours: float | None
    official: float | None = None
    floor: float | None = None
    floor_label: str = ""
    goal: str = ""
    met: bool | None = None
    ratio: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and self.ours is not None and self.official:
            self.ratio = self.ours / self.official


@dataclass
class Context:
    profile: Profile
    official: str | None
    workdir: str
    log: Callable[[str], None]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)
    steal_at_start: tuple[int, int] | None = None


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, all) CPU ticks since boot, from /proc/stat (Linux; None elsewhere).

    On a virtual machine, *stolen* is time the host ran something else while this
    machine's CPUs had work: a share of a few percent or more makes every timing here
    slower, and the latency rows noisier, than on an idle host.
    """
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_share(before: tuple[int, int] | None) -> str:
    """The share of CPU time stolen by the host since ``before``, as text."""
    after = cpu_ticks()
    if before is None or after is None or after[1] <= before[1]:
        return "unknown"
    busy_and_idle = after[1] - before[1]
    return f"{(after[0] - before[0]) / busy_and_idle:.1%}"


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews every number)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


# --------------------------------------------------------------------------- running


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """No PYTHONPATH (it would put one SDK ahead of the other), no RENDER_* settings."""
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("RENDER_", "COV_CORE_", "PYTEST_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def ensure_official(log: Callable[[str], None]) -> str:
    """The official SDK's interpreter, creating its virtual environment if needed."""
    python = VENV / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('render_sdk'))"],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=tempfile.gettempdir(),
            check=False,
        )
        if probe.stdout.strip() == OFFICIAL_REQUIREMENT.split("==")[1]:
            return str(python)
        shutil.rmtree(VENV)
    log(f"installing {OFFICIAL_REQUIREMENT} into its own virtual environment ...")
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            OFFICIAL_REQUIREMENT,
        ],
        check=True,
        env=clean_env(),
    )
    return str(python)


def run_script(ctx: Context, python: str, script: str, *args: object) -> dict[str, Any]:
    """Run ``bench/<script>`` with ``python``; its last stdout line is the JSON result."""
    command = [python, str(HERE / script), *map(str, args)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        env=clean_env(),
        cwd=ctx.workdir,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def interleaved(sides: Sequence[str], reps: int) -> Iterator[tuple[int, str]]:
    """Every side once per repetition; the order rotates so no side always goes first."""
    for rep in range(reps):
        shift = rep % len(sides)
        for side in [*sides[shift:], *sides[:shift]]:
            yield rep, side


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


@contextmanager
def stub(run_seconds: float) -> Iterator[str]:
    """The REST stub in its own process; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "stub.py"), "--port", "0", "--run-seconds", str(run_seconds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the stub did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ------------------------------------------------------------------------- scenarios

IMPORT_CODE = "import render_sdk"
WORKER_CODE = (
    "from render_sdk import Workflows\n"
    "app = Workflows()\n"
    "@app.task\n"
    "def square(x: int) -> int:\n"
    "    return x * x\n"
)
# The same program, started in run mode: one sync attempt over the task socket.
ATTEMPT_CODE = WORKER_CODE + "app.start()\n"


# Appended to every measured program (the floor too): its own peak RSS, from the
# kernel's per-address-space high-water mark (ru_maxrss would include the image
# of the parent copied by fork before exec).
_REPORT_RSS = "\nprint([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"


def _spawn(
    python: str, code: str, workdir: str, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of ``python -c code``."""
    began = time.perf_counter()
    done = subprocess.run(
        [python, "-c", code + _REPORT_RSS],
        cwd=workdir,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{python} -c {code!r} exited with {done.returncode}: {done.stderr}")
    return elapsed, int(done.stdout.split("VmHWM:")[1].split()[0])


def scenario_import(ctx: Context) -> None:
    sides = {"ours": sys.executable, "floor": sys.executable}
    if ctx.official:
        sides["official"] = ctx.official
    import_times: dict[str, list[float]] = {}
    for label, code in (("import render_sdk", IMPORT_CODE), ("worker path", WORKER_CODE)):
        for python in set(sides.values()):  # bytecode caches written, files in page cache
            _spawn(python, code, ctx.workdir)
        times: dict[str, list[float]] = {side: [] for side in sides}
        rss: dict[str, list[float]] = {side: [] for side in sides}
        for _, side in interleaved(list(sides), ctx.profile.import_runs):
            elapsed, peak = _spawn(sides[side], "pass" if side == "floor" else code, ctx.workdir)
            times[side].append(elapsed * 1000)
            rss[side].append(peak / 1024)
        what = (
            "`python -c 'import render_sdk'`"
            if code == IMPORT_CODE
            else ("worker path: import `Workflows`, decorate one task")
        )
        if code == WORKER_CODE:
            import_times = times
        ours, official = median(times["ours"]), median(times.get("official", []))
        ratio = ours / official if ours and official else None
        ctx.rows.append(
            Row(
                f"1. {what}",
                "ms",
                ours,
                official,
                median(times["floor"]),
                "`python -c pass`",
                "<= 0.2",
                None if ratio is None else ratio <= 0.2,
            )
        )
        ctx.rows.append(
            Row(
                f"1. peak RSS, {label}",
                "MiB",
                median(rss["ours"]),
                median(rss.get("official", [])),
                median(rss["floor"]),
                "`python -c pass`",
            )
        )
    _cold_attempt(ctx, sides, import_times)


def _cold_attempt(
    ctx: Context, sides: dict[str, str], import_times: dict[str, list[float]]
) -> None:
    """The worker's whole cold path: import, define a task, run one sync attempt."""
    from task_socket_stub import TaskSocketStub

    path = os.path.join(ctx.workdir, "task.sock")
    run_env = {"RENDER_SDK_MODE": "run", "RENDER_SDK_SOCKET_PATH": path}
    times: dict[str, list[float]] = {side: [] for side in sides}
    with TaskSocketStub(path):
        for python in set(sides.values()):
            _spawn(python, ATTEMPT_CODE, ctx.workdir, run_env)
        for _, side in interleaved(list(sides), ctx.profile.import_runs):
            code = "pass" if side == "floor" else ATTEMPT_CODE
            elapsed, _ = _spawn(sides[side], code, ctx.workdir, run_env)
            times[side].append(elapsed * 1000)
    ours, official = median(times["ours"]), median(times.get("official", []))
    official_import = median(import_times.get("official", []))
    # The goal is against the official SDK's *import* of the same program, the
    # stricter of the two readings (its own attempt costs more still).
    vs_import = ours / official_import if ours and official_import else None
    ctx.rows.append(
        Row(
            "1. worker cold path: import `Workflows`, define a task, run one sync attempt",
            "ms",
            ours,
            official,
            median(times["floor"]),
            "`python -c pass`",
            "<= 0.1 of official's import",
            None if vs_import is None else vs_import <= 0.1,
            extra={"vs_official_import": vs_import},
        )
    )


def scenario_sync(ctx: Context) -> None:
    p = ctx.profile
    pythons = {
        "ours-requests": sys.executable,
        "ours-h11": sys.executable,
        "ours-keepalive": sys.executable,
        "raw-requests": sys.executable,
        "raw-http.client": sys.executable,
    }
    if ctx.official:
        pythons["official"] = ctx.official
        pythons["raw-httpx"] = ctx.official  # httpx comes with the official SDK
    results: dict[str, list[float]] = {side: [] for side in pythons}
    with stub(0.0) as url:
        for _, side in interleaved(list(pythons), p.reps):
            result = run_script(
                ctx, pythons[side], "sc_sync.py", "--side", side, "--url", url, "--n", p.sync_n
            )
            results[side].append(result["calls_per_s"])
    m = {side: median(values) for side, values in results.items()}
    requests_face, raw_requests = m["ours-requests"], m["raw-requests"]
    assert requests_face
    assert raw_requests
    within = raw_requests / requests_face
    ctx.rows.append(
        Row(
            f"2. sync `start_task`+`get_task_run`, {2 * p.sync_n} calls: `Render()` (requests)",
            "calls/s",
            requests_face,
            m.get("official"),
            raw_requests,
            "raw `requests.Session`",
            "<= 1.15x the time of raw requests",
            within <= 1.15,
            extra={"vs_floor": within},
        )
    )
    official = m.get("official")
    ctx.rows.append(
        Row(
            "2. same, `Render(transport=TCPTransport(...))` (h11, a connection per call)",
            "calls/s",
            m["ours-h11"],
            official,
            m["raw-http.client"],
            "raw `http.client`",
        )
    )
    keepalive = m["ours-keepalive"]
    ctx.rows.append(
        Row(
            "2. same, keep-alive sync face: `Render(transport=KeepAliveTransport())`",
            "calls/s",
            keepalive,
            official,
            m["raw-http.client"],
            "raw `http.client`",
            ">= 2x official",
            None if not official or not keepalive else keepalive / official >= 2,
        )
    )
    if "raw-httpx" in m:
        ctx.rows.append(
            Row(
                "2. floor of the official's library",
                "calls/s",
                None,
                None,
                m["raw-httpx"],
                "raw `httpx.Client`",
            )
        )


def scenario_async(ctx: Context) -> None:
    p = ctx.profile
    pythons = {"ours": sys.executable, "raw-aiohttp": sys.executable}
    if ctx.official:
        pythons["official"] = ctx.official
    results: dict[str, list[float]] = {side: [] for side in pythons}
    with stub(0.0) as url:
        for _, side in interleaved(list(pythons), p.reps):
            result = run_script(
                ctx,
                pythons[side],
                "sc_async.py",
                "--side",
                side,
                "--url",
                url,
                "--n",
                p.async_n,
                "--inflight",
                p.async_inflight,
            )
            results[side].append(result["calls_per_s"])
    m = {side: median(values) for side, values in results.items()}
    ours, raw, official = m["ours"], m["raw-aiohttp"], m.get("official")
    assert ours
    assert raw
    met = ours * 1.5 >= raw and (official is None or ours >= 5 * official)
    ctx.rows.append(
        Row(
            f"3. async `start_task`, {p.async_n} calls, {p.async_inflight} in flight",
            "calls/s",
            ours,
            official,
            raw,
            "raw `aiohttp`",
            ">= 5x official; >= 1/1.5 of raw aiohttp",
            met,
            extra={"vs_floor": raw / ours},
        )
    )


def scenario_sse(ctx: Context) -> None:
    p = ctx.profile
    pythons = {"ours": sys.executable, "floor": sys.executable}
    if ctx.official:
        pythons["official"] = ctx.official
    cases = [(p.sse_small, 0), (p.sse_large, 0), (p.sse_small, 64), (p.sse_large, 64)]
    cases += [(p.sse_small, 16384), (p.sse_large, 16384)]
    seconds: dict[tuple[int, int], dict[str, float | None]] = {}
    for events, chunk in cases:
        results: dict[str, list[float]] = {side: [] for side in pythons}
        for rep, side in interleaved(list(pythons), p.reps):
            slow = side == "official" and events == p.sse_large and chunk == 0
            if slow and rep >= p.sse_official_large_reps:
                continue  # quadratic: tens of seconds a run, a few runs are enough
            result = run_script(
                ctx,
                pythons[side],
                "sc_sse.py",
                "--side",
                side,
                "--events",
                events,
                "--chunk",
                chunk,
            )
            results[side].append(result["seconds"])
        seconds[(events, chunk)] = {side: median(values) for side, values in results.items()}
        rate = {
            side: events / value if value else None
            for side, value in seconds[(events, chunk)].items()
        }
        how = (
            "one chunk"
            if chunk == 0
            else f"{chunk} B chunks"
            if chunk < 1024
            else f"{chunk // 1024} KiB chunks"
        )
        goal, met = "", None
        ours, official = rate["ours"], rate.get("official")
        if chunk == 0 and events == p.sse_large:
            goal = ">= 10x official"
            met = None if not official or not ours else ours >= 10 * official
        elif chunk:
            goal = ">= 1.5x official"
            met = None if not official or not ours else ours >= 1.5 * official
        ctx.rows.append(
            Row(
                f"4. SSE -> run objects, {events} events, {how}",
                "events/s",
                ours,
                official,
                rate["floor"],
                "split + `json.loads`",
                goal,
                met,
            )
        )
    small, large = seconds[(p.sse_small, 0)], seconds[(p.sse_large, 0)]
    factor = p.sse_large / p.sse_small

    def scaling(side: str) -> float | None:
        a, b = small.get(side), large.get(side)
        return b / (factor * a) if a and b else None

    ours_scaling = scaling("ours")
    ctx.rows.append(
        Row(
            f"4. scaling: time({p.sse_large}) / ({factor:g} x time({p.sse_small})), one chunk",
            "x",
            ours_scaling,
            scaling("official"),
            scaling("floor"),
            "split + `json.loads`",
            "<= 1.3",
            None if ours_scaling is None else ours_scaling <= 1.3,
            ratio=float("nan"),
        )
    )


def scenario_wait(ctx: Context) -> None:
    p = ctx.profile
    pythons = {"ours": sys.executable, "raw-aiohttp": sys.executable}
    if ctx.official:
        pythons["official"] = ctx.official
    with stub(p.run_seconds) as url:
        for runs in p.wait_sizes:
            results: dict[str, list[dict[str, Any]]] = {side: [] for side in pythons}
            for rep, side in interleaved(list(pythons), p.reps):
                if side == "official" and runs > 200 and rep >= p.wait_official_large_reps:
                    continue  # one connection (and TLS context) per run: minutes a run
                results[side].append(
                    run_script(
                        ctx, pythons[side], "sc_wait.py", "--side", side, "--url", url, "--n", runs
                    )
                )

            def stat(
                side: str, key: str, results: dict[str, list[dict[str, Any]]] = results
            ) -> float | None:
                return median([r[key] for r in results.get(side, [])])

            streams = stat("ours", "streams")
            limit = max(1, -(-runs // 100))
            ctx.rows.append(
                Row(
                    f"5. await {runs} runs ({p.run_seconds:g} s each): event-stream connections",
                    "conns",
                    streams,
                    stat("official", "streams"),
                    stat("raw-aiohttp", "streams"),
                    "raw `aiohttp`, one stream per 100 runs",
                    f"<= {limit}",
                    None if streams is None else streams <= limit,
                )
            )
            after, official_after = (
                stat("ours", "after_last_finish_s"),
                stat("official", "after_last_finish_s"),
            )
            ctx.rows.append(
                Row(
                    f"5. await {runs} runs: wall time after the last run finished",
                    "s",
                    after,
                    official_after,
                    stat("raw-aiohttp", "after_last_finish_s"),
                    "raw `aiohttp`, one stream per 100 runs",
                    "<= 0.25",
                    None if not after or not official_after else after / official_after <= 0.25,
                    extra={"total_s": {side: stat(side, "total_s") for side in pythons}},
                )
            )


def scenario_devserver(ctx: Context) -> None:
    """Our dev server: our worker forked from a warm template, our worker with cold
    processes (``--no-fork``), and the official worker (always cold), in one run."""
    p = ctx.profile
    workers: dict[str, tuple[str, list[str]]] = {
        "forked": (sys.executable, []),
        "cold": (sys.executable, ["--no-fork"]),
    }
    if ctx.official:
        workers["official"] = (ctx.official, [])
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in workers}
    for _, side in interleaved(list(workers), p.dev_reps):
        python, flags = workers[side]
        results[side].append(
            run_script(
                ctx,
                sys.executable,
                "sc_devserver.py",
                "--worker-python",
                python,
                "--rounds",
                (p.dev_rounds_forked or p.dev_rounds) if side == "forked" else p.dev_rounds,
                "--burst",
                p.dev_burst,
                "--fan",
                p.dev_fan,
                *flags,
            )
        )

    def stat(side: str, key: str) -> float | None:
        return median([r[key] for r in results.get(side, [])])

    # The unit of the goals: spawning `python -c pass`, measured beside each run.
    spawn = median([r["spawn_ms"] for side in results for r in results[side]])
    assert spawn
    for key, label in (
        ("round_trip_p50_ms", "p50"),
        ("round_trip_p95_ms", "p95"),
        ("keepalive_round_trip_p50_ms", "p50, keep-alive face"),
        ("keepalive_round_trip_p95_ms", "p95, keep-alive face"),
    ):
        for side, how in (("forked", "forked attempts"), ("cold", "cold processes")):
            value = stat(side, key)
            goal, met = "", None
            if side == "forked":
                goal = "<= 0.5 x spawn"
                met = None if value is None else value <= 0.5 * spawn
            ctx.rows.append(
                Row(
                    f"6. dev server: trivial `run_task` round trip, {label}, {how}",
                    "ms",
                    value,
                    stat("official", key),
                    spawn,
                    "spawn of `python -c pass`",
                    goal,
                    met,
                    extra={"vs_spawn": None if value is None else value / spawn},
                )
            )
    for side, how in (("forked", "forked attempts"), ("cold", "cold processes")):
        value = stat(side, "fan_out_s")
        floor = p.dev_fan * spawn / 1000
        ctx.rows.append(
            Row(
                f"6. dev server: {p.dev_fan}-way `asyncio.gather` subtask fan-out, {how}",
                "s",
                value,
                stat("official", "fan_out_s"),
                floor,
                f"{p.dev_fan} x spawn",
                "<= 0.3 x floor" if side == "forked" else "",
                None if side != "forked" or value is None else value <= 0.3 * floor,
                extra={"vs_spawn": None if value is None else value / floor},
            )
        )
    for key, label, unit in (
        ("runs_per_s", f"{p.dev_burst} trivial runs queued at once", "runs/s"),
        ("server_cpu_ms_per_run", "dev server CPU per trivial run", "ms"),
    ):
        for side, how in (("forked", "forked attempts"), ("cold", "cold processes")):
            ctx.rows.append(
                Row(
                    f"6. dev server: {label}, {how}",
                    unit,
                    stat(side, key),
                    stat("official", key),
                )
            )


def scenario_memory(ctx: Context) -> None:
    p = ctx.profile
    pythons = {"ours": sys.executable, "floor": sys.executable}
    if ctx.official:
        pythons["official"] = ctx.official
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in pythons}
    for _, side in interleaved(list(pythons), min(p.reps, 3)):
        results[side].append(
            run_script(ctx, pythons[side], "sc_memory.py", "--side", side, "--n", p.memory_n)
        )

    def stat(side: str, key: str, scale: float) -> float | None:
        value = median([r[key] for r in results.get(side, [])])
        return None if value is None else value / scale

    ctx.rows.append(
        Row(
            f"7. memory held by {p.memory_n} task-run objects",
            "MiB",
            stat("ours", "retained_bytes", 2**20),
            stat("official", "retained_bytes", 2**20),
            stat("floor", "retained_bytes", 2**20),
            "plain `dict`s from `json.loads`",
        )
    )
    ctx.rows.append(
        Row(
            "7. peak RSS of that process",
            "MiB",
            stat("ours", "peak_rss_kib", 1024),
            stat("official", "peak_rss_kib", 1024),
            stat("floor", "peak_rss_kib", 1024),
            "plain `dict`s from `json.loads`",
        )
    )


def scenario_typed(ctx: Context) -> None:
    p = ctx.profile
    results: dict[tuple[str, str], list[float]] = {}
    for kind in ("plain", "nested"):
        for _, side in interleaved(["ours", "floor"], p.reps):
            record = run_script(
                ctx, sys.executable, "sc_typed.py", "--side", side, "--kind", kind,
                "--n", p.typed_n,
            )  # fmt: skip
            results.setdefault((kind, side), []).append(record["us_per_call"])
    labels = {
        "plain": "8. typed tasks: bind input + encode result, plain `add(a: int, b: int)`",
        "nested": "8. typed tasks: the same, an `Order` dataclass with 10 nested items in",
    }
    for kind, label in labels.items():
        ctx.rows.append(
            Row(
                label,
                "µs/call",
                median(results[(kind, "ours")]),
                None,
                median(results[(kind, "floor")]),
                "`json.loads` + `json.dumps` only",
            )
        )


RUNNERS: dict[str, Callable[[Context], None]] = {
    "import": scenario_import,
    "sync": scenario_sync,
    "async": scenario_async,
    "sse": scenario_sse,
    "wait": scenario_wait,
    "devserver": scenario_devserver,
    "memory": scenario_memory,
    "typed": scenario_typed,
}


# --------------------------------------------------------------------------- report


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "—"
    if unit in ("calls/s", "events/s", "runs/s") and value >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if unit == "s" and value < 0.1 else f"{value:.2f}"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _official_versions(python: str | None) -> str:
    if python is None:
        return "not measured (--no-official)"
    code = (
        "import importlib.metadata as m, platform; "
        "names = ('render_sdk', 'httpx', 'pydantic', 'attrs'); "
        "print(', '.join(f'{n} {m.version(n)}' for n in names)"
        " + ', Python ' + platform.python_version())"
    )
    done = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tempfile.gettempdir(),
        check=False,
    )
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def render_report(ctx: Context, argv: Sequence[str], elapsed: float) -> str:
    ours_versions = ", ".join(
        f"{name} {_version(name)}"
        for name in ("render_sdk", "requests", "aiohttp", "h11", "attrs", "cattrs")
    )
    lines = [
        "# Benchmarks: this SDK vs the official `render_sdk` 0.6.1",
        "",
        "Generated by `nox -s bench` (`python bench/run.py"
        + ("" if not argv else " " + " ".join(argv))
        + "`); do not edit by hand.",
        "Every number is the median of interleaved runs on the same machine in the same run;",
        "all traffic is on 127.0.0.1 (a raw-asyncio stub of the REST API in its own process,",
        "or our dev server). Higher is better for rates, lower for times and sizes.",
        "",
        f"- Machine: {os.cpu_count()} CPUs ({_cpu_model()}), "
        f"{platform.system()} {platform.release()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Ours: {ours_versions}",
        f"- Official: {_official_versions(ctx.official)}",
        f"- Date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"repetitions: {ctx.profile.reps}; whole run: {elapsed / 60:.1f} min",
        "- Load average (1 min) before each scenario and at the end: "
        + (", ".join(f"{load:.2f}" for load in ctx.loads) or "unknown")
        + f" (on {os.cpu_count()} CPUs; above about 1 the machine was busy with other work)",
        f"- CPU time stolen by the host during the run: {steal_share(ctx.steal_at_start)}"
        " (of all CPU time, idle included; above a few percent, timings are slower and noisier)",
        "",
        "| Scenario | Unit | Ours | Official 0.6.1 | Floor | Ours / official | Goal | Met |",
        "|---|---|---:|---:|---:|---:|---|:-:|",
    ]
    for row in ctx.rows:
        floor = _fmt(row.floor, row.unit) + (
            f" ({row.floor_label})" if row.floor is not None and row.floor_label else ""
        )
        ratio = "—" if row.ratio is None or row.ratio != row.ratio else f"{row.ratio:.2f}"
        met = "—" if row.met is None else ("yes" if row.met else "**no**")
        goal = row.goal or "—"
        if "vs_floor" in row.extra:
            goal += f" (measured: {row.extra['vs_floor']:.2f}x)"
        if row.extra.get("vs_spawn") is not None and row.goal:
            goal += f" (measured: {row.extra['vs_spawn']:.2f})"
        if row.extra.get("vs_official_import") is not None:
            goal += f" (measured: {row.extra['vs_official_import']:.3f})"
        lines.append(
            f"| {row.scenario} | {row.unit} | {_fmt(row.ours, row.unit)} "
            f"| {_fmt(row.official, row.unit)} | {floor} | {ratio} | {goal} | {met} |"
        )
    totals = [row for row in ctx.rows if "total_s" in row.extra]
    if totals:
        lines += ["", "Total wall time of the wait scenario (start every run, await them all):", ""]
        for row in totals:
            shown = ", ".join(
                f"{side} {value:.2f} s"
                for side, value in row.extra["total_s"].items()
                if value is not None
            )
            lines.append(f"- {row.scenario.split(':')[0][3:]}: {shown}")
    lines += ["", "## Notes", ""]
    lines += GENERAL_NOTES
    missed = [row for row in ctx.rows if row.met is False]
    if missed:
        lines += ["", "### Goals missed in this run", ""]
    explained: set[str] = set()
    for row in missed:
        lines.append(f"- **{row.scenario}**: goal {row.goal}; {_shortfall(row)}.")
        for key, text in MISS_NOTES.items():
            if key in row.scenario:
                # One explanation per kind of miss: the rows after the first refer to it.
                lines.append("  (See the note above.)" if key in explained else f"  {text}")
                explained.add(key)
    return "\n".join(lines) + "\n"


def _shortfall(row: Row) -> str:
    if row.extra.get("vs_spawn") is not None:
        return f"measured {row.extra['vs_spawn']:.2f} of the floor"
    if row.extra.get("vs_official_import") is not None:
        return f"measured {row.extra['vs_official_import']:.3f} of the official import"
    if "vs_floor" in row.extra:
        return f"measured {row.extra['vs_floor']:.2f}x the floor's time"
    if row.ratio is not None and row.ratio == row.ratio and row.goal.startswith(">="):
        wanted = float(row.goal.split()[1].rstrip("x"))
        return f"measured {row.ratio:.2f}x official, {row.ratio / wanted:.0%} of the goal"
    if row.ratio is not None and row.ratio == row.ratio and row.goal.startswith("<="):
        wanted = float(row.goal.split()[1])
        return f"measured {row.ratio:.2f} of official, {row.ratio / wanted:.2f}x the allowed ratio"
    return f"measured {_fmt(row.ours, row.unit)} {row.unit}"


GENERAL_NOTES = [
    "- Sides: *ours* is this repository's SDK; *official* is `render_sdk==0.6.1` from PyPI in its",
    "  own virtual environment; *floor* is the same work done by hand with the raw library (or",
    "  `python -c pass`), the cost no SDK on that library can go below.",
    "- Rates are per API call (scenario 2 counts `start_task` and `get_task_run` as one call",
    "  each). The ratio column is ours / official for every row (above 1 is better for rates,",
    "  below 1 for times); goals against a floor show the measured factor in the goal column.",
    "- The official 0.6.1 client awaits each run on its own event stream, opened by a new",
    "  `httpx.AsyncClient` (a new TLS context, even for `http://`); ours shares one stream per",
    "  100 runs. Its SSE parser re-splits its whole buffer for every line, hence the quadratic",
    "  cost on one large chunk; runs of that case and of awaiting 1,000 runs are repeated fewer",
    "  times (each takes minutes).",
    "- The worker scenario runs the same program (`bench/programs/workflow.py`) under each",
    "  SDK, started by our dev server; our client drives all. *Forked* attempts come from",
    "  a warm template of our worker; *cold* is our worker with `--no-fork`; the official",
    "  worker always gets a cold process. Goals are in units of spawning `python -c pass`",
    "  on the same machine during the same runs (the floor column). In a full run, forked",
    "  round trips are timed 200 times per face and repetition (so that p95 is a 95th",
    "  percentile, not the slowest of a few), cold and official ones 30 times (each costs",
    "  about 100 times as much).",
]

MISS_NOTES = {
    "worker path": (
        "The sync attempt path imports no asyncio, attrs, cattrs, h11, inspect or dataclasses "
        "(a test checks it); what is left is the interpreter's own start, `typing`, and our "
        "modules' byte code. `python -X importtime` on the same machine shows which."
    ),
    "round trip, p": (
        "CPU time per round trip, split by process (keep-alive face, a phase where a spawn "
        "took about 15 ms): dev server 4.2 ms, the attempt's child 5.2 ms, the template 1.7 "
        "ms, the client 1.6 ms, so 12.7 ms of CPU for an 8.3 ms round trip keeps both CPUs "
        "busy most of it. The child's share is the price of a fork in CPython 3.11: about 240 "
        "copy-on-write page faults (0.9 ms) before its first line of Python runs, about 450 "
        "more for the attempt, then the teardown of its address space; a round trip costs "
        "about 900 page faults system-wide. An attempt that finds a spare waiting is about 2 "
        "ms faster than one forked on the spot, but forking spares sooner only moves that "
        "work onto the same two CPUs (measured: no gain). Both faces keep one connection "
        "across calls (the dev server ends an event stream with the last event it waits for). "
        "The host's phase moves the spawn floor between 11 and 26 ms across runs of the same "
        "code, and a round trip made of wake-ups and page faults does not move with it."
    ),
    "subtask fan-out": (
        "CPU time per fan-out of 100 subtasks, split by process (a phase where a spawn took "
        "12 ms, 350-400 ms a fan-out): the children (the parent and its 100 subtasks) 3.6-4.2 "
        "ms a subtask, the dev server 1.8-2.0 ms, the template 0.9 ms (its fork on the spot), "
        "6.3-7.1 ms in all, and the fan-out keeps both CPUs busy. Most of the children's "
        "share is the kernel's copy-on-write and exit work that one fresh process per "
        "attempt implies; 0.3 of the floor is at the edge of that on this machine."
    ),
    "keep-alive sync face": (
        "Per call the face adds the core's ~30 us (request building, JSON, structuring into "
        "models) and the transport's idle-connection check to raw `http.client`'s cost."
    ),
    "`Render()` (requests)": (
        "Profile: the core's own work is about 30 us a call (building the request, JSON, "
        "structuring into models); the rest of the gap is the transport reading every answer "
        "as a stream (`stream=True` + bounded `iter_content`, so an oversized body is refused "
        "instead of buffered) where the raw floor lets `requests` buffer it. In one process, "
        "interleaved, the two differ by less than the run-to-run noise of this machine; "
        "a bounded read that avoids the generator per answer would narrow it."
    ),
    "async `start_task`": (
        "Per call we add the core's ~30 us (request building, cattrs structuring) and the "
        "flow driver's generator hops to aiohttp's own cost."
    ),
    "SSE -> run objects": (
        "Per event the time is the JSON decode (~7 us, also in the floor) and structuring "
        "into attrs models with validation (~13 us); the official client builds its models "
        "with less checking but parses timestamps with `dateutil`."
    ),
    "scaling": (
        "Not algorithmic: decoding is one pass over the text. In one process, best of five, "
        "20,000 events cost ~29 us each against ~22 us for 1,000; with the garbage collector "
        "off, ~25 against ~19. The rest is memory traffic (11 MB of text, 20,000 live models "
        "held by the caller); the floor's own ratio swings from 0.8 to 2.2 between runs on "
        "this machine."
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the scripts run")
    parser.add_argument("--scenario", action="append", choices=SCENARIOS, help="run only these")
    parser.add_argument("--no-official", action="store_true", help="skip the official SDK")
    parser.add_argument("--official-python", help="an interpreter that has render_sdk==0.6.1")
    parser.add_argument("--reps", type=int, help="repetitions (overrides the profile)")
    parser.add_argument(
        "--output", default=str(HERE / "RESULTS.md"), help="where to write the table"
    )
    args = parser.parse_args(argv)
    profile = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.reps:
        profile = Profile(**{**vars(profile), "reps": args.reps})

    def log(message: str) -> None:
        sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
        sys.stderr.flush()

    # Compare like with like: the official SDK was installed by pip, which compiles its
    # bytecode; compile ours too, so that no side pays for compiling on import (which
    # happens on every start when PYTHONDONTWRITEBYTECODE is set).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *OUR_PACKAGES],
        cwd=ROOT,
        check=True,
    )
    official = None
    if not args.no_official:
        official = args.official_python or ensure_official(log)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="render-bench-") as workdir:
        ctx = Context(profile, official, workdir, log, steal_at_start=cpu_ticks())
        for name in args.scenario or SCENARIOS:
            load = load_average()
            if load is not None:
                ctx.loads.append(load)
            log(f"scenario {name} ...")
            started = time.monotonic()
            RUNNERS[name](ctx)
            log(f"scenario {name} done in {time.monotonic() - started:.0f} s")
        load = load_average()
        if load is not None:
            ctx.loads.append(load)
    shown = [
        a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("--output")
    ]
    report = render_report(ctx, [a for a in shown if a != args.output], time.monotonic() - began)
    pathlib.Path(args.output).write_text(report, encoding="utf-8")
    log(f"wrote {args.output}")
    sys.stdout.write(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
