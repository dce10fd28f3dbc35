"""An example workflow service: plain tasks, a subtask fan-out and a retried failure.

Render (or the local dev server) runs this file with RENDER_SDK_MODE set; run it
locally with:

    render-workflows dev -- python main.py
"""

import asyncio
import os

from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=2, wait_duration_ms=200))


@app.task
def square(a: int) -> int:
    return a * a


@app.task
async def sum_of_squares(n: int) -> int:
    """Fan out one subtask per number, in parallel, and add the results up."""
    squares = await asyncio.gather(*(square(i) for i in range(n)))
    return sum(squares)


@app.task(retry=Retry(max_retries=3, wait_duration_ms=100, backoff_scaling=2.0))
def flaky(marker: str) -> str:
    """Fails on its first attempt and succeeds when retried (each attempt is a new process)."""
    if not os.path.exists(marker):
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write("first attempt failed\n")
        raise ConnectionError("the first attempt always fails; the retry will succeed")
    return "succeeded on a retry"


@app.task
def divide(a: float, b: float) -> float:
    return a / b


if __name__ == "__main__":
    app.start()
