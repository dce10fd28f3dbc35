# ruff: noqa: UP007, UP045 - the typing module's older spellings are tested too
"""Typed task conversion (render_core.convert): which annotations convert, strict
reading with field paths, writing, and round trips (Hypothesis)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import pathlib
import subprocess
import sys
import uuid
from typing import Any, Optional, Union

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_core.convert import ConversionError, needs_conversion, unstructure_any
from render_core.tasks import Options, TaskInputError, TaskSpec, bind_arguments, encode_result
from tests.support.typed_models import Address, Color, Item, Order, Point, Receipt

ORDER_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")
ORDER = Order(
    id=ORDER_ID,
    items=[Item("a", 2, decimal.Decimal("1.25")), Item("b", 1, decimal.Decimal("10"))],
    placed_at=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    color=Color.GREEN,
)
ORDER_JSON = {
    "id": str(ORDER_ID),
    "items": [
        {"sku": "a", "quantity": 2, "price": "1.25"},
        {"sku": "b", "quantity": 1, "price": "10"},
    ],
    "placed_at": "2026-01-02T03:04:05+00:00",
    "color": "green",
    "note": None,
}


@pytest.mark.parametrize(
    "annotation",
    [Order, Item, Receipt, Color, Point, Address, datetime.datetime, datetime.date, uuid.UUID,
     decimal.Decimal, pathlib.Path, pathlib.PurePosixPath, list[Order], dict[str, Item],
     Optional[Order], Order | None, Union[int, Color], tuple[Item, ...], set[Color]],
)  # fmt: skip
def test_rich_annotations_convert(annotation: Any) -> None:
    assert needs_conversion(annotation)


@pytest.mark.parametrize(
    "annotation",
    [int, str, float, bool, None, type(None), object, Any, list, dict, list[int],
     dict[str, Any], Optional[int], int | None, tuple[int, str], "Order", bytes, complex],
)  # fmt: skip
def test_plain_annotations_pass_through(annotation: Any) -> None:
    assert not needs_conversion(annotation)


def spec(func: Any) -> TaskSpec:
    return TaskSpec.from_function(func, options=Options())


def charge(order: Order, coupon: str = "") -> Receipt:
    return Receipt(order.id, sum((i.price * i.quantity for i in order.items), decimal.Decimal()),
                   order.placed_at.date(), pathlib.PurePosixPath("/receipts"))  # fmt: skip


def test_input_is_read_by_annotation() -> None:
    args, kwargs = bind_arguments(spec(charge), [ORDER_JSON])
    assert args == (ORDER,)
    assert kwargs == {}
    args, kwargs = bind_arguments(spec(charge), {"order": ORDER_JSON, "coupon": "X"})
    assert kwargs == {"order": ORDER, "coupon": "X"}


def test_result_is_written_by_annotation() -> None:
    result = charge(ORDER)
    encoded = json.loads(encode_result(result, "charge", spec(charge).conversion))
    assert encoded == [{"order_id": str(ORDER_ID), "total": "12.50", "day": "2026-01-02",
                        "folder": "/receipts"}]  # fmt: skip
    assert spec(charge).conversion.structure_result(encoded[0]) == result


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({**ORDER_JSON, "id": "nope"}, "charge: order.id: expected a UUID string, got 'nope'"),
        ({**ORDER_JSON, "items": [{"sku": "a", "quantity": 2, "price": "abc"}]},
         "charge: order.items[0].price: expected a decimal string, got 'abc'"),
        ({**ORDER_JSON, "items": [{"sku": "a", "quantity": "2", "price": "1"}]},
         "charge: order.items[0].quantity: expected an integer, got '2'"),
        ({**ORDER_JSON, "items": [{"sku": "a", "price": "1"}]},
         "charge: order.items[0].quantity: a required field is missing"),
        ({**ORDER_JSON, "placed_at": "yesterday"},
         "charge: order.placed_at: expected an ISO 8601 date-time string, got 'yesterday'"),
        ({**ORDER_JSON, "color": "blue"},
         "charge: order.color: expected one of 'red', 'green', got 'blue'"),
        ({**ORDER_JSON, "items": "many"}, "charge: order.items:"),
        ("an order", "charge: order:"),
    ],
)  # fmt: skip
def test_bad_input_names_task_parameter_and_path(value: Any, message: str) -> None:
    with pytest.raises(TaskInputError) as caught:
        bind_arguments(spec(charge), [value])
    assert str(caught.value).startswith(message), str(caught.value)


def test_a_z_suffix_is_utc() -> None:
    def at(when: datetime.datetime) -> None: ...

    (value,), _ = bind_arguments(spec(at), ["2026-01-02T03:04:05Z"])
    assert value == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def test_unannotated_and_plain_parameters_are_untouched() -> None:
    def plain(a, b: int, c: list[int], d: Any):  # type: ignore[no-untyped-def]
        return a

    conversion = spec(plain).conversion
    assert conversion.enabled is False
    odd = {"x": 1}
    args, _ = bind_arguments(spec(plain), ["3", "not an int", odd, [1.5]])
    assert args == ("3", "not an int", odd, [1.5])  # as JSON gave them, unchecked
    assert args[2] is odd


def test_unresolvable_annotations_keep_plain_json() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\ndef task(x: Missing) -> AlsoMissing:\n    return x\n",
        namespace,
    )
    args, _ = bind_arguments(spec(namespace["task"]), [{"raw": 1}])
    assert args == ({"raw": 1},)


def test_forward_references_resolve_on_first_use() -> None:
    namespace: dict[str, Any] = {}
    exec(
        "from __future__ import annotations\n"
        "import dataclasses\n"
        "def task(p: Later) -> Later:\n    return p\n"
        "@dataclasses.dataclass\nclass Later:\n    n: int\n",
        namespace,
    )
    task_spec = spec(namespace["task"])  # decorated before Later exists
    (value,), _ = bind_arguments(task_spec, [{"n": 4}])
    assert value == namespace["Later"](4)


def test_rich_results_without_an_annotation_are_written_by_type() -> None:
    def untyped():  # type: ignore[no-untyped-def]
        return ORDER

    assert json.loads(encode_result(untyped(), "untyped", spec(untyped).conversion)) == [ORDER_JSON]
    assert unstructure_any([Color.RED, {"k": datetime.date(2026, 1, 1)}]) == [
        "red",
        {"k": "2026-01-01"},
    ]


def test_a_result_that_is_not_json_names_the_task_and_type() -> None:
    class Opaque:
        pass

    def opaque() -> Opaque:
        return Opaque()

    expected = r"^task 'opaque' returned a value that is not JSON: Object of type Opaque is not"
    with pytest.raises(ValueError, match=expected):
        encode_result(opaque(), "opaque", spec(opaque).conversion)

    def wrong() -> Receipt:
        return "not a receipt"  # type: ignore[return-value]

    with pytest.raises(
        ValueError, match=r"^task 'wrong' returned a value that is not JSON: result"
    ):
        encode_result(wrong(), "wrong", spec(wrong).conversion)


def test_caller_arguments_become_the_run_input() -> None:
    conversion = spec(charge).conversion
    assert conversion.unstructure_input((ORDER,), {}) == [ORDER_JSON]
    assert conversion.unstructure_input((), {"order": ORDER, "coupon": "c"}) == {
        "order": ORDER_JSON,
        "coupon": "c",
    }
    with pytest.raises(TypeError, match="positionally or by name"):
        conversion.unstructure_input((ORDER,), {"coupon": "c"})
    with pytest.raises(TypeError):
        conversion.unstructure_input((ORDER, "c", "extra"), {}, check=True)
    with pytest.raises(ConversionError, match=r"^\[0\]: a str cannot be written as Order"):
        conversion.unstructure_input(("not an order",), {})


def test_a_context_parameter_is_left_out() -> None:
    def with_ctx(ctx, order: Order) -> None:  # type: ignore[no-untyped-def]
        return None

    task_spec = spec(with_ctx)
    assert task_spec.conversion.unstructure_input((ORDER,), {}, check=True) == [ORDER_JSON]
    sentinel = object()
    args, _ = bind_arguments(task_spec, [ORDER_JSON], context=sentinel)
    assert args == (sentinel, ORDER)


@pytest.mark.parametrize(
    ("annotation", "value"),
    [
        (Point, Point(1, 2)),
        (Address, {"street": "Main", "since": datetime.date(2020, 5, 6)}),
        (pathlib.Path, pathlib.Path("/tmp/x")),
        (Optional[Item], None),
        (dict[str, Color], {"a": Color.RED}),
        (set[Color], {Color.RED, Color.GREEN}),
        (list[datetime.date], [datetime.date(2026, 12, 2)]),
    ],
)
def test_round_trips(annotation: Any, value: Any) -> None:
    def task(x: Any) -> Any:
        return x

    task.__annotations__ = {"x": annotation, "return": annotation}
    conversion = spec(task).conversion
    written = json.loads(json.dumps(conversion.unstructure_result(value)))
    assert conversion.structure_result(written) == value


@dataclasses.dataclass(frozen=True)
class Leaf:
    name: str
    amount: decimal.Decimal
    when: datetime.date


@attrs.frozen
class Branch:
    leaves: list[Leaf]
    child: Branch | None
    tag: Color


leaves = st.builds(
    Leaf,
    name=st.text(max_size=8),
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=3),
    when=st.dates(),
)
branches = st.recursive(
    st.builds(Branch, leaves=st.lists(leaves, max_size=3), child=st.none(),
              tag=st.sampled_from(Color)),
    lambda inner: st.builds(Branch, leaves=st.lists(leaves, max_size=3), child=inner,
                            tag=st.sampled_from(Color)),
    max_leaves=5,
)  # fmt: skip


@given(branches)
def test_nested_attrs_and_dataclasses_round_trip(value: Branch) -> None:
    def grow(tree: Branch) -> Branch:
        return tree

    task_spec = spec(grow)
    wire = json.loads(encode_result(value, "grow", task_spec.conversion))
    assert wire == [json.loads(json.dumps(wire[0]))]
    (read,), _ = bind_arguments(task_spec, wire)
    assert read == value


def test_checking_annotations_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from render_core.tasks import TaskSpec, Options\n"
        "def plain(a: int, b: list[str]) -> dict: return {}\n"
        "s = TaskSpec.from_function(plain, options=Options())\n"
        "assert not s.conversion.enabled\n"
        "print(sorted(m for m in ('cattrs', 'pydantic', 'decimal', 'uuid') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- pydantic models (used through the pydantic the user's code imported) -------------


def test_pydantic_models_use_their_own_validation_and_dumping() -> None:
    models = pytest.importorskip("tests.support.typed_models_pydantic")
    Cart, Line, total = models.Cart, models.Line, models.total

    task_spec = spec(total)
    (cart,), _ = bind_arguments(task_spec, [{"lines": [{"sku": "a", "price": "1.5"}],
                                             "when": "2026-12-02"}])  # fmt: skip
    assert cart == Cart(lines=[Line(sku="a", price=decimal.Decimal("1.5"))],
                        when=datetime.date(2026, 12, 2))  # fmt: skip
    assert json.loads(encode_result(total(cart), "total", task_spec.conversion)) == [
        {"sku": "total", "price": "1.5"}
    ]
    with pytest.raises(TaskInputError, match=r"^total: cart\.lines\[0\]\.price: "):
        bind_arguments(task_spec, [{"lines": [{"sku": "a", "price": "x"}], "when": "2026-12-02"}])
    assert task_spec.conversion.unstructure_input((cart,), {}) == [
        {"lines": [{"sku": "a", "price": "1.5"}], "when": "2026-12-02"}
    ]
    assert unstructure_any(cart) == {"lines": [{"sku": "a", "price": "1.5"}], "when": "2026-12-02"}


def test_dataclass_tasks_never_import_pydantic() -> None:
    code = (
        "import sys, json\n"
        "from render_core.tasks import TaskSpec, Options, bind_arguments, encode_result\n"
        "from tests.support.typed_models import Order\n"
        "def keep(order: Order) -> Order: return order\n"
        "s = TaskSpec.from_function(keep, options=Options())\n"
        f"(order,), _ = bind_arguments(s, [{ORDER_JSON!r}])\n"
        "encode_result(order, 'keep', s.conversion)\n"
        "print(sorted(m for m in ('cattrs', 'pydantic') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['cattrs']"


# -- input skeletons for the dev server's start form -----------------------------------


def test_skeletons_show_the_shape_to_write() -> None:
    from render_core.convert import skeleton

    assert skeleton(Order) == {
        "id": "00000000-0000-0000-0000-000000000000",
        "items": [{"sku": "", "quantity": 0, "price": "0"}],
        "placed_at": "2026-01-01T00:00:00+00:00",
        "color": "red",
        "note": "",
    }
    assert skeleton(Point) == [0, 0]
    assert skeleton(Address) == {"street": "", "since": "2026-01-01"}
    assert skeleton(dict[str, Color]) == {"key": "red"}
    assert skeleton(Receipt) == {"order_id": "00000000-0000-0000-0000-000000000000",
                                 "total": "0", "day": "2026-01-01", "folder": ""}  # fmt: skip
    # Every skeleton reads back as its type (a valid starting point).
    for tp in (Order, Point, Address, Receipt, list[Item]):

        def task(x: Any) -> None: ...

        task.__annotations__ = {"x": tp}
        bind_arguments(spec(task), [skeleton(tp)])


def test_registration_carries_skeletons_only_when_asked() -> None:
    from render_core.tasks import EXAMPLE_KEY, registration_payload

    plain = registration_payload([spec(charge)])
    assert all(EXAMPLE_KEY not in p for t in plain["tasks"] for p in t["parameters"])
    assert plain["tasks"][0]["parameters"][0] == {"name": "order", "has_default": False,
                                                  "type": "Order"}  # fmt: skip
    extended = registration_payload([spec(charge)], examples=True)
    order, coupon = extended["tasks"][0]["parameters"]
    assert order[EXAMPLE_KEY]["items"] == [{"sku": "", "quantity": 0, "price": "0"}]
    assert EXAMPLE_KEY not in coupon
