"""pydantic models for the typed-task tests (imported only by tests that need them)."""

from __future__ import annotations

import datetime
import decimal

import pydantic


class Line(pydantic.BaseModel):
    sku: str
    price: decimal.Decimal


class Cart(pydantic.BaseModel):
    lines: list[Line]
    when: datetime.date


def total(cart: Cart) -> Line:
    return Line(sku="total", price=sum((line.price for line in cart.lines), decimal.Decimal()))
