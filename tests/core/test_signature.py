"""Parameters and binding without inspect agree with inspect, for every kind of parameter."""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from render_core import _signature


def plain(a, b=2, *args, c, d=4, **kw):  # type: ignore[no-untyped-def]
    return a


def only_positional(a, /, b, *, c=3):  # type: ignore[no-untyped-def]
    return a


def annotated(ctx: Any, x: int, y: list[int] | None = None) -> int:
    return x


async def coroutine(x: int) -> int:
    return x


def no_parameters() -> None:
    return None


def collects(a, /, **kw):  # type: ignore[no-untyped-def]
    return a


@functools.wraps(annotated)
def wrapper(*args: Any, **kwargs: Any) -> Any:
    return annotated(*args, **kwargs)


class Callable_:
    def __call__(self, x: int, y: int = 1) -> int:
        return x


FUNCTIONS: list[Callable[..., Any]] = [
    plain,
    only_positional,
    annotated,
    coroutine,
    no_parameters,
    collects,
    wrapper,
    Callable_(),
    functools.partial(plain, 1),
]


def as_inspect(func: Callable[..., Any]) -> list[tuple[Any, ...]]:
    empty = inspect.Parameter.empty
    return [
        (
            p.name,
            int(p.kind),
            _signature.EMPTY if p.default is empty else p.default,
            _signature.EMPTY if p.annotation is empty else p.annotation,
        )
        for p in inspect.signature(func).parameters.values()
    ]


@pytest.mark.parametrize("func", FUNCTIONS)
def test_parameters_are_what_inspect_reports(func: Callable[..., Any]) -> None:
    ours = [(p.name, p.kind, p.default, p.annotation) for p in _signature.parameters(func)]
    assert ours == as_inspect(func)


@pytest.mark.parametrize("func", FUNCTIONS)
def test_coroutine_functions_are_told_apart(func: Callable[..., Any]) -> None:
    assert _signature.is_coroutine_function(func) == inspect.iscoroutinefunction(func)


ARGS = [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4, 5)]
KWARGS = [{}, {"a": 1}, {"b": 1}, {"c": 1}, {"c": 1, "d": 2}, {"kw": 1}, {"x": 1}, {"args": 1}]


@pytest.mark.parametrize("func", FUNCTIONS)
def test_a_call_fits_only_where_inspect_binds_it(func: Callable[..., Any]) -> None:
    params = _signature.parameters(func)
    signature = inspect.signature(func)
    for args, kwargs in itertools.product(ARGS, KWARGS):
        try:
            signature.bind(*args, **kwargs)
        except TypeError:
            binds = False
        else:
            binds = True
        fits = _signature.fits(params, args, kwargs)
        # Never a yes where inspect says no; a no where it binds only sends the caller
        # to inspect, so the common shapes must say yes.
        assert not fits or binds, (func, args, kwargs)
        if binds and not kwargs.keys() & {"a"}:
            assert fits, (func, args, kwargs)


def test_unwrap_follows_wrappers_and_refuses_a_loop() -> None:
    assert _signature.unwrap(wrapper) is annotated

    def looped() -> None: ...

    looped.__wrapped__ = looped  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="loop"):
        _signature.unwrap(looped)
