"""Scenario 4: Server-Sent Events bytes -> task-run objects, in process (no network).

``--side``: ``ours`` (``render_core.sse.SSEDecoder`` + ``api.parse_task_run_event``),
``official`` (0.6.1 ``SSEParser.feed``, what its ``task_run_events`` uses) or
``floor`` (split on blank lines and ``json.loads`` each ``data:`` line: no model,
no incremental decoding). ``--events`` events are fed in ``--chunk``-byte pieces
(0 = the whole payload at once), ``--inner`` times in a row (the median counts).
Prints ``{"events_per_s": ...}``.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from _common import arg, chunks, emit, sse_payload


def decoder(side: str) -> Callable[[list[bytes]], int]:
    if side == "ours":
        from render_core import api
        from render_core.sse import SSEDecoder

        def decode(pieces: list[bytes]) -> int:
            sse = SSEDecoder()
            runs = []
            for piece in pieces:
                for event in sse.feed(piece):
                    run = api.parse_task_run_event(event)
                    if run is not None:
                        runs.append(run)
            return len(runs)

    elif side == "official":
        from render_sdk.client.sse import SSEParser

        def decode(pieces: list[bytes]) -> int:
            parser = SSEParser()
            runs = []
            for piece in pieces:
                runs.extend(parser.feed(piece))
            return len(runs)

    else:

        def decode(pieces: list[bytes]) -> int:
            text = b"".join(pieces).decode()
            runs = []
            for block in text.split("\n\n"):
                for line in block.split("\n"):
                    if line.startswith("data: "):
                        runs.append(json.loads(line[6:]))
            return len(runs)

    return decode


def main() -> None:
    side = arg("side")
    count = int(arg("events"))
    pieces = chunks(sse_payload(count), int(arg("chunk", "0")))
    decode = decoder(side)
    decode(chunks(sse_payload(50), 0))  # warm-up: imports, caches
    times = []
    for _ in range(int(arg("inner", "1"))):
        began = time.perf_counter()
        decoded = decode(pieces)
        times.append(time.perf_counter() - began)
        if decoded != count:
            raise SystemExit(f"{side} decoded {decoded} of {count} events")
    elapsed = statistics.median(times)
    emit({"side": side, "events": count, "seconds": elapsed, "events_per_s": count / elapsed})


if __name__ == "__main__":
    main()
