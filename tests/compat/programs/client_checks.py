"""Drive an OFFICIAL Render client against a server; one JSON line per step on stdout.

Run with the python of a venv holding the official SDK:

    python client_checks.py render_sdk   # official 0.6.1
    python client_checks.py render       # official 1.x

The server comes from the environment exactly as a user would point the official
clients at a local dev server: ``RENDER_USE_LOCAL_DEV=true`` and
``RENDER_LOCAL_DEV_URL=http://127.0.0.1:PORT`` (0.6.1 also needs ``RENDER_API_KEY``).
It expects the workflow ``tests/compat/programs/our_workflow.py`` under the slug ``wf``.

Every step prints ``{"step": name, "value": ...}`` or ``{"step": name, "error": ...}``
as soon as it is done, and a progress line on stderr before it starts, so a step
that hangs (the official clients have no read timeout) is named by the test that
kills this script. Nothing here asserts: the test does, on what was printed.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import Any

PKG = sys.argv[1]
TEXT = "h\u00e9llo \u2713 line\u2028sep\u2029para\u0085nel \U0001f600"
DEADLINE = 30.0  # per step
POLL_DEADLINE = 30.0  # waiting for a status by polling

sdk = importlib.import_module(PKG)
errors_module = importlib.import_module(f"{PKG}.client.errors")
types_module = importlib.import_module(f"{PKG}.client.types")
api_package = "workflow_tasks_beta" if PKG == "render_sdk" else "workflow_tasks"
list_tasks_api = importlib.import_module(f"{PKG}.public_api.api.{api_package}.list_tasks")
get_task_api = importlib.import_module(f"{PKG}.public_api.api.{api_package}.get_task")


class _Collect(logging.Handler):
    """The official SSE parser logs and swallows events it cannot parse: keep them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(f"{record.name}: {record.getMessage()}")


collected = _Collect()
logging.getLogger(PKG).addHandler(collected)
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def emit(step: str, **fields: Any) -> None:
    print(json.dumps({"step": step, **fields}, default=str), flush=True)


def describe(exc: BaseException) -> dict[str, Any]:
    return {
        "type": type(exc).__name__,
        "mro": [cls.__name__ for cls in type(exc).__mro__],
        "message": str(exc),
    }


def step(name: str, fn: Callable[[], Any]) -> Any:
    """Run one check in a thread, so that a hang is reported instead of waited out."""
    print(f"step: {name}", file=sys.stderr, flush=True)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except Exception as exc:
            traceback.print_exc()
            outcome["error"] = describe(exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    if thread.is_alive():
        emit(name, error={"type": "Hang", "mro": [], "message": f"no answer in {DEADLINE} s"})
        emit("logged_errors", value=collected.records)
        os._exit(3)
    emit(name, **outcome)
    return outcome.get("value")


def expect_error(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run ``fn``; the error it raised, described (a return is reported as a failure)."""
    try:
        value = fn()
    except Exception as exc:
        return describe(exc)
    raise AssertionError(f"expected an exception, got {value!r}")


def as_dict(model: Any) -> Any:
    """An official (generated, attrs) model as the JSON it was parsed from."""
    return model.to_dict()


def wait_terminal(workflows: Any, run_id: str) -> Any:
    """Poll ``get_task_run`` (REST only, no SSE) until the run has finished."""
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        details = workflows.get_task_run(run_id)
        if details.status.value in ("completed", "succeeded", "failed", "canceled"):
            return details
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run_id} still {details.status.value}")
        time.sleep(0.05)


def wait_status(workflows: Any, run_id: str, status: str) -> Any:
    deadline = time.monotonic() + POLL_DEADLINE
    while True:
        details = workflows.get_task_run(run_id)
        if details.status.value == status:
            return details
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run_id} is {details.status.value}, never {status}")
        time.sleep(0.05)


def all_runs(workflows: Any) -> list[Any]:
    """Every run, following cursors (pages of 100)."""
    runs: list[Any] = []
    params = types_module.ListTaskRunsParams(limit=100)
    while True:
        page = workflows.list_task_runs(params)
        runs.extend(page)
        if len(page) < 100:
            return runs
        params = types_module.ListTaskRunsParams(limit=100, cursor=page[-1].cursor)


def main() -> None:
    render = sdk.Render()
    wf = render.workflows
    step(
        "meta",
        lambda: {
            "file": sdk.__file__,
            "version": sdk.__version__,
            "token": bool(render.client.token),
            "base_url": render.client.base_url,
            "internal_class": type(render.client.internal).__name__,
        },
    )

    # -- sync: run_task, start_task + get_task_run ------------------------------------
    step("sync_run_positional", lambda: as_dict(wf.run_task("wf/square", [7])))
    step("sync_run_named", lambda: as_dict(wf.run_task("wf/add", {"a": 40})))
    step("sync_run_default_arg", lambda: as_dict(wf.run_task("wf/add", [1])))
    step("sync_run_list_result", lambda: as_dict(wf.run_task("wf/pair", [])))
    step("sync_run_unicode", lambda: as_dict(wf.run_task("wf/echo", [TEXT])))

    def start_then_get() -> dict[str, Any]:
        started = wf.start_task("wf/square", [3])
        return {
            "started_type": type(started).__name__,
            "started": as_dict(started),
            "final": as_dict(wait_terminal(wf, started.id)),
        }

    def big_unicode() -> dict[str, Any]:
        # ~0.9 MB of multi-byte UTF-8: the event carrying it spans many reads.
        text = "\u00e9\u2713\U0001f600" * 100_000
        awaited = wf.run_task("wf/echo", [text])  # the result comes from the event
        fetched = wf.get_task_run(awaited.id)  # the same result, over plain REST
        return {
            "sent_chars": len(text),
            "event_chars": len(awaited.results[0]),
            "event_equal": awaited.results == [text],
            "rest_equal": fetched.results == [text],
        }

    step("sync_big_unicode", big_unicode)
    step("sync_start_then_get", start_then_get)

    def retried() -> dict[str, Any]:
        # Failed attempts that are retried must not surface as a failed event: the
        # official clients return on the first event for the run.
        marker = os.path.join(tempfile.mkdtemp(), "count")
        details = wf.run_task("wf/flaky", [marker])
        return as_dict(details)

    step("sync_retried", retried)
    step("sync_failure", lambda: expect_error(lambda: wf.run_task("wf/fails", ["boom"])))
    step(
        "sync_unknown_run",
        lambda: expect_error(lambda: wf.get_task_run("trn-00000000000000000000")),
    )
    step("sync_unknown_task", lambda: expect_error(lambda: wf.start_task("wf/nope", [])))

    # -- events for several runs: two replayed, one live ------------------------------
    def events() -> dict[str, Any]:
        done = [wf.start_task("wf/square", [i]).id for i in (4, 5)]
        for run_id in done:
            wait_terminal(wf, run_id)
        live = wf.start_task("wf/sleeper", [1.0]).id
        failed = wf.start_task("wf/fails", ["evented"]).id
        wanted = [*done, live, failed]
        seen: dict[str, Any] = {}
        order: list[str] = []
        began = time.monotonic()
        stream = wf.task_run_events(wanted)
        for event in stream:
            if event.id in wanted and event.id not in seen:
                seen[event.id] = as_dict(event)
                order.append(event.id)
            if len(seen) == len(wanted):
                break
        stream.close()
        return {
            "ids": wanted,
            "order": order,
            "events": seen,
            "seconds": time.monotonic() - began,
        }

    step("sync_events", events)

    # -- cancel ------------------------------------------------------------------------
    def cancel() -> dict[str, Any]:
        run_id = wf.start_task("wf/sleeper", [600]).id
        wait_status(wf, run_id, "running")
        returned = wf.cancel_task_run(run_id)
        details = wait_terminal(wf, run_id)
        replayed = None
        stream = wf.task_run_events([run_id])
        for event in stream:
            if event.id == run_id:
                replayed = as_dict(event)
                break
        stream.close()
        return {
            "returned": returned,
            "details": as_dict(details),
            "replayed": replayed,
            "again": expect_error(lambda: wf.cancel_task_run(run_id)),
        }

    step("sync_cancel", cancel)

    # -- subtasks and listing ----------------------------------------------------------
    def subtasks() -> dict[str, Any]:
        details = wf.run_task("wf/fan_out", [3])
        children = [
            as_dict(item.task_run)
            for item in all_runs(wf)
            if item.task_run.root_task_run_id == details.id and item.task_run.id != details.id
        ]
        return {"root": as_dict(details), "children": children}

    step("sync_subtasks", subtasks)

    def listing() -> dict[str, Any]:
        items = wf.list_task_runs()
        page1 = wf.list_task_runs(types_module.ListTaskRunsParams(limit=2))
        page2 = wf.list_task_runs(types_module.ListTaskRunsParams(limit=2, cursor=page1[-1].cursor))
        return {
            "item_type": type(items[0]).__name__,
            "count": len(items),
            "first": {"task_run": as_dict(items[0].task_run), "cursor": items[0].cursor},
            "page1": [(item.task_run.id, item.cursor) for item in page1],
            "page2": [(item.task_run.id, item.cursor) for item in page2],
            "all_ids": [item.task_run.id for item in all_runs(wf)],
            "owner_filtered_type": type(
                wf.list_task_runs(types_module.ListTaskRunsParams(owner_id=["tea-compat"]))
            ).__name__,
        }

    step("sync_list", listing)

    def tasks() -> dict[str, Any]:
        response = list_tasks_api.sync_detailed(client=render.client.internal)
        items = response.parsed
        first = items[0].task
        one = get_task_api.sync_detailed(client=render.client.internal, task_id=first.id)
        by_slug = get_task_api.sync_detailed(client=render.client.internal, task_id="wf/square")
        return {
            "status": int(response.status_code),
            "items": [{"task": as_dict(i.task), "cursor": i.cursor} for i in items],
            "get_status": int(one.status_code),
            "get": as_dict(one.parsed),
            "slug_status": int(by_slug.status_code),
            "slug_name": by_slug.parsed.name,
        }

    step("generated_tasks", tasks)

    if PKG == "render":

        def idempotency() -> dict[str, Any]:
            key = str(uuid.uuid4())
            first = wf.start_task("wf/square", [11], idempotency_key=key)
            second = wf.start_task("wf/square", [11], idempotency_key=key)
            other = wf.start_task("wf/square", [11], idempotency_key=str(uuid.uuid4()))
            result = wf.run_task("wf/square", [12], idempotency_key=key)
            return {
                "first": first.id,
                "second": second.id,
                "other": other.id,
                "run_task_same_key": result.id,
            }

        step("sync_idempotency", idempotency)

    # -- async client ------------------------------------------------------------------
    asyncio.run(async_main())

    emit("logged_errors", value=collected.records)
    emit("done", value=True)


async def async_main() -> None:
    render = sdk.RenderAsync()
    wf = render.workflows

    async def astep(name: str, coro: Any) -> None:
        print(f"step: {name}", file=sys.stderr, flush=True)
        try:
            value = await asyncio.wait_for(coro, DEADLINE)
        except asyncio.TimeoutError:
            emit(name, error={"type": "Hang", "mro": [], "message": f"no answer in {DEADLINE} s"})
            return
        except Exception as exc:
            traceback.print_exc()
            emit(name, error=describe(exc))
            return
        emit(name, value=value)

    async def gather() -> dict[str, Any]:
        runs = [await wf.start_task("wf/square", [i]) for i in range(6)]
        statuses = [run.status for run in runs]
        finished = await asyncio.gather(*runs)
        return {
            "awaitable_type": type(runs[0]).__name__,
            "initial_statuses": statuses,
            "results": [d.results for d in finished],
            "ids_match": [d.id for d in finished] == [r.id for r in runs],
        }

    await astep("async_gather", gather())

    async def run_task() -> Any:
        return as_dict(await wf.run_task("wf/add", {"a": 1, "b": 2}))

    await astep("async_run_task", run_task())

    async def failure() -> dict[str, Any]:
        try:
            await wf.run_task("wf/fails", ["async boom"])
        except Exception as exc:
            return describe(exc)
        raise AssertionError("no exception")

    await astep("async_failure", failure())

    async def cancel() -> dict[str, Any]:
        awaitable = await wf.start_task("wf/sleeper", [600])
        deadline = time.monotonic() + POLL_DEADLINE
        while (await wf.get_task_run(awaitable.id)).status.value != "running":
            if time.monotonic() > deadline:
                raise TimeoutError("never running")
            await asyncio.sleep(0.05)

        async def wait() -> Any:
            return await awaitable

        waiting = asyncio.ensure_future(wait())
        await asyncio.sleep(0.3)  # subscribed before the cancel: the event arrives live
        await wf.cancel_task_run(awaitable.id)
        live = await waiting
        late = await awaitable  # subscribed after: the canceled state is replayed
        return {"live": as_dict(live), "late": as_dict(late)}

    await astep("async_cancel", cancel())

    async def get_and_list() -> dict[str, Any]:
        run = await wf.start_task("wf/square", [9])
        details = await run
        got = await wf.get_task_run(run.id)
        items = await wf.list_task_runs(types_module.ListTaskRunsParams(limit=5))
        return {
            "awaited": as_dict(details),
            "got": as_dict(got),
            "listed": [as_dict(item.task_run) for item in items],
            "cursors": [item.cursor for item in items],
        }

    await astep("async_get_and_list", get_and_list())

    async def events() -> dict[str, Any]:
        ids = [(await wf.start_task("wf/square", [i])).id for i in (20, 21, 22)]
        seen: dict[str, Any] = {}
        stream = wf.task_run_events(ids)
        async for event in stream:
            if event.id in ids:
                seen.setdefault(event.id, event.results)
            if len(seen) == len(ids):
                break
        await stream.aclose()
        return {"ids": ids, "results": seen}

    await astep("async_events", events())


if __name__ == "__main__":
    main()
