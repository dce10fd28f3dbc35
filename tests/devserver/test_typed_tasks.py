"""Typed tasks through the dev server with real task processes, and typed handles on
both client faces (``render.workflows.run(charge, order)``)."""

from __future__ import annotations

import datetime
import decimal
import pathlib
import sys
import uuid
from collections.abc import Iterator

import pytest

from render_devserver.server import DevServer
from render_sdk import Render, RenderAsync
from render_sdk.client.errors import TaskRunError, ValidationError
from render_sdk.worker.inprocess import LocalRunner, run_local
from tests.support import typed_workflow as wf
from tests.support.typed_models import Address, Color, Item, Order, Point, Receipt

ROOT = pathlib.Path(__file__).resolve().parents[2]
ORDER = Order(
    id=uuid.UUID("12345678-1234-5678-1234-567812345678"),
    items=[Item("a", 2, decimal.Decimal("1.25")), Item("b", 1, decimal.Decimal("10.10"))],
    placed_at=datetime.datetime(2026, 12, 2, 8, 0, tzinfo=datetime.timezone.utc),
    color=Color.GREEN,
)
RECEIPT = Receipt(ORDER.id, decimal.Decimal("12.60"), datetime.date(2026, 12, 2),
                  pathlib.PurePosixPath("/receipts/green"))  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    dev = DevServer(
        [sys.executable, "-m", "render_sdk.cli", "tests.support.typed_workflow:app"],
        port=0, db=":memory:", cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)},
        workflow_slug="typed", concurrency=8, ping_interval=0.5,
    )  # fmt: skip
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture
def client(server: DevServer) -> Iterator[Render]:
    with Render(base_url=server.url, env={}) as render:
        yield render


def test_typed_handle_round_trip(client: Render) -> None:
    receipt = client.workflows.run(wf.charge, ORDER)
    assert receipt == RECEIPT
    assert isinstance(receipt, Receipt)
    assert client.workflows.run(wf.charge, order=ORDER, discount=decimal.Decimal("0.6")).total == (
        decimal.Decimal("12.00")
    )


def test_the_wire_carries_plain_json(client: Render) -> None:
    details = client.workflows.run_task("typed/charge", [{
        "id": str(ORDER.id), "placed_at": "2026-12-02T08:00:00Z", "color": "red",
        "items": [{"sku": "x", "quantity": 3, "price": "0.5"}],
    }])  # fmt: skip
    assert details.results == [{"order_id": str(ORDER.id), "total": "1.5", "day": "2026-12-02",
                                 "folder": "/receipts/red"}]  # fmt: skip


def test_subtasks_convert_arguments_and_results(client: Render) -> None:
    other = Order(uuid.uuid4(), [Item("z", 1, decimal.Decimal("2"))], ORDER.placed_at)
    receipts = client.workflows.run(wf.charge_all, [ORDER, other])
    assert receipts == [RECEIPT, Receipt(other.id, decimal.Decimal("2"), RECEIPT.day,
                                         pathlib.PurePosixPath("/receipts/red"))]  # fmt: skip
    assert client.workflows.run(wf.seed_style_call, ORDER) == decimal.Decimal("11.60")


def test_every_supported_shape(client: Render) -> None:
    result = client.workflows.run(
        wf.shapes, Point(1, 2), Address(street="Main", since=datetime.date(2020, 1, 1)),
        datetime.date(2026, 12, 2), ORDER.id, {Color.RED, Color.GREEN},
        Item("s", 1, decimal.Decimal(1)),
    )  # fmt: skip
    assert result == {"point": [1, 2], "street": "Main", "since": "2020-01-01",
                      "when": "2026-12-02", "key": str(ORDER.id), "colors": ["green", "red"],
                      "maybe": "s"}  # fmt: skip


def test_bad_input_fails_the_attempt_with_the_field_path(client: Render) -> None:
    with pytest.raises(TaskRunError) as failed:
        client.workflows.run_task("typed/charge", [{
            "id": str(ORDER.id), "placed_at": "2026-12-02T08:00:00Z",
            "items": [{"sku": "x", "quantity": 1, "price": "abc"}],
        }])  # fmt: skip
    assert str(failed.value) == "charge: order.items[0].price: expected a decimal string, got 'abc'"
    assert failed.value.details is not None
    assert len(failed.value.details.attempts) == 1  # the app registers no retries


def test_mismatched_arguments_are_refused_before_any_request(client: Render) -> None:
    before = len(client.workflows.list_task_runs())
    with pytest.raises(ValidationError, match="charge: the arguments do not fit"):
        client.workflows.run(wf.charge, ORDER, 1, 2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match=r"charge: \[0\]: a str cannot be written as Order"):
        client.workflows.run(wf.charge, "not an order")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="takes a task definition"):
        client.workflows.run("typed/charge", ORDER)  # type: ignore[call-overload]
    assert len(client.workflows.list_task_runs()) == before


def test_a_task_without_a_slug_is_a_clear_error(client: Render) -> None:
    from render import Workflows

    local = Workflows()

    @local.task
    def nameless(x: int) -> int:
        return x

    with pytest.raises(ValidationError, match=r"has no workflow slug: create its app with"):
        client.workflows.run(nameless, 1)


def test_plain_tasks_are_unchanged(client: Render) -> None:
    assert client.workflows.run_task("typed/plain", ["3", 4, [5]]).results == [["3", 4, [5]]]


async def test_typed_handle_on_the_async_face(server: DevServer) -> None:
    async with RenderAsync(base_url=server.url, env={}) as render:
        assert await render.workflows.run(wf.charge, ORDER) == RECEIPT
        with pytest.raises(ValidationError):
            await render.workflows.run(wf.charge)  # type: ignore[call-arg]


def test_the_in_process_runner_converts_the_same_way() -> None:
    assert run_local(wf.app, wf.charge, ORDER) == RECEIPT
    runner = LocalRunner(wf.app)
    record = runner.run(wf.charge_all, [ORDER])
    assert record.value() == [
        {"order_id": str(ORDER.id), "total": "12.60", "day": "2026-12-02",
         "folder": "/receipts/green"}
    ]  # fmt: skip
    assert [child.task_name for child in record.subtasks] == ["charge"]


def test_a_dataclass_workflow_never_imports_pydantic(client: Render) -> None:
    assert client.workflows.run(wf.modules_after_conversion, ORDER) == ["cattrs"]


@pytest.mark.parametrize(
    ("task", "args", "expected"),
    [
        (wf.charge, (ORDER,), RECEIPT),
        (wf.seed_style_call, (ORDER,), decimal.Decimal("11.60")),
        (wf.shapes, (Point(3, 4), Address(street="S", since=datetime.date(2021, 2, 3)),
                     datetime.date(2026, 1, 1), ORDER.id, {Color.GREEN}, None),
         {"point": [3, 4], "street": "S", "since": "2021-02-03", "when": "2026-01-01",
          "key": str(ORDER.id), "colors": ["green"], "maybe": None}),
    ],
)  # fmt: skip
def test_in_process_round_trips(task: object, args: tuple[object, ...], expected: object) -> None:
    assert run_local(wf.app, task, *args) == expected  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pydantic_server() -> Iterator[DevServer]:
    pytest.importorskip("pydantic")
    dev = DevServer(
        [sys.executable, "-m", "render_sdk.cli", "tests.support.typed_workflow_pydantic:app"],
        port=0, db=":memory:", cwd=str(ROOT), env={"PYTHONPATH": str(ROOT)},
        workflow_slug="carts", concurrency=4, ping_interval=0.5,
    )  # fmt: skip
    with dev.run_in_thread() as running:
        yield running


def test_pydantic_models_through_real_task_processes(pydantic_server: DevServer) -> None:
    from tests.support import typed_workflow_pydantic as carts
    from tests.support.typed_models_pydantic import Cart, Line

    lines = [Line(sku="a", price=decimal.Decimal("2.5")), Line(sku="b", price=decimal.Decimal(1))]
    cart = Cart(lines=lines, when=datetime.date(2026, 1, 1))
    with Render(base_url=pydantic_server.url, env={}) as render:
        assert render.workflows.run(carts.cart_total, cart) == Line(
            sku="total", price=decimal.Decimal("3.5")
        )
        assert (
            render.workflows.run(carts.totals, [cart, cart])
            == [Line(sku="total", price=decimal.Decimal("3.5"))] * 2
        )
        with pytest.raises(TaskRunError, match=r"^cart_total: cart\.lines\[0\]\.price: "):
            render.workflows.run_task("carts/cart_total", [{"lines": [{"sku": "a", "price": "x"}],
                                                           "when": "2026-01-01"}])  # fmt: skip
    assert run_local(carts.app, carts.totals, [cart]) == [
        Line(sku="total", price=decimal.Decimal("3.5"))
    ]
