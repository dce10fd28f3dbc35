"""``render-workflows tasks ...`` and ``render-workflows runs ...``: the API on the command line.

Imported only for these commands, so that ``render-workflows MODULE:APP`` (the worker)
stays as light as it was. Every command builds one synchronous :class:`Render` client
and turns the SDK's exceptions into one-line messages and exit codes (see
``docs/cli.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

from render_core.config import ENV_API_KEY, ENV_USE_LOCAL_DEV, resolve_config
from render_core.errors import (
    ConfigurationError,
    NetworkError,
    RenderError,
    TaskRunError,
    TimeoutError,
    ValidationError,
)
from render_core.models import ListTaskRunsParams, TaskRun, TaskRunDetails, TaskRunStatus
from render_sdk._cli_format import (
    Output,
    TaskNames,
    all_tasks,
    attempt_count,
    duration,
    run_fields,
    table,
    task_label,
    timestamp,
    wire,
)

if TYPE_CHECKING:
    from render_sdk.client.clients import Render

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "HELP", "UsageError", "main"]

PROG = "render-workflows"

_N = TypeVar("_N", int, float)

EXIT_OK = 0
EXIT_FAILED = 1  # a run failed or was canceled, or the API answered with an error
EXIT_USAGE = 2  # bad arguments, bad input JSON, missing token or bad URL
EXIT_INTERRUPTED = 130

# With --status, the API cannot filter: at most this many recent runs are read.
STATUS_SCAN_LIMIT = 1000
STATUSES = [status.value for status in TaskRunStatus]

USAGE = f"""usage: {PROG} MODULE:APP
       {PROG} dev [options] -- COMMAND...
       {PROG} [--local | --url URL] [--json] {{tasks,runs}} ...
"""

HELP = (
    USAGE
    + f"""
Run the worker of a Workflows app, the local dev server, or the Workflows API.

commands:
  MODULE:APP             start the worker of a Workflows app (the platform or the dev
                         server sets RENDER_SDK_MODE and RENDER_SDK_SOCKET_PATH),
                         for example: {PROG} main:app
  dev                    run the local dev server for COMMAND ({PROG} dev --help)
  tasks list             list the registered tasks
  runs start TASK        start a run: [--input JSON | --input-file FILE] [--wait]
  runs list              list recent runs: [--status S] [--task TASK] [--limit N]
  runs get ID            show a run: status, attempts, input, result, error
  runs cancel ID         cancel a run (and its subtasks)
  runs rerun ID          start the same task again with the same input: [--wait]
  runs trace ID          write the run's whole tree as a trace-event file (Perfetto,
                         chrome://tracing): {PROG} runs trace ID > trace.json
  runs logs ID           print a run's output; --follow keeps printing until it ends
  runs watch ID...       show runs live until they have all finished

options (before or after the command):
  --local                use the local dev server (as RENDER_USE_LOCAL_DEV=true does)
  --url URL              the API's base URL (default https://api.render.com)
  --json                 print the API's JSON instead of tables
  -h, --help             show help ({PROG} runs start --help, ...)

environment:
  RENDER_API_KEY         API token for Render (not needed for the dev server)
  RENDER_USE_LOCAL_DEV   true: use http://localhost:8120
  RENDER_LOCAL_DEV_URL   the dev server's URL, when not on the default port

exit status: 0 success; 1 a run failed or was canceled, or the API reported an
error; 2 bad usage (arguments, input JSON, missing token); 130 interrupted.
"""
)


class UsageError(Exception):
    """The command line cannot be carried out as given (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as :class:`UsageError`, not ``sys.exit`` from inside argparse."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


class _TopParser(_Parser):
    def format_usage(self) -> str:
        return USAGE

    def format_help(self) -> str:
        return HELP


def _global_options() -> _Parser:
    # SUPPRESS defaults: an option given before the subcommand is not reset by the
    # subparser's own copy of it, so both positions work.
    options = _Parser(add_help=False)
    where = options.add_mutually_exclusive_group()
    where.add_argument(
        "--local",
        action="store_true",
        default=argparse.SUPPRESS,
        help="use the local dev server (RENDER_LOCAL_DEV_URL, else http://localhost:8120)",
    )
    where.add_argument(
        "--url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="the API's base URL (default: https://api.render.com, or the dev server "
        "when RENDER_USE_LOCAL_DEV is set)",
    )
    options.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the API's JSON (camelCase) instead of tables",
    )
    return options


def _number(text: str, kind: Callable[[str], _N], what: str) -> _N:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text, float, "a number")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    value = _number(text, int, "an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _TopParser(prog=PROG, parents=[common])
    groups = parser.add_subparsers(dest="group", metavar="{tasks,runs}", parser_class=_Parser)
    groups.required = True

    tasks = groups.add_parser(
        "tasks", parents=[common], help="registered tasks", description="Registered tasks."
    )
    task_commands = tasks.add_subparsers(dest="command", metavar="{list}")
    task_commands.required = True
    task_commands.add_parser(
        "list",
        parents=[common],
        help="list the registered tasks",
        description="List the registered tasks: id, name (workflow-slug/task-name "
        "when the server says) and creation time.",
    )

    runs = groups.add_parser(
        "runs", parents=[common], help="task runs", description="Start, inspect and cancel runs."
    )
    commands = runs.add_subparsers(
        dest="command", metavar="{start,list,get,cancel,rerun,trace,logs,watch}"
    )
    commands.required = True

    def command(
        name: str, help: str, description: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, parents=[common], help=help, description=description, epilog=epilog
        )

    def run_id(parser: argparse.ArgumentParser, help: str = "task run id (trn-...)") -> None:
        parser.add_argument("run_id", metavar="ID", help=help)

    def wait_options(parser: argparse.ArgumentParser, what: str) -> None:
        parser.add_argument(
            "--wait", action="store_true", help=f"wait for {what} to finish; exit 1 if it fails"
        )
        parser.add_argument(
            "--timeout",
            type=_positive_float,
            metavar="SECONDS",
            help="with --wait: give up after SECONDS (exit 1; the run goes on)",
        )

    def interval_option(parser: argparse.ArgumentParser, help: str) -> None:
        parser.add_argument(
            "--interval", type=_positive_float, default=1.0, metavar="SECONDS", help=help
        )

    start = command(
        "start",
        "start a task run",
        "Start a run of TASK and print it (with --wait: its final state).",
        f"example: {PROG} runs start my-workflow/add --input '[2, 3]' --wait",
    )
    start.add_argument(
        "task",
        metavar="TASK",
        help="workflow-slug/task-name (optionally :version), or a task id (tsk-...)",
    )
    given = start.add_mutually_exclusive_group()
    given.add_argument(
        "--input",
        metavar="JSON",
        help="the arguments: a JSON array (positional) or object (named); default []",
    )
    given.add_argument(
        "--input-file",
        metavar="FILE",
        help="read the arguments' JSON from FILE ('-' for standard input)",
    )
    wait_options(start, "the run")
    start.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="starting again with the same KEY returns the same run instead of a new one",
    )

    listing = command("list", "list recent task runs", "List task runs, newest first.")
    listing.add_argument(
        "--status",
        action="append",
        choices=STATUSES,
        metavar="STATUS",
        help=f"only runs with this status (repeatable): {', '.join(STATUSES)}",
    )
    listing.add_argument(
        "--task",
        action="append",
        metavar="TASK",
        help="only runs of this task (repeatable): workflow-slug/task-name or task id",
    )
    listing.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="at most N runs (default 20)"
    )

    run_id(
        command(
            "get",
            "show a task run",
            "Show a run: status, times, attempts, input, result or error.",
        )
    )
    run_id(
        command(
            "cancel",
            "cancel a task run",
            "Cancel a run that has not finished, with its subtasks.",
        )
    )

    rerun = command(
        "rerun",
        "run a task run's task again with the same input",
        "Start a new run of the task of run ID with the input of run ID and print "
        "it (with --wait: its final state). A dev server on this machine records which run "
        "it re-runs, and its dashboard links the two.",
        f"example: {PROG} runs rerun trn-d2k4l6o2j5r3ldc4k0ug --wait",
    )
    run_id(rerun, "the task run to run again (trn-...)")
    wait_options(rerun, "the new run")

    trace = command(
        "trace",
        "write a run tree as a trace-event file",
        "Write the tree of run ID (its root, every subtask, each attempt, "
        "queue and retry wait) as a Chrome trace-event JSON file, which Perfetto "
        "(ui.perfetto.dev) and chrome://tracing open.",
        f"example: {PROG} runs trace trn-d2k4l6o2j5r3ldc4k0ug > trace.json",
    )
    run_id(trace, "any task run of the tree (trn-...)")
    trace.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of standard output"
    )

    logs = command(
        "logs",
        "print a task run's output",
        "Print the output a run's task process wrote, oldest first.",
    )
    run_id(logs)
    logs.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines until the run has finished",
    )
    logs.add_argument(
        "--owner",
        metavar="OWNER_ID",
        help="the workspace id (Render's log API needs it; the dev server does not)",
    )
    interval_option(logs, "with --follow: seconds between checks (default 1)")

    watch = command(
        "watch",
        "show task runs live until they finish",
        "Show the status and attempts of runs as they change, until all "
        "have finished. In a terminal the display is redrawn in place; otherwise one "
        "line is printed per change. Exit status 1 if any run failed or was canceled.",
    )
    watch.add_argument("run_ids", nargs="+", metavar="ID", help="task run ids (trn-...)")
    interval_option(watch, "seconds between checks (default 1)")
    return parser


# ---------------------------------------------------------------------------
# Client and errors


def _client(args: argparse.Namespace) -> tuple[Render, bool]:
    """The client, and whether it talks to a local dev server."""
    env = dict(os.environ)
    if getattr(args, "local", False) and getattr(args, "url", None) is not None:
        raise UsageError("--local and --url name two different servers: give one of them")
    if getattr(args, "local", False):
        env[ENV_USE_LOCAL_DEV] = "true"
    base_url: str | None = getattr(args, "url", None)
    # Where would requests go? Resolved with a stand-in token, so that a missing
    # token is reported in command-line terms rather than Python ones.
    where = resolve_config(base_url=base_url, env={**env, ENV_API_KEY: "x"})
    if not where.local_dev and not env.get(ENV_API_KEY, "").strip():
        raise UsageError(
            f"no API token: set {ENV_API_KEY} to use {where.base_url} "
            "(for the local dev server, pass --local or --url http://localhost:8120)"
        )
    from render_sdk.client.clients import Render

    return Render(base_url=base_url, env=env), where.local_dev


def _message(exc: RenderError, client: Render | None, local_dev: bool) -> str:
    text = " ".join(str(exc).split())  # one line, whatever the server wrote
    if isinstance(exc, NetworkError) and client is not None:
        if local_dev:
            text += f"\nIs the dev server running at {client.base_url}? Start it with: "
            text += f"{PROG} dev -- python main.py"
        else:
            text += f"\nCannot reach {client.base_url}; check the network or --url."
    return text


# ---------------------------------------------------------------------------
# Commands

Command = Callable[["Render", argparse.Namespace, Output], int]


def _tasks_list(client: Render, args: argparse.Namespace, out: Output) -> int:
    tasks = list(all_tasks(client.workflows.list_tasks))
    if out.json_mode:
        out.document([wire(task) for task in tasks])
    elif not tasks:
        out.line("No tasks registered.")
    else:
        out.line(
            table(
                ["ID", "NAME", "CREATED"],
                [[task.id, task_label(task), timestamp(task.created_at)] for task in tasks],
            )
        )
    return EXIT_OK


def _read_input(args: argparse.Namespace, stdin: IO[str]) -> list[Any] | dict[str, Any]:
    if args.input_file is not None:
        source = "--input-file" if args.input_file == "-" else args.input_file
        try:
            if args.input_file == "-":
                text = stdin.read()
            else:
                with open(args.input_file, encoding="utf-8") as handle:
                    text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --input-file: {exc}") from None
    elif args.input is not None:
        source, text = "--input", args.input
    else:
        return []
    return parse_input(text, source)


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def parse_input(text: str, source: str) -> list[Any] | dict[str, Any]:
    """The task's arguments from JSON text; a :class:`UsageError` says what is wrong and where."""
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            + _pointer(exc.doc, exc.pos)
        ) from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    if isinstance(value, list | dict):
        return value
    kind = {bool: "boolean", int: "number", float: "number", str: "string"}.get(type(value), "null")
    raise UsageError(
        f"{source} must be a JSON array of positional arguments or an object of named "
        f"arguments, got a {kind}; for a single argument write [{text.strip()}]"
    )


def _pointer(doc: str, pos: int) -> str:
    """The offending line, cut to fit, with a caret under position ``pos``."""
    start = doc.rfind("\n", 0, pos) + 1
    end = doc.find("\n", pos)
    line = doc[start : end if end != -1 else len(doc)]
    column = pos - start
    if len(line) > 70:
        left = max(0, column - 35)
        line, column = line[left : left + 70], column - left
    return f"\n  {line}\n  {' ' * column}^"


def _runs_start(client: Render, args: argparse.Namespace, out: Output) -> int:
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout only applies with --wait")
    task = args.task.strip()
    if not task:
        raise UsageError("TASK is empty: give workflow-slug/task-name or a task id")
    input_data = _read_input(args, sys.stdin)
    run = client.workflows.start_task(task, input_data, idempotency_key=args.idempotency_key)
    return _started(client, run, args, out)


def _started(client: Render, run: TaskRun, args: argparse.Namespace, out: Output) -> int:
    """Print a run just started, or (``--wait``) wait for it and print its final state."""
    origin = getattr(args, "rerun_of", None)
    again = f", a rerun of {origin}" if origin else ""
    if not args.wait:
        if out.json_mode:
            out.document(wire(run))
        else:
            out.line(f"Started task run {run.id} ({run.status}){again}")
        return EXIT_OK
    out.note(f"Started task run {run.id}{again}; waiting for it to finish...")
    try:
        details = client.workflows.wait_for_run(run.id, timeout=args.timeout)
    except TaskRunError as exc:
        if exc.details is None:
            raise
        details = exc.details
    except TimeoutError:
        raise TimeoutError(
            f"task run {run.id} still not finished after {args.timeout:g} s "
            f"(it goes on; see: {PROG} runs watch {run.id})"
        ) from None
    _show_run(client, details, out)
    if not details.status.is_success:
        out.note(f"{PROG}: task run {details.id} {details.status}")
        return EXIT_FAILED
    return EXIT_OK


def _run_again(client: Render, args: argparse.Namespace, out: Output) -> int:
    if args.timeout is not None and not args.wait:
        raise UsageError("--timeout only applies with --wait")
    from render_sdk._cli_observe import start_rerun

    run = start_rerun(client, args.run_id)
    args.rerun_of = args.run_id
    return _started(client, run, args, out)


def _runs_trace(client: Render, args: argparse.Namespace, out: Output) -> int:
    from render_sdk._cli_observe import tree_trace

    document = tree_trace(client, args.run_id)
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    if args.output is None:
        out.line(text)
    else:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write --output: {exc}") from None
    runs = document["otherData"]["runs"]
    events = sum(1 for event in document["traceEvents"] if event.get("cat") == "attempt")
    out.note(
        f"{PROG}: wrote the tree of {document['otherData']['rootTaskRunId']}: "
        f"{runs} run(s), {events} attempt(s)" + (f" to {args.output}" if args.output else "")
    )
    return EXIT_OK


def _show_run(client: Render, details: TaskRunDetails, out: Output) -> None:
    if out.json_mode:
        out.document(wire(details))
    else:
        names = TaskNames(client.workflows.list_tasks)
        out.line(run_fields(details, names(details.task_id)))


def _runs_list(client: Render, args: argparse.Namespace, out: Output) -> int:
    statuses = set(args.status or ())
    page_size = 100 if statuses else min(args.limit, 100)
    params = ListTaskRunsParams(limit=page_size, task_slug=args.task)
    runs = []
    for scanned, run in enumerate(client.workflows.iter_task_runs(params), 1):
        if not statuses or str(run.status) in statuses:
            runs.append(run)
        if len(runs) >= args.limit or (statuses and scanned >= STATUS_SCAN_LIMIT):
            break
    if out.json_mode:
        out.document([wire(run) for run in runs])
        return EXIT_OK
    if not runs:
        out.line("No task runs.")
        return EXIT_OK
    names = TaskNames(client.workflows.list_tasks)
    out.line(
        table(
            ["ID", "TASK", "STATUS", "ATTEMPTS", "STARTED", "DURATION"],
            [
                [
                    run.id,
                    names(run.task_id),
                    str(run.status),
                    attempt_count(run),
                    timestamp(run.started_at),
                    duration(run.started_at, run.completed_at),
                ]
                for run in runs
            ],
        )
    )
    return EXIT_OK


def _runs_get(client: Render, args: argparse.Namespace, out: Output) -> int:
    _show_run(client, client.workflows.get_task_run(args.run_id), out)
    return EXIT_OK


def _runs_cancel(client: Render, args: argparse.Namespace, out: Output) -> int:
    client.workflows.cancel_task_run(args.run_id)
    details = client.workflows.get_task_run(args.run_id)
    if out.json_mode:
        out.document(wire(details))
    else:
        out.line(f"Canceled task run {details.id} ({details.status})")
    return EXIT_OK


def _runs_logs(client: Render, args: argparse.Namespace, out: Output) -> int:
    from render_sdk._cli_live import print_logs

    return print_logs(
        client, args.run_id, out, follow=args.follow, owner_id=args.owner, interval=args.interval
    )


def _runs_watch(client: Render, args: argparse.Namespace, out: Output) -> int:
    from render_sdk._cli_live import watch

    return watch(client, args.run_ids, out, interval=args.interval)


COMMANDS: dict[tuple[str, str], Command] = {
    ("tasks", "list"): _tasks_list,
    ("runs", "start"): _runs_start,
    ("runs", "list"): _runs_list,
    ("runs", "get"): _runs_get,
    ("runs", "cancel"): _runs_cancel,
    ("runs", "rerun"): _run_again,
    ("runs", "trace"): _runs_trace,
    ("runs", "logs"): _runs_logs,
    ("runs", "watch"): _runs_watch,
}


def main(
    argv: Sequence[str], *, stdout: IO[str] | None = None, stderr: IO[str] | None = None
) -> int:
    """Run one API command; returns the exit status (never raises for expected failures)."""
    stdout = sys.stdout if stdout is None else stdout
    stderr = sys.stderr if stderr is None else stderr
    client: Render | None = None
    local_dev = False
    try:
        try:
            args = build_parser().parse_args(list(argv))
        except SystemExit as exc:  # --help
            stdout.flush()
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        out = Output(stdout, stderr, json_mode=getattr(args, "json", False))
        client, local_dev = _client(args)
        with client:
            return COMMANDS[args.group, args.command](client, args, out)
    except UsageError as exc:
        stderr.write(f"{PROG}: error: {exc}\n")
        return EXIT_USAGE
    except (ConfigurationError, ValidationError) as exc:
        stderr.write(f"{PROG}: error: {' '.join(str(exc).split())}\n")
        return EXIT_USAGE
    except RenderError as exc:
        stderr.write(f"{PROG}: {_message(exc, client, local_dev)}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        stderr.write("\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from
        # complaining while it flushes stdout at exit.
        if stdout is sys.stdout:
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
