"""Fixtures of the dashboard's browser tests: a real dev server on 127.0.0.1 running real task
processes, and headless Chromium driven by Playwright (one of each per test module).

The browser tests skip when Playwright or a Chromium binary is missing, unless
``RENDER_SDK_REQUIRE_BROWSER=1`` (as in CI), where they fail instead. ``RENDER_SDK_CHROMIUM``
names the browser binary when it is not ``chromium`` on the PATH.
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from render_devserver.server import DevServer
from tests.dashboard.support import ROOT, WAIT_MS, WORKFLOW, chromium, unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("dashboard")
    (project / "main.py").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(project),
        env=env,
        workflow_slug="wf",
        concurrency=4,
        ping_interval=0.5,
    )
    with dev.run_in_thread() as running:
        yield running


# Per module, not per session: Playwright's sync API keeps an event loop running in
# this thread while it is open, which the asyncio tests of later modules cannot share.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install playwright)")
    executable = chromium()
    if executable is None:
        unavailable("no Chromium binary found (apt-get install chromium, or RENDER_SDK_CHROMIUM)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def problems() -> list[str]:
    """Errors the page reported (script errors, failed loads): none are expected."""
    return []


@pytest.fixture
def page(browser: Browser, server: DevServer, problems: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    opened.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    try:
        yield opened
    finally:
        context.close()
    assert problems == []
