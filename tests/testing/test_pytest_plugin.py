"""The pytest plugin in a user's project: separate pytest runs, warnings as errors.

One project is written here; the other is the worked example of docs/testing.md,
read from the page so that the documented example cannot drift from what runs.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import textwrap

WORKFLOWS = """
import asyncio
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def double(x: int) -> int:
    return 2 * x

@app.task
async def double_all(xs: list) -> list:
    return list(await asyncio.gather(*(double(x) for x in xs)))
"""

MARKED = """
import pytest
from workflows import app
from render_sdk.testing import run_local

pytestmark = pytest.mark.render_workflows("workflows:app", workflow_slug="demo")

def test_sync(render_client, render_dev_server):
    run = render_client.workflows.run_task(render_dev_server.task_id("double_all"), [[1, 2]])
    assert run.results == [[2, 4]]

@pytest.mark.asyncio
async def test_async(render_client_async):
    run = await render_client_async.workflows.run_task("demo/double", [21])
    assert run.results == [42]

def test_in_process():
    assert run_local(app, "double_all", [3]) == [6]
"""

CONFTEST = """
import pytest

@pytest.fixture(scope="module")
def render_workflows_options():
    return {"target": "workflows:app", "workflow_slug": "from-conftest"}
"""

CONFIGURED = """
def test_configured_in_conftest(render_client):
    assert render_client.workflows.run_task("from-conftest/double", [5]).results == [10]
"""

UNMARKED = """
def test_forgot_the_marker(render_client):
    pass
"""

INI = """
[pytest]
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC_FILE = re.compile(
    r"<!--\s*test:\s*file=(?P<name>\S+)\s+group=testing\s*-->\s*\n```\w*\n(?P<code>.*?)```", re.S
)


def _pytest(project: pathlib.Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENDER_", "PYTEST_", "COV_"))}
    if "RENDER_DEV_NO_FORK" in os.environ:  # the mode the suite runs in
        env["RENDER_DEV_NO_FORK"] = os.environ["RENDER_DEV_NO_FORK"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def _write(root: pathlib.Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_project_uses_the_fixtures(tmp_path: pathlib.Path) -> None:
    _write(tmp_path, "pytest.ini", INI)
    _write(tmp_path, "workflows.py", WORKFLOWS)
    _write(tmp_path, "test_marked.py", MARKED)
    _write(tmp_path, "configured/conftest.py", CONFTEST)
    _write(tmp_path, "configured/test_configured.py", CONFIGURED)
    _write(tmp_path, "unmarked/test_unmarked.py", UNMARKED)
    out = _pytest(tmp_path)
    assert "4 passed, 1 error" in out, out
    assert "needs the module marked with its target" in out, out
    assert "Warning" not in out, out


def test_the_documented_example_passes(tmp_path: pathlib.Path) -> None:
    page = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
    files = {m.group("name"): m.group("code") for m in DOC_FILE.finditer(page)}
    assert set(files) == {"workflows.py", "pyproject.toml", "test_unit.py", "test_workflows.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    out = _pytest(tmp_path)
    assert "9 passed in" in out, out
    assert "Warning" not in out, out
