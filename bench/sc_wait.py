"""Scenario 5: await ``--n`` runs at once with ``RenderAsync`` (the stub finishes each
run ``run-seconds`` after it starts and announces it on the event stream).

``--side``: ``ours`` / ``official`` (``start_task`` every run, then
``asyncio.gather`` of ``await run``) or ``raw-aiohttp`` (the floor: one hand-written
event stream per 100 runs, reading until every run's event has arrived). Prints the
connections the stub accepted while waiting, the wall time after the last run
finished, and the total.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

from _common import TASK, TOKEN, arg, emit

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url + "/_stats") as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


async def raw(url: str, count: int) -> None:
    import aiohttp

    body = json.dumps({"task": TASK, "input": [3]}).encode()
    async with aiohttp.ClientSession() as session:

        async def start() -> str:
            async with session.post(url + "/v1/task-runs", data=body, headers=HEADERS) as answer:
                return str(json.loads(await answer.read())["id"])

        ids = await asyncio.gather(*(start() for _ in range(count)))

        async def watch(batch: list[str]) -> None:
            waiting = set(batch)
            query = "&".join("taskRunIds=" + run_id for run_id in batch)
            async with session.get(url + "/v1/task-runs/events?" + query) as answer:
                buffer = b""
                async for chunk in answer.content.iter_any():
                    buffer += chunk
                    *blocks, buffer = buffer.split(b"\n\n")
                    for block in blocks:
                        for line in block.split(b"\n"):
                            if line.startswith(b"data: "):
                                waiting.discard(json.loads(line[6:])["id"])
                    if not waiting:
                        return

        await asyncio.gather(*(watch(ids[i : i + 100]) for i in range(0, count, 100)))


async def sdk(url: str, count: int, side: str) -> None:
    from render_sdk import RenderAsync

    render = RenderAsync(token=TOKEN, base_url=url)
    runs = await asyncio.gather(*(render.workflows.start_task(TASK, [3]) for _ in range(count)))
    finished = await asyncio.gather(*(run for run in runs))
    assert len(finished) == count
    assert all(str(d.status).endswith("completed") for d in finished)
    if side == "ours":
        await render.aclose()  # type: ignore[attr-defined]


def main() -> None:
    side = arg("side")
    url = arg("url")
    count = int(arg("n", "200"))
    before = stats(url)
    began = time.monotonic()
    asyncio.run(raw(url, count) if side == "raw-aiohttp" else sdk(url, count, side))
    done = time.monotonic()
    after = stats(url)
    emit(
        {
            "side": side,
            "runs": count,
            "connections": after["connections"] - before["connections"] - 1,
            "streams": after["streams"] - before["streams"],
            "after_last_finish_s": done - after["last_finish"],
            "total_s": done - began,
        }
    )


if __name__ == "__main__":
    main()
