"""Shared fixtures of the fault suite."""

from __future__ import annotations

import os
import pathlib
import shutil
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture
def tiny_project(tmp_path: pathlib.Path) -> tuple[str, list[str]]:
    """A project directory holding the stdlib-only worker, and its start command."""
    shutil.copy(HERE / "tiny_worker.py", tmp_path / "worker.py")
    (tmp_path / "markers").mkdir()
    return str(tmp_path), [sys.executable, "-S", "worker.py"]


@pytest.fixture(autouse=True)
def _no_render_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite configures clients explicitly; a developer's RENDER_* must not leak in."""
    for key in list(os.environ):
        if key.startswith("RENDER_") and key != "RENDER_DEV_NO_FORK":  # the suite's mode
            monkeypatch.delenv(key)
