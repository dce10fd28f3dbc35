"""A workflow written with OUR SDK (this repository), served by our dev server.

The official clients are pointed at it in ``test_official_clients.py``.
"""

from __future__ import annotations

import asyncio
import os
import time

from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def square(a: int) -> int:
    return a * a


@app.task
def add(a: int, b: int = 2) -> int:
    return a + b


@app.task
def fails(message: str) -> None:
    raise ValueError(message)


@app.task
def echo(value: object) -> object:
    return value


@app.task
def pair() -> list[int]:
    return [1, 2]


@app.task
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


@app.task(retry=Retry(max_retries=2, wait_duration_ms=50, backoff_scaling=2.0))
def flaky(marker: str) -> str:
    count = 0
    if os.path.exists(marker):
        with open(marker) as f:
            count = int(f.read())
    with open(marker, "w") as f:
        f.write(str(count + 1))
    if count < 2:
        raise RuntimeError(f"attempt {count} failed")
    return f"ok after {count} failures"


@app.task
async def fan_out(n: int) -> list[int]:
    return list(await asyncio.gather(*(square(i) for i in range(n))))


if __name__ == "__main__":
    app.start()
