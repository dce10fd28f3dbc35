"""The ``render-workflows`` command.

``render-workflows MODULE:APP`` imports ``MODULE`` and calls ``APP.start()``, like the
official console script: the platform (or the dev server) runs it with
``RENDER_SDK_MODE`` and ``RENDER_SDK_SOCKET_PATH`` set. ``render-workflows dev`` runs
the local dev server, and ``render-workflows tasks|runs ...`` call the Workflows API
(see ``render_sdk._cli``). Each path imports only what it needs, so the worker starts
without loading any HTTP client.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

USAGE = """usage: render-workflows MODULE:APP
       render-workflows dev [options] -- COMMAND...
       render-workflows [--local | --url URL] [--json] {tasks,runs} ...

MODULE:APP  start the worker of a Workflows app (the platform or the dev server sets
            RENDER_SDK_MODE and RENDER_SDK_SOCKET_PATH), for example: render-workflows main:app
dev         run the local dev server for COMMAND (see render-workflows dev --help)
tasks, runs list tasks; start, list, inspect, cancel, follow and watch task runs
            (see render-workflows --help)
"""

# First words that name an API command rather than a MODULE:APP entry point.
API_COMMANDS = ("tasks", "runs")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "dev":
        from render_devserver.cli import main as dev_main

        return dev_main(args[1:])
    if args and (args[0] in API_COMMANDS or args[0].startswith("-")):
        from render_sdk._cli import main as api_main

        return api_main(args)
    if len(args) != 1:
        sys.stderr.write(USAGE)
        return 2
    from render_sdk.worker.runtime import run_entry_point

    return run_entry_point(args[0])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
