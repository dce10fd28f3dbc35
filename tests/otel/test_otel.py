"""OpenTelemetry spans from the clients and the task processes (``render-sdk[otel]``).

Every program that traces runs as its own subprocess, because a process sets its
tracer provider once: the clients with the SDK's in-memory exporter, the task
processes of a real dev server with the in-memory exporter (dumped to a file at exit)
or the console exporter (read back through the logs API). Without OpenTelemetry in
use, or installed, nothing of it is imported.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from render_core.trace import span_id_for, trace_id_for
from render_devserver.server import DevServer

pytest.importorskip("opentelemetry.sdk.trace", reason="the [otel] test dependencies")

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What each traced program does with its finished spans: one JSON object per span.
DUMP = """
def span_record(span):
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": span.context.trace_id,
        "span_id": span.context.span_id,
        "parent_id": parent.span_id if parent is not None else None,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "description": span.status.description,
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "links": [
            {"trace_id": l.context.trace_id, "span_id": l.context.span_id} for l in span.links
        ],
        "start": span.start_time,
        "end": span.end_time,
    }
"""

TRACED_WORKFLOW = (
    """
import asyncio, atexit, json, os, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
"""
    + DUMP
    + """
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

def dump():
    spans = [span_record(s) for s in exporter.get_finished_spans()]
    if spans:
        path = os.path.join(os.environ["SPANS_DIR"], f"{os.getpid()}.json")
        with open(path, "w") as handle:
            json.dump(spans, handle)

atexit.register(dump)

from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))
MARKER = os.path.join(os.environ["SPANS_DIR"], "flaky-once")

@app.task
def square(a: int) -> int:
    return a * a

@app.task(retry=Retry(max_retries=1, wait_duration_ms=10))
def flaky(a: int) -> int:
    if not os.path.exists(MARKER):
        open(MARKER, "w").close()
        raise ValueError("first attempt fails")
    return a

@app.task
def broken() -> None:
    raise RuntimeError("always")

@app.task
async def tree(n: int) -> list[int]:
    values = list(await asyncio.gather(*(square(i) for i in range(n))))
    values.append(await flaky(7))
    return values

@app.task
def sleeper(seconds: float) -> str:
    import time
    time.sleep(seconds)
    return "done"

if __name__ == "__main__":
    app.start()
"""
)

CONSOLE_WORKFLOW = """
import asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

provider = TracerProvider()
provider.add_span_processor(
    SimpleSpanProcessor(ConsoleSpanExporter(formatter=lambda s: s.to_json(indent=None) + "\\n"))
)
trace.set_tracer_provider(provider)

from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))

@app.task
def square(a: int) -> int:
    return a * a

@app.task
async def pair() -> list[int]:
    return [await square(2), await square(3)]

if __name__ == "__main__":
    app.start()
"""

CLIENT = (
    """
import asyncio, json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
"""
    + DUMP
    + """
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from render_sdk import Render, RenderAsync
from render_sdk.client.errors import NotFoundError, TaskRunError

url = sys.argv[1]
out = {}
with Render(base_url=url) as render:
    run = render.workflows.start_task("wf/tree", [2])
    out["tree"] = run.id
    out["details"] = render.workflows.wait_for_run(run.id, timeout=60).status.value
    render.workflows.get_task_run(run.id)
    render.workflows.list_task_runs()
    render.workflows.list_tasks()
    long = render.workflows.start_task("wf/sleeper", [30])
    out["sleeper"] = long.id
    render.workflows.cancel_task_run(long.id)
    try:
        render.workflows.get_task_run("trn-nope")
    except NotFoundError:
        pass
    try:
        render.workflows.run_task("wf/broken", [], timeout=60)
    except TaskRunError:
        out["broken"] = True

async def main():
    async with RenderAsync(base_url=url) as client:
        started = await client.workflows.start_task("wf/square", [4])
        out["async"] = started.id
        await started
        await client.workflows.get_task_run(started.id)

asyncio.run(main())
out["spans"] = [span_record(s) for s in exporter.get_finished_spans()]
print(json.dumps(out))
"""
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RENDER_", "OTEL_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def spans_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("spans")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, spans_dir: pathlib.Path
) -> Iterator[DevServer]:
    project = tmp_path_factory.mktemp("otel-project")
    (project / "main.py").write_text(textwrap.dedent(TRACED_WORKFLOW), encoding="utf-8")
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(project),
        env={**_env(), "SPANS_DIR": str(spans_dir)},
        workflow_slug="wf",
        concurrency=4,
    )
    with dev.run_in_thread() as running:
        yield running


@pytest.fixture(scope="module")
def client_run(server: DevServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    program = tmp_path_factory.mktemp("otel-client") / "client.py"
    program.write_text(textwrap.dedent(CLIENT), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(program), server.url],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _task_spans(spans_dir: pathlib.Path, want: int, deadline: float = 30.0) -> list[dict[str, Any]]:
    """Every span the task processes exported (each process dumps its own at exit)."""
    until = time.monotonic() + deadline
    while True:
        spans = [
            span
            for path in sorted(spans_dir.glob("*.json"))
            for span in json.loads(path.read_text(encoding="utf-8") or "[]")
        ]
        if len(spans) >= want or time.monotonic() > until:
            return spans
        time.sleep(0.1)


def test_client_operations_have_spans(client_run: dict[str, Any], server: DevServer) -> None:
    spans = client_run["spans"]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    assert set(by_name) >= {
        "render.workflows.start_task",
        "render.workflows.get_task_run",
        "render.workflows.list_task_runs",
        "render.workflows.list_tasks",
        "render.workflows.cancel_task_run",
        "render.workflows.wait",
    }
    port = int(server.url.rsplit(":", 1)[1])
    for span in spans:
        assert span["kind"] == "CLIENT"
        attributes = span["attributes"]
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == port
        assert attributes["url.full"].startswith(server.url + "/v1/")
        assert attributes["http.request.method"] in ("GET", "POST", "DELETE")
    tree = client_run["tree"]
    start = next(
        s
        for s in by_name["render.workflows.start_task"]
        if s["attributes"]["render.task_run.id"] == tree
    )
    attributes = start["attributes"]
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.response.status_code"] == 202
    assert attributes["render.task.name"] == "wf/tree"
    assert attributes["render.task_run.root_id"] == tree
    assert attributes["render.trace_id"] == f"{trace_id_for(tree):032x}"
    assert start["links"] == [
        {"trace_id": trace_id_for(tree), "span_id": span_id_for("attempt", tree, 0)}
    ]
    assert start["status"] == "UNSET"

    gets = by_name["render.workflows.get_task_run"]
    ok = next(s for s in gets if s["attributes"]["render.task_run.id"] == tree)
    assert ok["attributes"]["http.response.status_code"] == 200
    assert ok["attributes"]["render.task_run.status"] == "completed"
    missing = next(s for s in gets if s["attributes"]["render.task_run.id"] == "trn-nope")
    assert missing["status"] == "ERROR"
    assert missing["attributes"]["http.response.status_code"] == 404
    assert missing["attributes"]["error.type"] == "NotFoundError"
    assert [e["name"] for e in missing["events"]] == ["exception"]

    (cancel,) = by_name["render.workflows.cancel_task_run"]
    assert cancel["attributes"]["render.task_run.id"] == client_run["sleeper"]
    assert cancel["attributes"]["http.response.status_code"] == 204

    waits = by_name["render.workflows.wait"]
    sync_wait = next(w for w in waits if w["attributes"]["render.task_run.id"] == tree)
    assert sync_wait["events"][0]["attributes"] == {
        "render.task_run.id": tree,
        "render.task_run.status": "completed",
    }
    async_wait = next(
        w for w in waits if w["attributes"]["render.task_run.id"] == client_run["async"]
    )
    assert async_wait["events"][0]["attributes"]["render.task_run.status"] == "completed"
    assert async_wait["attributes"]["url.full"] == server.url + "/v1/task-runs/events"
    (listed,) = by_name["render.workflows.list_task_runs"]
    assert listed["attributes"]["render.result.count"] >= 1


def test_one_trace_per_run_tree(client_run: dict[str, Any], spans_dir: pathlib.Path) -> None:
    tree = client_run["tree"]
    trace_id = trace_id_for(tree)
    # tree (1 attempt), two squares, flaky (2 attempts), three subtask calls.
    spans = [s for s in _task_spans(spans_dir, 8) if s["trace_id"] == trace_id]
    attempts = [s for s in spans if s["kind"] == "CONSUMER"]
    calls = [s for s in spans if s["kind"] == "PRODUCER"]
    assert sorted(s["name"] for s in attempts) == ["flaky", "flaky", "square", "square", "tree"]
    assert sorted(s["name"] for s in calls) == ["subtask flaky", "subtask square", "subtask square"]

    (root,) = [s for s in attempts if s["name"] == "tree"]
    assert root["parent_id"] is None  # the trace's root span
    assert root["span_id"] == span_id_for("attempt", tree, 0)
    assert root["attributes"]["render.task_run.id"] == tree
    assert root["attributes"]["render.task_run.attempt"] == 0
    assert root["attributes"]["render.task_run.status"] == "completed"
    # The client's start span links to exactly this span.
    assert {"trace_id": trace_id, "span_id": root["span_id"]} in next(
        s["links"]
        for s in client_run["spans"]
        if s["name"] == "render.workflows.start_task"
        and s["attributes"]["render.task_run.id"] == tree
    )
    for call in calls:
        child = call["attributes"]["render.task_run.id"]
        assert call["parent_id"] == root["span_id"]
        assert call["span_id"] == span_id_for("subtask", child)
        assert root["start"] <= call["start"] <= call["end"] <= root["end"]
        child_attempts = [s for s in attempts if s["attributes"]["render.task_run.id"] == child]
        assert child_attempts
        for attempt in child_attempts:
            assert attempt["parent_id"] == call["span_id"]
            assert attempt["attributes"]["render.task_run.parent_id"] == tree
            assert attempt["attributes"]["render.task_run.root_id"] == tree
            number = attempt["attributes"]["render.task_run.attempt"]
            assert attempt["span_id"] == span_id_for("attempt", child, number)

    first, second = sorted(
        (s for s in attempts if s["name"] == "flaky"),
        key=lambda s: s["attributes"]["render.task_run.attempt"],
    )
    assert first["status"] == "ERROR"
    assert first["description"] == "ValueError: first attempt fails"
    assert first["attributes"]["render.task_run.status"] == "failed"
    (event,) = first["events"]
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "first attempt fails"
    assert "Traceback" in event["attributes"]["exception.stacktrace"]
    assert second["status"] == "UNSET"
    assert second["attributes"]["render.task_run.status"] == "completed"


def test_a_failing_task_span(client_run: dict[str, Any], spans_dir: pathlib.Path) -> None:
    assert client_run["broken"] is True
    spans = _task_spans(spans_dir, 9)
    (broken,) = [s for s in spans if s["name"] == "broken"]
    assert broken["status"] == "ERROR"
    assert broken["events"][0]["attributes"]["exception.type"] == "RuntimeError"
    run_id = broken["attributes"]["render.task_run.id"]
    assert broken["trace_id"] == trace_id_for(run_id)


def test_console_exporter_in_task_processes_through_the_logs_api(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "main.py").write_text(textwrap.dedent(CONSOLE_WORKFLOW), encoding="utf-8")
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(tmp_path),
        env=_env(),
        workflow_slug="wf",
    )
    with dev.run_in_thread() as running:
        started = requests.post(
            f"{running.url}/v1/task-runs", json={"task": "wf/pair", "input": []}, timeout=30
        ).json()
        root = started["id"]
        deadline = time.monotonic() + 60
        while requests.get(f"{running.url}/v1/task-runs/{root}", timeout=30).json()["status"] != (
            "completed"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        runs = [
            item["taskRun"]["id"]
            for item in requests.get(
                f"{running.url}/v1/task-runs", params={"rootTaskRunId": root}, timeout=30
            ).json()
        ]
        assert len(runs) == 3
        spans = []
        deadline = time.monotonic() + 30
        while len(spans) < 5 and time.monotonic() < deadline:  # 3 attempts, 2 calls
            logs = requests.get(
                f"{running.url}/v1/logs",
                params=[("taskRunId", run_id) for run_id in runs] + [("limit", "100")],
                timeout=30,
            ).json()["logs"]
            spans = [json.loads(r["message"]) for r in logs if r["message"].startswith("{")]
            time.sleep(0.1)
    expected = f"0x{trace_id_for(root):032x}"
    assert len(spans) == 5
    assert {span["context"]["trace_id"] for span in spans} == {expected}
    by_name = {span["name"]: span for span in spans}
    assert by_name["pair"]["parent_id"] is None
    root_span = f"0x{span_id_for('attempt', root, 0):016x}"
    assert by_name["pair"]["context"]["span_id"] == root_span
    calls = [s for s in spans if s["name"] == "subtask square"]
    squares = [s for s in spans if s["name"] == "square"]
    assert len(calls) == len(squares) == 2
    assert {c["parent_id"] for c in calls} == {root_span}
    assert {s["parent_id"] for s in squares} == {c["context"]["span_id"] for c in calls}


# -- nothing of OpenTelemetry without it ----------------------------------------------------

ZERO_COST = """
import asyncio, json, sys

BLOCK = sys.argv[2] == "block"
if BLOCK:
    class NoOtel:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None
    sys.meta_path.insert(0, NoOtel())

from render_sdk import Render, RenderAsync

url = sys.argv[1]
with Render(base_url=url) as render:
    done = render.workflows.run_task("wf/modules", [], timeout=60)
    render.workflows.list_task_runs()
    render.workflows.get_task_run(done.id)

async def main():
    async with RenderAsync(base_url=url) as client:
        await (await client.workflows.start_task("wf/modules", []))

asyncio.run(main())
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print(json.dumps({"client": loaded, "task": done.results[0]}))
"""

PLAIN_WORKFLOW = """
import sys
from render_sdk import Workflows

app = Workflows()

@app.task
async def modules() -> list[str]:
    return sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")

if __name__ == "__main__":
    app.start()
"""


@pytest.mark.parametrize("mode", ["installed", "block"])
def test_nothing_is_imported_without_opentelemetry(tmp_path: pathlib.Path, mode: str) -> None:
    (tmp_path / "main.py").write_text(textwrap.dedent(PLAIN_WORKFLOW), encoding="utf-8")
    program = tmp_path / "client.py"
    program.write_text(textwrap.dedent(ZERO_COST), encoding="utf-8")
    dev = DevServer(
        [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(tmp_path),
        env=_env(),
        workflow_slug="wf",
    )
    with dev.run_in_thread() as running:
        done = subprocess.run(
            [sys.executable, str(program), running.url, mode],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"client": [], "task": []}
