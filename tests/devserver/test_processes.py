"""Process identity, group ending, the parent-death signal and the watchdog, for real.

Every process here is a real one started by the test (``sleep`` in a session of its
own), so nothing but what the test started is ever signalled.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from render_devserver import processes
from render_devserver.processes import Watchdog, end_group, group_exists, group_is_ours, start_token

LINUX = sys.platform.startswith("linux")


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    if not LINUX:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A process leading its own session, as task processes do."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_start_token_names_one_process(sleeper: subprocess.Popen[bytes]) -> None:
    mine = start_token(os.getpid())
    assert mine is not None
    assert start_token(os.getpid()) == mine
    theirs = start_token(sleeper.pid)
    assert theirs is not None
    assert theirs != mine
    sleeper.kill()
    sleeper.wait()
    assert start_token(sleeper.pid) is None
    assert start_token(0) is None


def test_the_ps_start_token_names_one_process_too(sleeper: subprocess.Popen[bytes]) -> None:
    first = processes._ps_start_token(sleeper.pid)
    assert first is not None
    assert first.startswith("ps:")
    assert processes._ps_start_token(sleeper.pid) == first
    sleeper.kill()
    sleeper.wait()
    assert processes._ps_start_token(sleeper.pid) is None


def test_a_group_is_only_ended_when_it_is_provably_ours(sleeper: subprocess.Popen[bytes]) -> None:
    token = start_token(sleeper.pid)
    # A recycled pid: same number, another start time.
    assert not group_is_ours(sleeper.pid, "not-its-start-time")
    assert not end_group(sleeper.pid, "not-its-start-time")
    assert not group_is_ours(sleeper.pid, None)
    assert sleeper.poll() is None
    assert not group_is_ours(os.getpgrp(), start_token(os.getpgrp()))  # never our own
    assert not group_is_ours(1, start_token(1))
    assert end_group(sleeper.pid, token, signal.SIGKILL)
    assert sleeper.wait(10) == -signal.SIGKILL
    assert not group_exists(sleeper.pid)


def test_a_group_whose_leader_is_gone_is_ended_whole(tmp_path: pathlib.Path) -> None:
    pidfile = tmp_path / "child"
    code = textwrap.dedent(
        f"""
        import subprocess
        child = subprocess.Popen(["sleep", "60"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        """
    )
    leader = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    assert leader.wait(30) == 0
    child = int(pidfile.read_text())
    try:
        assert running(child)
        assert group_exists(leader.pid)
        assert group_is_ours(leader.pid, "whatever it was")
        assert end_group(leader.pid, None, signal.SIGKILL)
        assert wait_gone(child)
        assert not group_exists(leader.pid)
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not LINUX, reason="the parent-death signal is Linux's")
def test_the_parent_death_signal_ends_the_spawned_process(tmp_path: pathlib.Path) -> None:
    pidfile = tmp_path / "task"
    code = textwrap.dedent(
        f"""
        import subprocess, time
        from render_devserver.processes import parent_death_hook
        task = subprocess.Popen(
            ["sleep", "60"], start_new_session=True, preexec_fn=parent_death_hook()
        )
        open({str(pidfile)!r}, "w").write(str(task.pid))
        time.sleep(60)
        """
    )
    server = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        while not pidfile.exists() or not pidfile.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        task = int(pidfile.read_text())
        assert running(task)
        server.kill()  # the "server" alone; the task leads a session of its own
        server.wait()
        assert wait_gone(task)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert processes.parent_death_hook() is not None


def test_the_watchdog_ends_what_is_still_watched_at_end_of_file(tmp_path: pathlib.Path) -> None:
    socket_dir = tmp_path / "rwd-test"
    socket_dir.mkdir()
    (socket_dir / "1.sock").touch()
    watched = subprocess.Popen(["sleep", "60"], start_new_session=True)
    forgotten = subprocess.Popen(["sleep", "60"], start_new_session=True)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)

    async def scenario() -> int | None:
        watchdog = await Watchdog(str(socket_dir)).start()
        assert watchdog.pid is not None
        watchdog.watch(watched.pid, start_token(watched.pid))
        watchdog.watch(forgotten.pid, start_token(forgotten.pid))
        watchdog.forget(forgotten.pid)
        watchdog.watch(stranger.pid, "a-recycled-pid")
        await watchdog.close()  # end of file, as when the server dies
        return watchdog.pid

    try:
        asyncio.run(scenario())
        assert watched.wait(10) == -signal.SIGTERM
        assert forgotten.poll() is None
        assert stranger.poll() is None
        assert not socket_dir.exists()
    finally:
        for process in (watched, forgotten, stranger):
            if process.poll() is None:
                process.kill()
            process.wait()


def test_a_deferred_watch_is_sent_when_due_or_at_close_and_never_if_forgotten(
    tmp_path: pathlib.Path,
) -> None:
    due = subprocess.Popen(["sleep", "60"], start_new_session=True)
    at_close = subprocess.Popen(["sleep", "60"], start_new_session=True)
    forgotten = subprocess.Popen(["sleep", "60"], start_new_session=True)

    async def scenario() -> None:
        watchdog = await Watchdog(str(tmp_path / "rwd-deferred")).start()
        watchdog.watch(due.pid, start_token(due.pid), after=0.05)
        watchdog.watch(at_close.pid, start_token(at_close.pid), after=60)
        watchdog.watch(forgotten.pid, start_token(forgotten.pid), after=0.05)
        watchdog.forget(forgotten.pid)  # before it was due: the helper never hears of it
        await asyncio.sleep(0.3)
        assert watchdog._later.keys() == {at_close.pid}
        await watchdog.close()  # still running at close: listed, then ended

    try:
        asyncio.run(scenario())
        assert due.wait(10) == -signal.SIGTERM
        assert at_close.wait(10) == -signal.SIGTERM
        assert forgotten.poll() is None
    finally:
        for process in (due, at_close, forgotten):
            if process.poll() is None:
                process.kill()
            process.wait()
