"""What the two faces promise beyond single calls: parity, cheap imports, shared
streams, and respect for sessions the caller owns."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import subprocess
import sys

import aiohttp
import pytest
import requests

from render_sdk import Render, RenderAsync
from render_sdk.client.clients import AsyncWorkflowsService, SyncWorkflowsService
from tests.support.fake_render import FakeRender

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_sync_and_async_services_have_the_same_methods_and_parameters() -> None:
    sync, async_ = _public(SyncWorkflowsService), _public(AsyncWorkflowsService)
    assert sorted(sync) == sorted(async_)
    for name, signature in sync.items():
        theirs = async_[name]
        assert [(p.name, p.kind, p.default) for p in signature.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name


def test_constructors_take_the_same_arguments() -> None:
    sync = inspect.signature(Render).parameters
    async_ = inspect.signature(RenderAsync).parameters
    assert list(sync) == list(async_)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sync.values())


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {**os.environ, "PYTHONPATH": ROOT, "RENDER_USE_LOCAL_DEV": "true"}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_render_sdk_pulls_in_no_http_library() -> None:
    loaded = _modules_after("import render_sdk")
    assert "aiohttp" not in loaded
    assert "requests" not in loaded


def test_render_does_not_import_aiohttp() -> None:
    loaded = _modules_after("from render_sdk import Render\nRender()")
    assert "requests" in loaded
    assert "aiohttp" not in loaded


def test_render_async_does_not_import_requests() -> None:
    loaded = _modules_after("from render_sdk import RenderAsync\nRenderAsync()")
    assert "aiohttp" in loaded
    assert "requests" not in loaded


def test_awaiting_many_runs_shares_streams() -> None:
    with FakeRender(ping_interval=0.5) as fake:
        fake.add_task("slow", lambda i: i, duration=0.5)

        async def main() -> list[int]:
            async with RenderAsync(base_url=fake.url, env={}) as render:
                started = [
                    await render.workflows.start_task("my-workflow/slow", [i]) for i in range(200)
                ]
                finished = await asyncio.gather(*started)
                assert render.streams_opened <= 3
                return [details.results[0] for details in finished]

        assert asyncio.run(main()) == list(range(200))
        assert fake.stream_connections <= 3


def test_awaiting_twice_does_not_wait_twice() -> None:
    with FakeRender() as fake:
        fake.add_task("square", lambda a: a * a)

        async def main() -> None:
            async with RenderAsync(base_url=fake.url, env={}) as render:
                started = await render.workflows.start_task("my-workflow/square", [4])
                first = await started
                streams = fake.stream_connections
                second = await started
                assert first == second
                assert first.results == [16]
                assert fake.stream_connections == streams

        asyncio.run(main())


def test_the_sdk_logs_nothing_by_default() -> None:
    import logging

    handlers = logging.getLogger("render_sdk").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


def test_a_session_the_caller_owns_is_left_open() -> None:
    with FakeRender() as fake:
        fake.add_task("square", lambda a: a * a)
        session = requests.Session()
        with Render(base_url=fake.url, session=session, env={}) as render:
            assert render.workflows.run_task("my-workflow/square", [3]).results == [9]
        # Still usable: the client did not close it.
        assert session.get(fake.url + "/v1/tasks").status_code == 200
        session.close()

        async def main() -> None:
            async with aiohttp.ClientSession() as own:
                async with RenderAsync(base_url=fake.url, session=own, env={}) as render:
                    details = await render.workflows.run_task("my-workflow/square", [4])
                    assert details.results == [16]
                assert not own.closed

        asyncio.run(main())


def test_session_and_transport_are_exclusive() -> None:
    from render_core.errors import ConfigurationError
    from render_transports.requests_transport import RequestsTransport

    with pytest.raises(ConfigurationError, match="session"):
        Render(
            base_url="http://127.0.0.1:1",
            session=requests.Session(),
            transport=RequestsTransport(),
            env={},
        )


def test_a_client_survives_two_event_loops() -> None:
    with FakeRender() as fake:
        fake.add_task("square", lambda a: a * a)
        render = RenderAsync(base_url=fake.url, env={})

        async def once(value: int) -> list[int]:
            return (await render.workflows.run_task("my-workflow/square", [value])).results

        assert asyncio.run(once(2)) == [4]
        assert asyncio.run(once(3)) == [9]
        asyncio.run(render.aclose())


def test_cancelling_an_await_stops_waiting_for_that_run() -> None:
    with FakeRender() as fake:
        fake.add_task("forever", duration=float("inf"))

        async def main() -> None:
            async with RenderAsync(base_url=fake.url, env={}) as render:
                started = await render.workflows.start_task("my-workflow/forever", [])
                waiting = asyncio.ensure_future(started.wait())
                await asyncio.sleep(0.3)
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
                for _ in range(100):
                    if fake.open_streams == 0:
                        break
                    await asyncio.sleep(0.02)
                assert fake.open_streams == 0

        asyncio.run(main())
