"""Small immutable value classes without a class-building library.

Every attempt is a fresh process, and building an ``attrs`` class costs about half
a millisecond of import time. The values on a worker's path (requests, responses,
effects, task-socket messages) are therefore plain classes with ``__slots__`` on
this base, which gives them what they need of a frozen value: equality and hashing
by field, a ``repr`` naming every field, and no assignment after ``__init__``
(subclasses set their fields with :func:`init_fields`).
"""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["FrozenError", "Value", "init_fields"]


class FrozenError(AttributeError):
    """An assignment to a field of a :class:`Value`."""


class Value:
    """Base of slotted immutable values (see the module docstring)."""

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__ or not isinstance(other, Value):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((self.__class__, self._fields()))

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self._show(name)}" for name in self.__slots__)
        return f"{type(self).__name__}({shown})"

    def _show(self, name: str) -> str:
        """How field ``name`` appears in the ``repr`` (override to redact)."""
        return repr(getattr(self, name))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise FrozenError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise FrozenError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle (and copy) through the keyword constructor every subclass has.
        return (_rebuild, (self.__class__, dict(zip(self.__slots__, self._fields(), strict=True))))


def _rebuild(cls: type[Value], fields: dict[str, Any]) -> Value:
    return cls(**fields)


def init_fields(instance: Value, **fields: Any) -> None:
    """Set the fields of a :class:`Value` (in its ``__init__``)."""
    for name, value in fields.items():
        object.__setattr__(instance, name, value)
