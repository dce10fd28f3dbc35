"""The ``render-workflows`` command.

``render-workflows MODULE:APP`` imports ``MODULE`` and calls ``APP.start()``, like the
official console script: the platform (or the dev server) runs it with
``RENDER_SDK_MODE`` and ``RENDER_SDK_SOCKET_PATH`` set.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

USAGE = """usage: render-workflows MODULE:APP
       render-workflows dev [options] -- COMMAND...

MODULE:APP  start the worker of a Workflows app (the platform or the dev server sets
            RENDER_SDK_MODE and RENDER_SDK_SOCKET_PATH), for example: render-workflows main:app
dev         run the local dev server for COMMAND (see render-workflows dev --help)
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "dev":
        from render_devserver.cli import main as dev_main

        return dev_main(args[1:])
    if len(args) != 1 or args[0] in ("-h", "--help"):
        stream = sys.stdout if args and args[0] in ("-h", "--help") else sys.stderr
        stream.write(USAGE)
        return 0 if stream is sys.stdout else 2
    from render_transports.worker import run_entry_point

    return run_entry_point(args[0])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
