"""Fixtures for the client faces: a loopback fake of Render and both faces over it.

One suite runs against ``Render`` and ``RenderAsync`` through the :class:`Face`
adapters below, so the two colours cannot drift apart.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from render_sdk import Render, RenderAsync
from tests.support.fake_render import FakeRender


@pytest.fixture
def fake() -> Iterator[FakeRender]:
    with FakeRender(ping_interval=0.2) as server:
        server.add_task("square", lambda a: a * a)
        server.add_task("add", lambda a, b=2: a + b)
        server.add_task("slow", lambda: "done", duration=0.6)
        server.add_task("boom", _boom)
        server.add_task("forever", duration=3600)
        yield server


def _boom(*args: Any) -> Any:
    raise ValueError("division by zero")


class Face:
    """Drive either client with plain calls: async results are run to completion."""

    name: str

    def __init__(self, client: Render | RenderAsync) -> None:
        self.client = client
        self.loop: asyncio.AbstractEventLoop | None = None
        if isinstance(client, RenderAsync):
            self.name = "async"
            self.loop = asyncio.new_event_loop()
        else:
            self.name = "sync"

    def run(self, value: Any) -> Any:
        if self.loop is None:
            return value
        if inspect.isawaitable(value):
            return self.loop.run_until_complete(_await(value))
        if hasattr(value, "__aiter__"):
            return self.loop.run_until_complete(_collect(value))
        return value

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        result = self.run(getattr(self.client.workflows, method)(*args, **kwargs))
        if hasattr(result, "__iter__") and not isinstance(result, list | tuple | dict | str):
            result = list(result)
        return result

    def start(self, slug: str, data: Any) -> Any:
        return self.run(self.client.workflows.start_task(slug, data))

    def wait(self, started: Any, timeout: float | None = None) -> Any:
        """Wait for a started run the way each face documents it."""
        if self.loop is None:
            return self.client.workflows.wait_for_run(started.id, timeout=timeout)
        return self.loop.run_until_complete(started.wait(timeout=timeout))

    def close(self) -> None:
        if isinstance(self.client, RenderAsync):
            assert self.loop is not None
            self.loop.run_until_complete(self.client.aclose())
            self.loop.close()
        else:
            self.client.close()


async def _await(value: Any) -> Any:
    return await value


async def _collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


FaceFactory = Callable[..., Face]


@pytest.fixture(params=["sync", "sync-keepalive", "async"])
def make_face(request: pytest.FixtureRequest, fake: FakeRender) -> Iterator[FaceFactory]:
    """Each face: ``Render`` on its default transport, ``Render`` on the keep-alive
    ``http.client`` transport, and ``RenderAsync``."""
    faces: list[Face] = []

    def make(**kwargs: Any) -> Face:
        kwargs.setdefault("base_url", fake.url)
        kwargs.setdefault("env", {})
        if request.param == "sync-keepalive" and "session" not in kwargs:
            from render_transports.keepalive_transport import KeepAliveTransport

            kwargs.setdefault("transport", KeepAliveTransport(timeouts=kwargs.get("timeouts")))
        cls = RenderAsync if request.param == "async" else Render
        face = Face(cls(**kwargs))
        faces.append(face)
        return face

    yield make
    for face in faces:
        face.close()


@pytest.fixture
def face(make_face: FaceFactory) -> Face:
    return make_face()
