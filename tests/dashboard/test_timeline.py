"""The run page's timeline, "Run again", the trace download, search and the metrics header,
in headless Chromium against a real dev server running real task processes."""

from __future__ import annotations

import datetime as _dt
import json
import pathlib
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import requests

from render_core import lifecycle
from render_core.lifecycle import RetryPolicy
from render_devserver.server import DevServer
from render_devserver.store import Store
from tests.dashboard.support import run_row, start_run
from tests.support.trace_check import check_trace

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

UTC = _dt.timezone.utc


def _details(server: DevServer, run_id: str) -> dict[str, Any]:
    response = requests.get(f"{server.url}/v1/task-runs/{run_id}", timeout=30)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _wait_terminal(page: Page, run_id: str) -> None:
    page.goto(page.url.split("#")[0] + f"#/runs/{run_id}")
    page.locator(
        '[data-testid="run-status"]:is([data-status="completed"], [data-status="failed"])'
    ).wait_for()


def test_timeline_of_a_fan_out_collapses_siblings_and_opens_runs(
    page: Page, server: DevServer
) -> None:
    root = start_run(server, "fan_out", [7])
    page.goto(f"{server.url}/#/runs/{root}")
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    timeline = page.get_by_test_id("timeline")
    # Seven subtasks of one task: one collapsed row under the root.
    group = timeline.locator('[data-testid="timeline-group"]')
    group.wait_for()
    assert group.get_attribute("data-count") == "7"
    assert group.get_attribute("data-open") == "false"
    rows = timeline.locator('[data-testid="timeline-row"]')
    assert rows.count() == 1
    assert rows.first.get_attribute("data-run-id") == root
    assert "current" in (rows.first.get_attribute("class") or "")

    group.click()
    timeline.locator('[data-testid="timeline-group"][data-open="true"]').wait_for()
    assert rows.count() == 8
    tree = requests.get(f"{server.url}/dev/runs/{root}/tree", timeout=30).json()
    children = [r["id"] for r in tree["runs"] if r["id"] != root]
    assert sorted(rows.evaluate_all("rs => rs.map(r => r.dataset.runId)")) == sorted(
        [root, *children]
    )

    # Every attempt has one bar; hovering shows its exact stored times.
    assert timeline.locator('[data-testid="timeline-row"] [data-kind="attempt"]').count() == 8
    child = children[3]
    stored = _details(server, child)["attempts"][0]
    bar = timeline.locator(f'[data-run-id="{child}"] [data-kind="attempt"]')
    bar.hover()
    tip = page.get_by_test_id("timeline-tip")
    tip.wait_for()
    text = tip.inner_text()
    assert "attempt 1 · completed" in text
    assert child in text
    assert stored["startedAt"] in text
    assert stored["completedAt"] in text

    # Clicking a row opens that run.
    timeline.locator(f'[data-testid="timeline-row"][data-run-id="{child}"]').click()
    page.wait_for_url(f"**/#/runs/{child}")
    page.locator("#run-task", has_text="square").wait_for()
    current = page.locator('[data-testid="timeline-row"].current')
    current.wait_for()
    assert current.get_attribute("data-run-id") == child


def test_timeline_shows_retries_and_their_waits(page: Page, server: DevServer) -> None:
    failing = start_run(server, "always_fails", [])
    page.goto(f"{server.url}/#/runs/{failing}")
    page.locator('[data-testid="run-status"][data-status="failed"]').wait_for()
    row = page.locator(f'[data-testid="timeline-row"][data-run-id="{failing}"]')
    row.wait_for()
    kinds = row.locator(".tl-bar").evaluate_all("bars => bars.map(b => b.dataset.kind)")
    attempts = [k for k in kinds if k == "attempt"]
    assert attempts == ["attempt", "attempt"]
    assert "retry-wait" in kinds
    assert kinds.index("retry-wait") > kinds.index("attempt")
    assert row.locator(".tl-bar.attempt.failed").count() == 2

    details = _details(server, failing)
    row.locator(".tl-bar.retry-wait").hover()
    text = page.get_by_test_id("timeline-tip").inner_text()
    assert "retry wait before attempt 2" in text
    assert details["attempts"][0]["completedAt"] in text
    row.locator(".tl-bar.attempt").nth(1).hover()
    text = page.get_by_test_id("timeline-tip").inner_text()
    assert "attempt 2 · failed" in text
    assert "nope, not today" in text


def test_timeline_updates_live(page: Page, server: DevServer) -> None:
    run_id = start_run(server, "sleeper", [1.5])
    page.goto(f"{server.url}/#/runs/{run_id}")
    row = page.locator(f'[data-testid="timeline-row"][data-run-id="{run_id}"]')
    page.locator(
        f'[data-testid="timeline-row"][data-run-id="{run_id}"][data-status="running"]'
    ).wait_for()
    assert row.locator(".tl-bar.attempt.open").count() == 1
    page.locator(
        f'[data-testid="timeline-row"][data-run-id="{run_id}"][data-status="completed"]'
    ).wait_for()
    assert row.locator(".tl-bar.open").count() == 0
    assert row.locator(".tl-bar.attempt.completed").count() == 1


def test_run_again_starts_the_same_task_with_the_same_input(page: Page, server: DevServer) -> None:
    # 2**53 + 1: a JavaScript number cannot hold it, so the page must not parse it.
    big = 9007199254740993
    original = start_run(server, "identity", [{"n": big, "text": "héllo"}])
    page.goto(f"{server.url}/#/runs/{original}")
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    page.get_by_test_id("rerun").click()
    page.wait_for_url(lambda url: "#/runs/" in url and original not in url)
    rerun = page.url.rsplit("/", 1)[-1]
    assert rerun.startswith("trn-")
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    link = page.get_by_test_id("rerun-of")
    link.wait_for()
    assert link.inner_text() == original
    details = _details(server, rerun)
    assert details["input"] == [{"n": big, "text": "héllo"}]
    assert details["results"] == [{"n": big, "text": "héllo"}]
    assert details["taskId"] == _details(server, original)["taskId"]
    # The public shapes carry nothing new.
    assert "rerunOf" not in details

    link.click()
    page.wait_for_url(f"**/#/runs/{original}")
    back = page.get_by_test_id("rerun-link")
    back.wait_for()
    assert back.inner_text() == rerun


def test_trace_download(page: Page, server: DevServer, tmp_path: pathlib.Path) -> None:
    root = start_run(server, "fan_out", [2])
    page.goto(f"{server.url}/#/runs/{root}")
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    with page.expect_download() as info:
        page.get_by_test_id("trace-download").click()
    download = info.value
    assert download.suggested_filename == f"trace-{root}.json"
    target = tmp_path / "trace.json"
    download.save_as(target)
    document = json.loads(target.read_text(encoding="utf-8"))
    check_trace(document)
    attempts = [e for e in document["traceEvents"] if e.get("cat") == "attempt"]
    assert len(attempts) == 3


def test_search_by_id_prefix_and_time(page: Page, server: DevServer, problems: list[str]) -> None:
    first = start_run(server, "square", [11])
    second = start_run(server, "square", [12])
    page.goto(f"{server.url}/")
    run_row(page, first).wait_for()
    run_row(page, second).wait_for()

    search = page.get_by_test_id("search")
    prefix = first[4:14]  # without "trn-"
    search.fill(prefix)
    run_row(page, second).wait_for(state="detached")
    ids = (
        page.get_by_test_id("runs").locator("tr").evaluate_all("rs => rs.map(r => r.dataset.runId)")
    )
    assert ids == [first]
    search.press("Enter")
    page.wait_for_url(f"**/#/runs/{first}")
    page.get_by_test_id("back").click()

    search = page.get_by_test_id("search")
    search.fill("zzzzzzzzzz")
    page.get_by_test_id("runs-empty").get_by_text("No runs match.").wait_for()
    search.fill("a*b")
    page.locator("#runs-error").get_by_text("q: an id prefix").wait_for()
    assert len(problems) == 1
    assert "400" in problems[0]
    problems.clear()
    search.fill("")
    run_row(page, first).wait_for()

    # Created in the last five minutes: both; between tomorrow and later: none.
    page.get_by_test_id("filter-time").select_option("300")
    run_row(page, first).wait_for()
    page.get_by_test_id("filter-time").select_option("custom")
    tomorrow = _dt.datetime.now() + _dt.timedelta(days=1)
    page.get_by_test_id("filter-after").fill(tomorrow.strftime("%Y-%m-%dT%H:%M:%S"))
    run_row(page, first).wait_for(state="detached")
    page.get_by_test_id("runs-empty").wait_for()
    yesterday = _dt.datetime.now() - _dt.timedelta(days=1)
    page.get_by_test_id("filter-after").fill(yesterday.strftime("%Y-%m-%dT%H:%M:%S"))
    page.get_by_test_id("filter-before").fill(tomorrow.strftime("%Y-%m-%dT%H:%M:%S"))
    run_row(page, first).wait_for()


def test_metrics_header(page: Page, server: DevServer) -> None:
    done = start_run(server, "square", [5])
    page.goto(f"{server.url}/")
    run_row(page, done, "completed").wait_for()
    metrics = page.get_by_test_id("metrics")
    metrics.wait_for()
    expected = requests.get(f"{server.url}/dev/metrics", timeout=30).json()
    completed = metrics.locator('[data-metric="status-completed"] b')
    assert int(completed.inner_text()) >= 1
    assert int(completed.inner_text()) <= expected["runsByStatus"]["completed"]
    metrics.locator("summary").click()
    square = next(d for d in expected["attemptDurations"] if d["taskName"] == "square")
    row = page.get_by_test_id("metrics-durations").locator(f'tr[data-task-id="{square["taskId"]}"]')
    row.wait_for()
    assert row.locator("td").first.inner_text() == "square"


# -- a tree of 500 runs -------------------------------------------------------------------


def _store_tree(path: str, size: int) -> str:
    """A finished tree of ``size`` runs written straight into a database: a root with
    ``size - 1`` subtasks of one task, every tenth of which failed once and was retried."""
    store = Store(path)
    try:
        task_ids = iter(["tsk-fanout", "tsk-square"])
        store.replace_tasks(
            [{"name": "fan_out"}, {"name": "square"}],
            _dt.datetime(2026, 1, 1, tzinfo=UTC),
            lambda prefix: next(task_ids),
        )
        ids = {task.name: task.id for task in store.tasks()}
        t0 = _dt.datetime(2026, 1, 1, 12, tzinfo=UTC)

        def at(ms: float) -> _dt.datetime:
            return t0 + _dt.timedelta(milliseconds=ms)

        root = lifecycle.new_run(
            run_id="trn-root000", task_id=ids["fan_out"], task_name="fan_out", input_data=[], now=t0
        )
        root = lifecycle.start_attempt(root, at(5))
        store.put_run(root)
        for index in range(size - 1):
            child = lifecycle.new_run(
                run_id=f"trn-child{index:05d}",
                task_id=ids["square"],
                task_name="square",
                input_data=[index],
                now=at(10 + index),
                parent=root,
                policy=RetryPolicy(max_retries=1, wait_duration_ms=50, factor=1.0),
            )
            child = lifecycle.start_attempt(child, at(20 + index * 2))
            if index % 10 == 0:
                child = lifecycle.fail_attempt(child, "ValueError: flaky", at(60 + index * 2))
                child = lifecycle.start_attempt(child, at(130 + index * 2))
            child = lifecycle.complete(child, [index * index], at(180 + index * 2))
            store.put_run(child)
        store.put_run(lifecycle.complete(root, [], at(200 + size * 2)))
    finally:
        store.close()
    return "trn-root000"


@pytest.fixture
def big_tree(tmp_path: pathlib.Path, server: DevServer) -> Iterator[tuple[DevServer, str]]:
    db = str(tmp_path / "big.sqlite3")
    root = _store_tree(db, 500)
    dev = DevServer(
        list(server.command),
        port=0,
        db=db,
        cwd=server.cwd,
        env=server.env,
        workflow_slug="wf",
    )
    with dev.run_in_thread() as running:
        yield running, root


def test_a_500_run_tree(
    browser: Browser, big_tree: tuple[DevServer, str], record_property: Any
) -> None:
    big, root = big_tree
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{big.url}/#/runs/{root}")
        timeline = page.get_by_test_id("timeline")
        page.locator('[data-testid="timeline-group"][data-count="499"]').wait_for()
        collapsed_ms = float(timeline.get_attribute("data-render-ms") or "nan")
        assert timeline.get_attribute("data-runs") == "500"
        assert timeline.get_attribute("data-rows") == "2"

        page.locator('[data-testid="timeline-group"]').click()
        page.locator('[data-testid="timeline-group"][data-open="true"]').wait_for()
        assert timeline.get_attribute("data-rows") == "501"
        expanded_ms = float(timeline.get_attribute("data-render-ms") or "nan")
        rows = timeline.locator('[data-testid="timeline-row"]')
        assert rows.locator(".tl-bar.retry-wait").count() == 50
        assert rows.locator(".tl-bar.attempt.failed").count() == 50
        # Rendering again with everything expanded (what a live refresh costs).
        times = page.evaluate(
            """() => {
                const box = document.getElementById("timeline");
                const out = [];
                for (let i = 0; i < 5; i++) {
                    box.querySelector('[data-testid="timeline-group"]').click();
                    out.push(Number(box.dataset.renderMs));
                }
                return out;
            }"""
        )
    finally:
        context.close()
    record_property("timeline_500_collapsed_ms", collapsed_ms)
    record_property("timeline_500_expanded_ms", expanded_ms)
    record_property("timeline_500_toggle_ms", times)
    sys.stdout.write(
        f"\ntimeline of 500 runs: collapsed {collapsed_ms:.1f} ms, expanded {expanded_ms:.1f} ms,"
        f" toggles {times} ms\n"
    )
    # Render times are reported, never asserted (the budget, about 100 ms, is a
    # measurement to read, not a test that a loaded machine could fail): the page
    # must only have measured them.
    assert collapsed_ms > 0
    assert expanded_ms > 0
