"""The benchmark workflow, written against the documented API (runs on either SDK)."""

from __future__ import annotations

import asyncio

from render_sdk import Workflows

app = Workflows()


@app.task
def noop(x: int) -> int:
    return x


@app.task
async def fan(n: int) -> int:
    return sum(await asyncio.gather(*(noop(i) for i in range(n))))


if __name__ == "__main__":
    app.start()
