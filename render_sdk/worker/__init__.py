"""The worker side: define tasks and run them when the platform starts the program.

- :mod:`render_sdk.worker.runtime`: ``Workflows``, ``TaskContext`` and the runtime that
  registers tasks and runs one attempt over the task socket;
- :mod:`render_sdk.worker.template`: the warm template the dev server forks per attempt;
- :mod:`render_sdk.worker.inprocess`: runs tasks in this process, for tests
  (:mod:`render_sdk.testing`).

This package imports nothing itself, so ``from render_sdk import Workflows`` stays cheap.
"""
