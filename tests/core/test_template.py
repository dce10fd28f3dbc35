"""The warm-template control messages: built and parsed both ways, bad input refused."""

from __future__ import annotations

import json

import pytest

from render_core import template as t


def test_every_message_round_trips() -> None:
    assert t.parse_template_message(t.build_ready(42, [("/p/main.py", 7)])) == t.Ready(
        pid=42, watch=(("/p/main.py", 7),)
    )
    assert t.parse_template_message(t.build_unavailable("threads")) == t.Unavailable("threads")
    assert t.parse_template_message(t.build_forked(3, 99)) == t.Forked(id=3, pid=99)
    assert t.parse_template_message(t.build_fork_failed(3, "no")) == t.ForkFailed(3, "no")
    assert t.parse_template_message(t.build_exited(3, 99, -9)) == t.Exited(3, 99, -9)
    assert t.parse_server_message(t.build_retire()) == t.Retire()
    fork = t.parse_server_message(t.build_fork(5, {"B": "2", "A": "1"}, ["C"]))
    assert fork == t.ForkRequest(id=5, set=(("A", "1"), ("B", "2")), unset=("C",))


def test_env_delta_turns_one_environment_into_the_other() -> None:
    base = {"KEEP": "1", "CHANGE": "old", "DROP": "x"}
    target = {"KEEP": "1", "CHANGE": "new", "ADD": "y"}
    set_env, unset = t.env_delta(base, target)
    assert set_env == {"CHANGE": "new", "ADD": "y"}
    assert unset == ["DROP"]
    result = {k: v for k, v in base.items() if k not in unset} | set_env
    assert result == target


def test_ready_is_cut_to_fit_one_message() -> None:
    watch = [("/" + "x" * 300 + str(i), i) for i in range(t.MAX_WATCHED_FILES)]
    data = t.build_ready(2, watch)
    assert len(data) <= t.MAX_MESSAGE_BYTES
    ready = t.parse_template_message(data)
    assert isinstance(ready, t.Ready)
    assert 0 < len(ready.watch) < len(watch)
    assert ready.watch == tuple(watch[: len(ready.watch)])


def test_a_fork_request_carries_the_attempts_input_when_it_fits() -> None:
    body = b'{"task_name":"add","input":"WzIsM10="}'
    fork = t.parse_server_message(t.build_fork(5, {"A": "1"}, [], body))
    assert isinstance(fork, t.ForkRequest)
    assert fork.input == body
    # Too large, not ASCII, or too large beside a big environment: left for the
    # child to ask for on its socket, never an error.
    for data in (
        t.build_fork(5, {}, [], b"x" * (t.INLINE_INPUT_BYTES + 1)),
        t.build_fork(5, {}, [], '{"é": 1}'.encode()),
        t.build_fork(5, {"BIG": "x" * (t.MAX_MESSAGE_BYTES - 100)}, [], body * 5),
    ):
        parsed = t.parse_server_message(data)
        assert isinstance(parsed, t.ForkRequest)
        assert parsed.input is None
    with pytest.raises(t.TemplateProtocolError, match=r"fork\.input"):
        t.parse_server_message(b'{"type": "fork", "id": 1, "set": {}, "unset": [], "input": 5}')


def test_an_oversized_fork_request_is_refused_before_sending() -> None:
    with pytest.raises(t.TemplateProtocolError, match="over the"):
        t.build_fork(1, {"BIG": "x" * t.MAX_MESSAGE_BYTES}, [])


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff", "not JSON"),
        (b"[1]", "JSON object"),
        (b"{}", "no type"),
        (b'{"type": "hello"}', "unknown template message"),
        (b'{"type": "ready", "version": 1, "pid": 5}', "version"),
        (b'{"type": "ready", "version": 2, "pid": 1}', ">= 2"),
        (b'{"type": "ready", "version": 2, "pid": "5"}', "integer"),
        (b'{"type": "ready", "version": 2, "pid": 5, "watch": [["a"]]}', "path, mtime"),
        (b'{"type": "ready", "version": 2, "pid": 5, "watch": {}}', "a list"),
        (b'{"type": "forked", "id": 1, "pid": true}', "integer"),
        (b'{"type": "exited", "id": 1, "pid": 9}', "returncode"),
        (b'{"type": "fork_failed", "id": 1, "reason": 3}', "string"),
        (b'{"type": "unavailable", "version": 2}', "reason"),
    ],
)
def test_bad_template_messages_are_named(data: bytes, problem: str) -> None:
    with pytest.raises(t.TemplateProtocolError, match=problem):
        t.parse_template_message(data)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"type": "fork", "id": 1, "set": {"A": 1}, "unset": []}, "fork.set"),
        ({"type": "fork", "id": 1, "set": [], "unset": []}, "fork.set"),
        ({"type": "fork", "id": 1, "set": {}, "unset": [1]}, "fork.unset"),
        ({"type": "fork", "id": "1", "set": {}, "unset": []}, "integer"),
        ({"type": "exec", "argv": ["sh"]}, "unknown server message"),
    ],
)
def test_bad_server_messages_are_named(document: dict[str, object], problem: str) -> None:
    with pytest.raises(t.TemplateProtocolError, match=problem):
        t.parse_server_message(json.dumps(document).encode())


@pytest.mark.parametrize("request_id", [0, 1, 7, 12345678901234])
def test_a_fork_request_id_is_read_from_its_first_bytes(request_id: int) -> None:
    data = t.build_fork(request_id, {"A": "1"}, [], b'{"x":1}')
    assert t.fork_request_id(data) == request_id
    assert t.parse_server_message(data).id == request_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "data",
    [
        t.build_retire(),
        b'{"type":"fork","id":-1,"set":{},"unset":[]}',
        b'{"type":"fork","id":01,"set":{},"unset":[]}',
        b'{"type":"fork","id":1e3,"set":{},"unset":[]}',
        b'{"type":"fork","id":"1","set":{},"unset":[]}',
        b'{"type":"fork","id":1',
        b'{"id":1,"type":"fork","set":{},"unset":[]}',
        b'{"type":"fork","id":' + b"9" * 30 + b',"set":{},"unset":[]}',
    ],
)
def test_anything_else_needs_the_full_parse(data: bytes) -> None:
    assert t.fork_request_id(data) is None
