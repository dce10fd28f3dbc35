"""A workflow written for the OFFICIAL render_sdk 0.6.1, run by OUR dev server.

Run with the python of a venv holding ``render_sdk==0.6.1`` (never this repository's
``render_sdk``). Its twin for 1.x is ``official_1x_workflow.py``: same task names,
same behaviour, so ``test_official_workers.py`` asserts both the same way.
"""

from __future__ import annotations

import asyncio
import os
import time

from render_sdk import Render, Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def square(x: int) -> int:
    return x * x


@app.task
def add(a: int, b: int = 2) -> int:
    return a + b


@app.task
def pair() -> list:
    return [1, 2]


@app.task
def single_list() -> list:
    return [5]


@app.task
def nothing() -> None:
    return None


@app.task
def as_dict() -> dict:
    return {"k": [1, "\u00e9\u2028"], "n": None}


@app.task
async def sum_squares(n: int) -> int:
    return sum(await asyncio.gather(*(square(i) for i in range(n))))


@app.task
async def chain(x: int) -> int:
    y = await square(x)
    return await add(a=y)


@app.task
async def child_results() -> dict:
    keys = ("pair", "single_list", "nothing", "as_dict")
    values = await asyncio.gather(pair(), single_list(), nothing(), as_dict())
    return dict(zip(keys, values, strict=True))


@app.task
def fails(message: str) -> None:
    raise ValueError(message)


@app.task
async def catches_child_failure() -> str:
    try:
        await fails("inner")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


@app.task
async def propagates_child_failure() -> None:
    await fails("inner")


@app.task(retry=Retry(max_retries=2, wait_duration_ms=100, backoff_scaling=3.0))
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


@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def always_fails() -> None:
    raise RuntimeError("still broken")


@app.task(name="renamed", timeout_seconds=3600, plan="starter")
def original_name(value: str) -> str:
    return value


@app.task(timeout_seconds=30)
def too_slow() -> str:
    time.sleep(600)
    return "never"


@app.task
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


@app.task
async def parent_of_sleeper() -> str:
    return await sleeper(600)


@app.task
def nested_rest(x: int) -> list:
    # The official REST client inside an official worker: the dev server must hand
    # its children RENDER_USE_LOCAL_DEV / RENDER_LOCAL_DEV_URL.
    return Render().workflows.run_task("wf/square", [x]).results


# A task of another app: never registered with the dev server.
elsewhere = Workflows()


@elsewhere.task
def ghost() -> int:
    return 1


@app.task
async def calls_unregistered() -> str:
    try:
        await ghost()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


if __name__ == "__main__":
    app.start()
