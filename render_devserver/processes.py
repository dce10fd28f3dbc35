"""Task processes die with the dev server; leftovers of a previous life are ended.

Each task process runs in its own session (process group ``pid``), so a Ctrl-C in
the terminal reaches the server alone and the server stops its tasks in order.
When the server dies without that chance (SIGKILL, the OOM killer, a crash), three
layers make sure nothing it started keeps running:

1. **Parent-death signal (Linux).** :func:`parent_death_hook` returns a function run
   in the child between ``fork`` and ``exec`` that asks the kernel to SIGKILL the
   task process the moment the server dies. It applies to the process the server
   spawned (its own session changes nothing), not to processes that one starts.
2. **Watchdog (every POSIX system).** :class:`Watchdog` starts one small helper per
   server, this module run as a script with the stdlib only, in a session of its
   own. The server writes ``+PGID TOKEN`` and ``-PGID`` lines to its stdin as task
   process groups come and go. The server holds the only write end of that pipe, so
   the helper reads end-of-file exactly when the server is gone, however it died;
   it then sends SIGTERM to every group still listed, SIGKILL two seconds later,
   removes the server's task-socket directory and exits. This covers whole process
   groups (what a task started itself) and systems without a parent-death signal.
   An attempt forked from a warm template is listed only once it has run for a
   second: until then its template covers it (a template that reads end-of-file
   from the server kills its children's groups), and a short attempt, most of them,
   costs the helper nothing.
3. **Recovery.** The pid and start time of every task process are stored in the
   database while it runs. A server starting on that database ends any such group
   still alive (:func:`end_group`) before it retries the interrupted attempts.

A pid can be recycled, so a group is only signalled when it is provably ours: its
leader is alive with the start time recorded (:func:`start_token`), or its leader is
gone, in which case the group can only hold processes the leader started (a pid is
not handed out again while it still names a process group).

This file is also the watchdog program (``python -I -S processes.py DIR``); it
imports only the standard library, and ``asyncio`` only where the server needs it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "Watchdog",
    "end_group",
    "group_exists",
    "group_is_ours",
    "parent_death_hook",
    "start_token",
]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# After SIGTERM, how long the watchdog lets task processes exit before SIGKILL.
WATCHDOG_GRACE_SECONDS = 2.0
_LINUX = sys.platform.startswith("linux")


def parent_death_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the kernel SIGKILL the child when this process dies.

    None where there is no such signal (anything but Linux) or ``prctl`` cannot be
    found; the watchdog covers those. The C function is looked up here, in the
    server, so the child only makes one call between ``fork`` and ``exec``.
    """
    if not _LINUX:
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    server = os.getpid()
    kill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, kill, 0, 0, 0)
        if os.getppid() != server:
            # The server died between fork and prctl: the signal will never come.
            os._exit(1)

    return hook


@functools.cache
@functools.cache
def _boot_id() -> str:
    # Fixed until the machine reboots, and this process does not outlive a boot:
    # read once (every task process's token carries it).
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def start_token(pid: int) -> str | None:
    """What tells this process apart from a later one with the same pid; None if gone.

    Linux: the boot id and the start time in clock ticks (``/proc/PID/stat``).
    Elsewhere: the start time ``ps`` reports (one-second resolution).
    """
    if pid <= 0:
        return None
    if _LINUX:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                stat = handle.read()
        except OSError:
            return None
        # Fields after the parenthesised command name (which may hold spaces);
        # the start time is field 22 of the whole line.
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) < 20:
            return None
        return f"{_boot_id()}:{fields[19]}"
    return _ps_start_token(pid)


def _ps_start_token(pid: int) -> str | None:
    try:
        found = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    started = " ".join(found.stdout.split())
    return f"ps:{started}" if found.returncode == 0 and started else None


def group_exists(pgid: int) -> bool:
    """Whether any process is left in process group ``pgid`` (zombies count as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not _LINUX:
        return True
    # killpg(0) also reaches zombies no one has reaped yet (in a container without an
    # init process, nobody might): look for a member that still runs.
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                    fields = handle.read().rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
                return True
        return False
    return True


def group_is_ours(pgid: int, token: str | None) -> bool:
    """Whether group ``pgid`` still belongs to the process recorded with ``token``."""
    if pgid <= 1 or pgid == os.getpgrp():
        return False
    try:
        os.kill(pgid, 0)
    except ProcessLookupError:
        # The leader is gone: its pid still names the group while any member lives,
        # so no unrelated process can have taken it.
        return True
    except PermissionError:
        return False  # another user's process: certainly not ours
    return token is not None and start_token(pgid) == token


def end_group(pgid: int, token: str | None, sig: int = signal.SIGKILL) -> bool:
    """Send ``sig`` to group ``pgid`` if it is ours; whether a signal was sent."""
    if not group_is_ours(pgid, token):
        return False
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Watchdog:
    """The helper process that ends the server's task processes if the server dies.

    ``await start()``, then :meth:`watch` and :meth:`forget` each process group;
    ``await close()`` when the server stops (the helper then exits, having nothing
    left to end). Methods never raise: without a watchdog the other two layers
    remain. Changes go out in one write at the end of the event loop's turn (each
    write wakes the watchdog: a fan-out that starts dozens of processes in a turn
    costs one), and a group forgotten in the turn that watched it is never sent.
    A watch can also be deferred (``after``): the scheduler defers those of forked
    attempts, whose template already ends them if the server dies, so that an
    attempt of a few milliseconds costs the helper no wake-up at all.
    """

    def __init__(self, socket_dir: str | None = None) -> None:
        self._socket_dir = socket_dir
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[int, str] = {}  # pgid -> its line, not written yet
        # pgid -> its deferred watch: the timer and the line it will queue
        self._later: dict[int, tuple[asyncio.TimerHandle, str]] = {}
        self._flush: asyncio.Handle | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> Watchdog:
        import asyncio

        argv = [sys.executable, "-I", "-S", os.path.abspath(__file__)]
        if self._socket_dir is not None:
            argv.append(self._socket_dir)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # out of reach of the terminal's Ctrl-C
                close_fds=True,
            )
        except OSError:
            self._process = None
        return self

    def _send(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None or process.stdin.is_closing():
            return
        with contextlib.suppress(OSError, RuntimeError):
            process.stdin.write(line.encode("ascii"))

    def watch(self, pgid: int, token: str | None, *, after: float = 0.0) -> None:
        """Watch group ``pgid``; ``after`` seconds from now if ``after`` is positive
        (a group forgotten before then costs the helper nothing)."""
        line = f"+{pgid} {token or '-'}\n"
        if after <= 0.0:
            self._queue(pgid, line)
            return
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._queue(pgid, line)
            return
        self._cancel_later(pgid)
        self._later[pgid] = (loop.call_later(after, self._due, pgid), line)

    def _due(self, pgid: int) -> None:
        _, line = self._later.pop(pgid)
        self._queue(pgid, line)

    def _cancel_later(self, pgid: int) -> bool:
        later = self._later.pop(pgid, None)
        if later is None:
            return False
        later[0].cancel()
        return True

    def forget(self, pgid: int) -> None:
        if self._cancel_later(pgid):
            return  # never due: nothing was sent
        if self._pending.get(pgid, "").startswith("+"):
            del self._pending[pgid]  # never sent: nothing to take back
        else:
            self._queue(pgid, f"-{pgid}\n")

    def _queue(self, pgid: int, line: str) -> None:
        import asyncio

        self._pending.pop(pgid, None)
        self._pending[pgid] = line
        if self._flush is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._flush = loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write what is pending now."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._pending:
            lines, self._pending = "".join(self._pending.values()), {}
            self._send(lines)

    async def close(self) -> None:
        import asyncio

        for pgid, (handle, line) in list(self._later.items()):  # still running: list them
            handle.cancel()
            self._queue(pgid, line)
        self._later.clear()
        self.flush()
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
            with contextlib.suppress(OSError, ConnectionError):
                await process.stdin.wait_closed()
        try:
            await asyncio.wait_for(process.wait(), WATCHDOG_GRACE_SECONDS + 5)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _watch(lines: Callable[[], bytes], socket_dir: str | None) -> None:
    """The watchdog's loop: track groups until end-of-file, then end what is left."""
    groups: dict[int, str | None] = {}
    while True:
        line = lines()
        if not line:
            break
        text = line.decode("ascii", "replace").strip()
        if text[:1] == "+":
            number, _, token = text[1:].partition(" ")
            if number.isdigit():
                groups[int(number)] = None if token in ("", "-") else token
        elif text[:1] == "-" and text[1:].isdigit():
            groups.pop(int(text[1:]), None)
    signalled = [pgid for pgid, token in groups.items() if end_group(pgid, token, signal.SIGTERM)]
    deadline = time.monotonic() + WATCHDOG_GRACE_SECONDS
    while signalled and time.monotonic() < deadline:
        signalled = [pgid for pgid in signalled if group_exists(pgid)]
        time.sleep(0.05)
    for pgid in signalled:
        end_group(pgid, groups[pgid], signal.SIGKILL)
    if socket_dir and os.path.basename(socket_dir).startswith("rwd-"):
        shutil.rmtree(socket_dir, ignore_errors=True)


def main(argv: list[str]) -> int:
    for name in ("SIGINT", "SIGHUP", "SIGPIPE"):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    stdin = sys.stdin.buffer
    _watch(stdin.readline, argv[1] if len(argv) > 1 else None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
