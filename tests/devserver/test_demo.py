"""The README's main job: the quickstart demo runs end to end and prints its results."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quickstart_demo() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    if "RENDER_DEV_NO_FORK" in os.environ:  # the mode the suite runs in
        env["RENDER_DEV_NO_FORK"] = os.environ["RENDER_DEV_NO_FORK"]
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "square(7) = 49" in out
    assert "sum_of_squares(10) = 285 from 10 subtasks" in out
    assert "flaky: 'succeeded on a retry' after 2 attempts (retries=1)" in out
    assert "divide(1, 0) failed as expected: ZeroDivisionError: division by zero" in out
    assert "event streams used for 50 runs: 1" in out
    assert "async: 50 runs of square, sum of results = 40425" in out
