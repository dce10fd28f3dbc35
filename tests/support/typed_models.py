"""Types for the typed-task tests, importable by test processes (``tests.support``)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import pathlib
import uuid
from typing import NamedTuple, TypedDict

import attrs


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    price: decimal.Decimal


@dataclasses.dataclass(frozen=True)
class Order:
    id: uuid.UUID
    items: list[Item]
    placed_at: datetime.datetime
    color: Color = Color.RED
    note: str | None = None


@attrs.frozen
class Receipt:
    order_id: uuid.UUID
    total: decimal.Decimal
    day: datetime.date
    folder: pathlib.PurePosixPath


class Point(NamedTuple):
    x: int
    y: int


class Address(TypedDict):
    street: str
    since: datetime.date
