"""Tests for render_core.tasks: options, signatures, the registry, binding, results.

Pure: functions are defined here or compiled from source text with ``exec`` (to get
``from __future__ import annotations`` behaviour and "the same module imported
twice"); nothing runs a worker. This module deliberately does *not* use
``from __future__ import annotations``: several tests need real annotation objects.
"""

import enum
import functools
import json
import math
import re
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_core.tasks import (
    DEFAULT_RETRY_WHEN_UNSET,
    MAX_TIMEOUT_SECONDS,
    MIN_TIMEOUT_SECONDS,
    PLANS,
    Options,
    Retry,
    TaskInputError,
    TaskOptions,
    TaskParameter,
    TaskRegistry,
    TaskSpec,
    bind_arguments,
    check_plan,
    check_retry,
    check_timeout,
    encode_result,
    registration_payload,
    task_name,
)

NO_OPTIONS = TaskOptions()

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


class TaskContext:
    """Stands in for the SDK's context class: only its name matters to the core."""


class Point:
    pass


class Color(enum.Enum):
    RED = "red"


# A class whose module ends in ``typing`` (like ``numpy.typing``): not a typing prefix.
NumpyLike: Any = type("NDArray", (), {"__module__": "numpy.typing"})
MainLike: Any = type("Stop", (), {"__module__": "__main__"})


def define(source: str, name: str) -> Any:
    """Compile ``source`` as a fresh module and return its ``name`` (no import system)."""
    namespace: dict[str, Any] = {"__name__": "user_tasks"}
    exec(compile(source, "user_tasks.py", "exec"), namespace)
    return namespace[name]


def one_parameter(annotation: Any) -> Any:
    def task(x):  # type: ignore[no-untyped-def]
        return x

    task.__annotations__ = {"x": annotation}
    return task


def definition(func: Any, **options: Any) -> TaskSpec:
    return TaskSpec.from_function(func, options=TaskOptions(**options))


def definition_named(func: Any, name: str, **options: Any) -> TaskSpec:
    return TaskSpec.from_function(func, name=name, options=TaskOptions(**options))


# --- Retry ------------------------------------------------------------------------


def test_retry_backoff_scaling_defaults_to_one_and_a_half() -> None:
    retry = Retry(max_retries=3, wait_duration_ms=1000)
    assert retry.backoff_scaling == 1.5
    assert Retry(3, 1000) == retry
    assert Retry(0, 0, 2).backoff_scaling == 2


def test_retry_is_frozen() -> None:
    retry = Retry(3, 1000)
    with pytest.raises(AttributeError, match="immutable"):
        retry.max_retries = 5  # type: ignore[misc]


def test_default_retry_when_unset_is_the_platform_default() -> None:
    platform_default = Retry(max_retries=3, wait_duration_ms=1000, backoff_scaling=2.0)
    assert platform_default == DEFAULT_RETRY_WHEN_UNSET


@pytest.mark.parametrize(
    ("field", "value", "error", "fragment"),
    [
        ("max_retries", -1, ValueError, "Retry.max_retries must be >= 0, got -1"),
        ("max_retries", True, TypeError, "Retry.max_retries must be an int, got bool"),
        ("max_retries", 3.0, TypeError, "Retry.max_retries must be an int, got float"),
        ("max_retries", None, TypeError, "Retry.max_retries must be an int, got NoneType"),
        ("wait_duration_ms", -1, ValueError, "Retry.wait_duration_ms must be >= 0"),
        ("wait_duration_ms", "1000", TypeError, "Retry.wait_duration_ms must be an int, got str"),
        ("wait_duration_ms", False, TypeError, "Retry.wait_duration_ms must be an int"),
        ("backoff_scaling", -0.5, ValueError, "Retry.backoff_scaling must be a finite number"),
        ("backoff_scaling", math.nan, ValueError, "Retry.backoff_scaling must be a finite number"),
        ("backoff_scaling", math.inf, ValueError, "Retry.backoff_scaling"),
        ("backoff_scaling", -math.inf, ValueError, "Retry.backoff_scaling"),
        ("backoff_scaling", True, TypeError, "Retry.backoff_scaling must be a number, got bool"),
        ("backoff_scaling", "2", TypeError, "Retry.backoff_scaling must be a number, got str"),
    ],
)
def test_retry_rejects_bad_values_naming_the_field(
    field: str, value: object, error: type[Exception], fragment: str
) -> None:
    arguments: dict[str, object] = {"max_retries": 3, "wait_duration_ms": 1000, field: value}
    with pytest.raises(error) as caught:
        Retry(**arguments)  # type: ignore[arg-type]
    assert fragment in str(caught.value)


@pytest.mark.parametrize("scaling", [0, 0.0, 1, 1.5, 2.0, 10])
def test_retry_accepts_non_negative_finite_scaling(scaling: float) -> None:
    assert Retry(0, 0, scaling).backoff_scaling == scaling


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        (Retry(3, 1000, 2.0), [1000.0, 2000.0, 4000.0, 8000.0]),
        (Retry(3, 1000), [1000.0, 1500.0, 2250.0, 3375.0]),
        (Retry(3, 1000, 1), [1000.0, 1000.0, 1000.0, 1000.0]),
        (Retry(3, 0, 2.0), [0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_delay_ms_grows_by_the_scaling(retry: Retry, expected: list[float]) -> None:
    delays = [retry.delay_ms(n) for n in range(4)]
    assert delays == expected
    assert all(isinstance(delay, float) for delay in delays)


@given(
    wait=st.integers(min_value=0, max_value=10**6),
    scaling=st.floats(min_value=0, max_value=4),
    n=st.integers(min_value=0, max_value=20),
)
def test_delay_ms_is_the_formula(wait: int, scaling: float, n: int) -> None:
    assert Retry(1, wait, scaling).delay_ms(n) == pytest.approx(wait * scaling**n)


# --- check_timeout, check_plan, check_retry -----------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(30, 30), (86_400, 86_400), (60, 60), (7200, 7200), (60.0, 60), (None, None)],
)
def test_check_timeout_accepts_the_inclusive_range(value: object, expected: int | None) -> None:
    result = check_timeout(value, "@app.task(add)")
    assert result == expected
    assert result is None or type(result) is int


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        (29, ValueError, "between 30 and 86400 seconds, got 29"),
        (86_401, ValueError, "between 30 and 86400 seconds, got 86401"),
        (0, ValueError, "between 30 and 86400"),
        (-60, ValueError, "between 30 and 86400"),
        (29.0, ValueError, "between 30 and 86400"),
        (1.5, ValueError, "whole number of seconds, got 1.5"),
        (60.5, ValueError, "whole number of seconds"),
        (math.nan, ValueError, "whole number of seconds"),
        (math.inf, ValueError, "whole number of seconds"),
        (True, TypeError, "timeout must be a number of seconds, got True"),
        ("60", TypeError, "timeout must be a number of seconds, got '60'"),
        ([60], TypeError, "timeout must be a number of seconds"),
    ],
)
def test_check_timeout_rejects_with_the_where_label(
    value: object, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        check_timeout(value, "@app.task(add)")
    assert str(caught.value).startswith("@app.task(add): ")
    assert fragment in str(caught.value)


@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_check_timeout_accepts_exactly_the_documented_range(seconds: int) -> None:
    if MIN_TIMEOUT_SECONDS <= seconds <= MAX_TIMEOUT_SECONDS:
        assert check_timeout(seconds, "x") == seconds
    else:
        with pytest.raises(ValueError, match=r"^x: timeout must be between"):
            check_timeout(seconds, "x")


def test_plans_are_the_six_documented_ones() -> None:
    assert PLANS == ("starter", "standard", "pro", "pro_plus", "pro_max", "pro_ultra")


@pytest.mark.parametrize("plan", PLANS)
def test_check_plan_accepts_every_plan(plan: str) -> None:
    assert check_plan(plan, "Workflows(default_plan=...)") == plan


def test_check_plan_none_means_unset() -> None:
    assert check_plan(None, "x") is None


@pytest.mark.parametrize("plan", ["Starter", "free", "", " pro", "pro-plus", 1, ["pro"]])
def test_check_plan_rejects_others_naming_the_allowed_list(plan: object) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(plan))) as caught:
        check_plan(plan, "Workflows(default_plan=...)")
    message = str(caught.value)
    assert message.startswith("Workflows(default_plan=...): plan must be one of ")
    assert "starter, standard, pro, pro_plus, pro_max, pro_ultra" in message
    assert repr(plan) in message


def test_check_retry() -> None:
    retry = Retry(1, 2)
    assert check_retry(retry, "x") is retry
    assert check_retry(None, "x") is None
    with pytest.raises(
        TypeError,
        match=r"^@app\.task\(add\): retry must be a Retry\(\.\.\.\) or a dict with "
        r"max_retries, wait_duration_ms, backoff_scaling, got list$",
    ):
        check_retry([3, 1000], "@app.task(add)")


def test_a_retry_dict_becomes_a_retry() -> None:
    given = {"max_retries": 3, "wait_duration_ms": 1000, "backoff_scaling": 2.0}
    assert check_retry(given, "x") == Retry(3, 1000, 2.0)
    assert Retry.from_dict(given) == Retry(3, 1000, 2.0)
    assert Options(retry=given).retry == Retry(3, 1000, 2.0)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"max_retries": 3, "wait_duration_ms": 1000}, "missing 'backoff_scaling'"),
        ({}, "missing 'max_retries', 'wait_duration_ms', 'backoff_scaling'"),
        (
            {"max_retries": 3, "wait_duration_ms": 1, "backoff_scaling": 2, "factor": 2},
            "unknown 'factor'",
        ),
    ],
)
def test_a_retry_dict_with_wrong_keys_names_them(given: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=r"^task 'add': a retry dict needs the keys") as caught:
        check_retry(given, "task 'add'")
    assert problem in str(caught.value)


def test_a_retry_dict_with_bad_values_is_checked_like_a_retry() -> None:
    bad = {"max_retries": -1, "wait_duration_ms": 1, "backoff_scaling": 2}
    with pytest.raises(ValueError, match=r"^x: Retry\.max_retries must be >= 0, got -1$"):
        check_retry(bad, "x")


def test_options_are_positional_and_checked() -> None:
    options = Options(Retry(1, 2), 60, "starter")
    assert (options.retry, options.timeout_seconds, options.plan) == (Retry(1, 2), 60, "starter")
    assert Options() == TaskOptions()
    with pytest.raises(ValueError, match=r"^Options\(timeout_seconds=\.\.\.\): timeout must"):
        Options(timeout_seconds=5)
    with pytest.raises(ValueError, match=r"^Options\(plan=\.\.\.\): plan must be one of"):
        Options(plan="huge")
    with pytest.raises(TypeError, match=r"^Options\(retry=\.\.\.\): retry must be"):
        Options(retry=3)  # type: ignore[arg-type]


# --- TaskOptions --------------------------------------------------------------------


def test_options_payload_is_empty_when_nothing_is_set() -> None:
    assert TaskOptions().payload() == {}


def test_options_payload_golden_wire_d5() -> None:
    options = TaskOptions(retry=Retry(3, 1000, 1.5), timeout_seconds=60, plan="starter")
    expected = {
        "retry": {"max_retries": 3, "wait_duration_ms": 1000, "factor": 1.5},
        "timeout_seconds": 60,
        "plan": "starter",
    }
    assert options.payload() == expected
    assert json.dumps(options.payload()) == json.dumps(expected)


def test_options_payload_factor_is_always_a_float() -> None:
    payload = TaskOptions(retry=Retry(2, 500, 2)).payload()
    assert payload == {"retry": {"max_retries": 2, "wait_duration_ms": 500, "factor": 2.0}}
    assert type(payload["retry"]["factor"]) is float
    assert (
        json.dumps(payload)
        == '{"retry": {"max_retries": 2, "wait_duration_ms": 500, "factor": 2.0}}'
    )


def test_options_payload_has_only_what_is_set() -> None:
    assert TaskOptions(timeout_seconds=30).payload() == {"timeout_seconds": 30}
    assert TaskOptions(plan="pro_max").payload() == {"plan": "pro_max"}
    assert TaskOptions(retry=Retry(0, 0)).payload() == {
        "retry": {"max_retries": 0, "wait_duration_ms": 0, "factor": 1.5}
    }


# --- TaskSpec.from_function: parameters ----------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (int, "int"),
        (str, "str"),
        (list[int], "list[int]"),
        (dict[str, list[int]], "dict[str, list[int]]"),
        (typing.Optional[int], "Optional[int]"),  # noqa: UP045
        (typing.Union[int, str], "Union[int, str]"),  # noqa: UP007
        (int | None, "int | None"),
        (typing.List[typing.Optional[int]], "List[Optional[int]]"),  # noqa: UP006, UP045
        (typing.Any, "Any"),
        (Point, "Point"),
        (Color, "Color"),
        (list[Point], f"list[{__name__}.Point]"),
        (list[NumpyLike], "list[numpy.typing.NDArray]"),
        (list[MainLike], "list[Stop]"),  # a class of the program being run
        (None, "None"),
        ("list[int]", "list[int]"),
        ("Point", "Point"),
    ],
)
def test_parameter_type_is_the_full_type_text(annotation: Any, expected: str) -> None:
    (parameter,) = definition(one_parameter(annotation)).parameters
    assert parameter == TaskParameter(name="x", has_default=False, type=expected)


def test_string_annotations_from_future_import_are_kept_verbatim() -> None:
    task = define(
        "from __future__ import annotations\n"
        "from typing import Optional\n"
        "def scale(values: list[int], factor: Optional[float] = None, *, unit: int | str = 'm'):\n"
        "    return values\n",
        "scale",
    )
    assert definition(task).parameters == (
        TaskParameter(name="values", has_default=False, type="list[int]"),
        TaskParameter(
            name="factor", has_default=True, type="Optional[float]", default_value="null"
        ),
        TaskParameter(name="unit", has_default=True, type="int | str", default_value='"m"'),
    )


@pytest.mark.parametrize(
    ("default", "expected"),
    [
        (2, "2"),
        (None, "null"),
        ("x", '"x"'),
        (True, "true"),
        (1.5, "1.5"),
        ([1, 2], "[1,2]"),
        ({"a": [1, None]}, '{"a":[1,null]}'),
        ("é", '"\\u00e9"'),
        (object(), None),
        ({1, 2}, None),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_default_value_is_json_text_or_absent(default: object, expected: str | None) -> None:
    def task(x=default):  # type: ignore[no-untyped-def]
        return x

    (parameter,) = definition(task).parameters
    assert parameter.has_default is True
    assert parameter.default_value == expected
    payload = parameter.payload()
    assert ("default_value" in payload) is (expected is not None)
    if expected is not None:
        assert json.loads(expected) == default


def test_variadic_parameters_are_skipped_and_unannotated_ones_have_no_type() -> None:
    def task(a, *args: int, b: int = 1, **kwargs: str):  # type: ignore[no-untyped-def]
        return a

    result = definition(task)
    assert result.parameters == (
        TaskParameter(name="a", has_default=False),
        TaskParameter(name="b", has_default=True, type="int", default_value="1"),
    )
    assert result.parameters[0].payload() == {"name": "a", "has_default": False}


def test_no_parameters() -> None:
    def ping() -> str:
        return "pong"

    result = definition(ping)
    assert result.parameters == ()
    assert result.context_parameter is None
    assert result.payload() == {"name": "ping", "options": {}}


# --- TaskSpec.from_function: context, async, names -------------------------


def test_a_leading_task_context_class_is_the_context_parameter() -> None:
    def add(ctx: TaskContext, a: int, b: int = 2) -> int:
        return a + b

    result = definition(add)
    assert result.context_parameter == "ctx"
    assert [parameter.name for parameter in result.parameters] == ["a", "b"]


@pytest.mark.parametrize("annotation", ["TaskContext", "render_sdk.TaskContext"])
def test_a_leading_task_context_string_is_the_context_parameter(annotation: str) -> None:
    def add(context, a: int):  # type: ignore[no-untyped-def]
        return a

    add.__annotations__ = {"context": annotation, "a": int}
    result = definition(add)
    assert result.context_parameter == "context"
    assert result.parameters == (TaskParameter(name="a", has_default=False, type="int"),)


def test_task_context_under_future_annotations() -> None:
    task = define(
        "from __future__ import annotations\n"
        "class TaskContext: ...\n"
        "async def square(ctx: TaskContext, a: int) -> int:\n"
        "    return a * a\n",
        "square",
    )
    result = definition(task)
    assert result.context_parameter == "ctx"
    assert result.is_async is True
    assert result.parameters == (TaskParameter(name="a", has_default=False, type="int"),)


@pytest.mark.parametrize("annotation", [int, "Context", "TaskContexts", None, "MyTaskContext"])
def test_other_first_parameters_are_ordinary(annotation: Any) -> None:
    result = definition(one_parameter(annotation))
    assert result.context_parameter is None
    assert [parameter.name for parameter in result.parameters] == ["x"]


def test_task_context_only_counts_as_the_first_parameter() -> None:
    def task(a: int, ctx: TaskContext) -> int:
        return a

    result = definition(task)
    assert result.context_parameter is None
    assert [parameter.type for parameter in result.parameters] == ["int", "TaskContext"]


def test_is_async() -> None:
    async def fetch() -> int:
        return 1

    def compute() -> int:
        return 1

    assert definition(fetch).is_async is True
    assert definition(compute).is_async is False


def test_name_defaults_to_the_function_name_and_can_be_given() -> None:
    def calculate_square(a: int) -> int:
        return a * a

    assert definition(calculate_square).name == "calculate_square"
    named = TaskSpec.from_function(calculate_square, name="calc_square", options=NO_OPTIONS)
    assert named.name == "calc_square"
    assert named.func is calculate_square
    assert named.options is NO_OPTIONS


@pytest.mark.parametrize("name", ["", "a/b", "a:b", " x", "x ", "\tx"])
def test_invalid_names_are_rejected(name: str) -> None:
    def task() -> None:
        return None

    with pytest.raises(ValueError, match=re.escape(repr(name))):
        TaskSpec.from_function(task, name=name, options=NO_OPTIONS)


def test_names_with_inner_spaces_dots_and_dashes_are_fine() -> None:
    def task() -> None:
        return None

    for name in ["my task", "math.square", "calc-square", "élan"]:
        assert TaskSpec.from_function(task, name=name, options=NO_OPTIONS).name == name


def test_a_non_string_name_is_rejected() -> None:
    def task() -> None:
        return None

    with pytest.raises(ValueError, match="non-empty string, got 5"):
        TaskSpec.from_function(task, name=5, options=NO_OPTIONS)  # type: ignore[arg-type]


def test_a_nameless_callable_needs_a_name() -> None:
    def power(base: int, exponent: int) -> int:
        return int(base**exponent)

    square = functools.partial(power, exponent=2)
    with pytest.raises(ValueError, match="non-empty string, got None"):
        TaskSpec.from_function(square, options=NO_OPTIONS)
    named = TaskSpec.from_function(square, name="square", options=NO_OPTIONS)
    assert [parameter.name for parameter in named.parameters] == ["base", "exponent"]


@pytest.mark.parametrize("thing", [5, "task", None, [print]])
def test_a_non_callable_is_rejected(thing: object) -> None:
    with pytest.raises(TypeError, match=f"needs a function, got {type(thing).__name__}"):
        TaskSpec.from_function(thing, options=NO_OPTIONS)  # type: ignore[arg-type]


def test_definition_payload_golden_wire_d5() -> None:
    def add(ctx: TaskContext, a: int, b: int = 2) -> int:
        return a + b

    options = TaskOptions(retry=Retry(3, 1000, 1.5), timeout_seconds=60, plan="starter")
    fields = {"retry": options.retry, "timeout_seconds": 60, "plan": options.plan}
    assert definition(add, **fields).payload() == {
        "name": "add",
        "options": {
            "retry": {"max_retries": 3, "wait_duration_ms": 1000, "factor": 1.5},
            "timeout_seconds": 60,
            "plan": "starter",
        },
        "parameters": [
            {"name": "a", "has_default": False, "type": "int"},
            {"name": "b", "has_default": True, "type": "int", "default_value": "2"},
        ],
    }


# --- TaskRegistry ------------------------------------------------------------------------

TASKS_SOURCE = """
def add(a: int, b: int = 2) -> int:
    return a + b

async def total(values: list[int]) -> int:
    return sum(v for v in values)
"""


def test_registry_keeps_registration_order() -> None:
    registry = TaskRegistry()
    names = ["zeta", "alpha", "mid", "beta"]
    added = [registry.add(definition_named(one_parameter(int), name)) for name in names]
    assert registry.names() == names
    assert list(registry) == added
    assert len(registry) == 4
    assert "alpha" in registry
    assert "gamma" not in registry
    assert 5 not in registry
    assert registry.get("mid") is added[2]
    assert registry.get("gamma") is None


def test_registering_the_same_function_again_returns_the_first_definition() -> None:
    registry = TaskRegistry()
    add = define(TASKS_SOURCE, "add")
    first = registry.add(definition(add))
    again = definition(add)
    assert registry.add(again) is first
    assert len(registry) == 1


def test_a_module_imported_twice_registers_identical_definitions() -> None:
    registry = TaskRegistry()
    first = [registry.add(definition(define(TASKS_SOURCE, name))) for name in ("add", "total")]
    second = [registry.add(definition(define(TASKS_SOURCE, name))) for name in ("add", "total")]
    assert second[0] is first[0]
    assert second[1] is first[1]
    assert registry.names() == ["add", "total"]


@pytest.mark.parametrize(
    ("source", "options"),
    [
        ("def add(a: int, b: int = 2) -> int:\n    return a - b\n", {}),
        ("def add(a: int, b: int = 3) -> int:\n    return a + b\n", {}),
        ("def add(a: int, b: float = 2) -> int:\n    return a + b\n", {}),
        ("def add(a: int, c: int = 2) -> int:\n    return a + c\n", {}),
        ("def add(a: int, b: int = 2) -> int:\n    return a + b\n", {"timeout_seconds": 60}),
        ("def add(a: int, b: int = 2) -> int:\n    return a + b\n", {"retry": Retry(1, 1)}),
        ("def add(a: int, b: int = 2) -> int:\n    return abs(a) + b\n", {}),
    ],
)
def test_a_different_task_under_the_same_name_is_an_error(
    source: str, options: dict[str, Any]
) -> None:
    registry = TaskRegistry()
    registry.add(definition(define(TASKS_SOURCE, "add")))
    with pytest.raises(ValueError, match="a different task named 'add' is already registered"):
        registry.add(definition(define(source, "add"), **options))
    assert len(registry) == 1


def test_a_renamed_function_with_the_same_body_under_one_name_differs() -> None:
    registry = TaskRegistry()
    registry.add(definition_named(define(TASKS_SOURCE, "add"), "sum"))
    other = define(TASKS_SOURCE.replace("def add", "def plus"), "plus")
    with pytest.raises(ValueError, match="'sum'"):
        registry.add(definition_named(other, "sum"))


def logged(func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    return wrapper


def test_decorated_tasks_are_compared_by_what_they_wrap() -> None:
    # Every wrapper shares one code object: without unwrapping, a different body
    # behind the same decorator would be taken for the same task.
    registry = TaskRegistry()
    first = registry.add(definition(logged(define(TASKS_SOURCE, "add"))))
    assert registry.add(definition(logged(define(TASKS_SOURCE, "add")))) is first
    minus = define(TASKS_SOURCE.replace("a + b", "a - b"), "add")
    with pytest.raises(ValueError, match="'add'"):
        registry.add(definition(logged(minus)))


CALLABLES_SOURCE = """
class Doubler:
    def __call__(self, x: int) -> int:
        return 2 * x

class Tripler:
    def __call__(self, x: int) -> int:
        return 3 * x
"""


def test_callable_objects_are_compared_by_their_call_method() -> None:
    registry = TaskRegistry()
    first = registry.add(definition_named(define(CALLABLES_SOURCE, "Doubler")(), "scale"))
    twin = define(CALLABLES_SOURCE, "Doubler")()
    assert registry.add(definition_named(twin, "scale")) is first
    with pytest.raises(ValueError, match="'scale'"):
        registry.add(definition_named(define(CALLABLES_SOURCE, "Tripler")(), "scale"))


def test_callables_without_code_are_compared_by_identity() -> None:
    registry = TaskRegistry()
    first = registry.add(definition_named(len, "size"))
    assert registry.add(definition_named(len, "size")) is first
    with pytest.raises(ValueError, match="'size'"):
        registry.add(definition_named(abs, "size"))
    square = functools.partial(pow, exp=2)
    partial_first = registry.add(definition_named(square, "square"))
    assert registry.add(definition_named(square, "square")) is partial_first


def test_registration_payload_golden() -> None:
    def add(ctx: TaskContext, a: int, b: int = 2) -> int:
        return a + b

    async def fan_out(names: list[str], *, limit: int | None = None) -> dict[str, int]:
        return {}

    def ping():  # type: ignore[no-untyped-def]
        return "pong"

    registry = TaskRegistry()
    registry.add(
        definition(
            add,
            retry=Retry(max_retries=3, wait_duration_ms=1000),
            timeout_seconds=60,
            plan="starter",
        )
    )
    registry.add(definition_named(fan_out, "fan-out", plan="pro_ultra"))
    registry.add(definition(ping))
    expected = {
        "tasks": [
            {
                "name": "add",
                "options": {
                    "retry": {"max_retries": 3, "wait_duration_ms": 1000, "factor": 1.5},
                    "timeout_seconds": 60,
                    "plan": "starter",
                },
                "parameters": [
                    {"name": "a", "has_default": False, "type": "int"},
                    {"name": "b", "has_default": True, "type": "int", "default_value": "2"},
                ],
            },
            {
                "name": "fan-out",
                "options": {"plan": "pro_ultra"},
                "parameters": [
                    {"name": "names", "has_default": False, "type": "list[str]"},
                    {
                        "name": "limit",
                        "has_default": True,
                        "type": "int | None",
                        "default_value": "null",
                    },
                ],
            },
            {"name": "ping", "options": {}},
        ]
    }
    assert registration_payload(registry) == expected
    assert registration_payload([]) == {"tasks": []}


# --- bind_arguments ----------------------------------------------------------------


def add(a: int, b: int = 2) -> int:
    return a + b


ADD = definition(add)


@pytest.mark.parametrize(
    ("input_data", "args", "kwargs", "result"),
    [
        ([1], (1,), {}, 3),
        ([1, 5], (1, 5), {}, 6),
        ({"a": 1}, (), {"a": 1}, 3),
        ({"b": 10, "a": 1}, (), {"b": 10, "a": 1}, 11),
    ],
)
def test_bind_lists_positionally_and_objects_by_name(
    input_data: Any, args: tuple[Any, ...], kwargs: dict[str, Any], result: int
) -> None:
    bound = bind_arguments(ADD, input_data)
    assert bound == (args, kwargs)
    assert add(*bound[0], **bound[1]) == result


def test_bind_none_is_no_arguments() -> None:
    def ping() -> str:
        return "pong"

    assert bind_arguments(definition(ping), None) == ((), {})
    assert bind_arguments(definition(ping), []) == ((), {})
    assert bind_arguments(definition(ping), {}) == ((), {})


def test_bind_does_not_alias_the_input_object() -> None:
    data = {"a": 1}
    _, kwargs = bind_arguments(ADD, data)
    kwargs["b"] = 5
    assert data == {"a": 1}


@pytest.mark.parametrize(
    ("input_data", "reason"),
    [
        ([1, 2, 3], "too many positional arguments"),
        ([], "missing a required argument: 'a'"),
        (None, "missing a required argument: 'a'"),
        ({"b": 1}, "missing a required argument: 'a'"),
        ({"a": 1, "c": 2}, "unexpected keyword argument 'c'"),
    ],
)
def test_bind_mismatches_name_the_task_and_its_parameters(input_data: Any, reason: str) -> None:
    with pytest.raises(TaskInputError) as caught:
        bind_arguments(ADD, input_data)
    message = str(caught.value)
    assert message.startswith("task 'add' cannot take this input (")
    assert reason in message
    assert message.endswith("it expects: a, b")
    assert isinstance(caught.value, TypeError)


def test_bind_to_a_task_without_parameters_says_so() -> None:
    def ping() -> str:
        return "pong"

    with pytest.raises(TaskInputError, match=r"it expects: no arguments$"):
        bind_arguments(definition(ping), [1])


@pytest.mark.parametrize(
    ("input_data", "kind"), [(5, "int"), ("x", "str"), (1.5, "float"), (True, "bool")]
)
def test_bind_rejects_input_that_is_neither_array_nor_object(input_data: Any, kind: str) -> None:
    with pytest.raises(TaskInputError) as caught:
        bind_arguments(ADD, input_data)
    assert str(caught.value) == (
        "task 'add': input must be a JSON array (positional arguments) "
        f"or object (named arguments), got {kind}"
    )


def test_bind_injects_the_context_first() -> None:
    def scale(ctx: TaskContext, a: int, factor: int = 2) -> int:
        return a * factor

    task = definition(scale)
    context = TaskContext()
    assert bind_arguments(task, [3], context=context) == ((context, 3), {})
    assert bind_arguments(task, {"a": 3}, context=context) == ((context,), {"a": 3})
    with pytest.raises(TaskInputError, match=r"it expects: a, factor$"):
        bind_arguments(task, [1, 2, 3], context=context)


def test_bind_with_only_a_context() -> None:
    def hello(ctx: TaskContext) -> str:
        return "hi"

    context = TaskContext()
    assert bind_arguments(definition(hello), None, context=context) == ((context,), {})


def test_the_context_cannot_be_passed_as_input() -> None:
    def scale(ctx: TaskContext, a: int) -> int:
        return a

    with pytest.raises(TaskInputError) as caught:
        bind_arguments(definition(scale), {"ctx": 1, "a": 2}, context=TaskContext())
    assert str(caught.value) == (
        "task 'scale': 'ctx' is the task context and cannot be passed as input"
    )


def three(a: int, b: int = 0, c: int = 0) -> int:
    return a + b + c


@given(st.lists(st.integers(), max_size=5))
def test_bind_positional_succeeds_exactly_when_the_count_fits(values: list[int]) -> None:
    task = definition(three)
    if 1 <= len(values) <= 3:
        args, kwargs = bind_arguments(task, values)
        assert three(*args, **kwargs) == sum(values)
    else:
        with pytest.raises(TaskInputError):
            bind_arguments(task, values)


@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers()))
def test_bind_named_succeeds_exactly_when_the_names_fit(values: dict[str, int]) -> None:
    task = definition(three)
    if "a" in values and "d" not in values:
        args, kwargs = bind_arguments(task, values)
        assert three(*args, **kwargs) == sum(values.values())
    else:
        with pytest.raises(TaskInputError):
            bind_arguments(task, values)


# --- encode_result -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, b"[5]"),
        ([5], b"[[5]]"),
        (None, b"[null]"),
        ([1, 2], b"[[1,2]]"),
        ((1, 2), b"[[1,2]]"),
        ([], b"[[]]"),
        ("x", b'["x"]'),
        ({"a": 1, "b": [True, None]}, b'[{"a":1,"b":[true,null]}]'),
        ("é\u2028", b'["\\u00e9\\u2028"]'),
        (1.5, b"[1.5]"),
    ],
)
def test_encode_result_always_wraps(value: Any, expected: bytes) -> None:
    assert encode_result(value, "t") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "NaN and Infinity are not valid JSON numbers"),
        (math.inf, "NaN and Infinity are not valid JSON numbers"),
        (-math.inf, "NaN and Infinity are not valid JSON numbers"),
        ({"a": [1, math.nan]}, "NaN and Infinity are not valid JSON numbers"),
        ({1, 2}, "Object of type set is not JSON serializable"),
        (object(), "Object of type object is not JSON serializable"),
        (b"bytes", "Object of type bytes is not JSON serializable"),
        ({(1,): 2}, "keys must be str, int, float, bool or None"),
    ],
)
def test_encode_result_rejects_non_json_naming_the_task(value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)) as caught:
        encode_result(value, "report")
    assert str(caught.value).startswith("task 'report' returned a value that is not JSON: ")


def test_encode_result_rejects_circular_values() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="task 'report' returned a value that is not JSON"):
        encode_result(loop, "report")


def test_encode_result_rejects_deep_nesting() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(
        ValueError, match=r"^task 'deep' returned a value nested too deeply for JSON$"
    ):
        encode_result(deep, "deep")


@given(JSON_VALUES)
def test_encode_result_round_trips(value: Any) -> None:
    encoded = encode_result(value, "t")
    assert encoded.isascii()
    assert json.loads(encoded) == [value]


@pytest.mark.parametrize(
    "identifier",
    ["square", "my-workflow/square", "my-workflow/square:3", "square:3", "a/b/square"],
)
def test_task_name_of_an_identifier(identifier: str) -> None:
    assert task_name(identifier) == "square"
