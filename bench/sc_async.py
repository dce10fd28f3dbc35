"""Scenario 3: asyncio concurrency, ``--n`` ``start_task`` calls with ``--inflight`` at once.

``--side``: ``ours`` (``RenderAsync``, aiohttp), ``official`` (0.6.1 ``RenderAsync``,
httpx) or ``raw-aiohttp`` (the same POST by hand on one ``aiohttp.ClientSession``,
decoding the JSON). ``--inflight`` workers each make ``n / inflight`` calls in a row.
Prints ``{"calls_per_s": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

from _common import BODY, HEADERS, TASK, TOKEN, arg, emit


async def run(side: str, url: str, count: int, inflight: int) -> float:
    closers: list[Callable[[], Awaitable[None]]] = []
    call: Callable[[], Awaitable[object]]
    if side in ("ours", "official"):
        from render_sdk import RenderAsync

        render = RenderAsync(token=TOKEN, base_url=url)

        async def call() -> object:
            return await render.workflows.start_task(TASK, [3])

        if side == "ours":
            closers.append(render.aclose)  # type: ignore[attr-defined]
    else:
        import aiohttp

        session = aiohttp.ClientSession()
        closers.append(session.close)

        async def call() -> object:
            async with session.post(url + "/v1/task-runs", data=BODY, headers=HEADERS) as raw:
                return json.loads(await raw.read())

    async def worker(calls: int) -> None:
        for _ in range(calls):
            await call()

    await asyncio.gather(*(worker(2) for _ in range(inflight)))  # warm-up: open the pool
    began = time.perf_counter()
    await asyncio.gather(*(worker(count // inflight) for _ in range(inflight)))
    elapsed = time.perf_counter() - began
    for close in closers:
        await close()
    return elapsed


def main() -> None:
    side = arg("side")
    count = int(arg("n", "1000"))
    inflight = int(arg("inflight", "100"))
    elapsed = asyncio.run(run(side, arg("url"), count, inflight))
    calls = count // inflight * inflight
    emit({"side": side, "calls": calls, "seconds": elapsed, "calls_per_s": calls / elapsed})


if __name__ == "__main__":
    main()
