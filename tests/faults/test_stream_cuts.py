"""The event stream cut at every byte offset: each awaited run resolves exactly once.

A :class:`FaultProxy` forwards the client's requests to a real server and breaks the
first event-stream answer of each example after ``offset`` bytes, with a FIN or a
TCP reset. Hypothesis picks the offset anywhere in a recorded stream (status line,
headers, chunk framing, the ``retry:`` line, the middle of a UTF-8 character of an
event), so the client meets a stream broken at every kind of place. Whatever the
cut, ``as_completed`` must yield each run exactly once, with the details the server
holds (status, results, error).

Against the loopback fake of Render (sync client, runs finishing while the stream
is open) and against the dev server (async client, terminal runs replayed).
"""

from __future__ import annotations

import asyncio
import collections
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from render_core import codec
from render_core.config import Timeouts
from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync
from tests.faults.support import ROOT, FaultProxy, address_of
from tests.support.fake_render import FakeRender

EVENTS_PATH = "/v1/task-runs/events"
FAKE_EXAMPLES = 110
DEVSERVER_EXAMPLES = 40
MODES = st.sampled_from(["cut", "reset"])
# Stream pings every 0.2 s keep the idle timer quiet; the timeout bounds a hang.
WAIT_TIMEOUT = 30.0


def _boom(value: str) -> None:
    raise ValueError(f"no luck with {value} \u2014 \u00e9t\u00e9 \U0001f525")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRender]:
    with FakeRender(ping_interval=0.2) as server:
        server.add_task("echo", lambda value: {"echo": value}, duration=0.02)
        server.add_task("boom", _boom, duration=0.04)
        server.add_task("forever", duration=3600)
        yield server


@pytest.fixture(scope="module")
def fake_proxy(fake: FakeRender) -> Iterator[FaultProxy]:
    with FaultProxy(address_of(fake.url), record_prefix=EVENTS_PATH) as proxy:
        yield proxy


def _start_fake_runs(fake: FakeRender, tag: int) -> list[str]:
    ids = [
        fake.start_run("echo", [f"caf\u00e9 \u2603 {tag}"]),
        fake.start_run("boom", [f"run {tag}"]),
        fake.start_run("forever", []),
    ]
    fake.finish(ids[2], status="canceled", error="canceled by the test")
    return ids


def _check(results: list[Any], expected: dict[str, dict[str, Any]]) -> None:
    counts = collections.Counter(details.id for details in results)
    assert counts == collections.Counter(expected.keys()), counts
    for details in results:
        assert codec.unstructure(details) == expected[details.id]


@pytest.fixture(scope="module")
def fake_stream_length(fake: FakeRender, fake_proxy: FaultProxy) -> int:
    """Bytes of one whole event-stream answer of the scenario, recorded through the proxy."""
    ids = _start_fake_runs(fake, -1)
    with Render(base_url=fake_proxy.url) as render:
        list(render.workflows.as_completed(ids, timeout=WAIT_TIMEOUT))
    answers = [r.answer for r in fake_proxy.records if r.path == EVENTS_PATH]
    fake_proxy.clear()
    length = max(len(a) for a in answers)
    assert b"task.completed" in max(answers, key=len)
    return length


@settings(
    max_examples=FAKE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(data=st.data(), mode=MODES)
def test_fake_render_stream_cut_anywhere(
    fake: FakeRender, fake_proxy: FaultProxy, fake_stream_length: int, data: Any, mode: str
) -> None:
    offset = data.draw(st.integers(0, fake_stream_length), label="offset")
    fake_proxy.clear()
    fake_proxy.add(mode, path_prefix=EVENTS_PATH, after=offset)
    ids = _start_fake_runs(fake, offset)
    with Render(base_url=fake_proxy.url, timeouts=Timeouts(stream_idle=5.0)) as render:
        results = list(render.workflows.as_completed(ids, timeout=WAIT_TIMEOUT))
    _check(results, {run_id: fake.run(run_id) for run_id in ids})
    assert any(r.fault == mode for r in fake_proxy.records), "the cut was applied"


# ---------------------------------------------------------------------------
# The same against the dev server, with the async client

WORKFLOW = """
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def echo(value: str) -> dict:
    return {"echo": value}

@app.task
def boom(value: str) -> None:
    raise ValueError(f"no luck with {value} \\u2014 \\u00e9t\\u00e9 \\U0001f525")

@app.task
def forever() -> None:
    import time
    time.sleep(600)

if __name__ == "__main__":
    app.start()
"""


@pytest.fixture(scope="module")
def devserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("cut-project")
    (project / "main.py").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = ROOT
    server = DevServer(
        [sys.executable, "main.py"],
        port=0,
        cwd=str(project),
        env=env,
        db=":memory:",
        workflow_slug="wf",
        ping_interval=0.2,
    )
    with server.run_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def devserver_runs(devserver: DevServer) -> dict[str, dict[str, Any]]:
    """Three terminal runs (completed, failed, canceled) and their final details."""
    with Render(base_url=devserver.url) as render:
        service = render.workflows
        ids = [
            service.start_task("wf/echo", ["caf\u00e9 \u2603"]).id,
            service.start_task("wf/boom", ["x"]).id,
            service.start_task("wf/forever", []).id,
        ]
        deadline = time.monotonic() + 60
        while service.get_task_run(ids[2]).status.value != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        service.cancel_task_run(ids[2])
        list(service.as_completed(ids, timeout=60))
        return {run_id: codec.unstructure(service.get_task_run(run_id)) for run_id in ids}


@pytest.fixture(scope="module")
def devserver_proxy(devserver: DevServer) -> Iterator[FaultProxy]:
    with FaultProxy(("127.0.0.1", devserver.port), record_prefix=EVENTS_PATH) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def devserver_stream_length(
    devserver_runs: dict[str, dict[str, Any]], devserver_proxy: FaultProxy
) -> int:
    async def record() -> None:
        async with RenderAsync(base_url=devserver_proxy.url) as render:
            async for _ in render.workflows.as_completed(list(devserver_runs)):
                pass

    asyncio.run(record())
    answers = [r.answer for r in devserver_proxy.records if r.path == EVENTS_PATH]
    devserver_proxy.clear()
    return max(len(a) for a in answers)


@settings(
    max_examples=DEVSERVER_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(data=st.data(), mode=MODES)
def test_devserver_stream_cut_anywhere(
    devserver_runs: dict[str, dict[str, Any]],
    devserver_proxy: FaultProxy,
    devserver_stream_length: int,
    data: Any,
    mode: str,
) -> None:
    offset = data.draw(st.integers(0, devserver_stream_length), label="offset")
    devserver_proxy.clear()
    devserver_proxy.add(mode, path_prefix=EVENTS_PATH, after=offset)

    async def wait() -> list[Any]:
        async with RenderAsync(
            base_url=devserver_proxy.url, timeouts=Timeouts(stream_idle=5.0)
        ) as render:
            return [
                details
                async for details in render.workflows.as_completed(
                    list(devserver_runs), timeout=WAIT_TIMEOUT
                )
            ]

    _check(asyncio.run(wait()), devserver_runs)
    assert any(r.fault == mode for r in devserver_proxy.records)


def test_recorded_streams_are_not_trivial(fake_stream_length: int) -> None:
    # A cut "anywhere" means something only if the stream holds the events.
    assert fake_stream_length > 500
