"""Helpers shared by the benchmark scripts (standard library only).

Every scenario script runs under *either* this project's interpreter or the
official SDK's virtual environment, so nothing here may import ``render_sdk``
or any third-party package.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

TOKEN = "rnd_bench_token"
TASK = "bench/square"
# The raw floors send what the SDKs send: a start_task request, by hand.
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Accept": "application/json",
    "Content-Type": "application/json",
    "User-Agent": "bench",
}
BODY = json.dumps({"task": TASK, "input": [3]}).encode()


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB.

    ``VmHWM`` belongs to this program's own address space; ``ru_maxrss`` would
    also count the parent's image copied by ``fork`` before ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def emit(result: dict[str, Any]) -> None:
    """The one line of JSON a scenario prints on stdout for the driver."""
    result.setdefault("peak_rss_kib", peak_rss_kib())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".000000Z"


def run_details(run_id: str, status: str = "completed", value: int = 1) -> dict[str, Any]:
    """A ``TaskRunDetails`` document with every key the official 0.6.1 client requires."""
    now = iso(1_700_000_000.0)
    attempt: dict[str, Any] = {"attempt": 0, "status": status, "startedAt": now}
    document: dict[str, Any] = {
        "id": run_id,
        "taskId": "tsk-d0000000000000000000",
        "status": status,
        "parentTaskRunId": "",
        "rootTaskRunId": run_id,
        "retries": 0,
        "attempts": [attempt],
        "input": [value],
        "results": [],
        "startedAt": now,
    }
    if status == "completed":
        attempt["completedAt"] = now
        attempt["results"] = [value * value]
        document["results"] = [value * value]
        document["completedAt"] = now
    return document


def run_summary(run_id: str, status: str = "pending") -> dict[str, Any]:
    """A ``TaskRun`` document (what ``POST /v1/task-runs`` answers)."""
    document = run_details(run_id, status)
    for key in ("input", "results", "completedAt"):
        document.pop(key, None)
    document["attempts"] = []
    return document


def sse_payload(count: int) -> bytes:
    """``count`` ``task.completed`` events framed like Render's servers frame them."""
    parts = [b"retry: 2000\n\n"]
    for index in range(count):
        run_id = f"trn-{index:020d}"
        data = json.dumps(run_details(run_id, value=index), separators=(",", ":"))
        parts.append(f"id: {index + 1}\nevent: task.completed\ndata: {data}\n\n".encode())
    return b"".join(parts)


def chunks(payload: bytes, size: int) -> list[bytes]:
    if size <= 0:
        return [payload]
    return [payload[i : i + size] for i in range(0, len(payload), size)]


def arg(name: str, default: str | None = None) -> str:
    """``--name value`` from argv (the scripts keep their parsing this small)."""
    flag = "--" + name
    if flag in sys.argv:
        return sys.argv[sys.argv.index(flag) + 1]
    if default is None:
        raise SystemExit(f"missing {flag}")
    return default
