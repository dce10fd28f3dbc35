"""A typed workflow whose tasks take and return pydantic models."""

from __future__ import annotations

from render import Retry, TaskContext, Workflows
from tests.support.typed_models_pydantic import Cart, Line, total

app = Workflows(slug="carts", default_retry=Retry(max_retries=0, wait_duration_ms=0))

cart_total = app.task(name="cart_total")(total)


@app.task
async def totals(ctx: TaskContext, carts: list[Cart]) -> list[Line]:
    return [await ctx.run(cart_total, cart) for cart in carts]
