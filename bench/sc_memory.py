"""Scenario 7: memory of a client holding ``--n`` task-run objects.

Each side decodes ``--n`` distinct ``TaskRunDetails`` JSON documents into its own
model objects and keeps them: ``ours`` (``render_core.codec``, as the clients parse
answers), ``official`` (0.6.1 ``TaskRunDetails.from_dict``) or ``floor`` (the plain
``dict`` from ``json.loads``). Prints the bytes the objects hold (``tracemalloc``,
after a full collection) and the process's peak RSS.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable
from typing import Any

from _common import arg, emit, run_details


def parser(side: str) -> Callable[[bytes], Any]:
    if side == "ours":
        from render_core import codec, models

        return lambda body: codec.structure(json.loads(body), models.TaskRunDetails)
    if side == "official":
        from render_sdk.client.types import TaskRunDetails

        return lambda body: TaskRunDetails.from_dict(json.loads(body))
    return json.loads


def main() -> None:
    side = arg("side")
    count = int(arg("n", "10000"))
    parse = parser(side)
    bodies = [
        json.dumps(run_details(f"trn-{index:020d}", value=index)).encode() for index in range(count)
    ]
    parse(bodies[0])  # warm-up: imports, generated code
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = [parse(body) for body in bodies]
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    emit(
        {
            "side": side,
            "objects": len(held),
            "retained_bytes": retained,
            "bytes_per_object": retained / count,
        }
    )


if __name__ == "__main__":
    main()
