"""A typed workflow: dataclass, attrs, enum, datetime, UUID, Decimal inputs and results.

Served by the dev server in ``tests/devserver/test_typed_tasks.py`` (as
``tests.support.typed_workflow:app``) and imported there by the clients, which start
its tasks by definition.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import pathlib
import uuid

from render import Retry, TaskContext, Workflows
from tests.support.typed_models import Address, Color, Item, Order, Point, Receipt

app = Workflows(slug="typed", default_retry=Retry(max_retries=0, wait_duration_ms=0))


@app.task
def charge(order: Order, discount: decimal.Decimal = decimal.Decimal("0")) -> Receipt:
    total = sum((item.price * item.quantity for item in order.items), decimal.Decimal())
    return Receipt(
        order_id=order.id,
        total=total - discount,
        day=order.placed_at.date(),
        folder=pathlib.PurePosixPath("/receipts") / order.color.value,
    )


@app.task
async def charge_all(ctx: TaskContext, orders: list[Order]) -> list[Receipt]:
    receipts = await asyncio.gather(*(ctx.run(charge, order) for order in orders))
    for receipt in receipts:
        assert isinstance(receipt, Receipt), type(receipt)  # read back as the annotation
    return list(receipts)


@app.task
async def seed_style_call(order: Order) -> decimal.Decimal:
    receipt = await charge(order, decimal.Decimal("1"))
    assert isinstance(receipt, Receipt)
    return receipt.total


@app.task
def shapes(  # noqa: PLR0917 - one parameter per supported shape
    point: Point, address: Address, when: datetime.date, key: uuid.UUID,
    colors: set[Color], maybe: Item | None = None,
) -> dict[str, object]:  # fmt: skip
    return {
        "point": [point.x, point.y],
        "street": address["street"],
        "since": address["since"].isoformat(),
        "when": when.isoformat(),
        "key": str(key),
        "colors": sorted(color.value for color in colors),
        "maybe": maybe.sku if maybe else None,
    }


@app.task
def plain(a, b: int, c: list[int]):  # type: ignore[no-untyped-def]
    return [a, b, c]


@app.task
def modules_after_conversion(order: Order) -> list[str]:
    """Which optional libraries this attempt's process has imported, after converting."""
    import sys

    assert isinstance(order, Order)
    return sorted(name for name in ("cattrs", "pydantic") if name in sys.modules)
