"""A Render Workflows client on ``render_core`` and the standard library: the core builds,
parses, retries and waits; this file moves bytes with urllib (a thread per event stream)."""

import os
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from render_core import flows
from render_core.config import resolve_config
from render_core.errors import ConnectionFailed, NetworkError
from render_core.http import Request, Response
from render_core.models import TaskRun, TaskRunDetails
from render_core.waiter import CloseStream, Fetch, OpenStream, RunWaiter


def _open(request: Request, timeout: float) -> Any:
    raw = urllib.request.Request(
        request.url, data=request.body or None, method=request.method, headers=dict(request.headers)
    )
    try:
        return urllib.request.urlopen(raw, timeout=timeout)
    except urllib.error.HTTPError as err:  # a 4xx/5xx answer is still an answer
        return err
    except urllib.error.URLError as err:  # refused, DNS: the request was not sent
        raise ConnectionFailed(f"{request.method} {request.url}: {err.reason}") from err


def send(request: Request) -> Response:
    try:
        with _open(request, timeout=30) as raw:
            return Response(status=raw.status, headers=list(raw.headers.items()), body=raw.read())
    except OSError as err:  # reset, timeout, closed early: it may have been sent
        raise NetworkError(f"{request.method} {request.url}: {err}") from err


class UrllibClient:
    def __init__(self, **options: Any) -> None:
        self.config = resolve_config(env=os.environ, **options)  # the core's rules
        self.operations = flows.Operations(self.config)  # every REST call, bound to it

    def start_task(self, task: str, input_data: Any) -> TaskRun:
        return flows.run_sync(self.operations.start_task(task, input_data), send, time.sleep)

    def get_task_run(self, run_id: str) -> TaskRunDetails:
        return flows.run_sync(self.operations.get_task_run(run_id), send, time.sleep)

    def wait_for_runs(self, ids: list[str], timeout: float) -> list[TaskRunDetails]:
        """Final details of every run, in order; raises TaskRunError for a failed one."""
        waiter = RunWaiter(self.config)
        waiter.add(ids, time.monotonic(), timeout=timeout)
        events: queue.Queue[tuple[str, int, Any]] = queue.Queue()
        closed: set[int] = set()
        finished: dict[str, TaskRunDetails] = {}
        while True:
            for result in waiter.take_results():
                finished[result.run_id] = result.unwrap()
            if waiter.done:
                return [finished[run_id] for run_id in ids]
            for action in waiter.poll(time.monotonic()):
                if isinstance(action, OpenStream):
                    args = (action.stream_id, action.request, events, closed)
                    threading.Thread(target=_read, args=args, daemon=True).start()
                elif isinstance(action, CloseStream):
                    closed.add(action.stream_id)  # its thread stops at its next chunk
                elif isinstance(action, Fetch):
                    try:
                        waiter.fetch_response(action.run_id, send(action.request), time.monotonic())
                    except NetworkError as err:
                        waiter.fetch_failed(action.run_id, err, time.monotonic())
            deadline = waiter.next_deadline()
            try:
                kind, stream_id, value = events.get(
                    timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
                )
            except queue.Empty:
                continue
            if kind == "opened":
                waiter.stream_opened(stream_id, value, time.monotonic())
            elif kind == "data":
                waiter.stream_data(stream_id, value, time.monotonic())
            else:
                waiter.stream_closed(stream_id, time.monotonic(), value)


def _read(stream_id: int, request: Request, events: queue.Queue[Any], closed: set[int]) -> None:
    error = None
    try:
        with _open(request, timeout=90) as raw:  # longer than the server's keep-alive pings
            opened = Response(status=raw.status, headers=list(raw.headers.items()))
            events.put(("opened", stream_id, opened))
            while raw.status == 200 and stream_id not in closed and (chunk := raw.read1(65536)):
                events.put(("data", stream_id, chunk))
    except (NetworkError, OSError) as err:
        error = err if isinstance(err, NetworkError) else NetworkError(f"stream failed: {err}")
    events.put(("closed", stream_id, error))
