"""``TaskRunMetadata``, a dataclass as in the official SDK, in a module of its own.

Defining a dataclass imports :mod:`dataclasses` and with it :mod:`inspect`, a good
part of a worker's cold start; the runtime imports this module only when a task
asks for its context's ``metadata``.
"""

from __future__ import annotations

import dataclasses

__all__ = ["TaskRunMetadata"]


@dataclasses.dataclass(frozen=True)
class TaskRunMetadata:
    """The ids of the running attempt's run, ``None`` where the server sends none.

    A root run has no parent; an empty root id counts as unknown.
    """

    task_run_id: str | None = None
    root_task_run_id: str | None = None
    parent_task_run_id: str | None = None
