"""The dashboard in a real browser: Chromium (headless, driven by Playwright) against a real
dev server on 127.0.0.1 running real task processes.

The browser tests skip when Playwright or a Chromium binary is missing, unless
``RENDER_SDK_REQUIRE_BROWSER=1`` (as in CI), where they fail instead. ``RENDER_SDK_CHROMIUM``
names the browser binary when it is not ``chromium`` on the PATH.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import requests

from render_devserver.server import DevServer
from tests.dashboard.support import ASSETS, MARKUP, run_row, start_run

if TYPE_CHECKING:
    from playwright.sync_api import Page

# -- without a browser --------------------------------------------------------------------


def test_static_shell_is_served_without_network_dependencies(server: DevServer) -> None:
    index = requests.get(f"{server.url}/", timeout=30)
    assert index.status_code == 200
    assert index.headers["Content-Type"].startswith("text/html")
    policy = index.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert '<script src="/dashboard/app.js"' in index.text
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        asset = requests.get(f"{server.url}/dashboard/{name}", timeout=30)
        assert asset.status_code == 200
        assert asset.headers["Content-Type"].startswith(kind)
        assert asset.content == (ASSETS / name).read_bytes()
    for path in ASSETS.iterdir():
        if path.suffix in {".html", ".js", ".css"}:
            text = path.read_text(encoding="utf-8")
            assert re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text) is None, path.name
            assert "innerHTML" not in text, path.name
            assert "insertAdjacentHTML" not in text, path.name
    missing = requests.get(f"{server.url}/dashboard/../api.py", timeout=30)
    assert missing.status_code == 404


def test_dev_tasks_lists_parameters_and_options(server: DevServer) -> None:
    response = requests.get(f"{server.url}/dev/tasks", timeout=30)
    assert response.status_code == 200
    tasks = {task["name"]: task for task in response.json()["tasks"]}
    assert tasks["square"]["slug"] == "wf/square"
    assert tasks["square"]["parameters"] == [{"name": "a", "has_default": False, "type": "int"}]
    assert tasks["always_fails"]["options"]["retry"]["max_retries"] == 1
    assert server.scheduler is not None
    assert response.json()["processes"] == server.scheduler.process_mode.as_json()


# -- in the browser -----------------------------------------------------------------------


def test_start_a_run_from_the_form_and_open_it(page: Page, server: DevServer) -> None:
    page.goto(f"{server.url}/")
    tasks = page.get_by_test_id("tasks")
    tasks.locator('li[data-task="square"]').wait_for()
    assert "square(a: int)" in tasks.inner_text()
    assert page.get_by_test_id("workflow").inner_text() == "workflow wf"
    # How task processes start, as the server says (forked, or cold when the suite
    # runs with RENDER_DEV_NO_FORK).
    assert server.scheduler is not None
    mode = server.scheduler.process_mode.mode
    processes = page.get_by_test_id("processes")
    assert processes.inner_text() == ("processes: forked" if mode == "fork" else "processes: cold")
    assert processes.get_attribute("title") == server.scheduler.process_mode.describe()

    page.get_by_test_id("start-task").select_option("wf/square")
    page.get_by_test_id("start-input").fill("[7]")
    page.get_by_test_id("start-submit").click()
    started = page.get_by_test_id("started-run")
    started.wait_for()
    run_id = started.inner_text()
    assert run_id.startswith("trn-")

    run_row(page, run_id, "completed").wait_for()
    assert "square" in run_row(page, run_id).inner_text()

    run_row(page, run_id).get_by_role("link").click()
    page.wait_for_url(f"**/#/runs/{run_id}")
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    assert page.get_by_test_id("run-id").inner_text() == run_id
    assert json.loads(page.get_by_test_id("run-input").inner_text()) == [7]
    assert json.loads(page.get_by_test_id("run-outcome").inner_text()) == [49]
    logs = page.get_by_test_id("logs")
    logs.get_by_text("squaring 7").wait_for()
    logs.locator(".line.stderr", has_text="a note on stderr").wait_for()
    attempts = page.get_by_test_id("attempts").locator("tr")
    assert attempts.count() == 1
    assert "completed" in attempts.first.inner_text()
    assert page.get_by_test_id("cancel").is_hidden()

    page.get_by_test_id("back").click()
    run_row(page, run_id).wait_for()


def test_the_form_validates_its_input(page: Page, server: DevServer, problems: list[str]) -> None:
    page.goto(f"{server.url}/")
    page.locator('#start-task option[value="wf/square"]').wait_for(state="attached")
    page.get_by_test_id("start-task").select_option("wf/square")
    error = page.get_by_test_id("start-error")

    page.get_by_test_id("start-input").fill("[1,")
    page.get_by_test_id("start-submit").click()
    error.wait_for()
    assert "not valid JSON" in error.inner_text()

    page.get_by_test_id("start-input").fill("42")
    page.get_by_test_id("start-submit").click()
    page.get_by_text("must be a JSON array").wait_for()

    page.get_by_test_id("start-input").fill("")
    page.get_by_test_id("start-submit").click()
    page.get_by_text("Input is required").wait_for()
    assert page.get_by_test_id("started-run").count() == 0

    # The server's own refusal is shown too: a task that is gone since the page loaded.
    page.evaluate(
        """() => {
            const option = document.createElement("option");
            option.value = "wf/no_such_task";
            option.textContent = "no_such_task";
            document.getElementById("start-task").append(option);
        }"""
    )
    page.get_by_test_id("start-task").select_option("wf/no_such_task")
    page.get_by_test_id("start-input").fill("[]")
    page.get_by_test_id("start-submit").click()
    page.get_by_text("task not found: wf/no_such_task").wait_for()
    # The browser reports the refused request itself; that one is expected.
    assert len(problems) == 1
    assert "404" in problems[0]
    problems.clear()


def test_cancel_a_long_run(page: Page, server: DevServer) -> None:
    run_id = start_run(server, "sleeper", [600])
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.locator('[data-testid="run-status"][data-status="running"]').wait_for()
    page.get_by_test_id("logs").get_by_text("going to sleep").wait_for()
    page.get_by_test_id("cancel").click()
    page.locator('[data-testid="run-status"][data-status="canceled"]').wait_for()
    page.get_by_test_id("cancel").wait_for(state="hidden")
    assert page.locator("#run-outcome-title").inner_text() == "Canceled"
    assert requests.get(f"{server.url}/v1/task-runs/{run_id}", timeout=30).json()["status"] == (
        "canceled"
    )


def test_run_tree_and_attempts_with_errors(page: Page, server: DevServer) -> None:
    root = start_run(server, "fan_out", [3])
    page.goto(f"{server.url}/#/runs/{root}")
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    tree = page.get_by_test_id("tree")
    children = tree.locator(f'li[data-run-id="{root}"] > ul > li')
    children.nth(2).wait_for()
    assert children.count() == 3
    assert tree.locator(".badge.completed").count() == 4
    assert json.loads(page.get_by_test_id("run-outcome").inner_text()) == [[0, 1, 4]]

    # A subtask's page links back to its parent and shows the same tree.
    children.first.get_by_role("link").click()
    page.locator("#run-facts").get_by_text("Parent run").wait_for()
    page.locator(".tree .node.current").wait_for()
    assert page.locator("#run-task").inner_text() == "square"

    failing = start_run(server, "always_fails", [])
    page.goto(f"{server.url}/#/runs/{failing}")
    page.locator('[data-testid="run-status"][data-status="failed"]').wait_for()
    attempts = page.get_by_test_id("attempts").locator("tr")
    assert attempts.count() == 2
    for index in range(2):
        assert "nope, not today" in attempts.nth(index).inner_text()
        assert "failed" in attempts.nth(index).inner_text()
    assert "nope, not today" in page.get_by_test_id("run-outcome").inner_text()


def test_runs_filter_by_status_and_task(page: Page, server: DevServer) -> None:
    failed = start_run(server, "always_fails", [])
    done = start_run(server, "square", [3])
    page.goto(f"{server.url}/")
    run_row(page, failed, "failed").wait_for()
    run_row(page, done, "completed").wait_for()

    page.get_by_test_id("filter-status").select_option("failed")
    run_row(page, done).wait_for(state="detached")
    statuses = (
        page.get_by_test_id("runs")
        .locator("tr")
        .evaluate_all("rows => rows.map(row => row.dataset.status)")
    )
    assert statuses
    assert set(statuses) == {"failed"}

    page.get_by_test_id("filter-status").select_option("")
    page.get_by_test_id("filter-task").select_option("wf/square")
    run_row(page, failed).wait_for(state="detached")
    run_row(page, done).wait_for()
    names = page.get_by_test_id("runs").locator("tr td:nth-child(2)").all_inner_texts()
    assert set(names) == {"square"}


def test_server_strings_are_shown_as_text(page: Page, server: DevServer) -> None:
    run_id = start_run(server, "echo", [MARKUP])
    page.goto(f"{server.url}/#/runs/{run_id}")
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    page.get_by_test_id("logs").get_by_text(MARKUP).wait_for()
    assert json.loads(page.get_by_test_id("run-input").inner_text()) == [MARKUP]
    assert page.locator("#injected").count() == 0
    assert page.locator("b", has_text="bold").count() == 0
    assert page.evaluate("() => window.__injected === undefined")


def test_token_from_the_fragment_is_sent_and_hidden(page: Page, server: DevServer) -> None:
    seen: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            seen.append(request.headers.get("authorization")) if "/v1/" in request.url else None
        ),
    )
    page.goto(f"{server.url}/#token=s3cret")
    page.locator('#tasks li[data-task="square"]').wait_for()
    assert "token" not in page.url
    assert seen
    assert set(seen) == {"Bearer s3cret"}


def test_a_server_with_a_token(page: Page, server: DevServer, problems: list[str]) -> None:
    guarded = DevServer(
        list(server.command),
        port=0,
        db=":memory:",
        cwd=server.cwd,
        env=server.env,
        workflow_slug="wf",
        auth_token="s3cret-token",
    )
    with guarded.run_in_thread() as running:
        # The shell loads without the token; the data does not.
        assert requests.get(f"{running.url}/", timeout=30).status_code == 200
        assert requests.get(f"{running.url}/dev/tasks", timeout=30).status_code == 401
        page.goto(f"{running.url}/")
        page.locator("#token-bar").wait_for()
        page.get_by_text("token needed").wait_for()
        assert page.locator("#tasks li").count() == 0
        page.locator("#token-input").fill("s3cret-token")
        page.get_by_role("button", name="Use token").click()
        page.locator('#tasks li[data-task="square"]').wait_for()
        page.locator("#token-bar").wait_for(state="hidden")

        # A run started and followed (event stream included) with the token.
        page.get_by_test_id("start-task").select_option("wf/square")
        page.get_by_test_id("start-input").fill('{"a": 5}')
        page.get_by_test_id("start-submit").click()
        page.get_by_test_id("started-run").click()
        page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
        assert json.loads(page.get_by_test_id("run-outcome").inner_text()) == [25]
        page.goto("about:blank")  # before the server goes away under the polling page
    # The browser reported the refused calls made before the token was given.
    assert problems
    assert all("401" in problem for problem in problems)
    problems.clear()


def test_typed_parameters_show_their_annotation_and_a_skeleton(
    page: Page, server: DevServer
) -> None:
    page.goto(f"{server.url}/")
    page.get_by_test_id("tasks").locator('li[data-task="plan_trip"]').wait_for()
    skeleton = page.get_by_test_id("start-skeleton")
    page.get_by_test_id("start-task").select_option("wf/square")
    assert skeleton.is_hidden()  # nothing structured to write
    page.get_by_test_id("start-task").select_option("wf/plan_trip")
    assert "plan_trip(stops: list[Stop], budget: int = 100)" in (
        page.locator("#start-signature").inner_text()
    )
    skeleton.click()
    filled = json.loads(page.get_by_test_id("start-input").input_value())
    assert filled == [[{"city": "", "day": "2026-01-01"}], 100]
    # The skeleton is a valid input: edit a value and run it.
    filled[0][0]["city"] = "Lyon"
    page.get_by_test_id("start-input").fill(json.dumps(filled))
    page.get_by_test_id("start-submit").click()
    started = page.get_by_test_id("started-run")
    started.wait_for()
    run_row(page, started.inner_text(), "completed").wait_for()
    run_row(page, started.inner_text()).get_by_role("link").click()
    page.locator('[data-testid="run-status"][data-status="completed"]').wait_for()
    assert json.loads(page.get_by_test_id("run-outcome").inner_text()) == ["Lyon on 01 Jan (100)"]
