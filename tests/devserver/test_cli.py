"""``render-workflows dev`` as a user runs it: a real process, Ctrl-C, a taken port."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time

import requests

ROOT = pathlib.Path(__file__).resolve().parents[2]

MAIN = """
import os

from render_sdk import Workflows

app = Workflows()

@app.task
def hello(name: str) -> str:
    print(f"hello {name}", flush=True)
    # Where this server put the task socket, for the test that checks its cleanup.
    with open("socket-path.txt", "w", encoding="utf-8") as record:
        record.write(os.environ["RENDER_SDK_SOCKET_PATH"])
    return f"hello {name}"

if __name__ == "__main__":
    app.start()
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDER_")}
    env["PYTHONPATH"] = str(ROOT)
    if "RENDER_DEV_NO_FORK" in os.environ:  # the mode the suite runs in
        env["RENDER_DEV_NO_FORK"] = os.environ["RENDER_DEV_NO_FORK"]
    return env


def _dev_process(argv: list[str], cwd: pathlib.Path) -> subprocess.Popen[str]:
    """A dev server started as ``argv`` (its output piped, as text)."""
    return subprocess.Popen(
        argv, cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _banner(process: subprocess.Popen[str], lines: list[str]) -> None:
    """Read the start-up banner into ``lines``, up to its last line (or the end)."""
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C" in line or not line:
            return


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_dev_command_serves_prints_and_stops_cleanly(tmp_path: pathlib.Path) -> None:
    (tmp_path / "main.py").write_text(MAIN, encoding="utf-8")
    (tmp_path / ".env").write_text("GREETING=hi\n", encoding="utf-8")
    port = _free_port()
    process = _dev_process(
        [
            *(sys.executable, "-m", "render_sdk.cli", "dev", "--port", str(port)),
            *("--db", str(tmp_path / "dev.sqlite3")),
            *("--", f"{sys.executable} main.py"),  # one quoted argument: shell-split
        ],
        tmp_path,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        _banner(process, lines)
        banner = "".join(lines)
        assert f"listening on http://127.0.0.1:{port}" in banner
        slug = re.search(r"\n  (\S+/hello)  \(tsk-", banner)
        assert slug is not None, banner
        url = f"http://127.0.0.1:{port}"
        started = requests.post(
            f"{url}/v1/task-runs", json={"task": slug.group(1), "input": ["you"]}, timeout=10
        )
        assert started.status_code == 202
        run_id = started.json()["id"]
        for _ in range(200):
            details = requests.get(f"{url}/v1/task-runs/{run_id}", timeout=10).json()
            if details["status"] == "completed":
                break
            time.sleep(0.05)
        assert details["results"] == ["hello you"]
        # On-demand re-registration.
        process.send_signal(signal.SIGHUP)
        for _ in range(200):
            line = process.stdout.readline()
            lines.append(line)
            if line.startswith("re-registered:"):
                break
        assert line.strip() == "re-registered: hello"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "hello you" in "".join(lines) + out  # task output is echoed with its run id
    # The socket directory of this server is gone with it (only this one: other dev
    # servers on the machine have theirs).
    socket_dir = pathlib.Path((tmp_path / "socket-path.txt").read_text(encoding="utf-8")).parent
    assert socket_dir.name.startswith("rwd-"), socket_dir
    assert not socket_dir.exists()


def test_port_in_use_is_a_clear_message(tmp_path: pathlib.Path) -> None:
    (tmp_path / "main.py").write_text(MAIN, encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "render_devserver",
                "--port",
                str(port),
                "--",
                "python",
                "main.py",
            ],
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in done.stderr


def test_registration_failure_shows_the_program_output(tmp_path: pathlib.Path) -> None:
    (tmp_path / "main.py").write_text("raise SystemExit('cannot import my tasks')\n", "utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "render_devserver",
            "--port",
            "0",
            "--db",
            ":memory:",
            "--",
            sys.executable,
            "main.py",
        ],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "exited before registering tasks" in done.stderr
    assert "cannot import my tasks" in done.stderr


def test_missing_command_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "render_devserver"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "give the start command after --" in done.stderr


def test_the_server_freezes_its_startup_heap_before_it_serves(tmp_path: pathlib.Path) -> None:
    """Startup objects out of the collector's sight: a full collection later walks
    only what came since (seen: 28 ms pauses in the middle of runs without it)."""
    (tmp_path / "main.py").write_text(MAIN, encoding="utf-8")
    watch = (
        "import gc, sys\n"
        "freeze = gc.freeze\n"
        "def announced():\n"
        "    freeze()\n"
        "    print('frozen:', gc.get_freeze_count(), flush=True)\n"
        "gc.freeze = announced\n"
        "from render_devserver.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    process = _dev_process(
        [
            *(sys.executable, "-c", watch, "--port", str(_free_port()), "--db", ":memory:"),
            *("--", sys.executable, "main.py"),
        ],
        tmp_path,
    )
    lines: list[str] = []
    try:
        _banner(process, lines)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    frozen = [line for line in lines if line.startswith("frozen:")]
    assert len(frozen) == 1, "".join(lines) + err
    assert int(frozen[0].split()[1]) > 10_000  # the modules, the app, the tasks
    assert lines.index(frozen[0]) < len(lines) - 1  # before the banner's last line
