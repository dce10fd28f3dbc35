"""Run a small workflow program the way the platform does (for the worker tests)."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from typing import Any

from tests.support.fake_task_socket import FakeTaskSocket

ROOT = pathlib.Path(__file__).resolve().parents[2]


def b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def output_of(callback: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(callback["complete"]["output"]))


def run_program(
    directory: pathlib.Path,
    source: str,
    sock: FakeTaskSocket | None,
    mode: str | None,
    *,
    filename: str = "main.py",
    argv: list[str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    path = directory / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    if mode is not None:
        env["RENDER_SDK_MODE"] = mode
    if sock is not None:
        env["RENDER_SDK_SOCKET_PATH"] = sock.path
    command = argv if argv is not None else [sys.executable, str(path)]
    return subprocess.run(
        command,
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
