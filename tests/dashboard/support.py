"""What the dashboard's browser tests share: the workflow they run, and small helpers."""

from __future__ import annotations

import os
import pathlib
import shutil
from typing import TYPE_CHECKING, Any

import pytest
import requests

from render_devserver.server import DevServer

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = pathlib.Path(__file__).resolve().parents[2]
ASSETS = ROOT / "render_devserver" / "dashboard"

# Generous bounds against hangs, never assertions about speed.
WAIT_MS = 30_000

WORKFLOW = """
import asyncio, dataclasses, datetime, sys, time
from render_sdk import Retry, Workflows

@dataclasses.dataclass
class Stop:
    city: str
    day: datetime.date

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def square(a: int) -> int:
    print(f"squaring {a}", flush=True)
    print("a note on stderr", file=sys.stderr, flush=True)
    return a * a

@app.task
async def fan_out(n: int) -> list[int]:
    return list(await asyncio.gather(*(square(i) for i in range(n))))

@app.task
def sleeper(seconds: float) -> str:
    print("going to sleep", flush=True)
    time.sleep(seconds)
    return "woke up"

@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def always_fails() -> None:
    raise ValueError("nope, not today")

@app.task
def echo(text: str) -> str:
    print(text, flush=True)
    return text

@app.task
def identity(value):
    return value

@app.task
def plan_trip(stops: list[Stop], budget: int = 100) -> str:
    return ", ".join(f"{stop.city} on {stop.day:%d %b}" for stop in stops) + f" ({budget})"

if __name__ == "__main__":
    app.start()
"""

MARKUP = '<img src="x" id="injected" onerror="window.__injected = 1"><b>bold</b>'


def chromium() -> str | None:
    configured = os.environ.get("RENDER_SDK_CHROMIUM")
    if configured:
        return configured if os.path.exists(configured) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def unavailable(reason: str) -> None:
    if os.environ.get("RENDER_SDK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here, but {reason}")
    pytest.skip(reason)


def start_run(server: DevServer, task: str, input_data: Any) -> str:
    response = requests.post(
        f"{server.url}/v1/task-runs", json={"task": f"wf/{task}", "input": input_data}, timeout=30
    )
    assert response.status_code == 202, response.text
    run_id: str = response.json()["id"]
    return run_id


def run_row(page: Page, run_id: str, status: str | None = None) -> Any:
    selector = f'tr[data-run-id="{run_id}"]'
    if status is not None:
        selector += f'[data-status="{status}"]'
    return page.locator(selector)
