"""Typed task inputs and results: JSON values to annotated Python values and back.

What goes in: a task function, its parameters' and return annotations, and the JSON
values of a run's input (or the Python values a caller passes). What comes out: the
values the function is called with, and the JSON value of its result.

The rule is narrow on purpose, so that plain JSON stays byte for byte what it was:

- an annotation is **converted** only when it contains a type JSON cannot carry as
  is: a dataclass, an attrs class, a ``TypedDict``, a ``NamedTuple``, an ``Enum``,
  ``datetime``/``date``, ``UUID``, ``Decimal``, a ``pathlib`` path, or a pydantic
  model, alone or inside ``Optional``/unions and containers (``list[Order]``,
  ``dict[str, Item]``, ``Order | None``...);
- every other annotation (unannotated, ``Any``, ``int``, ``list[int]``, a class this
  module does not know...) passes the JSON value through untouched.

Converted values are checked strictly: an ``int`` field takes an integer and nothing
else, a ``Decimal`` a decimal string or a number, a ``datetime`` an ISO 8601 string.
A value that does not fit raises :class:`ConversionError` with the field path, for
example ``order.amount: expected a decimal string, got 'abc'``.

A task's plan is found when the task is decorated (does it need conversion at
all?) and built the first time a run uses it, so that a module's import, the
registration run and tasks without rich types never import cattrs or pydantic.
pydantic is never imported here: its models are recognised by their class, and used
through the ``pydantic`` module the user's code already imported.

Nothing here performs I/O.
"""

from __future__ import annotations

import enum
import json
import sys
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from render_core import _signature

if TYPE_CHECKING:
    import datetime as _dt
    import decimal
    import inspect
    import pathlib
    import uuid

__all__ = [
    "ConversionError",
    "TaskConversion",
    "encode_json",
    "needs_conversion",
    "skeleton",
    "unstructure_any",
]

_NONE_TYPE = type(None)
_PLAIN = (int, str, float, bool, _NONE_TYPE, object, list, dict, tuple)
# Known by name, so that checking an annotation imports nothing: the user's code has
# imported the class it annotates with.
_RICH_LEAVES = frozenset(
    {
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("uuid", "UUID"),
        ("decimal", "Decimal"),
        ("_pydecimal", "Decimal"),
        ("pathlib", "PurePath"),
    }
)


class ConversionError(ValueError):
    """A value does not fit its annotation; ``str()`` is ``path: reason``."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


def _is_pydantic_model(tp: Any) -> bool:
    if not isinstance(tp, type):
        return False
    return any(
        base.__name__ == "BaseModel" and base.__module__.startswith("pydantic")
        for base in tp.__mro__
    )


def _is_typed_dict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__total__")


def _is_named_tuple(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, tuple) and hasattr(tp, "_fields")


def _is_attrs(tp: Any) -> bool:
    return isinstance(tp, type) and hasattr(tp, "__attrs_attrs__")


def _is_rich_leaf(tp: type) -> bool:
    return any((base.__module__, base.__qualname__) in _RICH_LEAVES for base in tp.__mro__)


def _is_rich_class(tp: Any) -> bool:
    if not isinstance(tp, type):
        return False
    return (
        hasattr(tp, "__dataclass_fields__")
        or _is_attrs(tp)
        or _is_typed_dict(tp)
        or _is_named_tuple(tp)
        or issubclass(tp, enum.Enum)
        or _is_rich_leaf(tp)
        or _is_pydantic_model(tp)
    )


def needs_conversion(tp: Any) -> bool:
    """Whether values of annotation ``tp`` are converted (see the module docstring)."""
    if tp is Any or tp in _PLAIN or isinstance(tp, typing.TypeVar | str):
        return False
    if _is_rich_class(tp):
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return needs_conversion(typing.get_args(tp)[0])
    if origin is typing.Literal or origin is None:
        return False
    return any(needs_conversion(arg) for arg in typing.get_args(tp) if arg is not Ellipsis)


def _contains_pydantic(tp: Any) -> bool:
    if _is_pydantic_model(tp):
        return True
    return any(_contains_pydantic(arg) for arg in typing.get_args(tp))


# -- strict leaf hooks -------------------------------------------------------------------


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _structure_int(value: Any, _tp: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_got(value)}")
    return value


def _structure_float(value: Any, _tp: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {_got(value)}")
    return float(value)


def _structure_str(value: Any, _tp: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_got(value)}")
    return value


def _structure_bool(value: Any, _tp: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_got(value)}")
    return value


def _structure_decimal(value: Any, _tp: Any) -> decimal.Decimal:
    import decimal

    if isinstance(value, str):
        try:
            result = decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError(f"expected a decimal string, got {_got(value)}") from None
        if result.is_finite():
            return result
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return decimal.Decimal(str(value))
    raise ValueError(f"expected a decimal string, got {_got(value)}")


def _structure_uuid(value: Any, _tp: Any) -> uuid.UUID:
    import uuid

    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValueError(f"expected a UUID string, got {_got(value)}")


def _iso(value: str) -> str:
    # Python 3.10's fromisoformat does not read the "Z" suffix most JSON writers use.
    return value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value


def _structure_datetime(value: Any, _tp: Any) -> _dt.datetime:
    import datetime as _dt

    if isinstance(value, str):
        try:
            return _dt.datetime.fromisoformat(_iso(value))
        except ValueError:
            pass
    raise ValueError(f"expected an ISO 8601 date-time string, got {_got(value)}")


def _structure_date(value: Any, _tp: Any) -> _dt.date:
    import datetime as _dt

    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"expected an ISO 8601 date string (YYYY-MM-DD), got {_got(value)}")


def _structure_path(value: Any, tp: type[pathlib.PurePath]) -> pathlib.PurePath:
    if not isinstance(value, str):
        raise ValueError(f"expected a path string, got {_got(value)}")
    return tp(value)


def _structure_enum(value: Any, tp: type[enum.Enum]) -> enum.Enum:
    try:
        return tp(value)
    except ValueError:
        choices = ", ".join(repr(member.value) for member in tp)
        raise ValueError(f"expected one of {choices}, got {_got(value)}") from None


# Two converters, built on first use: a fast one, and one that records where a value
# went wrong, run again only to explain a failure.
_CONVERTERS: dict[bool, Any] = {}


def _converter(detailed: bool = False) -> Any:
    """The cattrs converter for typed tasks (``detailed``: with field paths in errors)."""
    converter = _CONVERTERS.get(detailed)
    if converter is None:
        converter = _CONVERTERS[detailed] = _build_converter(detailed)
    return converter


def _build_converter(detailed: bool) -> Any:
    import datetime as _dt
    import decimal
    import pathlib
    import uuid

    import cattrs

    converter = cattrs.Converter(detailed_validation=detailed)
    for tp, hook in (
        (int, _structure_int),
        (float, _structure_float),
        (str, _structure_str),
        (bool, _structure_bool),
        (decimal.Decimal, _structure_decimal),
        (uuid.UUID, _structure_uuid),
        (_dt.datetime, _structure_datetime),
        (_dt.date, _structure_date),
    ):
        converter.register_structure_hook(tp, hook)
    converter.register_structure_hook_func(
        lambda tp: isinstance(tp, type) and issubclass(tp, pathlib.PurePath), _structure_path
    )
    converter.register_structure_hook_func(
        lambda tp: isinstance(tp, type) and issubclass(tp, enum.Enum), _structure_enum
    )
    _guard_containers(converter)
    converter.register_unstructure_hook(decimal.Decimal, str)
    converter.register_unstructure_hook(uuid.UUID, str)
    converter.register_unstructure_hook(_dt.datetime, _dt.datetime.isoformat)
    converter.register_unstructure_hook(_dt.date, _dt.date.isoformat)
    converter.register_unstructure_hook_func(
        lambda tp: isinstance(tp, type) and issubclass(tp, pathlib.PurePath), str
    )
    return converter


def _guard_containers(converter: Any) -> None:
    """Containers read only from their JSON shape: an array for lists, tuples and sets,
    an object for mappings (a string is iterable, but it is not a list of orders)."""
    from cattrs import cols
    from cattrs.gen import make_dict_structure_fn

    def guarded(inner: Callable[[Any, Any], Any], shape: type | tuple[type, ...], word: str) -> Any:
        def structure(value: Any, tp: Any) -> Any:
            if not isinstance(value, shape):
                raise ValueError(f"expected {word}, got {_got(value)}")
            return inner(value, tp)

        return structure

    def sequence(tp: Any) -> Any:
        origin = typing.get_origin(tp) or tp
        if origin is tuple or cols.is_namedtuple(tp):
            args = typing.get_args(tp)
            if cols.is_namedtuple(tp):
                hints = typing.get_type_hints(tp)
                inner = _named_tuple(converter, tp, [hints.get(f, Any) for f in tp._fields])
            elif len(args) == 2 and args[1] is Ellipsis:
                inner = cols.homogenous_tuple_structure_factory(tp, converter)
            else:
                inner = _fixed_tuple(converter, args)
        elif cols.is_any_set(tp):
            (item,) = typing.get_args(tp) or (Any,)
            inner = _set_of(converter, item, frozenset if cols.is_frozenset(tp) else set)
        else:
            inner = cols.list_structure_factory(tp, converter)
        return guarded(inner, (list, tuple), "a JSON array")

    converter.register_structure_hook_factory(
        lambda tp: (
            (cols.is_sequence(tp) or cols.is_any_set(tp) or cols.is_namedtuple(tp))
            and tp is not str
        ),
        sequence,
    )

    def set_to_list(tp: Any) -> Any:
        (item,) = typing.get_args(tp) or (Any,)
        return lambda value: [converter.unstructure(v, unstructure_as=item) for v in value]

    converter.register_unstructure_hook_factory(cols.is_any_set, set_to_list)
    converter.register_structure_hook_factory(
        lambda tp: cols.is_mapping(tp) and not _is_typed_dict(tp),
        lambda tp: guarded(cols.mapping_structure_factory(tp, converter), dict, "a JSON object"),
    )
    converter.register_structure_hook_factory(
        lambda tp: isinstance(tp, type) and (hasattr(tp, "__dataclass_fields__") or _is_attrs(tp)),
        lambda tp: guarded(make_dict_structure_fn(tp, converter), dict, "a JSON object"),
    )


def _fixed_tuple(converter: Any, items: tuple[Any, ...]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _tp: Any) -> tuple[Any, ...]:
        if len(value) != len(items):
            raise ValueError(f"expected {len(items)} items, got {len(value)}")
        return tuple(converter.structure(v, t) for v, t in zip(value, items, strict=True))

    return structure


def _named_tuple(converter: Any, tp: Any, items: list[Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _tp: Any) -> Any:
        if len(value) != len(items):
            raise ValueError(f"expected {len(items)} items, got {len(value)}")
        return tp(*(converter.structure(v, t) for v, t in zip(value, items, strict=True)))

    return structure


def _set_of(converter: Any, item: Any, kind: type) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _tp: Any) -> Any:
        return kind(converter.structure(v, item) for v in value)

    return structure


def _format_cattrs_error(exc: BaseException, root: str) -> ConversionError:
    from cattrs.v import format_exception, transform_error

    def describe(error: BaseException, tp: Any) -> str:
        if isinstance(error, ValueError) and not type(error).__module__.startswith("cattrs"):
            return str(error)
        if isinstance(error, KeyError):
            return "a required field is missing"
        return format_exception(error, tp)

    messages = transform_error(exc, path="$", format_exception=describe)
    message = messages[0] if messages else str(exc)
    reason, _, where = message.rpartition(" @ ")
    if not reason:
        reason, where = message, "$"
    path = root + where[1:] if where.startswith("$") else root
    extra = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
    return ConversionError(path, reason + extra)


def _format_pydantic_error(exc: Any, root: str) -> ConversionError:
    errors = exc.errors()
    if not errors:
        return ConversionError(root, str(exc))
    first = errors[0]
    path = root + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in first.get("loc", ())
    )
    extra = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConversionError(path, f"{first.get('msg', 'invalid value')}{extra}")


class _Codec:
    """Structure and unstructure one annotation (cattrs, or pydantic for its models)."""

    def __init__(self, tp: Any) -> None:
        self.tp = tp
        self._adapter: Any = None
        if _contains_pydantic(tp):
            pydantic = sys.modules["pydantic"]  # the user's models imported it
            self._adapter = pydantic.TypeAdapter(tp)
            self._pydantic_error = pydantic.ValidationError

    def structure(self, value: Any, path: str) -> Any:
        if self._adapter is not None:
            try:
                return self._adapter.validate_python(value, strict=False)
            except self._pydantic_error as exc:
                raise _format_pydantic_error(exc, path) from None
        try:
            return _converter().structure(value, self.tp)
        except Exception:  # cattrs raises errors of many kinds: find out where, below
            pass
        try:
            return _converter(detailed=True).structure(value, self.tp)
        except Exception as exc:  # exception groups that carry the field paths
            raise _format_cattrs_error(exc, path) from None

    def unstructure(self, value: Any, path: str) -> Any:
        if self._adapter is not None:
            try:
                return self._adapter.dump_python(value, mode="json")
            except Exception as exc:  # pydantic's serialisation errors
                raise ConversionError(path, f"cannot be written as JSON: {exc}") from None
        try:
            return _converter().unstructure(value, unstructure_as=self.tp)
        except Exception as exc:  # a hook met a value of the wrong type
            raise ConversionError(
                path, f"a {type(value).__name__} cannot be written as {_type_name(self.tp)}: {exc}"
            ) from None


def _type_name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def unstructure_any(value: Any) -> Any:
    """A value of a known rich type (a dataclass, a datetime...) as JSON data, by its own
    type; anything else unchanged (for results and arguments with no annotation)."""
    if isinstance(value, str | int | float | bool | _NONE_TYPE):
        return value
    if isinstance(value, list | tuple) and not _is_named_tuple(type(value)):
        return [unstructure_any(item) for item in value]
    if isinstance(value, dict) and not _is_typed_dict(type(value)):
        return {key: unstructure_any(item) for key, item in value.items()}
    if _is_pydantic_model(type(value)):
        return value.model_dump(mode="json")
    if _is_rich_class(type(value)):
        return _converter().unstructure(value)
    return value


_POSITIONAL = (_signature.POSITIONAL_ONLY, _signature.POSITIONAL_OR_KEYWORD)


class TaskConversion:
    """How one task's inputs and result are converted; built on first use.

    ``enabled`` is known at decoration time from the annotations alone (without
    resolving forward references), so tasks with nothing to convert never build
    anything. ``context`` is the name of the task's context parameter, if any.
    """

    def __init__(self, func: Callable[..., Any], context: str | None) -> None:
        self._func = func
        self._context = context
        self.enabled = _may_need_conversion(func)
        self._inputs: dict[str, _Codec] | None = None
        self._result: _Codec | None = None
        self._signature: inspect.Signature | None = None
        self._parameters: list[_signature.Param] | None = None

    @property
    def signature(self) -> inspect.Signature:
        """The function's signature, computed once (this imports :mod:`inspect`)."""
        if self._signature is None:
            import inspect

            self._signature = inspect.signature(self._func)
        return self._signature

    @property
    def parameters(self) -> list[_signature.Param]:
        """The function's parameters, computed once (without :mod:`inspect` for a
        plain function)."""
        if self._parameters is None:
            self._parameters = _signature.parameters(self._func)
        return self._parameters

    def _plan(self) -> dict[str, _Codec]:
        if self._inputs is None:
            try:
                hints = typing.get_type_hints(self._func)
            except Exception:  # an annotation that cannot be resolved: plain JSON, as ever
                hints = {}
            self._inputs = {
                name: _Codec(hint)
                for name, hint in hints.items()
                if name not in ("return", self._context) and needs_conversion(hint)
            }
            result = hints.get("return")
            self._result = _Codec(result) if needs_conversion(result) else None
        return self._inputs

    def prepare(self) -> None:
        """Compute now what first use would (the signature, the conversion plan).

        A process that forks one child per attempt calls this first: each child then
        inherits the result instead of computing it again.
        """
        _ = self.signature
        if self.enabled:
            self._plan()

    @property
    def converts(self) -> bool:
        """Whether anything of this task is converted (resolves the plan)."""
        return self.enabled and (bool(self._plan()) or self._result is not None)

    def structure_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments with JSON values turned into annotated values.

        ``args``/``kwargs`` already fit the signature (the context included). Raises
        :class:`ConversionError` naming the parameter and field path.
        """
        plan = self._plan() if self.enabled else {}
        if not plan:
            return args, kwargs
        positional = [p.name for p in self.parameters if p.kind in _POSITIONAL]
        converted = tuple(
            plan[positional[i]].structure(value, positional[i])
            if i < len(positional) and positional[i] in plan
            else value
            for i, value in enumerate(args)
        )
        named = {
            name: plan[name].structure(value, name) if name in plan else value
            for name, value in kwargs.items()
        }
        return converted, named

    def unstructure_input(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], *, check: bool = False
    ) -> Any:
        """A caller's arguments (no context) as the JSON input of a run: a list or dict.

        With ``check``, or when the task converts anything, the arguments must fit the
        signature (``TypeError`` otherwise). Values are written by their parameter's
        annotation, or by their own type (a dataclass passed to an unannotated
        parameter), else unchanged. Raises :class:`ConversionError` for a value that
        cannot be written as its annotation.
        """
        if args and kwargs:
            raise TypeError("pass the inputs either positionally or by name, not both")
        plan = self._plan() if self.enabled else {}
        signature = self.signature if (check or plan) else None
        if signature is not None:
            placeholder = (None,) if self._context is not None else ()
            signature.bind(*placeholder, *args, **kwargs)  # TypeError when it does not fit
        if kwargs:
            return {n: self._write(plan.get(n), value, n) for n, value in kwargs.items()}
        names = (
            [
                p.name
                for p in signature.parameters.values()
                if p.kind in _POSITIONAL and p.name != self._context
            ]
            if signature is not None
            else []
        )
        return [
            self._write(plan.get(names[i]) if i < len(names) else None, value, f"[{i}]")
            for i, value in enumerate(args)
        ]

    @staticmethod
    def _write(codec: _Codec | None, value: Any, path: str) -> Any:
        return codec.unstructure(value, path) if codec is not None else unstructure_any(value)

    def examples(self) -> dict[str, Any]:
        """A :func:`skeleton` for each converted parameter, by name."""
        if not self.enabled:
            return {}
        return {name: skeleton(codec.tp) for name, codec in self._plan().items()}

    def unstructure_result(self, value: Any) -> Any:
        """The task's return value as JSON data, by the return annotation if converted."""
        if self.enabled:
            self._plan()
            if self._result is not None:
                return self._result.unstructure(value, "result")
        return value

    def structure_result(self, value: Any) -> Any:
        """A child's JSON result as the task's annotated return type."""
        if self.enabled:
            self._plan()
            if self._result is not None:
                return self._result.structure(value, "result")
        return value


_SKELETON_LEAVES = {
    ("datetime", "datetime"): "2026-01-01T00:00:00+00:00",
    ("datetime", "date"): "2026-01-01",
    ("uuid", "UUID"): "00000000-0000-0000-0000-000000000000",
    ("decimal", "Decimal"): "0",
    ("_pydecimal", "Decimal"): "0",
    ("pathlib", "PurePath"): "",
}
_SKELETON_PLAIN: dict[Any, Any] = {int: 0, float: 0.0, str: "", bool: False}


def skeleton(tp: Any, depth: int = 0) -> Any:
    """A JSON value of the shape ``tp`` reads: a starting point for writing an input
    by hand (the dashboard's start form offers it). Recursive types stop at ``null``."""
    if depth > 8:
        return None
    if tp in _SKELETON_PLAIN:
        return _SKELETON_PLAIN[tp]
    origin = typing.get_origin(tp)
    every = typing.get_args(tp)
    args = [a for a in every if a is not Ellipsis]
    if origin is typing.Annotated:
        return skeleton(args[0], depth)
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        options = [a for a in args if a is not _NONE_TYPE]
        return skeleton(options[0], depth) if options else None
    if origin is typing.Literal:
        return args[0] if args else None
    if origin in (list, set, frozenset) or (origin is tuple and Ellipsis in every):
        return [skeleton(args[0], depth + 1)] if args else []
    if origin is tuple:
        return [skeleton(a, depth + 1) for a in args]
    if origin is dict:
        return {"key": skeleton(args[1], depth + 1)} if len(args) == 2 else {}
    if isinstance(tp, type):
        return _class_skeleton(tp, depth)
    return None


def _class_skeleton(tp: type, depth: int) -> Any:
    for base in tp.__mro__:
        leaf = _SKELETON_LEAVES.get((base.__module__, base.__qualname__))
        if leaf is not None:
            return leaf
    if issubclass(tp, enum.Enum):
        members = list(tp)
        return members[0].value if members else None
    if _is_pydantic_model(tp):
        fields = getattr(tp, "model_fields", {})
        return {name: skeleton(field.annotation, depth + 1) for name, field in fields.items()}
    if not (hasattr(tp, "__dataclass_fields__") or _is_attrs(tp) or _is_typed_dict(tp)
            or _is_named_tuple(tp)):  # fmt: skip
        return None
    try:
        hints = typing.get_type_hints(tp)
    except Exception:  # unresolvable annotations: the field names alone
        hints = {}
    if _is_named_tuple(tp):
        return [skeleton(hints.get(name, Any), depth + 1) for name in getattr(tp, "_fields", ())]
    if _is_attrs(tp):
        names = [a.name for a in getattr(tp, "__attrs_attrs__", ())]
    elif hasattr(tp, "__dataclass_fields__"):
        names = list(tp.__dataclass_fields__)
    else:
        names = list(hints)
    return {name: skeleton(hints.get(name, Any), depth + 1) for name in names}


def _may_need_conversion(func: Callable[..., Any]) -> bool:
    """From the raw annotations: could any of them need conversion?

    String annotations (``from __future__ import annotations``) are not resolved
    here (their classes may be defined later in the module): a string naming anything
    but a JSON-native type counts as "maybe", and the plan decides on first use.
    """
    annotations: Mapping[str, Any] = getattr(_signature.unwrap(func), "__annotations__", {}) or {}
    for annotation in annotations.values():
        if isinstance(annotation, str):
            if annotation.strip() not in _PLAIN_NAMES:
                return True
        elif needs_conversion(annotation):
            return True
    return False


_PLAIN_NAMES = frozenset(
    {"int", "str", "float", "bool", "None", "object", "Any", "typing.Any", "list", "dict"}
    | {f"list[{t}]" for t in ("int", "str", "float", "bool", "Any")}
    | {f"dict[str, {t}]" for t in ("int", "str", "float", "bool", "Any")}
    | {"TaskContext", "render.TaskContext", "render_sdk.TaskContext"}
)


def encode_json(value: Any) -> bytes:
    """``value`` as compact, strict JSON bytes (``ValueError``/``TypeError`` otherwise)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode("utf-8")
