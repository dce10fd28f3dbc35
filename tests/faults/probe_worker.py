"""A task program that attacks its own task socket, then reports what it saw (stdlib only).

Task ``probe(other_run_id)`` sends malformed and misdirected requests on the socket
it was given, checks the permissions of the socket and its directory and the API key
it was handed, and completes with a JSON object of what it observed. ``noop(i)``
returns ``i``.
"""

import base64
import json
import os
import socket
import stat
import sys


def raw(data):
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(os.environ["RENDER_SDK_SOCKET_PATH"])
    sock.sendall(data)
    answer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def call(method, path, body=b""):
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return raw(head.encode() + body)


def is_json_message(body):
    try:
        return isinstance(json.loads(body)["message"], str)
    except (ValueError, KeyError, TypeError):
        return False


def probe(other):
    seen = {}
    cases = {
        "bad_json": ("POST", "/callback", b"{not json"),
        "wrong_types": ("POST", "/callback", b'{"complete": {"output": 5}}'),
        "unknown_path": ("GET", "/../../etc/passwd", b""),
        "wrong_method": ("DELETE", "/input", b""),
        "register_on_run_socket": ("POST", "/register-tasks", b'{"tasks": []}'),
        "other_runs_result": (
            "POST",
            "/get-subtask-result",
            json.dumps({"task_run_id": other}).encode(),
        ),
    }
    for name, (method, path, body) in cases.items():
        status, answer = call(method, path, body)
        seen[name] = [status, is_json_message(answer)]
    status, _ = raw(b"GARBAGE\r\n\r\n")
    seen["not_http"] = [status, True]
    status, _ = call("POST", "/callback", b"x" * (33 * 1024 * 1024))
    seen["oversize"] = [status, True]
    path = os.environ["RENDER_SDK_SOCKET_PATH"]
    seen["socket_mode"] = oct(stat.S_IMODE(os.stat(path).st_mode))
    seen["dir_mode"] = oct(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode))
    seen["api_key"] = os.environ.get("RENDER_API_KEY")
    seen["api_url"] = os.environ.get("RENDER_LOCAL_DEV_URL")
    return seen


def main():
    if os.environ.get("RENDER_SDK_MODE") == "register":
        call("POST", "/register-tasks", b'{"tasks": [{"name": "probe"}, {"name": "noop"}]}')
        return
    _, body = call("GET", "/input")
    document = json.loads(body)
    args = json.loads(base64.b64decode(document["input"]))
    value = probe(args[0]) if document["task_name"] == "probe" else args[0]
    output = base64.b64encode(json.dumps([value]).encode()).decode()
    call("POST", "/callback", json.dumps({"complete": {"output": output}}).encode())


if __name__ == "__main__":
    main()
    sys.exit(0)
