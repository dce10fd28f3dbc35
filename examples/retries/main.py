"""Retries and timeouts, and what a failure looks like from the outside.

    render-workflows dev -- python main.py

- ``flaky`` fails its first attempts and succeeds on a retry (each attempt is a
  new process, so it counts attempts in a file named by its argument);
- ``always_fails`` uses up its retries and the run fails;
- ``too_slow`` runs past its ``timeout_seconds`` and is stopped;
- ``careful_parent`` catches a failed subtask and carries on.
"""

import pathlib
import time

from render_sdk import Retry, Workflows
from render_sdk.client.errors import TaskRunError

app = Workflows()


@app.task(retry=Retry(max_retries=3, wait_duration_ms=200, backoff_scaling=2.0))
def flaky(counter_file: str, failures: int) -> str:
    path = pathlib.Path(counter_file)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} failed (a transient error)")
    return f"succeeded on attempt {attempt}"


@app.task(retry=Retry(max_retries=1, wait_duration_ms=100))
def always_fails(reason: str) -> None:
    raise ValueError(reason)


@app.task(timeout_seconds=30, retry=Retry(max_retries=0, wait_duration_ms=0))
def too_slow(seconds: float) -> str:
    time.sleep(seconds)
    return "finished"


@app.task
async def careful_parent(reason: str) -> str:
    try:
        await always_fails(reason)
    except TaskRunError as exc:
        return f"the subtask failed, the parent went on: {exc}"
    return "the subtask succeeded"


if __name__ == "__main__":
    app.start()
