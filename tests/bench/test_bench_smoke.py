"""The benchmark scripts run end to end (tiny sizes, our side only).

Benchmarks are not tests: nothing here looks at a timing. This only proves that
``bench/run.py`` and every scenario script still work against the current code,
and that the report it writes is a well-formed table.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCENARIO_NUMBERS = {"1", "2", "3", "4", "5", "6", "7", "8"}


def test_smoke_run_writes_a_well_formed_table(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--smoke",
            "--no-official",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = output.read_text(encoding="utf-8")
    assert report.startswith("# Benchmarks")
    assert "Official: not measured" in report
    header = "| Scenario | Unit | Ours | Official 0.6.1 | Floor | Ours / official | Goal | Met |"
    lines = report.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    assert {row[0].split(".")[0] for row in rows} == SCENARIO_NUMBERS
    for row in rows:
        assert len(row) == 8, row
        # No official side in a smoke run.
        assert row[3] == "—", row
        assert row[5] == "—", row
        if row[2] != "—":
            float(row[2].replace(",", ""))
    assert str(ROOT) not in report  # no machine-specific paths in the report


def test_dev_queries_script_runs(tmp_path: pathlib.Path) -> None:
    """bench/dev_queries.py (the dashboard's queries on a big database) still runs; tiny sizes."""
    output = tmp_path / "queries.md"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "dev_queries.py"),
            *("--runs", "120", "--reps", "1", "--output", str(output)),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Dashboard queries with 120 runs in the database")
    rows = [line.strip("|").split("|") for line in lines[4:]]
    assert {row[0].strip() for row in rows} == {"store", "http"}
    assert len(rows) == 22
    for row in rows:
        float(row[2])


def test_the_paired_comparison_runs_two_trees_in_turn() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "ab_devserver.py"),
            str(ROOT),
            str(ROOT),
            "--rounds",
            "3",
            "--burst",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert sum(" requests " in line and " p95 " in line for line in lines) == 2, lines
    assert sum(" keep-alive " in line for line in lines) == 2, lines
    assert sum("burst of 3:" in line for line in lines) == 4, lines
