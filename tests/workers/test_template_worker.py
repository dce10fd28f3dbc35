"""The worker as a warm template, driven by hand over its control socket.

A real worker process registers with a fake task socket, then this test plays the
dev server's part on the control channel: it asks for forks, passes the log pipes,
and checks the answers (pid, pidfd, exit status), the refusals, and what the
template does when the channel closes.
"""

from __future__ import annotations

import array
import os
import pathlib
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from render_core import template as protocol
from tests.support.fake_task_socket import FakeTaskSocket
from tests.support.programs import ROOT, output_of

PROGRAM = """
import os, time
from render_sdk import Workflows

app = Workflows()


@app.task
def square(x: int) -> int:
    print(f"square of {x} in {os.getpid()}", flush=True)
    return x * x


@app.task
def hang() -> None:
    time.sleep(600)


if __name__ == "__main__":
    app.start()
"""


class Channel:
    """The dev server's end of the control socket.

    Spares the template announces are kept (their sockets open, so they wait) in
    :attr:`spares`, newest last; :meth:`receive` returns the other messages.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.spares: list[tuple[protocol.Spare, socket.socket, int]] = []
        self.wakes: dict[int, int] = {}  # spare id -> its wake-up counter (an eventfd)

    def receive(self, timeout: float = 30.0) -> tuple[object, list[int]]:
        while True:
            message, fds = self._receive(timeout)
            if not isinstance(message, protocol.Spare):
                return message, fds
            self._keep_spare(message, fds)

    def _keep_spare(self, message: protocol.Spare, fds: list[int]) -> None:
        pidfd, channel, wake = fds
        assert os.readlink(f"/proc/self/fd/{wake}") == "anon_inode:[eventfd]"
        self.wakes[message.id] = wake
        self.spares.append((message, socket.socket(fileno=channel), pidfd))

    def _receive(self, timeout: float) -> tuple[object, list[int]]:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        assert ready, "no message from the template"
        data, ancillary, _, _ = self.sock.recvmsg(protocol.MAX_MESSAGE_BYTES, socket.CMSG_SPACE(16))
        fds: list[int] = []
        for _, _, payload in ancillary:
            fds.extend(array.array("i", payload[: len(payload) - len(payload) % 4]))
        if not data:
            return None, fds
        return protocol.parse_template_message(data), fds

    def close_spares(self) -> None:
        for _, channel, pidfd in self.spares:
            channel.close()
            os.close(pidfd)
        self.spares.clear()
        for wake in self.wakes.values():
            os.close(wake)
        self.wakes.clear()

    def fork(self, request_id: int, env: dict[str, str], fds: list[int]) -> None:
        data = protocol.build_fork(request_id, env, [])
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        self.sock.sendmsg([data], ancillary if fds else [])

    def fork_attempt(self, request_id: int, socket_path: str) -> tuple[int, int]:
        """A fork request for an attempt on the task socket at ``socket_path``, its
        output on new pipes; returns their read ends (stdout, stderr)."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        env = {"RENDER_SDK_MODE": "run", "RENDER_SDK_SOCKET_PATH": socket_path}
        self.fork(request_id, env, [out_w, err_w])
        os.close(out_w)
        os.close(err_w)
        return out_r, err_r

    def spare(self, timeout: float = 30.0) -> tuple[protocol.Spare, socket.socket, int]:
        """The newest spare not handed a request yet (waiting for one if none came)."""
        deadline = time.monotonic() + timeout
        while not self.spares:
            ready, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "no spare from the template"
            message, fds = self._receive(0)
            assert isinstance(message, protocol.Spare), message
            self._keep_spare(message, fds)
        return self.spares.pop()

    def fork_via_spare(
        self, request_id: int, env: dict[str, str], fds: list[int]
    ) -> tuple[protocol.Spare, int]:
        """What the dev server does with a spare: the request to it, then ``taken``."""
        spare, channel, pidfd = self.spare()
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        wake = self.wakes.pop(spare.id)
        os.eventfd_write(wake, 1)  # the wake-up, then the request
        os.close(wake)
        channel.sendmsg([protocol.build_fork(request_id, env, [])], ancillary)
        channel.close()
        self.sock.send(protocol.build_taken(spare.id, request_id))
        return spare, pidfd


@pytest.fixture
def template(tmp_path: pathlib.Path) -> Iterator[tuple[subprocess.Popen[str], Channel]]:
    (tmp_path / "main.py").write_text(textwrap.dedent(PROGRAM), encoding="utf-8")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with FakeTaskSocket() as registration:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
        env.update(
            PYTHONPATH=str(ROOT),
            RENDER_SDK_MODE="register",
            RENDER_SDK_SOCKET_PATH=registration.path,
            RENDER_DEV_TEMPLATE_FD=str(theirs.fileno()),
        )
        process = subprocess.Popen(
            [sys.executable, "main.py"],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            text=True,
            pass_fds=[theirs.fileno()],
            start_new_session=True,
        )
        theirs.close()
        channel = Channel(ours)
        try:
            yield process, channel
        finally:
            channel.close_spares()
            ours.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def test_the_template_forks_attempts_on_request(
    template: tuple[subprocess.Popen[str], Channel], tmp_path: pathlib.Path
) -> None:
    process, channel = template
    ready, _ = channel.receive()
    assert isinstance(ready, protocol.Ready)
    assert ready.pid == process.pid
    assert str(tmp_path / "main.py") in {path for path, _ in ready.watch}

    # Garbage is reported on stderr and ignored; the template still serves.
    channel.sock.send(b"not json")
    # A fork without the two log descriptors is refused, not attempted.
    channel.fork(1, {}, [])
    refused, _ = channel.receive()
    assert refused == protocol.ForkFailed(1, refused.reason)  # type: ignore[union-attr]
    assert "two descriptors" in refused.reason  # type: ignore[union-attr]

    with FakeTaskSocket() as attempt:
        attempt.serve_input("square", [7])
        out_r, err_r = channel.fork_attempt(2, attempt.path)
        forked, fds = channel.receive()
        assert isinstance(forked, protocol.Forked)
        assert forked.id == 2
        assert len(fds) == 1  # its pidfd
        assert output_of(attempt.wait_for_callback()) == [49]
        exited, _ = channel.receive()
        assert exited == protocol.Exited(2, forked.pid, 0)
        with os.fdopen(out_r) as stdout:
            assert stdout.read() == f"square of 7 in {forked.pid}\n"
        os.close(err_r)
        os.close(fds[0])


def test_a_spare_takes_its_request_from_the_server_directly(
    template: tuple[subprocess.Popen[str], Channel],
) -> None:
    _, channel = template
    ready, _ = channel.receive()
    assert isinstance(ready, protocol.Ready)
    with FakeTaskSocket() as attempt:
        attempt.serve_input("square", [6])
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        env = {"RENDER_SDK_MODE": "run", "RENDER_SDK_SOCKET_PATH": attempt.path}
        spare, pidfd = channel.fork_via_spare(7, env, [out_w, err_w])
        os.close(out_w)
        os.close(err_w)
        assert output_of(attempt.wait_for_callback()) == [36]
        exited, _ = channel.receive()  # reported as the request's, not the spare's
        assert exited == protocol.Exited(7, spare.pid, 0)
        with os.fdopen(out_r) as stdout:
            assert stdout.read() == f"square of 6 in {spare.pid}\n"
        os.close(err_r)
        os.close(pidfd)
    # A spare that dies unused is reported gone, and the next one is forked.
    dead, dead_channel, dead_pidfd = channel.spare()
    os.kill(dead.pid, signal.SIGKILL)
    gone, _ = channel.receive()
    assert gone == protocol.SpareGone(dead.id, -signal.SIGKILL)
    dead_channel.close()
    os.close(dead_pidfd)
    after, after_channel, after_pidfd = channel.spare()
    assert after.id > dead.id
    after_channel.close()  # let go by the server: it exits, and is reported gone
    gone, _ = channel.receive()
    assert gone == protocol.SpareGone(after.id, 0)
    os.close(after_pidfd)


def test_a_request_that_comes_while_a_spare_is_forked_goes_to_that_spare(
    template: tuple[subprocess.Popen[str], Channel],
) -> None:
    """Sent before the template is ready, the request is waiting when its first spare
    has been forked: that spare takes it (answered with ``forked``), rather than the
    request waiting for the spare's announcement and then for a fork of its own."""
    _, channel = template
    with FakeTaskSocket() as attempt:
        attempt.serve_input("square", [5])
        out_r, err_r = channel.fork_attempt(3, attempt.path)
        ready, _ = channel.receive()
        assert isinstance(ready, protocol.Ready)
        forked, fds = channel.receive()
        assert isinstance(forked, protocol.Forked)
        assert forked.id == 3
        assert len(fds) == 1
        assert channel.spares == []  # no spare was announced for it
        assert output_of(attempt.wait_for_callback()) == [25]
        exited, _ = channel.receive()
        assert exited == protocol.Exited(3, forked.pid, 0)
        with os.fdopen(out_r) as stdout:
            assert stdout.read() == f"square of 5 in {forked.pid}\n"
        os.close(err_r)
        os.close(fds[0])
    # The next spare comes as usual.
    spare, spare_channel, spare_pidfd = channel.spare()
    assert spare.pid != forked.pid
    spare_channel.close()
    os.close(spare_pidfd)


def test_while_an_attempt_runs_the_next_spare_comes_once_no_attempt_has_started_for_a_while(
    template: tuple[subprocess.Popen[str], Channel],
) -> None:
    # The template holds the next spare back while an attempt it just started runs
    # (the fork would compete with that attempt for a core), but not for longer
    # than its quiet spell: a long attempt does not leave the next one without one.
    _, channel = template
    ready, _ = channel.receive()
    assert isinstance(ready, protocol.Ready)
    with FakeTaskSocket() as attempt:
        attempt.serve_input("hang", [])
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        env = {"RENDER_SDK_MODE": "run", "RENDER_SDK_SOCKET_PATH": attempt.path}
        first, pidfd = channel.fork_via_spare(1, env, [out_w, err_w])
        for fd in (out_w, err_w, out_r, err_r):
            os.close(fd)
        deadline = time.monotonic() + 10
        while not any(r.path.endswith("/input") for r in attempt.requests):
            assert time.monotonic() < deadline, "the attempt did not start"
            time.sleep(0.01)
        assert _alive(first.pid)
        after, after_channel, after_pidfd = channel.spare(timeout=10)
        assert after.id > first.id
        assert _alive(first.pid)  # forked while the first attempt still runs
        os.kill(first.pid, signal.SIGKILL)
        exited, _ = channel.receive()
        assert exited == protocol.Exited(1, first.pid, -signal.SIGKILL)
        os.close(pidfd)
        after_channel.close()
        os.close(after_pidfd)


def test_a_fork_request_the_child_cannot_read_ends_it_with_the_reason_on_stderr(
    template: tuple[subprocess.Popen[str], Channel],
) -> None:
    # The template reads only a request's id and hands the rest to the child, which
    # checks it all: a bad request fails that attempt (status 70, reason in its logs),
    # and the template serves on.
    _, channel = template
    ready, _ = channel.receive()
    assert isinstance(ready, protocol.Ready)
    # Sent together: the first goes to the spare, the second is forked on the spot.
    stderr_ends = {}
    for request_id in (1, 2):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        bad = b'{"type":"fork","id":%d,"set":{"A":1},"unset":[]}' % request_id
        channel.sock.sendmsg(
            [bad],
            [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [out_w, err_w]).tobytes())],
        )
        for fd in (out_w, err_w, out_r):
            os.close(fd)
        stderr_ends[request_id] = err_r
    forked_pids, exits = {}, {}
    while len(exits) < 2:
        message, fds = channel.receive()
        for fd in fds:
            os.close(fd)
        if isinstance(message, protocol.Forked):
            forked_pids[message.id] = message.pid
        else:
            assert isinstance(message, protocol.Exited)
            exits[message.id] = message
    for request_id, err_r in stderr_ends.items():
        assert exits[request_id] == protocol.Exited(request_id, forked_pids[request_id], 70)
        with os.fdopen(err_r) as stderr:
            assert "fork.set must map names to strings" in stderr.read()


def test_closing_the_channel_kills_the_children_and_the_template(
    template: tuple[subprocess.Popen[str], Channel],
) -> None:
    process, channel = template
    ready, _ = channel.receive()
    assert isinstance(ready, protocol.Ready)
    with FakeTaskSocket() as attempt:
        attempt.serve_input("hang", [])
        pipes = [os.pipe(), os.pipe()]
        env = {"RENDER_SDK_MODE": "run", "RENDER_SDK_SOCKET_PATH": attempt.path}
        channel.fork(1, env, [pipes[0][1], pipes[1][1]])
        forked, fds = channel.receive()
        assert isinstance(forked, protocol.Forked)
        assert _alive(forked.pid)
        channel.sock.close()  # the dev server is gone
        assert process.wait(timeout=30) == 0
        deadline = time.monotonic() + 30
        while _alive(forked.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(forked.pid)
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)
        os.close(fds[0])


def test_a_retired_template_exits_once_its_children_have(
    template: tuple[subprocess.Popen[str], Channel],
) -> None:
    process, channel = template
    ready, _ = channel.receive()
    assert isinstance(ready, protocol.Ready)
    with FakeTaskSocket() as attempt:
        attempt.serve_input("hang", [])
        pipes = [os.pipe(), os.pipe()]
        env = {"RENDER_SDK_MODE": "run", "RENDER_SDK_SOCKET_PATH": attempt.path}
        channel.fork(1, env, [pipes[0][1], pipes[1][1]])
        forked, fds = channel.receive()
        assert isinstance(forked, protocol.Forked)
        channel.sock.send(protocol.build_retire())
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.3)  # its child still runs: the template stays
        os.killpg(forked.pid, signal.SIGTERM)
        exited, _ = channel.receive()
        assert exited == protocol.Exited(1, forked.pid, -signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        for read_end, write_end in pipes:
            os.close(read_end)
            os.close(write_end)
        os.close(fds[0])


def test_a_template_with_threads_declines(tmp_path: pathlib.Path) -> None:
    source = PROGRAM.replace(
        "app = Workflows()",
        "import threading\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        "app = Workflows()",
    )
    (tmp_path / "main.py").write_text(textwrap.dedent(source), encoding="utf-8")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with FakeTaskSocket() as registration:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
        env.update(
            PYTHONPATH=str(ROOT),
            RENDER_SDK_MODE="register",
            RENDER_SDK_SOCKET_PATH=registration.path,
            RENDER_DEV_TEMPLATE_FD=str(theirs.fileno()),
        )
        done = subprocess.Popen(
            [sys.executable, "main.py"], cwd=tmp_path, env=env, pass_fds=[theirs.fileno()]
        )
        theirs.close()
        answer, _ = Channel(ours).receive()
        assert isinstance(answer, protocol.Unavailable)
        assert "2 threads" in answer.reason
        assert done.wait(timeout=30) == 0  # a plain registration run after all
        assert len(registration.registrations) == 1
    ours.close()
