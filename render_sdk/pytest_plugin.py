"""pytest fixtures for testing Render Workflows against a dev server.

Installed with the package (entry point ``pytest11``), so every test suite of a
project that installs ``render-sdk`` loads this module: it imports nothing beyond
pytest until a fixture is used.

Declare what to serve once per test module::

    pytestmark = pytest.mark.render_workflows("myproject.workflows:app")

    def test_square(render_client, render_dev_server):
        run = render_client.workflows.run_task(render_dev_server.task_id("square"), [3])
        assert run.results == [9]

Fixtures: ``render_dev_server`` (module scope: one server per test module, a
:class:`render_sdk.testing.DevServerHarness`), ``render_client`` (module scope, its
blocking client) and ``render_client_async`` (function scope, a ``RenderAsync``
opened and closed on the test's event loop; needs pytest-asyncio). The marker takes
the arguments of ``render_sdk.testing.dev_server()``; a relative ``cwd`` is relative
to the rootdir, the default ``cwd`` is the rootdir, and the ``pythonpath`` ini
option of pytest is passed on to the task processes. A ``conftest.py`` may override
the ``render_workflows_options`` fixture (module scope) to return those arguments as
a dict with a ``"target"`` key instead of marking every module.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from render_sdk.client.clients import Render, RenderAsync
    from render_sdk.testing import DevServerHarness

__all__ = [
    "render_client",
    "render_client_async",
    "render_dev_server",
    "render_workflows_options",
]

MARKER = "render_workflows"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(target, **options): what the render_dev_server fixture serves in this "
        "module: 'module:app' or a start command, with render_sdk.testing.dev_server() options",
    )


@pytest.fixture(scope="module")
def render_workflows_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The ``dev_server()`` arguments of this module, from its ``render_workflows`` marker."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None or len(marker.args) != 1:
        pytest.fail(
            f"{request.node.nodeid}: the render_dev_server fixture needs the module marked "
            f"with its target, e.g. pytestmark = pytest.mark.{MARKER}('myproject.workflows:app')",
            pytrace=False,
        )
    return {"target": marker.args[0], **marker.kwargs}


@pytest.fixture(scope="module")
def render_dev_server(
    request: pytest.FixtureRequest, render_workflows_options: dict[str, Any]
) -> Iterator[DevServerHarness]:
    """A dev server for this module's target, with a temporary database (module scope)."""
    from render_sdk.testing import dev_server

    options = dict(render_workflows_options)
    target = options.pop("target")
    root = str(request.config.rootpath)
    options["cwd"] = os.path.join(root, os.fspath(options.get("cwd") or root))
    ini_paths = [str(path) for path in request.config.getini("pythonpath") or ()]
    options["pythonpath"] = [*options.get("pythonpath", ()), *ini_paths]
    with dev_server(target, **options) as server:
        yield server


@pytest.fixture(scope="module")
def render_client(render_dev_server: DevServerHarness) -> Render:
    """A blocking :class:`~render_sdk.Render` client on ``render_dev_server``."""
    return render_dev_server.client


async def _render_client_async(render_dev_server: DevServerHarness) -> AsyncIterator[RenderAsync]:
    """A :class:`~render_sdk.RenderAsync` on ``render_dev_server``, closed after the test."""
    async with render_dev_server.async_client() as client:
        yield client


def _needs_pytest_asyncio() -> None:
    pytest.fail("the render_client_async fixture needs pytest-asyncio (pip install pytest-asyncio)")


render_client_async: Any
try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - pytest-asyncio is a test dependency here
    render_client_async = pytest.fixture(name="render_client_async")(_needs_pytest_asyncio)
else:
    render_client_async = pytest_asyncio.fixture(_render_client_async, name="render_client_async")
