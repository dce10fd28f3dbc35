"""Ids in Render's format: ``trn-``/``tsk-`` + 20 lower-case base32hex characters.

Like the ``xid`` ids Render uses: 12 bytes (a 4-byte timestamp, 5
random bytes, a 3-byte counter) in base32hex without padding, so ids sort by
creation time and never collide within a process.
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
import time

__all__ = ["new_id"]

_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_lock = threading.Lock()


def new_id(prefix: str) -> str:
    with _lock:
        count = next(_counter) & 0xFFFFFF
    raw = int(time.time()).to_bytes(4, "big") + os.urandom(5) + count.to_bytes(3, "big")
    return prefix + base64.b32hexencode(raw).decode("ascii").lower().rstrip("=")
