"""Warm templates: attempts forked from a registered worker still look like fresh processes.

Real dev servers, real worker processes, real sockets. Each attempt reports what a
fresh process would see (globals, environment, cwd, open files, signal handlers,
pid, process group) and then changes all of it; the next attempt must see none of
those changes. The same probes run with forking off, so both modes are held to the
same answers.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from render_core.errors import TaskRunError
from render_core.models import TaskRunStatus
from render_devserver.server import DevServer
from render_sdk import Render

ROOT = str(pathlib.Path(__file__).resolve().parents[2])

WORKFLOW = """
import asyncio, os, signal, sys, time
from render_sdk import Retry, Workflows

app = Workflows(default_retry=Retry(max_retries=0, wait_duration_ms=0))
STATE = []
KEPT_OPEN = []
MODE_AT_IMPORT = os.environ.get("RENDER_SDK_MODE")


def snapshot():
    return {
        "state": list(STATE),
        "env": os.environ.get("MUTATED_BY_A_TASK"),
        "cwd": os.getcwd(),
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
        "sigusr1": int(signal.getsignal(signal.SIGUSR1)),
        "blocked": sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "ppid": os.getppid(),
        "mode": os.environ.get("RENDER_SDK_MODE"),
        "socket": os.environ.get("RENDER_SDK_SOCKET_PATH"),
        "template_fd": os.environ.get("RENDER_DEV_TEMPLATE_FD"),
        "mode_at_import": MODE_AT_IMPORT,
    }


def mutate(tag):
    STATE.append(tag)
    os.environ["MUTATED_BY_A_TASK"] = tag
    os.chdir("/")
    KEPT_OPEN.append(open(os.devnull))
    signal.signal(signal.SIGUSR1, lambda *args: None)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])


@app.task
async def probe(tag: str) -> dict:
    before = snapshot()
    mutate(tag)
    print(f"stdout of {tag}", flush=True)
    print(f"stderr of {tag}", file=sys.stderr, flush=True)
    return before


@app.task
def sync_probe(tag: str) -> dict:
    before = snapshot()
    STATE.append(tag)
    os.environ["MUTATED_BY_A_TASK"] = tag
    return before


@app.task
def parent_pid() -> int:
    return os.getppid()


@app.task(timeout_seconds=30)
def hangs(pid_file: str) -> None:
    with open(pid_file, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(600)


@app.task
def sleeps(pid_file: str, seconds: float) -> str:
    with open(pid_file, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(seconds)
    return "slept"


@app.task
def aborts() -> None:
    print("about to abort", flush=True)
    os.abort()


@app.task
def exits(code: int) -> None:
    os._exit(code)


@app.task
async def fan_out(n: int) -> list:
    return list(await asyncio.gather(*(parent_pid() for _ in range(n))))


if __name__ == "__main__":
    app.start()
"""

THREADED = """
import os, threading, time
from render_sdk import Workflows

app = Workflows()
threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


@app.task
def parent_pid() -> int:
    return os.getppid()


if __name__ == "__main__":
    app.start()
"""

TINY_WORKER = str(pathlib.Path(ROOT) / "tests" / "faults" / "tiny_worker.py")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = ROOT
    env["PYTHONFAULTHANDLER"] = ""
    return env


def _project(tmp_path: pathlib.Path, source: str = WORKFLOW) -> pathlib.Path:
    (tmp_path / "main.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return tmp_path


def _server(
    project: pathlib.Path,
    *,
    command: list[str] | None = None,
    said: list[str] | None = None,
    **kwargs: Any,
) -> DevServer:
    def sink(run_id: str, line: str) -> None:
        if said is not None and not run_id:
            said.append(line)

    kwargs.setdefault("fork", True)
    return DevServer(
        command or [sys.executable, "main.py"],
        port=0,
        db=":memory:",
        cwd=str(project),
        env=_env(),
        workflow_slug="wf",
        ping_interval=0.5,
        timeout_scale=0.02,  # timeout_seconds=30 lasts 0.6 s
        log_sink=sink,
        **kwargs,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {condition}")
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    """No such process, or only its zombie entry (it has exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


def _template_pid(server: DevServer) -> int:
    assert server.scheduler is not None
    mode = server.scheduler.process_mode
    assert mode.mode == "fork", mode
    template = server.scheduler._template
    assert template is not None
    assert template.pid is not None
    return template.pid


@pytest.fixture(scope="module")
def forked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = _project(tmp_path_factory.mktemp("forked"))
    with _server(project, concurrency=8).run_in_thread() as server:
        yield server


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    project = _project(tmp_path_factory.mktemp("cold"))
    with _server(project, fork=False).run_in_thread() as server:
        yield server


@pytest.fixture
def render(forked: DevServer) -> Iterator[Render]:
    with Render(base_url=forked.url, env={}) as client:
        yield client


def _results(render: Render, task: str, *args: Any) -> Any:
    return render.workflows.run_task(f"wf/{task}", list(args), timeout=60).results[0]


# ----------------------------------------------------------------- isolation


def test_each_attempt_sees_the_module_as_after_import(forked: DevServer, render: Render) -> None:
    first = _results(render, "probe", "one")
    second = _results(render, "probe", "two")
    template = _template_pid(forked)
    for seen in (first, second):
        assert seen["state"] == []  # a global mutated by another attempt is not seen
        assert seen["env"] is None
        assert seen["cwd"] == forked.cwd
        assert seen["sigusr1"] == int(signal.SIG_DFL)
        assert seen["blocked"] == []
        assert seen["pid"] == seen["pgid"] == seen["sid"]  # own session and group
        assert seen["ppid"] == template
        assert seen["mode"] == "run"
        assert seen["template_fd"] is None
        # Module-level code ran in the template, in register mode (documented).
        assert seen["mode_at_import"] == "register"
    assert first["pid"] != second["pid"]
    assert first["socket"] != second["socket"]
    assert first["fds"] == second["fds"]  # what one attempt opened is not in the next


def test_a_sync_attempt_is_isolated_too(render: Render) -> None:
    first = _results(render, "sync_probe", "one")
    second = _results(render, "sync_probe", "two")
    assert first["state"] == second["state"] == []
    assert first["env"] is second["env"] is None


def test_forked_and_cold_attempts_see_the_same_process(
    forked: DevServer, cold: DevServer, render: Render
) -> None:
    with Render(base_url=cold.url, env={}) as cold_render:
        from_cold = _results(cold_render, "probe", "cold")
    from_fork = _results(render, "probe", "fork")
    assert cold.scheduler is not None
    assert cold.scheduler.process_mode.mode == "cold"
    assert from_cold["ppid"] == os.getpid()  # started by this process's dev server
    assert from_fork["ppid"] != os.getpid()
    for key in ("state", "env", "sigusr1", "blocked", "mode", "template_fd", "fds"):
        assert from_fork[key] == from_cold[key], key
    assert from_cold["mode_at_import"] == "run"
    assert from_fork["mode_at_import"] == "register"


def test_logs_are_per_attempt(forked: DevServer, render: Render) -> None:
    runs = [render.workflows.run_task("wf/probe", [tag], timeout=60) for tag in ("a", "b")]
    assert forked.store is not None
    for run, tag, other in zip(runs, "ab", "ba", strict=True):

        def logged(run_id: str = run.id) -> list[tuple[str, str]]:
            assert forked.store is not None
            return [(r.stream, r.message) for r in forked.store.logs(run_ids=[run_id])]

        wait_until(lambda logged=logged: len(logged()) >= 2)
        lines = logged()
        assert ("stdout", f"stdout of {tag}") in lines
        assert ("stderr", f"stderr of {tag}") in lines
        assert not any(other in message for _, message in lines)


def test_subtasks_are_forked_too(forked: DevServer, render: Render) -> None:
    template = _template_pid(forked)
    assert _results(render, "fan_out", 5) == [template] * 5


# ------------------------------------------------------ timeouts, cancel, crashes


def test_a_timeout_kills_the_forked_child(render: Render, tmp_path: pathlib.Path) -> None:
    pid_file = tmp_path / "pid"
    with pytest.raises(TaskRunError, match="timed out"):
        render.workflows.run_task("wf/hangs", [str(pid_file)], timeout=60)
    pid = int(pid_file.read_text())
    wait_until(lambda: _gone(pid))


def test_cancel_kills_the_forked_child(render: Render, tmp_path: pathlib.Path) -> None:
    pid_file = tmp_path / "pid"
    run = render.workflows.start_task("wf/sleeps", [str(pid_file), 600])
    wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
    pid = int(pid_file.read_text())
    render.workflows.cancel_task_run(run.id)
    wait_until(lambda: _gone(pid))
    assert render.workflows.get_task_run(run.id).status is TaskRunStatus.CANCELED


def test_a_run_canceled_in_the_turn_it_started_leaves_nothing_running(
    forked: DevServer, render: Render, tmp_path: pathlib.Path
) -> None:
    # The fork request goes out when the run is launched, before the attempt's task
    # first runs; a cancel in that same turn must still stop the child and close the
    # attempt's socket.
    scheduler, loop = forked.scheduler, forked._loop
    assert scheduler is not None
    assert loop is not None
    assert scheduler._socket_dir is not None
    sockets = pathlib.Path(scheduler._socket_dir)
    before = set(sockets.glob("*.sock"))
    forked_before = scheduler.counters["forked_attempts"]
    pid_file = tmp_path / "pid"

    async def start_and_cancel() -> str:
        run, _ = scheduler.start_run("wf/sleeps", [str(pid_file), 600])
        scheduler.cancel_run(run.id)
        return run.id

    run_id = asyncio.run_coroutine_threadsafe(start_and_cancel(), loop).result(30)
    assert render.workflows.get_task_run(run_id).status is TaskRunStatus.CANCELED
    wait_until(lambda: set(sockets.glob("*.sock")) <= before)
    time.sleep(0.5)  # a child that got to run would have written its pid by now
    if pid_file.exists() and pid_file.read_text():
        pid = int(pid_file.read_text())
        wait_until(lambda: _gone(pid))
    # Nothing was adopted for the canceled attempt, and the next run is still forked.
    assert scheduler.counters["forked_attempts"] == forked_before
    assert _results(render, "parent_pid") == _template_pid(forked)


def test_a_crash_names_the_signal(render: Render) -> None:
    with pytest.raises(TaskRunError, match=r"killed by signal 6 \(SIGABRT\)"):
        render.workflows.run_task("wf/aborts", [], timeout=60)
    with pytest.raises(TaskRunError, match="exited with status 3"):
        render.workflows.run_task("wf/exits", [3], timeout=60)


def test_stopping_the_server_kills_forked_children(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path)
    pid_file = tmp_path / "pid"
    with _server(project).run_in_thread() as server, Render(base_url=server.url, env={}) as r:
        r.workflows.start_task("wf/sleeps", [str(pid_file), 600])
        wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
        pid = int(pid_file.read_text())
        template = _template_pid(server)
    wait_until(lambda: _gone(pid))
    wait_until(lambda: _gone(template))


# ---------------------------------------------------------- template lifecycle


def test_a_dead_template_is_rebuilt_and_attempts_go_on(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path)
    said: list[str] = []
    pid_file = tmp_path / "pid"
    with (
        _server(project, said=said).run_in_thread() as server,
        Render(base_url=server.url, env={}) as render,
    ):
        old = _template_pid(server)
        in_flight = render.workflows.start_task("wf/sleeps", [str(pid_file), 1.0])
        wait_until(lambda: pid_file.exists() and pid_file.read_text() != "")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: _gone(old))
        # Meanwhile attempts still run (cold, or from the new template), never in the
        # spare the dead template left.
        assert _results(render, "parent_pid") in (os.getpid(), _maybe_template(server))
        # The attempt that was running when its template died finishes normally.
        assert render.workflows.wait_for_run(in_flight.id, timeout=60).results == ["slept"]
        wait_until(lambda: _maybe_template(server) not in (None, old))
        new = _template_pid(server)
        assert _results(render, "parent_pid") == new
    assert any("warm template lost" in line for line in said), said


def _maybe_template(server: DevServer) -> int | None:
    assert server.scheduler is not None
    template = server.scheduler._template
    return None if template is None or not template.alive else template.pid


def test_reload_rebuilds_the_template(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path)
    with (
        _server(project, reload=True, reload_interval=0.1).run_in_thread() as server,
        Render(base_url=server.url, env={}) as render,
    ):
        old = _template_pid(server)
        assert _results(render, "parent_pid") == old
        source = WORKFLOW.replace(
            'if __name__ == "__main__":',
            '@app.task\ndef added_later() -> str:\n    return "new code"\n\n\n'
            'if __name__ == "__main__":',
        )
        (project / "main.py").write_text(textwrap.dedent(source), encoding="utf-8")
        wait_until(lambda: "added_later" in {t.name for t in server.scheduler.tasks})  # type: ignore[union-attr]
        new = _template_pid(server)
        assert new != old
        assert _results(render, "added_later") == "new code"
        assert _results(render, "parent_pid") == new
        wait_until(lambda: _gone(old))  # retired, with no attempt left: it exits


def test_reregistering_rebuilds_the_template(forked: DevServer, render: Render) -> None:
    # What SIGHUP does (render-workflows dev calls the scheduler's register()).
    assert forked.scheduler is not None
    assert forked._loop is not None
    old = _template_pid(forked)
    asyncio.run_coroutine_threadsafe(forked.scheduler.register(), forked._loop).result(60)
    new = _template_pid(forked)
    assert new != old
    assert _results(render, "parent_pid") == new
    wait_until(lambda: _gone(old))


def test_a_changed_module_is_never_run_from_a_stale_template(tmp_path: pathlib.Path) -> None:
    # No --reload: the next attempt must still run the code on disk, as a cold one would.
    project = _project(tmp_path)
    with _server(project).run_in_thread() as server, Render(base_url=server.url, env={}) as render:
        old = _template_pid(server)
        source = WORKFLOW.replace("return os.getppid()", "return -os.getppid()")
        path = project / "main.py"
        path.write_text(textwrap.dedent(source), encoding="utf-8")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
        assert _results(render, "parent_pid") < 0  # the new code, started cold
        wait_until(lambda: _maybe_template(server) not in (None, old))
        assert _results(render, "parent_pid") == -_template_pid(server)


# ------------------------------------------------------------------ fallbacks


def test_a_forked_attempt_is_handed_its_input(forked: DevServer, cold: DevServer) -> None:
    """The fork request carries the attempt's input: the child's socket sees only its
    callback. A cold process asks for its input, as on Render."""

    def requests_per_attempt(server: DevServer, render: Render) -> tuple[int, int]:
        scheduler = server.scheduler
        assert scheduler is not None
        before = dict(scheduler.counters)
        assert _results(render, "sync_probe", "handed")["state"] == []
        wait_until(
            lambda: (
                scheduler.counters["task_socket_requests"] > before.get("task_socket_requests", 0)
            )
        )
        return (
            scheduler.counters["task_socket_requests"] - before.get("task_socket_requests", 0),
            scheduler.counters["inputs_handed"] - before.get("inputs_handed", 0),
        )

    with Render(base_url=forked.url, env={}) as render:
        assert requests_per_attempt(forked, render) == (1, 1)
    with Render(base_url=cold.url, env={}) as render:
        assert requests_per_attempt(cold, render) == (2, 0)


def test_no_fork_starts_every_attempt_cold(cold: DevServer) -> None:
    assert cold.scheduler is not None
    assert cold.scheduler.process_mode.mode == "cold"
    assert "--no-fork" in cold.scheduler.process_mode.reason
    with Render(base_url=cold.url, env={}) as render:
        assert _results(render, "parent_pid") == os.getpid()


def test_a_template_with_threads_falls_back_and_warns_once(tmp_path: pathlib.Path) -> None:
    project = _project(tmp_path, THREADED)
    said: list[str] = []
    with (
        _server(project, said=said).run_in_thread() as server,
        Render(base_url=server.url, env={}) as render,
    ):
        assert server.scheduler is not None
        assert server._loop is not None
        mode = server.scheduler.process_mode
        assert mode.mode == "cold"
        assert "threads" in mode.reason
        assert _results(render, "parent_pid") == os.getpid()
        asyncio.run_coroutine_threadsafe(server.scheduler.register(), server._loop).result(60)
        assert _results(render, "parent_pid") == os.getpid()
    assert len([line for line in said if "threads" in line]) == 1, said


def test_a_worker_of_another_sdk_keeps_cold_processes(tmp_path: pathlib.Path) -> None:
    # A stdlib-only worker: it never answers on the template channel.
    with _server(tmp_path, command=[sys.executable, "-S", TINY_WORKER]).run_in_thread() as server:
        assert server.scheduler is not None
        mode = server.scheduler.process_mode
        assert mode.mode == "cold"
        assert "does not offer a warm template" in mode.reason
        with Render(base_url=server.url, env={}) as render:
            assert render.workflows.run_task("wf/noop", [7], timeout=60).results == [7]


def test_the_mode_is_on_the_dev_endpoint(forked: DevServer, cold: DevServer) -> None:
    import requests

    for server, mode in ((forked, "fork"), (cold, "cold")):
        document = requests.get(f"{server.url}/dev/tasks", timeout=30).json()
        assert document["processes"]["mode"] == mode
        assert document["processes"]["description"]


async def _ready_template() -> tuple[Any, Any]:
    """A server-side Template whose template end this test plays (``ready`` sent)."""
    import socket

    from render_core import template as protocol
    from render_devserver.templates import Template

    template = Template()
    peer = socket.socket(fileno=os.dup(template.child_fd))
    template.started()
    peer.send(protocol.build_ready(os.getpid()))
    assert await template.wait_ready(5) is None
    return template, peer


def _sleeping_child() -> int:
    """A real process to play a spare (it sleeps; the test reads its socket)."""
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    return pid


def _offer_spare(peer: Any, spare_id: int, pid: int, *extra: int) -> Any:
    """Announce ``pid`` as spare ``spare_id`` on the template's end ``peer``, with a
    pidfd of it, one end of a new socket pair and the ``extra`` descriptors (which stay
    open here); returns the other end, the spare's."""
    import array
    import socket

    from render_core import template as protocol

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pidfd = os.pidfd_open(pid)
    fds = array.array("i", [pidfd, ours.fileno(), *extra])
    peer.sendmsg(
        [protocol.build_spare(spare_id, pid)], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
    )
    os.close(pidfd)
    ours.close()
    return theirs


def test_a_child_reaped_before_its_forked_message_is_read_is_still_adopted() -> None:
    """In a fan-out a trivial child can end, and be reaped by the template, before the
    server reads the message that announces it: its pidfd then names no pid (-1)."""
    import array
    import socket

    from render_core import template as protocol

    async def scenario() -> tuple[int, str | None]:
        template, peer = await _ready_template()
        read_out, write_out = os.pipe()
        read_err, write_err = os.pipe()
        forking = asyncio.ensure_future(template.fork({}, [], (write_out, write_err)))
        data, _, _, _ = await asyncio.get_running_loop().run_in_executor(
            None, peer.recvmsg, protocol.MAX_MESSAGE_BYTES, socket.CMSG_SPACE(16)
        )
        request = protocol.parse_server_message(data)
        assert isinstance(request, protocol.ForkRequest)
        pid = os.fork()
        if pid == 0:
            os._exit(3)
        pidfd = os.pidfd_open(pid)
        os.waitpid(pid, 0)  # reaped: the pidfd now names no process
        fds = array.array("i", [pidfd]).tobytes()
        peer.sendmsg(
            [protocol.build_forked(request.id, pid)],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)],
        )
        peer.send(protocol.build_exited(request.id, pid, 3))
        os.close(pidfd)
        child = await asyncio.wait_for(forking, 5)
        code = await asyncio.wait_for(child.wait(), 5)
        lost = template.lost
        template.close()
        peer.close()
        for fd in (read_out, write_out, read_err, write_err):
            os.close(fd)
        return code, lost

    code, lost = asyncio.run(scenario())
    assert code == 3
    assert lost is None


def test_a_spare_is_given_its_request_directly_and_a_dead_one_is_passed_over() -> None:
    """The server writes a fork request straight to the spare a template announced,
    knows the child at once and tells the template with ``taken``; a spare that died
    meanwhile costs nothing but a fork request to the template instead."""
    import array
    import select
    import socket

    from render_core import template as protocol

    def receive(sock: socket.socket) -> tuple[bytes, list[int]]:
        assert select.select([sock], [], [], 5)[0], "nothing came"
        data, ancillary, _, _ = sock.recvmsg(protocol.MAX_MESSAGE_BYTES, socket.CMSG_SPACE(16))
        fds: list[int] = []
        for _, _, payload in ancillary:
            fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        return data, fds

    def announce(peer: socket.socket, spare_id: int) -> tuple[int, socket.socket]:
        pid = _sleeping_child()
        return pid, _offer_spare(peer, spare_id, pid)

    async def scenario() -> None:
        template, peer = await _ready_template()
        loop = asyncio.get_running_loop()
        stdio = os.pipe()

        pid, spare_end = announce(peer, 1)
        while template._spare is None:
            await asyncio.sleep(0.01)
        child = await template.fork({"A": "1"}, [], stdio)  # no answer needed
        assert child.pid == pid
        data, fds = await loop.run_in_executor(None, receive, spare_end)
        request = protocol.parse_server_message(data)
        assert isinstance(request, protocol.ForkRequest)
        assert request.set == (("A", "1"),)
        assert len(fds) == 2
        taken, _ = await loop.run_in_executor(None, receive, peer)
        assert protocol.parse_server_message(taken) == protocol.Taken(spare=1, id=request.id)
        peer.send(protocol.build_exited(request.id, pid, 0))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert await asyncio.wait_for(child.wait(), 5) == 0

        dead, dead_end = announce(peer, 2)
        while template._spare is None or template._spare.id != 2:
            await asyncio.sleep(0.01)
        dead_end.close()  # the spare is gone: its socket has no reader
        os.kill(dead, signal.SIGKILL)
        os.waitpid(dead, 0)
        forking = asyncio.ensure_future(template.fork({}, [], stdio))
        data, _ = await loop.run_in_executor(None, receive, peer)
        fallback = protocol.parse_server_message(data)
        assert isinstance(fallback, protocol.ForkRequest)  # to the template this time
        forking.cancel()
        for fd in (*fds, *stdio):
            os.close(fd)
        spare_end.close()
        template.close()
        peer.close()

    asyncio.run(scenario())


def test_a_request_waits_briefly_for_the_spare_a_template_with_no_child_is_forking() -> None:
    """With no child left the template forks its next spare at once: a request made
    then is kept for that spare (a fork request now would cost a second fork), and
    sent to the template if no spare comes within SPARE_WAIT_SECONDS."""
    import array
    import select
    import socket

    from render_core import template as protocol
    from render_devserver.templates import SPARE_WAIT_SECONDS

    def receive(sock: socket.socket, timeout: float = 5) -> tuple[bytes, list[int]]:
        assert select.select([sock], [], [], timeout)[0], "nothing came"
        data, ancillary, _, _ = sock.recvmsg(protocol.MAX_MESSAGE_BYTES, socket.CMSG_SPACE(16))
        fds: list[int] = []
        for _, _, payload in ancillary:
            fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        return data, fds

    def finish(peer: socket.socket, request_id: int, pid: int) -> None:
        peer.send(protocol.build_exited(request_id, pid, 0))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    async def scenario() -> None:
        template, peer = await _ready_template()
        loop = asyncio.get_running_loop()
        stdio = os.pipe()
        first = _sleeping_child()
        first_end = _offer_spare(peer, 1, first)
        while template._spare is None:
            await asyncio.sleep(0.01)
        child = await template.fork({}, [], stdio)
        data, fds = await loop.run_in_executor(None, receive, first_end)
        request_id = protocol.fork_request_id(data)
        assert request_id is not None
        taken, _ = await loop.run_in_executor(None, receive, peer)
        finish(peer, request_id, first)
        await asyncio.wait_for(child.wait(), 5)
        assert template.in_flight == 0

        # No child, no spare: the template is forking one. The request waits for it.
        waiting = asyncio.ensure_future(template.fork({"B": "2"}, [], stdio))
        await asyncio.sleep(0)
        assert not select.select([peer], [], [], 0)[0]  # nothing sent to the template
        second = _sleeping_child()
        second_end = _offer_spare(peer, 2, second)
        child = await asyncio.wait_for(waiting, 5)
        assert child.pid == second
        data, more = await loop.run_in_executor(None, receive, second_end)
        request = protocol.parse_server_message(data)
        assert isinstance(request, protocol.ForkRequest)
        assert request.set == (("B", "2"),)
        taken, _ = await loop.run_in_executor(None, receive, peer)
        assert protocol.parse_server_message(taken) == protocol.Taken(spare=2, id=request.id)
        finish(peer, request.id, second)
        await asyncio.wait_for(child.wait(), 5)

        # No spare comes: after the wait the request goes to the template.
        began = loop.time()
        late = asyncio.ensure_future(template.fork({}, [], stdio))
        data, _ = await loop.run_in_executor(None, receive, peer)
        assert loop.time() - began >= SPARE_WAIT_SECONDS
        assert isinstance(protocol.parse_server_message(data), protocol.ForkRequest)
        # ... and the next request does not wait until a spare is offered again.
        at_once = asyncio.ensure_future(template.fork({}, [], stdio))
        data, _ = await loop.run_in_executor(None, receive, peer)
        assert isinstance(protocol.parse_server_message(data), protocol.ForkRequest)
        for task in (late, at_once):
            task.cancel()
        for fd in (*fds, *more, *stdio):
            os.close(fd)
        first_end.close()
        second_end.close()
        template.close()
        peer.close()

    asyncio.run(scenario())


def test_a_spare_is_woken_through_its_counter_before_its_request_and_a_bad_counter_is_refused() -> (
    None
):
    """A spare announced with a wake-up counter (an eventfd) finds it bumped when its
    request is in its socket; a third descriptor that is no eventfd breaks the control
    protocol (the template is lost, attempts start cold)."""
    import array
    import socket

    from render_core import template as protocol
    from render_devserver.templates import TemplateLost

    async def scenario() -> None:
        template, peer = await _ready_template()
        wake = os.eventfd(0, os.EFD_NONBLOCK)
        pid = _sleeping_child()
        theirs = _offer_spare(peer, 1, pid, wake)
        while template._spare is None:
            await asyncio.sleep(0.01)
        stdio = os.pipe()
        pending = template.request_fork({"A": "1"}, [], stdio)
        assert os.eventfd_read(wake) == 1
        data, received, _, _ = theirs.recvmsg(protocol.MAX_MESSAGE_BYTES, socket.CMSG_SPACE(8))
        assert isinstance(protocol.parse_server_message(data), protocol.ForkRequest)
        for _, _, payload in received:
            for fd in array.array("i", payload):
                os.close(fd)
        template.abandon(pending)  # its child (the spare) is killed
        assert os.waitpid(pid, 0)[1] == signal.SIGKILL
        theirs.close()
        os.close(wake)

        not_a_counter = os.pipe()
        bad_theirs = _offer_spare(peer, 2, os.getpid(), not_a_counter[0])
        while template.lost is None:
            await asyncio.sleep(0.01)
        assert "eventfd" in template.lost
        with pytest.raises(TemplateLost):
            template.request_fork({}, [], stdio)
        for fd in (*stdio, *not_a_counter):
            os.close(fd)
        bad_theirs.close()
        template.close()
        peer.close()

    asyncio.run(scenario())


def test_the_spare_of_a_template_that_died_is_never_handed_a_request() -> None:
    """A template can die (its end of file already waiting) in the same event-loop turn
    as a request: its spare would run an attempt nobody reports the exit of, so the
    request is refused (the attempt starts cold) and the spare is let go."""

    from render_core import template as protocol
    from render_devserver.templates import TemplateLost

    async def scenario() -> None:
        template, peer = await _ready_template()
        theirs = _offer_spare(peer, 1, os.getpid())
        while template._spare is None:
            await asyncio.sleep(0.01)
        peer.close()  # the template dies; no loop turn runs before the request
        stdio = os.pipe()
        with pytest.raises(TemplateLost, match="exited"):
            template.request_fork({}, [], stdio)
        assert template._spare is None
        theirs.settimeout(5)
        assert theirs.recv(protocol.MAX_MESSAGE_BYTES) == b""  # let go, never given it
        theirs.close()
        for fd in stdio:
            os.close(fd)
        template.close()

    asyncio.run(scenario())
