"""A function's parameters without :mod:`inspect`, for the worker's cold start.

Importing :mod:`inspect` costs a worker several milliseconds before its task runs.
For a plain Python function (``def`` or ``async def``, not wrapped, with no
``__signature__``), what :func:`inspect.signature` would report is in the function
and its code object; :func:`parameters` reads it there, and any other callable goes
to :mod:`inspect` (imported then). :func:`fits` answers, for such parameters,
whether a call would bind, conservatively: when it says no, the caller asks
:meth:`inspect.Signature.bind` for the exact error.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

__all__ = ["EMPTY", "Param", "fits", "is_coroutine_function", "parameters", "unwrap"]

POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, VAR_POSITIONAL, KEYWORD_ONLY, VAR_KEYWORD = range(5)
_CO_VARARGS = 0x04
_CO_VARKEYWORDS = 0x08
_CO_COROUTINE = 0x80


class _Empty:
    """No default, or no annotation (:data:`inspect.Parameter.empty`'s role)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "EMPTY"


EMPTY: Any = _Empty()


class Param:
    """One parameter: its name, kind (the :data:`POSITIONAL_ONLY`... constants, in
    :class:`inspect.Parameter`'s order), default and annotation (:data:`EMPTY` if none)."""

    __slots__ = ("annotation", "default", "kind", "name")

    def __init__(self, name: str, kind: int, default: Any = EMPTY, annotation: Any = EMPTY) -> None:
        self.name = name
        self.kind = kind
        self.default = default
        self.annotation = annotation


def _is_plain(func: object) -> bool:
    return (
        isinstance(func, types.FunctionType)
        and not hasattr(func, "__wrapped__")
        and not hasattr(func, "__signature__")
    )


def unwrap(func: Any) -> Any:
    """``func`` behind its ``functools.wraps`` wrappers (as :func:`inspect.unwrap`)."""
    seen = {id(func)}
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
        if id(func) in seen:
            raise ValueError(f"wrapper loop when unwrapping {func!r}")
        seen.add(id(func))
    return func


def is_coroutine_function(func: Callable[..., Any]) -> bool:
    """:func:`inspect.iscoroutinefunction` (without :mod:`inspect` for a plain function)."""
    if _is_plain(func):
        return bool(func.__code__.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(func)


def parameters(func: Callable[..., Any]) -> list[Param]:
    """What :func:`inspect.signature` reports of ``func``'s parameters, in order."""
    if not _is_plain(func):
        return _from_inspect(func)
    code = func.__code__
    names = code.co_varnames
    positional = code.co_argcount
    keyword_only = code.co_kwonlyargcount
    annotations = func.__annotations__ or {}
    defaults = func.__defaults__ or ()
    kwdefaults = func.__kwdefaults__ or {}
    first_default = positional - len(defaults)
    params = []
    for index in range(positional):
        name = names[index]
        kind = POSITIONAL_ONLY if index < code.co_posonlyargcount else POSITIONAL_OR_KEYWORD
        default = defaults[index - first_default] if index >= first_default else EMPTY
        params.append(Param(name, kind, default, annotations.get(name, EMPTY)))
    index = positional + keyword_only
    if code.co_flags & _CO_VARARGS:
        name = names[index]
        params.append(Param(name, VAR_POSITIONAL, EMPTY, annotations.get(name, EMPTY)))
        index += 1
    for name in names[positional : positional + keyword_only]:
        default = kwdefaults.get(name, EMPTY)
        params.append(Param(name, KEYWORD_ONLY, default, annotations.get(name, EMPTY)))
    if code.co_flags & _CO_VARKEYWORDS:
        name = names[index]
        params.append(Param(name, VAR_KEYWORD, EMPTY, annotations.get(name, EMPTY)))
    return params


def _from_inspect(func: Callable[..., Any]) -> list[Param]:
    import inspect

    empty = inspect.Parameter.empty
    return [
        Param(
            p.name,
            int(p.kind),
            EMPTY if p.default is empty else p.default,
            EMPTY if p.annotation is empty else p.annotation,
        )
        for p in inspect.signature(func).parameters.values()
    ]


def fits(params: list[Param], args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``f(*args, **kwargs)`` binds to ``params`` (False when unsure)."""
    positional = [p for p in params if p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    var_positional = any(p.kind == VAR_POSITIONAL for p in params)
    var_keyword = any(p.kind == VAR_KEYWORD for p in params)
    if len(args) > len(positional) and not var_positional:
        return False
    bound = {p.name for p in positional[: len(args)]}
    by_name = {p.name: p for p in params}
    for name in kwargs:
        param = by_name.get(name)
        if param is None or param.kind in (POSITIONAL_ONLY, VAR_POSITIONAL, VAR_KEYWORD):
            if not var_keyword:
                return False
            continue  # collected by **kwargs
        if name in bound:
            return False  # given twice
        bound.add(name)
    return all(
        p.name in bound
        for p in params
        if p.default is EMPTY and p.kind in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)
    )
