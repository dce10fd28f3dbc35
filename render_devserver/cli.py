"""``render-workflows dev [options] -- COMMAND...``: the dev server on the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shlex
import signal
import sys
from collections.abc import Sequence

from render_core.config import is_loopback_host
from render_devserver.scheduler import DatabaseInUse, RegistrationError
from render_devserver.security import parse_allowed_host
from render_devserver.server import DEFAULT_DB, DEFAULT_PORT, DevServer, PortInUse

__all__ = ["ENV_ALLOWED_HOSTS", "ENV_AUTH_TOKEN", "main", "parse_env_file"]

# The dev server's optional bearer token, read from the environment by default.
ENV_AUTH_TOKEN = "RENDER_DEV_AUTH_TOKEN"
# More Host names to answer to (comma- or space-separated), besides --allowed-host.
ENV_ALLOWED_HOSTS = "RENDER_DEV_ALLOWED_HOSTS"


def parse_env_file(path: str) -> dict[str, str]:
    """``KEY=value`` lines; ``#`` comments, ``export`` prefixes and quotes are understood."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export ") :].lstrip()
            key, sep, value = line.partition("=")
            key = key.strip()
            if not sep or not key.replace("_", "a").isalnum():
                raise ValueError(f"{path}:{number}: expected KEY=value, got {raw.rstrip()!r}")
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[key] = value
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="render-workflows dev",
        description="Run Render Workflows locally: a REST API on HTTP and your tasks in "
        "local processes, with no account and no network.",
        epilog="example: render-workflows dev -- python main.py",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port (default 8120)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--db", default=None, help=f"SQLite database (default {DEFAULT_DB}; ':memory:' allowed)"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="task processes at once")
    parser.add_argument(
        "--env-file",
        action="append",
        default=None,
        help="variables for the task processes (repeatable; default .env if it exists)",
    )
    parser.add_argument("--workflow-slug", default=None, help="slug shown for the tasks")
    parser.add_argument(
        "--reload", action="store_true", help="re-register when a .py file of the project changes"
    )
    parser.add_argument(
        "--no-fork",
        action="store_true",
        help="start every attempt as a cold process, never forked from a warm template",
    )
    parser.add_argument(
        "--auth-token",
        default=os.environ.get(ENV_AUTH_TOKEN) or None,
        help=f"require 'Authorization: Bearer TOKEN' on the API (default ${ENV_AUTH_TOKEN}; "
        "the environment keeps it out of the process list)",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="also answer requests for this Host name (repeatable; loopback names always; "
        f"more from ${ENV_ALLOWED_HOSTS}, comma-separated)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the start command")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if len(command) == 1 and " " in command[0].strip():
        command = shlex.split(command[0])  # the documented quoted form: -- "python main.py"
    if not command:
        sys.stderr.write(
            "render-workflows dev: give the start command after --, for example\n"
            "    render-workflows dev -- python main.py\n"
        )
        return 2
    if args.concurrency is not None and args.concurrency < 1:
        sys.stderr.write("render-workflows dev: --concurrency must be at least 1\n")
        return 2
    allowed_hosts = [
        *os.environ.get(ENV_ALLOWED_HOSTS, "").replace(",", " ").split(),
        *args.allowed_host,
    ]
    try:
        for name in allowed_hosts:
            parse_allowed_host(name)
    except ValueError as exc:
        sys.stderr.write(f"render-workflows dev: {exc}\n")
        return 2
    env = dict(os.environ)
    env_files = (
        args.env_file if args.env_file is not None else [".env"] if os.path.exists(".env") else []
    )
    for path in env_files:
        try:
            env.update(parse_env_file(path))
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"render-workflows dev: cannot read env file: {exc}\n")
            return 2
    server = DevServer(
        command,
        host=args.host,
        port=args.port,
        db=args.db,
        concurrency=args.concurrency,
        env=env,
        workflow_slug=args.workflow_slug,
        reload=args.reload,
        auth_token=args.auth_token,
        allowed_hosts=allowed_hosts,
        fork=False if args.no_fork else None,
        log_sink=lambda run_id, line: print(f"[{run_id or 'register'}] {line}", flush=True),
    )
    if not is_loopback_host(args.host):
        sys.stderr.write(
            f"warning: binding to {args.host}: anyone who can reach it can run your tasks"
            + (
                "; only with the auth token\n"
                if args.auth_token
                else f"; set {ENV_AUTH_TOKEN} (or --auth-token) to require a bearer token\n"
            )
        )
        if not allowed_hosts:
            bound = "" if args.host in ("", "0.0.0.0", "::") else f" or {args.host}"
            sys.stderr.write(
                f"note: requests must name this server by a loopback name{bound}; "
                "add the names other machines use with --allowed-host\n"
            )
    try:
        return asyncio.run(_serve(server))
    except KeyboardInterrupt:
        return 130


async def _serve(server: DevServer) -> int:
    try:
        await server.start()
    except PortInUse as exc:
        sys.stderr.write(f"render-workflows dev: {exc.strerror}\n")
        return 1
    except (RegistrationError, DatabaseInUse) as exc:
        sys.stderr.write(f"render-workflows dev: {exc}\n")
        return 1
    assert server.scheduler is not None
    print(f"Render Workflows dev server listening on {server.url}")
    print(f"Database: {server.db}")
    print(f"Task processes: {server.scheduler.process_mode.describe()}")
    print("Tasks:")
    for task in server.scheduler.tasks:
        print(f"  {server.workflow_slug}/{task.name}  ({task.id})")
    # What exists now (modules, the app, the registered tasks) lives as long as the
    # process: out of the collector's sight, so that the occasional full collection
    # walks only what came since, not tens of milliseconds of startup objects in the
    # middle of someone's run.
    gc.freeze()
    example = server.scheduler.tasks[0].name if server.scheduler.tasks else "TASK"
    print(
        f"\nRe-register with: kill -HUP {os.getpid()}\n"
        "Run one from Python with RENDER_USE_LOCAL_DEV=true:\n"
        f'  Render().workflows.run_task("{server.workflow_slug}/{example}", [...])\n'
        "Press Ctrl-C to stop.",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, AttributeError):
        # Re-register on demand: kill -HUP <pid>.
        loop.add_signal_handler(
            signal.SIGHUP, lambda: loop.create_task(_reregister(server)) and None
        )
    await stop.wait()
    print("Stopping...", flush=True)
    await server.stop()
    return 0


async def _reregister(server: DevServer) -> None:
    assert server.scheduler is not None
    try:
        tasks = await server.scheduler.register()
    except (RegistrationError, OSError) as exc:
        print(f"re-registration failed, keeping the previous tasks: {exc}", flush=True)
    else:
        print("re-registered: " + ", ".join(task.name for task in tasks), flush=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
