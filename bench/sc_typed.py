"""Scenario 8: the cost of typed-task conversion per call (our side only).

Times what the worker does around a call, without I/O: bind the run's JSON input to
the task's parameters (converting annotated values), then encode the result as the
wrapped JSON array. ``--kind plain`` is ``def add(a: int, b: int) -> int`` (nothing to
convert); ``--kind nested`` takes an ``Order`` dataclass with ``--items`` nested
``Item`` dataclasses (UUID, Decimal, datetime fields) and returns a ``Receipt``.
``--side floor`` does only the JSON work (``json.loads`` of the input and
``json.dumps`` of the same result as plain data). Prints microseconds per call.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import time
import uuid
from typing import Any

from _common import arg, emit


@dataclasses.dataclass
class Item:
    sku: str
    quantity: int
    price: decimal.Decimal


@dataclasses.dataclass
class Order:
    id: uuid.UUID
    items: list[Item]
    placed_at: datetime.datetime


@dataclasses.dataclass
class Receipt:
    order_id: uuid.UUID
    total: decimal.Decimal


def add(a: int, b: int) -> int:
    return a + b


def charge(order: Order) -> Receipt:
    return Receipt(order.id, sum((i.price * i.quantity for i in order.items), decimal.Decimal()))


def inputs(kind: str, items: int) -> tuple[bytes, Any]:
    if kind == "plain":
        return json.dumps([2, 3]).encode(), 5
    order = {
        "id": str(uuid.uuid4()),
        "placed_at": "2026-12-02T09:30:00+00:00",
        "items": [{"sku": f"s{i}", "quantity": i, "price": "1.25"} for i in range(items)],
    }
    return json.dumps([order]).encode(), {"order_id": order["id"], "total": "12.50"}


def main() -> None:
    side, kind = arg("side"), arg("kind", "plain")
    n, items = int(arg("n", "20000")), int(arg("items", "10"))
    body, plain_result = inputs(kind, items)
    func = add if kind == "plain" else charge
    if side == "ours":
        from render_core.tasks import Options, TaskSpec, bind_arguments, encode_result

        spec = TaskSpec.from_function(func, options=Options())

        def once() -> None:
            args, kwargs = bind_arguments(spec, json.loads(body))
            encode_result(func(*args, **kwargs), spec.name, spec.conversion)
    else:

        def once() -> None:
            json.loads(body)
            json.dumps([plain_result], separators=(",", ":")).encode()

    for _ in range(min(n, 200)):  # warm-up: imports, the converter's generated code
        once()
    began = time.perf_counter()
    for _ in range(n):
        once()
    emit({"us_per_call": (time.perf_counter() - began) / n * 1e6})


if __name__ == "__main__":
    main()
