"""JSON dialects: turning wire dictionaries into models and back.

One :class:`cattrs.Converter` per dialect, built once at import:

- :data:`REST`: the camelCase JSON of the public REST API;
- :func:`make_converter` with ``Dialect.SNAKE`` builds the snake_case dialect of the
  task socket for the models that live there.

Reading is tolerant: unknown keys are kept in each model's ``extra`` mapping,
unknown statuses become pseudo-members, ``null`` for a list (``results``,
``attempts``, ``input``) reads as ``[]``, and timestamps accept any RFC 3339 form
(``Z`` or an offset, any number of fractional digits: nanoseconds are truncated to
microseconds). Missing *required* keys (``id``, ``status``) and values of the wrong
JSON type raise :class:`DecodeError` with a message naming the key.

Writing is strict: keys are exactly the documented ones, ``None`` values are
omitted, ``extra`` and the client-side ``cursor`` are never written.
"""

from __future__ import annotations

import datetime as _dt
import enum
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from render_core import models

__all__ = [
    "REST",
    "DecodeError",
    "Dialect",
    "format_timestamp",
    "make_converter",
    "parse_timestamp",
    "structure",
    "unstructure",
]

T = TypeVar("T")

# Key that carries the unknown keys into the generated structure function; it
# can never collide with a real JSON key name because it contains a NUL.
_EXTRA_KEY = "\x00extra"
# Models whose ``cursor`` is a client-side convenience (copied from the list item
# wrapper), never part of the object's own JSON.
_CURSOR_OWNERS = (models.TaskRun, models.Task)

# re.ASCII: RFC 3339 digits are ASCII; without it ``\d`` also matches e.g. Arabic-Indic
# digits, which ``int()`` would then happily accept.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})\Z",
    re.ASCII,
)


# The form Render's servers send (and format_timestamp writes): UTC, zero or six
# fraction digits. Such a string is handed to datetime.fromisoformat (C code,
# a tenth of the general path's cost); anything else takes the general path.
_CANONICAL_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(?:\.\d{6})?Z\Z", re.ASCII)


class DecodeError(ValueError):
    """A JSON document does not have the shape of the model it should be."""


class Dialect(enum.Enum):
    CAMEL = "camel"
    SNAKE = "snake"


def parse_timestamp(text: str) -> _dt.datetime:
    """Parse an RFC 3339 timestamp into an aware datetime.

    Fractions beyond microseconds are truncated (Go servers send nanoseconds);
    a leap second ``:60`` is read as ``:59.999999``.
    """
    if not isinstance(text, str):
        raise DecodeError(f"expected an RFC 3339 timestamp string, got {type(text).__name__}")
    if _CANONICAL_UTC.match(text):
        try:
            # "+00:00" rather than .replace(tzinfo=...): parsed in C, and the offset
            # comes back as the timezone.utc singleton.
            return _dt.datetime.fromisoformat(text[:-1] + "+00:00")
        except ValueError:
            pass  # an impossible date: the general path below words the error
    match = _RFC3339.match(text)
    if match is None:
        raise DecodeError(f"not an RFC 3339 timestamp: {text[:64]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    sec = int(second)
    if sec == 60:
        sec, micro = 59, 999_999
    if offset in ("Z", "z"):
        tz: _dt.tzinfo = _dt.timezone.utc
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise DecodeError(f"invalid UTC offset in timestamp: {text[:64]!r}")
        tz = (
            _dt.timezone.utc
            if hours == minutes == 0
            else _dt.timezone(sign * _dt.timedelta(hours=hours, minutes=minutes))
        )
    try:
        return _dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), sec, micro, tzinfo=tz
        )
    except ValueError as exc:
        raise DecodeError(f"invalid timestamp {text[:64]!r}: {exc}") from None


def format_timestamp(value: _dt.datetime) -> str:
    """RFC 3339 with microseconds; UTC is written with ``Z``.

    A naive datetime is refused: the wire has no notion of local time. An offset
    with seconds (historical local mean time in ``zoneinfo``, e.g. ``+00:19:32``)
    has no RFC 3339 spelling, so such a value is written as the same instant in UTC.
    """
    if value.tzinfo is _dt.timezone.utc:
        # The common case, written in C: "...+00:00" becomes "...Z".
        return value.isoformat(timespec="microseconds")[: -len("+00:00")] + "Z"
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("refusing to write a naive datetime; attach a timezone")
    if offset % _dt.timedelta(minutes=1):
        value, offset = value.astimezone(_dt.timezone.utc), _dt.timedelta(0)
    text = value.isoformat(timespec="microseconds")
    if offset == _dt.timedelta(0):
        text = text[: -len("+00:00")] + "Z"
    return text


def _camel(name: str) -> str:
    name = name.rstrip("_")
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _snake(name: str) -> str:
    return name.rstrip("_")


def _structure_str(value: Any, _: type) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Tolerant reader: a server that sends an id as a number still parses.
        return str(value)
    raise DecodeError(f"expected a string, got {type(value).__name__}")


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise DecodeError(f"expected an integer, got {value!r:.40}")


# A dict lookup instead of the Enum call (which also handles unknown values).
_STATUSES = {status.value: status for status in models.TaskRunStatus}


def _structure_status(value: Any, _: type) -> models.TaskRunStatus:
    if not isinstance(value, str):
        raise DecodeError(f"expected a status string, got {type(value).__name__}")
    known = _STATUSES.get(value)
    return known if known is not None else models.TaskRunStatus(value)


def _structure_json_list(value: Any, _: type) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise DecodeError(f"expected a JSON array, got {type(value).__name__}")


def _structure_json_args(value: Any, _: type) -> list[Any] | dict[str, Any]:
    if value is None:
        return []
    if isinstance(value, list | dict):
        return value
    raise DecodeError(f"expected a JSON array or object, got {type(value).__name__}")


def _structure_mapping(value: Any, _: type) -> Mapping[str, Any]:
    if isinstance(value, dict):
        return value
    raise DecodeError(f"expected a JSON object, got {type(value).__name__}")


def _structure_timestamp(value: Any, _: type) -> _dt.datetime:
    return parse_timestamp(value)


def _or_none(hook: Callable[[Any, type], T]) -> Callable[[Any, type], T | None]:
    def structure_optional(value: Any, cls: type) -> T | None:
        return None if value is None else hook(value, cls)

    return structure_optional


def _attrs_classes() -> tuple[type, ...]:
    return (
        models.TaskAttempt,
        models.TaskAttemptDetails,
        models.TaskRun,
        models.TaskRunDetails,
        models.Task,
        models.TaskRunWithCursor,
        models.TaskWithCursor,
        models.Error,
    )


def _model_list_hook(conv: cattrs.Converter, elem: type) -> Callable[[Any, type], list[Any]]:
    """Structure a JSON array of ``elem`` models; ``null`` reads as ``[]``.

    cattrs' own list hook iterates whatever it is given, so ``{}`` or ``""`` would
    silently become ``[]`` and ``null`` would fail with a bare TypeError.
    """

    def structure_list(value: Any, list_type: type) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise DecodeError(f"expected a JSON array, got {type(value).__name__}")
        items: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(conv.structure(item, elem))
            except (DecodeError, cattrs.BaseValidationError) as exc:
                # The note gives transform_error the ``[index]`` part of the path.
                note = IterableValidationNote(
                    f"Structuring {list_type} @ index {index}", index, elem
                )
                # (typeshed for 3.10 knows no ``__notes__``; cattrs reads it there too.)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[union-attr]
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {list_type!r}", errors, list_type)
        return items

    return structure_list


def _register_model(conv: cattrs.Converter, cls: type, rename: Callable[[str], str]) -> None:
    fields = attrs.fields(cls)
    client_only = {"extra", "cursor"} if cls in _CURSOR_OWNERS else {"extra"}
    wire_names = {f.name: rename(f.name) for f in fields if f.name != "extra"}
    known = frozenset(wire_names.values())
    overrides: dict[str, Any] = {name: override(rename=wire) for name, wire in wire_names.items()}
    overrides["extra"] = override(rename=_EXTRA_KEY)
    generated: Callable[[Any, type], Any] = make_dict_structure_fn(cls, conv, **overrides)

    def structure_model(data: Any, _: type) -> Any:
        if not isinstance(data, dict):
            raise DecodeError(
                f"expected a JSON object for {cls.__name__}, got {type(data).__name__}"
            )
        unknown = data.keys() - known
        if unknown:
            data = {**data, _EXTRA_KEY: {key: data[key] for key in unknown}}
        return generated(data, cls)

    conv.register_structure_hook(cls, structure_model)
    conv.register_structure_hook_func(_is_list_of(cls), _model_list_hook(conv, cls))

    written: dict[str, Any] = {
        f.name: override(omit=True) if f.name in client_only else override(rename=rename(f.name))
        for f in fields
    }
    unstructure_fields: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(
        cls, conv, **written
    )

    def unstructure_model(obj: Any) -> dict[str, Any]:
        return {k: v for k, v in unstructure_fields(obj).items() if v is not None}

    conv.register_unstructure_hook(cls, unstructure_model)


def _equals(alias: Any) -> Callable[[Any], bool]:
    return lambda candidate: bool(candidate == alias)


def _is_list_of(elem: type) -> Callable[[Any], bool]:
    return lambda candidate: get_origin(candidate) is list and get_args(candidate) == (elem,)


def make_converter(dialect: Dialect) -> cattrs.Converter:
    """Build a converter for ``dialect``; build once and reuse (hooks are generated code)."""
    conv = cattrs.Converter(detailed_validation=True)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(models.TaskRunStatus, _structure_status)
    conv.register_unstructure_hook(models.TaskRunStatus, lambda status: status.value)
    conv.register_structure_hook(_dt.datetime, _structure_timestamp)
    conv.register_unstructure_hook(_dt.datetime, format_timestamp)
    # Generic aliases cannot go through singledispatch: match them by equality.
    for alias, hook in (
        (list[models.JSONValue], _structure_json_list),
        (list[models.JSONValue] | dict[str, models.JSONValue], _structure_json_args),
        (Mapping[str, models.JSONValue], _structure_mapping),
    ):
        conv.register_structure_hook_func(_equals(alias), hook)
    # Hooks for the optional scalars, registered before the models so that their
    # generated code calls these directly instead of cattrs' per-call dispatch.
    for optional, scalar_hook in (
        (_dt.datetime | None, _structure_timestamp),
        (str | None, _structure_str),
        (int | None, _structure_int),
    ):
        conv.register_structure_hook_func(_equals(optional), _or_none(scalar_hook))
    rename = _camel if dialect is Dialect.CAMEL else _snake
    for cls in _attrs_classes():
        _register_model(conv, cls, rename)
    return conv


REST: cattrs.Converter = make_converter(Dialect.CAMEL)
"""The camelCase converter of the REST API."""


def structure(data: Any, cls: type[T], converter: cattrs.Converter = REST) -> T:
    """Build a ``cls`` from decoded JSON; raises :class:`DecodeError` naming the problem."""
    try:
        return converter.structure(data, cls)
    except DecodeError:
        raise
    except cattrs.BaseValidationError as exc:
        problems = cattrs.transform_error(exc, path=cls.__name__, format_exception=_explain)
        raise DecodeError("; ".join(problems)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"invalid {cls.__name__}: {_explain(exc, None)}") from None


def _explain(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, DecodeError):
        return str(exc)
    return f"invalid value ({type(exc).__name__}: {exc})"


def unstructure(obj: Any, converter: cattrs.Converter = REST) -> Any:
    """The JSON-ready form of a model (or a list of models)."""
    return converter.unstructure(obj)
