"""A task program that speaks the task-socket protocol with the stdlib only.

The load and crash tests start hundreds of task processes; this program starts in
a few milliseconds (``python -S``, no SDK import), so those tests measure the dev
server, not the import time of a worker. It is a complete worker for its tasks:
register mode posts the task list, run mode reads ``/input``, runs the task and
posts ``/callback``.

Tasks: ``noop(i)`` returns ``i``; ``nap(i, seconds)`` sleeps first; ``flaky(i, directory)``
fails its first attempt (a marker file per ``i``) and returns ``i`` after that;
``family(i, seconds, directory)`` starts a child process (in the task's process group)
and both sleep, after writing ``family-<i>-<pid>`` with the two pids in ``directory``.
Every task prints one line naming itself and ``i``.
"""

import base64
import json
import os
import socket
import subprocess
import sys
import time

TASKS = [
    {
        "name": "noop",
        "options": {"retry": {"max_retries": 3, "wait_duration_ms": 50, "factor": 1.0}},
    },
    {
        "name": "nap",
        "options": {"retry": {"max_retries": 3, "wait_duration_ms": 50, "factor": 1.0}},
    },
    {
        "name": "family",
        "options": {"retry": {"max_retries": 3, "wait_duration_ms": 50, "factor": 1.0}},
    },
    {
        "name": "flaky",
        "options": {"retry": {"max_retries": 3, "wait_duration_ms": 1500, "factor": 1.0}},
    },
]


def call(method, path, payload=None):
    body = b"" if payload is None else json.dumps(payload).encode()
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(os.environ["RENDER_SDK_SOCKET_PATH"])
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    sock.close()
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_bytes.split()[1])
    if status != 200:
        raise SystemExit(f"{method} {path}: HTTP {status} {rest!r}")
    return rest


def b64(value):
    return base64.b64encode(json.dumps(value).encode()).decode()


def main():
    if os.environ.get("RENDER_SDK_MODE") == "register":
        call("POST", "/register-tasks", {"tasks": TASKS})
        return
    document = json.loads(call("GET", "/input"))
    name = document["task_name"]
    args = json.loads(base64.b64decode(document["input"])) if document.get("input") else []
    i = args[0]
    print(f"{name} {i}", flush=True)
    if name == "nap":
        time.sleep(args[1])
    elif name == "family":
        code = f"import time; time.sleep({float(args[1])})"
        child = subprocess.Popen([sys.executable, "-S", "-c", code])
        marker = os.path.join(args[2], f"family-{i}-{os.getpid()}")
        with open(marker + ".tmp", "w") as handle:
            handle.write(f"{os.getpid()} {child.pid}")
        os.rename(marker + ".tmp", marker)
        time.sleep(args[1])
        child.wait()
    elif name == "flaky":
        marker = os.path.join(args[1], f"flaky-{i}")
        if not os.path.exists(marker):
            open(marker, "w").close()
            call("POST", "/callback", {"error": {"details": f"flaky {i}: first attempt fails"}})
            return
    call("POST", "/callback", {"complete": {"output": b64([i])}})


if __name__ == "__main__":
    main()
    sys.exit(0)
