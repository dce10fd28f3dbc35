"""The warm-template control channel: messages between the dev server and a worker.

Theory of operation
-------------------
The dev server may keep one warm process per workflow and fork it for every
attempt (see ``docs/dev-server.md#warm-processes``). It starts the registration run
as usual, plus :data:`ENV_TEMPLATE_FD`: the number of an inherited ``AF_UNIX``
``SOCK_SEQPACKET`` socket. A worker of this SDK, once it has registered, answers on
that socket with :func:`ready` (or :func:`unavailable` and a reason: threads are
running, the platform cannot fork safely) and stays alive as the *template*. Any
other program (the official SDKs, a non-Python worker) never writes to it: the
socket reads end-of-file when that process exits, and the dev server keeps one
cold process per attempt.

Each message is one datagram: UTF-8 JSON, an object with a ``type``, and file
descriptors passed alongside (``SCM_RIGHTS``) where noted:

==================  =========  ====================================================
type                direction  meaning
==================  =========  ====================================================
``ready``           T -> S     the template forks on request; ``watch`` lists the
                               project's module files with their ``mtime_ns``
``unavailable``     T -> S     it will not (``reason``); the process then exits
``fork``            S -> T     fork a child for one attempt: apply ``set``/``unset``
                               to its environment; ``input``, if present, is the
                               body of the attempt's ``GET /input`` answer, which
                               the child then need not ask for; fds: its stdout and
                               stderr
``forked``          T -> S     the child's ``pid``; fd: a pidfd of the child
``fork_failed``     T -> S     no child (``reason``); the attempt starts cold
``exited``          T -> S     the child's ``returncode`` (negative: the signal)
``spare``           T -> S     a child forked ahead, waiting for its request: its
                               ``pid``; fds: its pidfd, its end of a socket pair
                               (the server sends it a ``fork`` message directly)
                               and, optionally, an eventfd the server bumps just
                               before (see below)
``spare_gone``      T -> S     that spare exited with no ``taken`` read for it
                               (its ``returncode``): unused, or its attempt ended
                               before the template read ``taken``
``taken``           S -> T     the server gave spare ``spare`` request ``id``: the
                               template reports its exit as that request's
``retire``          S -> T     fork no more; exit once every child has exited
==================  =========  ====================================================

A spare saves the attempt two hops: the dev server writes the fork request straight
to the waiting child, and knows its pid and pidfd already, so the template is woken
for neither the request nor a ``forked`` answer; it learns of the hand-over from
``taken``, sent just after. The eventfd is for the wake-up: woken by the socket, a
spare would be started on the server's own core (the kernel expects the writer to
wait for the reader), ahead of the server's answer to whoever started the run;
woken by the counter, it can start on an idle core.

Every ``fork`` carries an ``id`` that the answers repeat. End-of-file on the
channel means the other side is gone: a template kills the children it still has
and exits; the dev server restarts the template (attempts start cold meanwhile).

This module only builds and parses those messages; moving bytes and descriptors
is the hosts' business. It never trusts what it parses: every field is checked,
and a bad message raises :class:`TemplateProtocolError` naming the problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "ENV_TEMPLATE_FD",
    "INLINE_INPUT_BYTES",
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "Exited",
    "ForkFailed",
    "ForkRequest",
    "Forked",
    "Ready",
    "Retire",
    "Spare",
    "SpareGone",
    "Taken",
    "TemplateProtocolError",
    "Unavailable",
    "build_exited",
    "build_fork",
    "build_fork_failed",
    "build_forked",
    "build_ready",
    "build_retire",
    "build_spare",
    "build_spare_gone",
    "build_taken",
    "build_unavailable",
    "env_delta",
    "fork_request_id",
    "parse_server_message",
    "parse_template_message",
]

# The extension variable: the inherited control socket's descriptor number. Only
# this SDK reads it; a worker that ignores it simply gets a cold process per attempt.
ENV_TEMPLATE_FD = "RENDER_DEV_TEMPLATE_FD"
PROTOCOL_VERSION = 2
# A fork request carries the attempt's environment changes (a few variables); the
# largest message is ``ready`` with its list of watched files. 64 KiB bounds both
# far above need and stays well inside one SOCK_SEQPACKET datagram at Linux's
# default socket buffer size (about 208 KiB).
MAX_MESSAGE_BYTES = 64 * 1024
#: The largest ``GET /input`` answer a fork request carries; a larger one the child
#: asks for on its task socket, as a cold process does.
INLINE_INPUT_BYTES = 32 * 1024
# How many module files a template reports for staleness checks (a path and an
# mtime are about 100 bytes: 400 of them fit in one message).
MAX_WATCHED_FILES = 400


class TemplateProtocolError(ValueError):
    """A control message that is not what the protocol allows; the text says why."""


@attrs.frozen
class Ready:
    pid: int
    watch: tuple[tuple[str, int], ...]
    """``(path, mtime_ns)`` of the project's modules the template imported."""


@attrs.frozen
class Unavailable:
    reason: str


@attrs.frozen
class ForkRequest:
    id: int
    set: tuple[tuple[str, str], ...]
    unset: tuple[str, ...]
    input: bytes | None = None


@attrs.frozen
class Forked:
    id: int
    pid: int


@attrs.frozen
class ForkFailed:
    id: int
    reason: str


@attrs.frozen
class Exited:
    id: int
    pid: int
    returncode: int


@attrs.frozen
class Retire:
    pass


@attrs.frozen
class Spare:
    id: int
    pid: int


@attrs.frozen
class SpareGone:
    id: int
    returncode: int


@attrs.frozen
class Taken:
    spare: int
    id: int


def _dump(document: dict[str, Any]) -> bytes:
    data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise TemplateProtocolError(
            f"a {document['type']} message of {len(data)} bytes is over the "
            f"{MAX_MESSAGE_BYTES}-byte limit"
        )
    return data


def build_ready(pid: int, watch: Sequence[tuple[str, int]] = ()) -> bytes:
    """``ready``; ``watch`` is cut to what fits in one message (the first files win)."""
    items = [[path, mtime] for path, mtime in list(watch)[:MAX_WATCHED_FILES]]
    while True:
        document = {"type": "ready", "version": PROTOCOL_VERSION, "pid": pid, "watch": items}
        data = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(data) <= MAX_MESSAGE_BYTES or not items:
            return _dump(document)
        items = items[: len(items) // 2]


def build_unavailable(reason: str) -> bytes:
    return _dump({"type": "unavailable", "version": PROTOCOL_VERSION, "reason": reason})


def build_fork(
    request_id: int,
    set_env: Mapping[str, str],
    unset_env: Sequence[str],
    input_body: bytes | None = None,
) -> bytes:
    """A fork request; ``input_body`` (the attempt's ``GET /input`` answer, JSON) is
    left out when it would make the message larger than :data:`INLINE_INPUT_BYTES`."""
    document: dict[str, Any] = {
        "type": "fork",
        "id": request_id,
        "set": dict(set_env),
        "unset": list(unset_env),
    }
    if input_body is not None and len(input_body) <= INLINE_INPUT_BYTES and input_body.isascii():
        try:
            return _dump({**document, "input": input_body.decode("ascii")})
        except TemplateProtocolError:
            pass  # with a large environment too: the child asks for its input
    return _dump(document)


def build_forked(request_id: int, pid: int) -> bytes:
    # Formatted, not dumped: a template sends one per attempt, and every page its loop
    # touches is copied again after each fork (two integers need no encoder).
    return b'{"type":"forked","id":%d,"pid":%d}' % (int(request_id), int(pid))


def build_fork_failed(request_id: int, reason: str) -> bytes:
    return _dump({"type": "fork_failed", "id": request_id, "reason": reason})


def build_exited(request_id: int, pid: int, returncode: int) -> bytes:
    return b'{"type":"exited","id":%d,"pid":%d,"returncode":%d}' % (
        int(request_id),
        int(pid),
        int(returncode),
    )


def build_retire() -> bytes:
    return _dump({"type": "retire"})


def build_spare(spare_id: int, pid: int) -> bytes:
    return b'{"type":"spare","id":%d,"pid":%d}' % (int(spare_id), int(pid))


def build_spare_gone(spare_id: int, returncode: int) -> bytes:
    return b'{"type":"spare_gone","id":%d,"returncode":%d}' % (int(spare_id), int(returncode))


def build_taken(spare_id: int, request_id: int) -> bytes:
    return b'{"type":"taken","spare":%d,"id":%d}' % (int(spare_id), int(request_id))


def env_delta(
    base: Mapping[str, str], target: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """What turns environment ``base`` into ``target``: ``(set, unset)``."""
    set_env = {key: value for key, value in target.items() if base.get(key) != value}
    unset = [key for key in base if key not in target]
    return set_env, unset


# ----------------------------------------------------------------------- parsing


def _document(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise TemplateProtocolError(f"a control message is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise TemplateProtocolError("a control message must be a JSON object")
    kind = document.get("type")
    if not isinstance(kind, str):
        raise TemplateProtocolError("a control message has no type")
    return document


def _int(document: dict[str, Any], key: str, *, minimum: int | None = None) -> int:
    value = document.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise TemplateProtocolError(f"{document['type']}.{key} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise TemplateProtocolError(f"{document['type']}.{key} must be >= {minimum}, got {value}")
    return value


def _text(document: dict[str, Any], key: str) -> str:
    value = document.get(key)
    if not isinstance(value, str):
        raise TemplateProtocolError(f"{document['type']}.{key} must be a string")
    return value


def _version(document: dict[str, Any]) -> None:
    version = document.get("version")
    if version != PROTOCOL_VERSION:
        raise TemplateProtocolError(
            f"the template speaks protocol version {version!r}, this server {PROTOCOL_VERSION}"
        )


def _watch(value: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, list) or len(value) > MAX_WATCHED_FILES:
        raise TemplateProtocolError(f"ready.watch must be a list of at most {MAX_WATCHED_FILES}")
    items: list[tuple[str, int]] = []
    for item in value:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not isinstance(item[0], str)
            or not isinstance(item[1], int)
            or isinstance(item[1], bool)
        ):
            raise TemplateProtocolError("ready.watch items must be [path, mtime_ns]")
        items.append((item[0], item[1]))
    return tuple(items)


def parse_template_message(
    data: bytes,
) -> Ready | Unavailable | Forked | ForkFailed | Exited | Spare | SpareGone:
    """A message from a template (what the dev server reads)."""
    document = _document(data)
    kind = document["type"]
    if kind == "spare":
        return Spare(id=_int(document, "id"), pid=_int(document, "pid", minimum=2))
    if kind == "spare_gone":
        return SpareGone(id=_int(document, "id"), returncode=_int(document, "returncode"))
    if kind == "ready":
        _version(document)
        return Ready(pid=_int(document, "pid", minimum=2), watch=_watch(document.get("watch", [])))
    if kind == "unavailable":
        _version(document)
        return Unavailable(reason=_text(document, "reason"))
    if kind == "forked":
        return Forked(id=_int(document, "id"), pid=_int(document, "pid", minimum=2))
    if kind == "fork_failed":
        return ForkFailed(id=_int(document, "id"), reason=_text(document, "reason"))
    if kind == "exited":
        return Exited(
            id=_int(document, "id"),
            pid=_int(document, "pid", minimum=2),
            returncode=_int(document, "returncode"),
        )
    raise TemplateProtocolError(f"unknown template message type {kind!r}")


_FORK_PREFIX = b'{"type":"fork","id":'


def fork_request_id(data: bytes) -> int | None:
    """The ``id`` of a fork request as :func:`build_fork` writes it, read from its first
    bytes; None for any other message (parse it with :func:`parse_server_message`).

    A template reads only this much: it hands the message on to the child, which
    parses and checks all of it (a template's own loop should touch as few pages as it
    can, since each fork makes it copy every page it touches again).
    """
    if not data.startswith(_FORK_PREFIX):
        return None
    end = data.find(b",", len(_FORK_PREFIX), len(_FORK_PREFIX) + 20)
    digits = data[len(_FORK_PREFIX) : end]
    if end < 0 or not digits.isdigit() or (digits[:1] == b"0" and len(digits) > 1):
        return None
    return int(digits)


def parse_server_message(data: bytes) -> ForkRequest | Retire | Taken:
    """A message from the dev server (what a template reads)."""
    document = _document(data)
    kind = document["type"]
    if kind == "retire":
        return Retire()
    if kind == "taken":
        return Taken(spare=_int(document, "spare"), id=_int(document, "id"))
    if kind != "fork":
        raise TemplateProtocolError(f"unknown server message type {kind!r}")
    set_env = document.get("set")
    unset = document.get("unset")
    if not isinstance(set_env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in set_env.items()
    ):
        raise TemplateProtocolError("fork.set must map names to strings")
    if not isinstance(unset, list) or not all(isinstance(k, str) for k in unset):
        raise TemplateProtocolError("fork.unset must be a list of names")
    handed = document.get("input")
    if handed is not None and not isinstance(handed, str):
        raise TemplateProtocolError("fork.input must be a string")
    return ForkRequest(
        id=_int(document, "id"),
        set=tuple(sorted(set_env.items())),
        unset=tuple(unset),
        input=None if handed is None else handed.encode("utf-8"),
    )
