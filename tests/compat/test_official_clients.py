"""The OFFICIAL clients (render_sdk 0.6.1, render 1.x) against OUR dev server.

Our dev server runs a workflow written with our SDK (``programs/our_workflow.py``)
in-process; ``programs/client_checks.py`` runs in each official SDK's venv, points the
official ``Render``/``RenderAsync`` at it the way users do (``RENDER_USE_LOCAL_DEV``
+ ``RENDER_LOCAL_DEV_URL``; a token only for 0.6.1, which insists on one) and prints
what every call returned. The tests below assert on that, step by step.

What breaks here is what would break for a user of the official SDK: a missing
required key (``attempt``, ``startedAt``, ``results``, ``input``, ...), a status
outside the enum, a wrong success code (202/200/204), an unparseable or missing
event (the official clients then hang), a non-JSON error body, and so on.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from render_devserver.server import DevServer

HERE = pathlib.Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
REPO = HERE.parents[1]
TEXT = "h\u00e9llo \u2713 line\u2028sep\u2029para\u0085nel \U0001f600"
SCRIPT_TIMEOUT = 150.0
RUN_KEYS = {"id", "taskId", "status", "parentTaskRunId", "rootTaskRunId", "retries", "attempts"}
DETAILS_KEYS = RUN_KEYS | {"results", "input"}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("RENDER_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("ours")
    shutil.copy(PROGRAMS / "our_workflow.py", project / "main.py")
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(project),
        env=_env({"PYTHONPATH": str(REPO)}),
        workflow_slug="wf",
        concurrency=16,
        ping_interval=0.5,
    )
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def report(official: Any, server: DevServer) -> dict[str, Any]:
    """Run the client checks with one official SDK; ``{step: {"value"|"error": ...}}``."""
    extra = {"RENDER_USE_LOCAL_DEV": "true", "RENDER_LOCAL_DEV_URL": server.url}
    if official.label == "0.6.1":
        extra["RENDER_API_KEY"] = "rnd_compat_test"  # 0.6.1 refuses to start without one
    try:
        done = subprocess.run(
            [official.python, str(PROGRAMS / "client_checks.py"), official.module],
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
            env=_env(extra),
            cwd=str(HERE),
            check=False,
        )
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        code = None
    steps: dict[str, Any] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            steps[record.pop("step")] = record
    if "done" not in steps:
        pytest.fail(
            f"official {official.label} client checks did not finish (exit {code}); "
            f"steps done: {list(steps)}; last error: {_last_error(steps)}\n"
            f"stderr tail:\n{stderr[-3000:]}",
            pytrace=False,
        )
    steps["_stderr"] = stderr
    return steps


def _last_error(steps: dict[str, Any]) -> Any:
    errors = [(name, s["error"]) for name, s in steps.items() if "error" in s]
    return errors[-1] if errors else None


def value(report: dict[str, Any], step: str) -> Any:
    """The value a step returned; fails with the official client's exception otherwise."""
    record = report[step]
    if "error" in record:
        error = record["error"]
        pytest.fail(
            f"official client step {step!r} raised {error['type']}: {error['message']}\n"
            f"(client stderr tail: {report['_stderr'][-1500:]})",
            pytrace=False,
        )
    return record["value"]


def _assert_details(details: dict[str, Any], status: str) -> None:
    """The official model parsed a complete TaskRunDetails (to_dict gives it back)."""
    assert set(details) >= DETAILS_KEYS, sorted(DETAILS_KEYS - set(details))
    assert details["status"] == status
    assert details["attempts"], "a finished run has at least one attempt"
    for number, attempt in enumerate(details["attempts"]):
        assert attempt["attempt"] == number
        assert attempt["startedAt"]
        assert attempt["taskRunId"] == details["id"]


# -- the official package is the one under test -----------------------------------------


def test_official_package_and_local_dev_settings(report: dict[str, Any], official: Any) -> None:
    meta = value(report, "meta")
    assert meta["file"].startswith(str(pathlib.Path(official.python).parents[1]))
    assert meta["version"] == official.version
    assert meta["base_url"].startswith("http://127.0.0.1:")
    if official.label == "0.6.1":
        assert meta["token"] is True
        assert meta["internal_class"] == "AuthenticatedClient"
    else:
        # 1.x in local-dev mode without a key: unauthenticated, no Authorization header.
        assert meta["token"] is False
        assert meta["internal_class"] == "Client"


# -- running tasks ---------------------------------------------------------------------


def test_run_task_positional_named_and_defaults(report: dict[str, Any]) -> None:
    positional = value(report, "sync_run_positional")
    _assert_details(positional, "completed")
    assert positional["results"] == [49]
    assert positional["input"] == [7]
    assert positional["parentTaskRunId"] == ""
    assert positional["rootTaskRunId"] == positional["id"]
    assert positional["retries"] == 0
    assert positional["id"].startswith("trn-")
    assert positional["taskId"].startswith("tsk-")
    named = value(report, "sync_run_named")
    assert named["results"] == [42]
    assert named["input"] == {"a": 40}
    assert value(report, "sync_run_default_arg")["results"] == [3]


def test_results_are_always_wrapped_by_our_workers(report: dict[str, Any]) -> None:
    # Our SDK wraps every return value (always ``[value]``): [1, 2] -> [[1, 2]].
    assert value(report, "sync_run_list_result")["results"] == [[1, 2]]


def test_unicode_and_unicode_line_separators_survive_sse(report: dict[str, Any]) -> None:
    # run_task waits on the event stream; U+2028/U+2029/U+0085 inside the JSON must not
    # split an SSE line, and multi-byte characters must arrive whole.
    echoed = value(report, "sync_run_unicode")
    assert echoed["results"] == [TEXT]
    assert echoed["input"] == [TEXT]


def test_large_unicode_result_arrives_intact_through_the_event(report: dict[str, Any]) -> None:
    # The official parsers decode each network read on its own: the
    # server sends ASCII-only JSON in events so no character can be split.
    outcome = value(report, "sync_big_unicode")
    assert outcome["rest_equal"] is True  # stored and served correctly over REST
    assert outcome["event_chars"] == outcome["sent_chars"]
    assert outcome["event_equal"] is True


def test_start_task_then_get_task_run(report: dict[str, Any]) -> None:
    outcome = value(report, "sync_start_then_get")
    assert outcome["started_type"] == "TaskRun"
    started = outcome["started"]
    assert set(started) >= RUN_KEYS
    assert started["status"] in {"pending", "running"}
    final = outcome["final"]
    _assert_details(final, "completed")
    assert final["id"] == started["id"]
    assert final["results"] == [9]
    assert final["startedAt"]
    assert final["completedAt"]


def test_failing_task_raises_task_run_error(report: dict[str, Any]) -> None:
    for step, text in (("sync_failure", "boom"), ("async_failure", "async boom")):
        error = value(report, step)
        assert error["type"] == "TaskRunError", error
        assert error["message"].endswith(text), error
        assert "RenderError" in error["mro"]


def test_retried_attempts_do_not_end_the_wait(report: dict[str, Any]) -> None:
    details = value(report, "sync_retried")
    _assert_details(details, "completed")
    assert details["results"] == ["ok after 2 failures"]
    assert details["retries"] == 2
    assert [a["status"] for a in details["attempts"]] == ["failed", "failed", "completed"]
    assert details["attempts"][0]["error"].endswith("attempt 0 failed")


def test_errors_map_to_client_error(report: dict[str, Any]) -> None:
    unknown_run = value(report, "sync_unknown_run")
    assert unknown_run["type"] == "ClientError"
    assert unknown_run["message"].startswith("get task run failed: task run not found")
    unknown_task = value(report, "sync_unknown_task")
    assert unknown_task["type"] == "ClientError"
    assert unknown_task["message"].startswith("create task failed: task not found: wf/nope")


# -- events ----------------------------------------------------------------------------


def test_task_run_events_for_several_runs(report: dict[str, Any]) -> None:
    outcome = value(report, "sync_events")
    done_a, done_b, live, failed = outcome["ids"]
    assert set(outcome["events"]) == {done_a, done_b, live, failed}
    # Terminal states of runs finished before subscribing are replayed first.
    assert set(outcome["order"][:2]) == {done_a, done_b}
    events = outcome["events"]
    assert events[done_a]["results"] == [16]
    assert events[done_b]["results"] == [25]
    _assert_details(events[live], "completed")
    assert events[live]["results"] == ["woke up"]
    _assert_details(events[failed], "failed")
    assert events[failed]["error"].endswith("evented")
    assert events[failed]["results"] == []


def test_async_task_run_events(report: dict[str, Any]) -> None:
    outcome = value(report, "async_events")
    assert outcome["results"] == {
        run_id: [n * n] for run_id, n in zip(outcome["ids"], (20, 21, 22), strict=True)
    }


# -- cancel ----------------------------------------------------------------------------


def test_cancel_task_run(report: dict[str, Any]) -> None:
    outcome = value(report, "sync_cancel")
    assert outcome["returned"] is None  # 204, no body
    _assert_details(outcome["details"], "canceled")
    assert outcome["details"]["attempts"][-1]["status"] == "canceled"
    replayed = outcome["replayed"]
    assert replayed is not None, "a canceled run's terminal state must be replayed"
    assert replayed["status"] == "canceled"
    assert not replayed.get("error")
    again = outcome["again"]
    assert again["type"] == "ClientError"
    assert again["message"].startswith("cancel task run failed:")


def test_awaiting_a_canceled_run_returns_it(report: dict[str, Any]) -> None:
    # Official clients return (no TaskRunError) when the event has no error,
    # both for a subscriber that was waiting and for one that came after.
    outcome = value(report, "async_cancel")
    for key in ("live", "late"):
        _assert_details(outcome[key], "canceled")
        assert not outcome[key].get("error")


# -- async client ----------------------------------------------------------------------


def test_async_start_task_and_gather(report: dict[str, Any]) -> None:
    outcome = value(report, "async_gather")
    assert outcome["awaitable_type"] == "AwaitableTaskRun"
    assert set(outcome["initial_statuses"]) <= {"pending", "running"}
    assert outcome["results"] == [[i * i] for i in range(6)]
    assert outcome["ids_match"] is True
    named = value(report, "async_run_task")
    assert named["results"] == [3]
    assert named["input"] == {"a": 1, "b": 2}


def test_async_get_task_run_and_list(report: dict[str, Any]) -> None:
    outcome = value(report, "async_get_and_list")
    assert outcome["awaited"]["results"] == [81]
    assert outcome["got"] == outcome["awaited"]
    assert len(outcome["listed"]) == 5
    assert outcome["listed"][0]["id"] == outcome["awaited"]["id"], "newest first"
    assert all(set(run) >= RUN_KEYS for run in outcome["listed"])
    assert outcome["cursors"] == [run["id"] for run in outcome["listed"]]


# -- subtasks, listing, tasks ----------------------------------------------------------


def test_subtask_runs_are_listed_with_their_parent(report: dict[str, Any]) -> None:
    outcome = value(report, "sync_subtasks")
    root = outcome["root"]
    _assert_details(root, "completed")
    assert root["results"] == [[0, 1, 4]]
    children = outcome["children"]
    assert len(children) == 3
    for child in children:
        assert set(child) >= RUN_KEYS
        assert child["parentTaskRunId"] == root["id"]
        assert child["rootTaskRunId"] == root["id"]
        assert child["parentTaskAttempt"] == 0
        assert child["status"] == "completed"


def test_list_task_runs_wrapper_items_and_cursor_paging(report: dict[str, Any]) -> None:
    outcome = value(report, "sync_list")
    # The official list_task_runs returns wrapper items with .task_run and .cursor.
    assert outcome["item_type"] == "TaskRunWithCursor"
    assert 1 <= outcome["count"] <= 20  # no limit sent: the documented default page
    assert set(outcome["first"]["task_run"]) >= RUN_KEYS
    assert outcome["first"]["cursor"]
    page1 = [run_id for run_id, _ in outcome["page1"]]
    page2 = [run_id for run_id, _ in outcome["page2"]]
    assert len(page1) == len(page2) == 2
    assert outcome["all_ids"][:4] == page1 + page2
    assert outcome["owner_filtered_type"] == "list"  # ownerId is accepted


def test_generated_task_endpoints(report: dict[str, Any]) -> None:
    outcome = value(report, "generated_tasks")
    assert outcome["status"] == 200
    names = {item["task"]["name"] for item in outcome["items"]}
    assert {"square", "add", "fails", "echo", "pair", "sleeper", "flaky", "fan_out"} <= names
    for item in outcome["items"]:
        assert item["cursor"]
        assert {"id", "name", "createdAt"} <= set(item["task"])
    assert outcome["get_status"] == 200
    assert outcome["get"]["id"] == outcome["items"][0]["task"]["id"]
    assert outcome["slug_status"] == 200
    assert outcome["slug_name"] == "square"


def test_idempotency_key(report: dict[str, Any], official: Any) -> None:
    if official.label == "0.6.1":
        assert "sync_idempotency" not in report  # 0.6.1 has no idempotency_key
        return
    outcome = value(report, "sync_idempotency")
    assert outcome["first"] == outcome["second"] == outcome["run_task_same_key"]
    assert outcome["other"] != outcome["first"]


def test_no_event_was_dropped_by_the_official_parser(report: dict[str, Any]) -> None:
    # The official SSE parser logs and swallows what it cannot parse.
    assert value(report, "logged_errors") == []
    assert value(report, "done") is True


# -- the dev server answers to "localhost" as well ----------------------------------------

LOCALHOST_CHECK = """
import asyncio, importlib, json, sys
sdk = importlib.import_module(sys.argv[1])
with_sync = sdk.Render().workflows.run_task("wf/square", [6]).results

async def main():
    client = sdk.RenderAsync()
    started = await client.workflows.start_task("wf/add", [1])
    return (await started).results

print(json.dumps({"sync": with_sync, "async": asyncio.run(main())}))
"""


def test_official_clients_work_through_the_localhost_name(
    official: Any, server: DevServer, tmp_path: pathlib.Path
) -> None:
    # RENDER_USE_LOCAL_DEV alone points them at http://localhost:8120: Host is then
    # "localhost:PORT", which the dev server's Host check must accept.
    extra = {
        "RENDER_USE_LOCAL_DEV": "true",
        "RENDER_LOCAL_DEV_URL": f"http://localhost:{server.port}",
    }
    if official.label == "0.6.1":
        extra["RENDER_API_KEY"] = "rnd_compat_test"
    done = subprocess.run(
        [official.python, "-c", LOCALHOST_CHECK, official.module],
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
        env=_env(extra),
        cwd=str(tmp_path),  # not the repository: "import render_sdk" must find the official one
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"sync": [36], "async": [3]}
