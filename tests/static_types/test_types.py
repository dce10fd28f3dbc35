"""The public API's static types, checked by running mypy --strict on two files.

``accepted.py`` must pass; ``rejected.py`` must fail on exactly its marked lines, with
the marked error codes (so a check that silently stopped rejecting anything fails).
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _mypy(path: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--show-error-codes", "--hide-error-context", str(path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip


def test_accepted_file_type_checks() -> None:
    done = _mypy(HERE / "accepted.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rejected_file_fails_exactly_where_marked() -> None:
    path = HERE / "rejected.py"
    expected = {
        (number, match.group(1))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if (match := re.search(r"# rejected: ([a-z-]+)$", line))
    }
    assert len(expected) >= 7
    done = _mypy(path)
    reported = {
        (int(match.group(1)), match.group(2))
        for match in re.finditer(r"rejected\.py:(\d+): error: .*\[([a-z-]+)\]$",
                                 done.stdout, re.MULTILINE)
    }  # fmt: skip
    assert reported == expected, done.stdout
