"""The definition side of Workflows, in-process: decorators, defaults, validation."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from render_sdk import Retry, TaskContext, Workflows
from tests.support.fake_task_socket import FakeTaskSocket
from tests.support.programs import output_of, run_program


def test_bare_empty_and_named_decorators() -> None:
    app = Workflows()

    @app.task
    def first_unique_a(a: int) -> int:
        return a + 1

    @app.task()
    def second_unique_b(a: int) -> int:
        return a + 2

    @app.task(name="third_unique_c")
    def third(a: int) -> int:
        return a + 3

    assert list(app.tasks) == ["first_unique_a", "second_unique_b", "third_unique_c"]
    # Outside a running task a task is its plain function (unit-testable).
    assert (first_unique_a(1), second_unique_b(1), third(1)) == (2, 3, 4)
    assert third.name == "third_unique_c"
    assert first_unique_a.__name__ == "first_unique_a"


def test_defaults_apply_to_tasks_without_their_own() -> None:
    app = Workflows(default_retry=Retry(1, 10), default_timeout=120, default_plan="pro")

    @app.task(plan="starter", timeout=60)
    def defaults_mixed_unique() -> None:
        return None

    options = app.tasks["defaults_mixed_unique"].options
    assert options.retry == Retry(1, 10, 1.5)
    assert options.timeout_seconds == 60
    assert options.plan == "starter"


def test_nothing_set_registers_nothing() -> None:
    app = Workflows()

    @app.task
    def bare_options_unique() -> None:
        return None

    assert app.tasks["bare_options_unique"].payload()["options"] == {}


@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"timeout_seconds": 29}, ValueError, "between 30 and 86400"),
        ({"timeout": 86401}, ValueError, "between 30 and 86400"),
        ({"plan": "huge"}, ValueError, "pro_ultra"),
        ({"retry": 3}, TypeError, "Retry"),
        ({"timeout": 60, "timeout_seconds": 60}, TypeError, "not both"),
    ],
)
def test_bad_options_are_refused_at_decoration(
    kwargs: dict[str, object], error: type[Exception], fragment: str
) -> None:
    app = Workflows()
    with pytest.raises(error, match=fragment) as info:

        @app.task(**kwargs)  # type: ignore[call-overload]
        def validated_task_unique() -> None:
            return None

    if error is ValueError:
        assert "validated_task_unique" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"default_timeout": 10}, "default_timeout"),
        ({"default_plan": "tiny"}, "default_plan"),
    ],
)
def test_bad_defaults_are_refused(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Workflows(**kwargs)  # type: ignore[arg-type]


def test_retry_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        Retry(max_retries=-1, wait_duration_ms=10)
    with pytest.raises(ValueError, match="wait_duration_ms"):
        Retry(max_retries=1, wait_duration_ms=-10)
    assert Retry(max_retries=1, wait_duration_ms=10).backoff_scaling == 1.5


def test_a_name_defined_differently_twice_is_an_error() -> None:
    app = Workflows()

    @app.task(name="clash_unique")
    def one() -> int:
        return 1

    with pytest.raises(ValueError, match="clash_unique"):

        @app.task(name="clash_unique")
        def two() -> int:
            return 2


def test_from_workflows_merges_and_refuses_collisions() -> None:
    left, right = Workflows(), Workflows()

    @left.task
    def merge_left_unique() -> int:
        return 1

    @right.task
    def merge_right_unique() -> int:
        return 2

    combined = Workflows.from_workflows(left, right, default_plan="pro")
    assert sorted(combined.tasks) == ["merge_left_unique", "merge_right_unique"]
    # The combined defaults do not touch the imported tasks.
    assert combined.tasks["merge_left_unique"].options.plan is None
    with pytest.raises(TypeError):
        Workflows.from_workflows(left, "not an app")  # type: ignore[arg-type]


def test_two_apps_may_reuse_a_name_but_not_be_combined() -> None:
    a, b = Workflows(), Workflows()

    @a.task(name="same")
    def f() -> int:
        return 1

    @b.task(name="same")
    def g() -> int:
        return 2

    assert (a.tasks["same"].func, b.tasks["same"].func) == (f.func, g.func)
    with pytest.raises(
        ValueError, match=r"^two of the combined workflows define a task named 'same'$"
    ):
        Workflows.from_workflows(a, b)
    # One app passed twice is no clash.
    assert list(Workflows.from_workflows(a, a).tasks) == ["same"]


def test_one_app_cannot_define_a_name_twice_differently() -> None:
    app = Workflows()

    @app.task(name="twice")
    def f() -> int:
        return 1

    with pytest.raises(ValueError, match=r"^a different task named 'twice' is already registered$"):

        @app.task(name="twice")
        def g() -> int:
            return 2


@pytest.fixture
def sock() -> Iterator[FakeTaskSocket]:
    with FakeTaskSocket() as server:
        yield server


def test_task_context_style(tmp_path: pathlib.Path, sock: FakeTaskSocket) -> None:
    source = """
    from render_sdk import TaskContext, Workflows

    app = Workflows()

    @app.task
    def double(x: int) -> int:
        return 2 * x

    @app.task
    async def pipeline(ctx: TaskContext, x: int) -> int:
        return await ctx.run(double, x) + 1

    if __name__ == "__main__":
        app.start()
    """
    sock.subtask_handler = lambda name, args: 2 * args[0]
    assert run_program(tmp_path, source, sock, "register").returncode == 0
    (registration,) = sock.registrations
    pipeline = next(t for t in registration["tasks"] if t["name"] == "pipeline")
    assert pipeline["parameters"] == [{"name": "x", "has_default": False, "type": "int"}]
    sock.serve_input("pipeline", [20])
    done = run_program(tmp_path, source, sock, "run")
    assert done.returncode == 0, done.stderr
    assert output_of(sock.callbacks[-1]) == [41]
    (child,) = [r.json() for r in sock.requests if r.path == "/run-subtask"]
    assert child["task_name"] == "double"
    assert TaskContext.__name__ == "TaskContext"
