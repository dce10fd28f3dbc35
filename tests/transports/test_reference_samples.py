"""The client samples of both reference documents, run as written.

Each sample is a separate Python process configured the way the documents say
(``RENDER_USE_LOCAL_DEV`` / ``RENDER_LOCAL_DEV_URL``), talking to the loopback
fake of Render's cloud and, where the sample does not name a fixed run id
(``trn-abc123``), also to our dev server running real task processes. Samples
that are fragments (a bare ``await`` at top level) are wrapped in ``async def
main()`` with the ``render`` object they assume; nothing else changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from render_sdk.testing import DevServerHarness, dev_server
from tests.support.fake_render import FakeRender

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SAMPLE_TASKS = """
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def calculate_square(a: int) -> int:
    return a * a

@app.task
def square(a: int) -> int:
    return a * a

@app.task
def add(a: int, b: int) -> int:
    return a + b

@app.task
def task(x):
    return x

if __name__ == "__main__":
    app.start()
"""


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServerHarness]:
    project = tmp_path_factory.mktemp("samples")
    (project / "main.py").write_text(SAMPLE_TASKS, encoding="utf-8")
    with dev_server(
        ["python", "main.py"], cwd=project, pythonpath=[ROOT], workflow_slug="my-workflow"
    ) as running:
        yield running


@pytest.fixture(params=["fake", "devserver"])
def any_server(request: pytest.FixtureRequest) -> FakeRender | DevServerHarness:
    """The fake cloud and the dev server: samples that name no fixed run id run on both."""
    name = "server" if request.param == "fake" else "devserver"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def server() -> Iterator[FakeRender]:
    with FakeRender(ping_interval=0.2) as fake:
        fake.lenient_cursors = True
        fake.add_task("calculate_square", lambda a: a * a)
        fake.add_task("square", lambda a: a * a)
        fake.add_task("add", lambda a, b: a + b)
        fake.add_task("task", lambda x: x)
        fake.add_task("long", duration=float("inf"))
        fake.start_run("long", [], run_id="trn-abc123")
        yield fake


def run_sample(
    server: FakeRender | DevServerHarness, code: str, *, async_fragment: bool = False
) -> str:
    source = textwrap.dedent(code)
    if async_fragment:
        body = textwrap.indent(source, "    ")
        source = (
            "import asyncio\nfrom render_sdk import RenderAsync\n\n"
            f"async def main():\n    render = RenderAsync()\n{body}\n\nasyncio.run(main())\n"
        )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RENDER_") and key != "PYTHONWARNINGS"
    }
    env.update(
        RENDER_USE_LOCAL_DEV="true",
        RENDER_LOCAL_DEV_URL=server.url,
        PYTHONPATH=ROOT,
        PYTHONWARNINGS="error::DeprecationWarning",
    )
    done = subprocess.run(
        [sys.executable, "-c", source],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout


# -- the newer reference (SDK 0.6.0 and later) --------------------------------


def test_async_constructor(any_server: FakeRender | DevServerHarness) -> None:
    run_sample(
        any_server,
        """
        from render_sdk import RenderAsync

        # Basic initialization
        render = RenderAsync()

        # Initialization with API key
        render = RenderAsync(
          token="rnd_abc123…"
        )
        """,
    )


def test_async_start_task(any_server: FakeRender | DevServerHarness) -> None:
    out = run_sample(
        any_server,
        """
        # Execute the calculate_square task with an input of 2
        started_task_run = await render.workflows.start_task(
          "my-workflow/calculate_square",
          [2]
        )

        task_run_id = started_task_run.id # ID is available immediately
        task_run_status = started_task_run.status # Initial status is available immediately

        finished_task_run = await started_task_run # Other properties become available after the task run completes
        print(finished_task_run.results) # Prints the task run's result, in this case [4]
        """,  # noqa: E501 - verbatim
        async_fragment=True,
    )
    assert out.strip() == "[4]"


def test_async_run_task(any_server: FakeRender | DevServerHarness) -> None:
    out = run_sample(
        any_server,
        """
        # Run the calculate_square task and wait for the result
        task_run = await render.workflows.run_task(
          "my-workflow/calculate_square",
          [2]
        )
        print(task_run.results) # [4]
        """,
        async_fragment=True,
    )
    assert out.strip() == "[4]"


def test_async_list_get_cancel(server: FakeRender) -> None:
    run_sample(
        server,
        """
        from render_sdk.client.types import ListTaskRunsParams

        params = ListTaskRunsParams(
          limit=10, # Return up to 10 runs
          cursor="cfQ74cE2sDI=", # Start from this cursor
          owner_id=["tea-d3jm7ai4d50c73fale60"] # Limit to these workspace IDs
        )

        await render.workflows.list_task_runs(params)
        await render.workflows.get_task_run("trn-abc123")
        await render.workflows.cancel_task_run("trn-abc123")
        """,
        async_fragment=True,
    )
    assert server.run("trn-abc123")["status"] == "canceled"


def test_async_task_run_events(any_server: FakeRender | DevServerHarness) -> None:
    out = run_sample(
        any_server,
        """
        # Start multiple tasks
        run1 = await render.workflows.start_task("my-workflow/add", [1, 2])
        run2 = await render.workflows.start_task("my-workflow/add", [5, 8])

        # Stream events until all runs complete
        pending = {run1.id, run2.id}
        async for event in render.workflows.task_run_events(list(pending)):
          print(f"Run {event.id}: status={event.status}")
          pending.discard(event.id)
          if not pending:
            break
        """,
        async_fragment=True,
    )
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert all(line.endswith("status=completed") for line in lines)


def test_sync_samples(server: FakeRender) -> None:
    out = run_sample(
        server,
        """
        from render_sdk import Render
        from render_sdk.client.types import ListTaskRunsParams

        # Basic initialization
        render = Render()

        started_task_run = render.workflows.start_task(
          "my-workflow/calculate_square",
          [2]
        )
        # Poll with get_task_run(started_task_run.id) or use run_task() to block until done

        task_run = render.workflows.run_task("my-workflow/calculate_square", [2])
        print(task_run.results)

        params = ListTaskRunsParams(limit=10, cursor="…", owner_id=["tea-…"])
        render.workflows.list_task_runs(params)

        render.workflows.get_task_run("trn-abc123")

        render.workflows.cancel_task_run("trn-abc123")

        for event in render.workflows.task_run_events(["trn-abc123"]):
          print(f"Run {event.id}: status={event.status}")
        """,
    )
    assert out.splitlines() == ["[4]", "Run trn-abc123: status=canceled"]


def test_error_imports(any_server: FakeRender | DevServerHarness) -> None:
    run_sample(
        any_server,
        """
        from render_sdk.client.errors import (
            RenderError, # Parent class for other exceptions
            ClientError,
            RateLimitError,
            ServerError,
            TimeoutError,
            TaskRunError
        )
        """,
    )


# -- the older reference ---------------------------------------------------------


def test_older_client_sample(any_server: FakeRender | DevServerHarness) -> None:
    out = run_sample(
        any_server,
        """
        import asyncio
        from render_sdk import Render

        async def main():
            render = Render()  # uses RENDER_API_KEY from environment

            # Run a task
            started = await render.workflows.run_task(
                task_identifier="my-workflow/square",
                input_data=[5],
            )
            print(f"Task started: {started.id}, status: {started.status}")

            # Wait for completion (SSE streaming)
            finished = await started
            print(f"Result: {finished.results}")

        asyncio.run(main())
        """,
    )
    assert out.splitlines()[-1] == "Result: [25]"


def test_older_awaitable_task_run_sample(any_server: FakeRender | DevServerHarness) -> None:
    out = run_sample(
        any_server,
        """
        started = await render.workflows.start_task("my-workflow/square", [5])
        print(started.id)       # available immediately
        print(started.status)   # "pending"

        finished = await started  # waits for completion via SSE
        print(finished.results)   # [25]
        print(finished.status)    # "completed"
        """,
        async_fragment=True,
    )
    lines = out.splitlines()
    assert lines[0].startswith("trn-")
    assert lines[1] in ("pending", "running")
    assert lines[2:] == ["[25]", "completed"]


def test_older_list_params_and_error_handling(any_server: FakeRender | DevServerHarness) -> None:
    out = run_sample(
        any_server,
        """
        from render_sdk.client import ListTaskRunsParams

        params = ListTaskRunsParams(
            limit=10,
            cursor="cfQ74cE2sDI=",
            owners=["tea-d3jm7ai4d50c73fale60"],
        )
        task_runs = await render.workflows.list_task_runs(params)

        from render_sdk.client.errors import (
            RenderError,      # base class for all SDK exceptions
            ClientError,      # 400-level API errors (invalid key, bad args)
            ServerError,      # 500-level API errors
            TimeoutError,     # request timeout
            TaskRunError,     # raised when awaited task run fails
        )

        try:
            result = await render.workflows.run_task("my-workflow/task", [42])
            finished = await result
        except TaskRunError as e:
            print(f"Task failed: {e}")
        except ClientError as e:
            print(f"Bad request: {e}")
        except ServerError as e:
            print(f"Server error: {e}")
        print(finished.results)
        """,
        async_fragment=True,
    )
    assert out.strip() == "[42]"
