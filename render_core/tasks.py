"""Task definitions: options and their validation, signatures, binding, JSON checks.

What goes in: Python functions and the options of ``@app.task`` (see the reference
docs). What comes out: :class:`TaskSpec` values (one per task), the
registration payload of the task socket, argument binding for a
run's input, and the JSON encoding of a result. Everything here is pure; running a
task is the worker's job (``render_sdk.worker.runtime``).

Validation happens at decoration time, with messages that name the task and the bad
value: timeouts outside 30..86400 s, unknown plans, negative retry settings,
duplicate names.
"""

from __future__ import annotations

import json
import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from render_core import _signature
from render_core.convert import ConversionError, TaskConversion, unstructure_any
from render_core.values import Value, init_fields

__all__ = [
    "DEFAULT_RETRY_WHEN_UNSET",
    "EXAMPLE_KEY",
    "MAX_TIMEOUT_SECONDS",
    "MIN_TIMEOUT_SECONDS",
    "PLANS",
    "Retry",
    "CONTEXT_NAMES",
    "Options",
    "RETRY_KEYS",
    "TaskInputError",
    "TaskOptions",
    "TaskParameter",
    "TaskRegistry",
    "TaskSpec",
    "bind_arguments",
    "encode_result",
    "registration_payload",
    "task_name",
    "typed_result",
    "typed_start",
]

MIN_TIMEOUT_SECONDS = 30
MAX_TIMEOUT_SECONDS = 86_400
PLANS = ("starter", "standard", "pro", "pro_plus", "pro_max", "pro_ultra")
# The keys of a retry given as a dict (all three are required, as in the official SDKs).
RETRY_KEYS = ("max_retries", "wait_duration_ms", "backoff_scaling")


def _non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Retry.{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"Retry.{name} must be >= 0, got {value}")
    return value


def _scaling(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"Retry.{name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"Retry.{name} must be a finite number >= 0, got {value}")
    return value


class Retry(Value):
    """How a task's failed runs are retried (total attempts: ``max_retries + 1``).

    ``backoff_scaling`` multiplies the delay after each retry; 1.5 when omitted, as
    the reference documents. It travels as ``factor`` on the wire.
    """

    __slots__ = ("max_retries", "wait_duration_ms", "backoff_scaling")  # noqa: RUF023 - repr order
    max_retries: int
    wait_duration_ms: int
    backoff_scaling: float

    def __init__(
        self, max_retries: int, wait_duration_ms: int, backoff_scaling: float = 1.5
    ) -> None:
        init_fields(
            self,
            max_retries=_non_negative_int("max_retries", max_retries),
            wait_duration_ms=_non_negative_int("wait_duration_ms", wait_duration_ms),
            backoff_scaling=_scaling("backoff_scaling", backoff_scaling),
        )

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Retry:
        """``Retry(**value)`` for a dict with exactly the keys ``max_retries``,
        ``wait_duration_ms`` and ``backoff_scaling`` (the official SDKs' form).

        Raises ``ValueError`` naming missing or unknown keys.
        """
        missing = [key for key in RETRY_KEYS if key not in value]
        unknown = sorted(str(key) for key in value if key not in RETRY_KEYS)
        if missing or unknown:
            problems = []
            if missing:
                problems.append("missing " + ", ".join(repr(key) for key in missing))
            if unknown:
                problems.append("unknown " + ", ".join(repr(key) for key in unknown))
            raise ValueError(
                f"a retry dict needs the keys {', '.join(RETRY_KEYS)}: {'; '.join(problems)}"
            )
        return cls(
            max_retries=value["max_retries"],
            wait_duration_ms=value["wait_duration_ms"],
            backoff_scaling=value["backoff_scaling"],
        )

    def delay_ms(self, retry_number: int) -> float:
        """Milliseconds before retry ``retry_number`` (0 for the first retry)."""
        return float(self.wait_duration_ms * self.backoff_scaling**retry_number)


# What the platform applies when a task registers no retry.
DEFAULT_RETRY_WHEN_UNSET = Retry(max_retries=3, wait_duration_ms=1000, backoff_scaling=2.0)


def check_timeout(value: object, where: str) -> int | None:
    """A timeout in whole seconds within 30..86400, or None; else a clear error."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where}: timeout must be a number of seconds, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{where}: timeout must be a whole number of seconds, got {value!r}")
    seconds = int(value)
    if not MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS:
        raise ValueError(
            f"{where}: timeout must be between {MIN_TIMEOUT_SECONDS} and "
            f"{MAX_TIMEOUT_SECONDS} seconds, got {value!r}"
        )
    return seconds


def check_plan(value: object, where: str) -> str | None:
    if value is None:
        return None
    if value not in PLANS:
        raise ValueError(f"{where}: plan must be one of {', '.join(PLANS)}; got {value!r}")
    return str(value)


def check_retry(value: object, where: str) -> Retry | None:
    """A :class:`Retry`, one built from a dict with its three keys, or None."""
    if value is None or isinstance(value, Retry):
        return value
    if isinstance(value, Mapping):
        try:
            return Retry.from_dict(value)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{where}: {exc}") from None
    raise TypeError(
        f"{where}: retry must be a Retry(...) or a dict with {', '.join(RETRY_KEYS)}, "
        f"got {type(value).__name__}"
    )


def _retry_option(value: object) -> Retry | None:
    return check_retry(value, "Options(retry=...)")


def _timeout_option(value: object) -> int | None:
    return check_timeout(value, "Options(timeout_seconds=...)")


def _plan_option(value: object) -> str | None:
    return check_plan(value, "Options(plan=...)")


class Options(Value):
    """A task's options, grouped: ``Options(retry, timeout_seconds, plan)``.

    ``None`` means "not set" (the platform's default applies). ``retry`` may be a
    :class:`Retry` or a dict with its three keys; values are checked here, so a bad
    option fails where it is written. ``@app.task(options=Options(...))`` and the
    separate keywords of ``@app.task`` are the same thing.
    """

    __slots__ = ("retry", "timeout_seconds", "plan")  # noqa: RUF023 - repr order
    retry: Retry | None
    timeout_seconds: int | None
    plan: str | None

    def __init__(
        self,
        retry: Retry | Mapping[str, Any] | None = None,
        timeout_seconds: int | float | None = None,
        plan: str | None = None,
    ) -> None:
        init_fields(
            self,
            retry=_retry_option(retry),
            timeout_seconds=_timeout_option(timeout_seconds),
            plan=_plan_option(plan),
        )

    def payload(self) -> dict[str, Any]:
        """The ``options`` object of the registration; ``{}`` when nothing is set."""
        options: dict[str, Any] = {}
        if self.retry is not None:
            options["retry"] = {
                "max_retries": self.retry.max_retries,
                "wait_duration_ms": self.retry.wait_duration_ms,
                "factor": float(self.retry.backoff_scaling),
            }
        if self.timeout_seconds is not None:
            options["timeout_seconds"] = self.timeout_seconds
        if self.plan is not None:
            options["plan"] = self.plan
        return options


# The name the registration code uses for the same thing.
TaskOptions = Options


class TaskParameter(Value):
    __slots__ = ("name", "has_default", "type", "default_value")  # noqa: RUF023 - repr order
    name: str
    has_default: bool
    type: str | None
    default_value: str | None  # JSON text

    def __init__(
        self,
        *,
        name: str,
        has_default: bool,
        type: str | None = None,
        default_value: str | None = None,
    ) -> None:
        init_fields(
            self, name=name, has_default=has_default, type=type, default_value=default_value
        )

    def payload(self) -> dict[str, Any]:
        item: dict[str, Any] = {"name": self.name, "has_default": self.has_default}
        if self.type is not None:
            item["type"] = self.type
        if self.default_value is not None:
            item["default_value"] = self.default_value
        return item


def _type_text(annotation: Any) -> str | None:
    if annotation is _signature.EMPTY:
        return None
    if isinstance(annotation, str):
        return annotation
    # A class by its own name, whatever its metaclass (an Enum too); ``list[int]``
    # is a GenericAlias, which Python 3.10 still reports as a ``type``.
    if not isinstance(annotation, types.GenericAlias) and isinstance(annotation, type):
        return str(annotation.__qualname__)
    import inspect

    return _TYPING_PREFIX.sub("", inspect.formatannotation(annotation))


# ``typing.`` and ``__main__.`` as module prefixes only: ``numpy.typing.NDArray`` keeps
# its module; a class of the program being run is named as written (``list[Stop]``).
_TYPING_PREFIX = re.compile(r"(?<![\w.])(?:typing|__main__)\.")


def _default_text(default: Any) -> str | None:
    try:
        return json.dumps(default, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        return None  # not JSON: recorded as having a default, without its value


# Unannotated first parameters with these names are the context (the 1.x style).
CONTEXT_NAMES = ("ctx", "context")


def _context_parameter(params: list[_signature.Param]) -> str | None:
    """The name of the leading context parameter, if the task takes one.

    The first parameter is the context when it is annotated ``TaskContext`` (any
    module's: only the name counts, so a string annotation works too), or when it
    is unannotated and named ``ctx`` or ``context``. It must be positional: the
    context is always passed as the first positional argument.
    """
    if not params:
        return None
    first = params[0]
    if first.kind not in (_signature.POSITIONAL_ONLY, _signature.POSITIONAL_OR_KEYWORD):
        return None
    annotation = first.annotation
    if annotation is _signature.EMPTY:
        return first.name if first.name in CONTEXT_NAMES else None
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    return first.name if text.rsplit(".", 1)[-1] == "TaskContext" else None


class TaskSpec(Value):
    """A registered task: its name, function, options and parameters.

    Equal only to itself: two definitions of one function are different tasks.
    """

    __slots__ = (  # noqa: RUF023 - repr order
        "name",
        "func",
        "options",
        "parameters",
        "is_async",
        "context_parameter",
        "conversion",
    )
    name: str
    func: Callable[..., Any]
    options: TaskOptions
    parameters: tuple[TaskParameter, ...]
    is_async: bool
    context_parameter: str | None
    # How typed inputs and results are converted (plain JSON passes through).
    conversion: TaskConversion

    def __init__(
        self,
        *,
        name: str,
        func: Callable[..., Any],
        options: TaskOptions,
        parameters: tuple[TaskParameter, ...],
        is_async: bool,
        context_parameter: str | None = None,
    ) -> None:
        init_fields(self, name=name, func=func, options=options, parameters=parameters)
        init_fields(self, is_async=is_async, context_parameter=context_parameter)
        init_fields(self, conversion=TaskConversion(func, context_parameter))

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__slots__ if name != "conversion"
        )
        return f"TaskSpec({shown})"

    def __reduce__(self) -> tuple[Any, ...]:
        fields = {name: getattr(self, name) for name in self.__slots__ if name != "conversion"}
        return (_rebuild_spec, (fields,))

    @classmethod
    def from_function(
        cls, func: Callable[..., Any], *, name: str | None = None, options: TaskOptions
    ) -> TaskSpec:
        if not callable(func):
            raise TypeError(f"@app.task needs a function, got {type(func).__name__}")
        task_name = name if name is not None else getattr(func, "__name__", None)
        if not isinstance(task_name, str) or not task_name:
            raise ValueError(f"task name must be a non-empty string, got {task_name!r}")
        if "/" in task_name or ":" in task_name or task_name != task_name.strip():
            raise ValueError(
                f"task name {task_name!r} must not contain '/', ':' or spaces at the ends"
            )
        params = _signature.parameters(func)
        context = _context_parameter(params)
        parameters = []
        for param in params:
            if param.name == context:
                continue
            if param.kind in (_signature.VAR_POSITIONAL, _signature.VAR_KEYWORD):
                continue
            has_default = param.default is not _signature.EMPTY
            parameters.append(
                TaskParameter(
                    name=param.name,
                    has_default=has_default,
                    type=_type_text(param.annotation),
                    default_value=_default_text(param.default) if has_default else None,
                )
            )
        return cls(
            name=task_name,
            func=func,
            options=options,
            parameters=tuple(parameters),
            is_async=_signature.is_coroutine_function(func),
            context_parameter=context,
        )

    def fingerprint(self) -> tuple[Any, ...]:
        """What makes two definitions "the same task" (a module imported twice)."""
        # Behind a ``functools.wraps`` decorator every task shares the wrapper's code:
        # compare what it wraps. A callable object is what its class's ``__call__`` does.
        import inspect

        target = inspect.unwrap(self.func)
        code = getattr(target, "__code__", None)
        qualname = getattr(target, "__qualname__", None)
        if code is None:
            call = inspect.getattr_static(type(target), "__call__", None)
            code = getattr(call, "__code__", None)
            qualname = qualname or type(target).__qualname__
        return (
            self.name,
            qualname,
            target if code is None else (code.co_code, code.co_consts, code.co_names),
            self.options,
            self.parameters,
        )

    def payload(self) -> dict[str, Any]:
        """One entry of ``{"tasks": [...]}``."""
        item: dict[str, Any] = {"name": self.name, "options": self.options.payload()}
        if self.parameters:
            item["parameters"] = [param.payload() for param in self.parameters]
        return item


def _rebuild_spec(fields: dict[str, Any]) -> TaskSpec:
    return TaskSpec(**fields)


class TaskRegistry:
    """Tasks by name, in registration order.

    Registering a name twice is an error only when the two definitions differ
    (the same module imported twice in one process registers identical ones).
    """

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}

    def add(self, definition: TaskSpec) -> TaskSpec:
        """Register ``definition``; returns the definition now registered under its name."""
        existing = self._tasks.get(definition.name)
        if existing is None:
            self._tasks[definition.name] = definition
            return definition
        if existing.fingerprint() == definition.fingerprint():
            return existing
        raise ValueError(f"a different task named {definition.name!r} is already registered")

    def get(self, name: str) -> TaskSpec | None:
        return self._tasks.get(name)

    def __iter__(self) -> Any:
        return iter(self._tasks.values())

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def names(self) -> list[str]:
        return list(self._tasks)

    # The official SDKs' registry methods, with the same meaning.

    def register(
        self,
        func: Callable[..., Any],
        name: str | None = None,
        options: Options | None = None,
    ) -> str:
        """Register ``func`` (under ``name``, default its own); returns the task name."""
        spec = TaskSpec.from_function(func, name=name, options=options or Options())
        return self.add(spec).name

    def get_task(self, name: str) -> TaskSpec | None:
        return self._tasks.get(name)

    def get_task_names(self) -> list[str]:
        return list(self._tasks)

    def get_function(self, name: str) -> Callable[..., Any] | None:
        spec = self._tasks.get(name)
        return None if spec is None else spec.func


# The key under which the dev server's registration carries a parameter's input
# skeleton. Sent only when the dev server asks for it (``RENDER_SDK_DEV_EXAMPLES``):
# Render's cloud gets exactly the documented registration.
EXAMPLE_KEY = "x_render_sdk_example"


def registration_payload(
    definitions: Iterable[TaskSpec], *, examples: bool = False
) -> dict[str, Any]:
    """The body of ``POST /register-tasks``: ``{"tasks": [...]}`` in registration order.

    With ``examples``, each parameter whose annotation is converted (see
    :mod:`render_core.convert`) also carries a JSON skeleton of its shape under
    :data:`EXAMPLE_KEY`, for the dev server's dashboard.
    """
    tasks = []
    for definition in definitions:
        item = definition.payload()
        if examples and "parameters" in item:
            samples = definition.conversion.examples()
            for parameter in item["parameters"]:
                if parameter["name"] in samples:
                    parameter[EXAMPLE_KEY] = samples[parameter["name"]]
        tasks.append(item)
    return {"tasks": tasks}


class TaskInputError(TypeError):
    """A run's input does not fit the task's signature (reported as the run's error)."""


def bind_arguments(
    definition: TaskSpec, input_data: Any, *, context: Any = None
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments for calling the task with ``input_data``.

    A JSON array binds positionally, an object by name; defaults in the signature
    apply. ``context`` is passed as the first argument of a task that takes a
    ``TaskContext``. Annotated values are converted (see :mod:`render_core.convert`).
    Raises :class:`TaskInputError` naming the task and parameters, and for a value
    that does not fit its annotation, the field path.
    """
    if input_data is None:
        input_data = []
    if isinstance(input_data, list):
        args: tuple[Any, ...] = tuple(input_data)
        kwargs: dict[str, Any] = {}
    elif isinstance(input_data, Mapping):
        args, kwargs = (), dict(input_data)
    else:
        raise TaskInputError(
            f"task {definition.name!r}: input must be a JSON array (positional arguments) "
            f"or object (named arguments), got {type(input_data).__name__}"
        )
    if definition.context_parameter is not None:
        if definition.context_parameter in kwargs:
            raise TaskInputError(
                f"task {definition.name!r}: {definition.context_parameter!r} is the task "
                "context and cannot be passed as input"
            )
        args = (context, *args)
    try:
        if not _signature.fits(definition.conversion.parameters, args, kwargs):
            definition.conversion.signature.bind(*args, **kwargs)  # raises, naming why
    except TypeError as exc:
        expected = ", ".join(p.name for p in definition.parameters) or "no arguments"
        raise TaskInputError(
            f"task {definition.name!r} cannot take this input ({exc}); it expects: {expected}"
        ) from None
    try:
        return definition.conversion.structure_arguments(args, kwargs)
    except ConversionError as exc:
        raise TaskInputError(f"{definition.name}: {exc}") from None


def task_name(identifier: str) -> str:
    """The task name in a task identifier: ``"workflow-slug/name:version"``, the forms
    without the slug or the version, or a bare name, all name ``name``."""
    return identifier.rsplit("/", 1)[-1].split(":", 1)[0]


def typed_start(
    spec: TaskSpec, slug: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """The ``"slug/name"`` identifier and JSON input for starting ``spec`` from a client.

    The arguments must fit the task's signature (its context left out) and its
    annotations. Raises :class:`~render_core.errors.ValidationError` before any
    request: no slug, mixed positional and named inputs, arguments that do not fit.
    """
    from render_core.errors import ValidationError

    if not slug:
        raise ValidationError(
            f"task {spec.name!r} has no workflow slug: create its app with "
            "Workflows(slug='...'), the slug of the workflow service that runs it",
            operation="start task",
        )
    try:
        input_data = spec.conversion.unstructure_input(args, kwargs, check=True)
        json.dumps(input_data, allow_nan=False)
    except ConversionError as exc:
        raise ValidationError(f"{spec.name}: {exc}", operation="start task") from None
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            f"{spec.name}: the arguments do not fit the task ({exc})", operation="start task"
        ) from None
    return f"{slug}/{spec.name}", input_data


def typed_result(spec: TaskSpec, results: list[Any], task_run_id: str) -> Any:
    """A finished run's result read as ``spec``'s return annotation.

    Raises :class:`~render_core.errors.UnexpectedResponseError` when it does not fit.
    """
    from render_core.errors import UnexpectedResponseError

    value = results[0] if results else None
    try:
        return spec.conversion.structure_result(value)
    except ConversionError as exc:
        raise UnexpectedResponseError(
            f"the result of task run {task_run_id} does not fit {spec.name}'s return "
            f"annotation: {exc}",
            operation="wait for task run",
        ) from None


def encode_result(value: Any, task_name: str, conversion: TaskConversion | None = None) -> bytes:
    """``[value]`` as JSON bytes: always wrapped, strict JSON only.

    With ``conversion``, the value is first written by the task's return annotation
    (a dataclass as an object, a ``datetime`` as ISO 8601...); a value of a known rich
    type is written by its own type when no annotation says how. Raises
    ``ValueError`` naming the task (and the type) for NaN/Infinity or a value that is
    not JSON, so the run fails with a message instead of a corrupt result.
    """
    try:
        if conversion is not None:
            value = conversion.unstructure_result(value)
        return json.dumps([value], allow_nan=False, separators=(",", ":")).encode("utf-8")
    except ConversionError as exc:
        raise ValueError(f"task {task_name!r} returned a value that is not JSON: {exc}") from None
    except TypeError:
        pass  # a rich value with no annotation: written by its own type below
    except ValueError as exc:
        raise ValueError(f"task {task_name!r} returned a value that is not JSON: "
                         f"{_json_reason(exc)}") from None  # fmt: skip
    except RecursionError:
        raise ValueError(
            f"task {task_name!r} returned a value nested too deeply for JSON"
        ) from None
    try:
        return json.dumps([unstructure_any(value)], allow_nan=False, separators=(",", ":")).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"task {task_name!r} returned a value that is not JSON: {_json_reason(exc)}"
        ) from None
    except RecursionError:
        raise ValueError(
            f"task {task_name!r} returned a value nested too deeply for JSON"
        ) from None


def _json_reason(exc: Exception) -> str:
    reason = str(exc)
    if "Out of range float" in reason:
        return "NaN and Infinity are not valid JSON numbers"
    return reason
