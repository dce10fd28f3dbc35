"""The attempt-path rehearsal of a warm template (render_sdk.worker._rehearsal).

Its failures are swallowed by design (it only saves time), so these tests call the
rehearsal itself and check that it works, that it leaves nothing an attempt could
see, and that it stays away from an application that traces.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.support.programs import ROOT

CHECK = """
import os, sys, threading

from render_sdk.worker import _rehearsal, runtime

environment = dict(os.environ)
threads = threading.active_count()
modules = set(sys.modules)
_rehearsal._once(_rehearsal._registry())  # raises if the rehearsal is broken
_rehearsal.warm()
_rehearsal.touch()
assert dict(os.environ) == environment, set(os.environ) ^ set(environment)
assert threading.active_count() == threads
assert not runtime._PROCESS.started
assert runtime._RUNTIME.get(None) is None
new = sorted(set(sys.modules) - modules)
assert not [m for m in new if m.split(".")[0] in ("asyncio", "requests", "aiohttp", "cattrs")], new
print("ok")
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_rehearsal_runs_the_attempt_path_and_leaves_nothing_behind() -> None:
    done = run(CHECK)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert done.stderr == ""  # nothing written: the rehearsal's task succeeds quietly


def test_the_rehearsal_is_skipped_when_the_application_traces() -> None:
    done = run(
        """
        import sys, types
        from render_sdk.worker import _rehearsal

        calls = []
        _rehearsal._once = lambda registry: calls.append(registry)
        _rehearsal.warm()
        assert len(calls) == _rehearsal._WARM_ROUNDS, calls
        calls.clear()
        sys.modules["opentelemetry.trace"] = types.ModuleType("opentelemetry.trace")
        _rehearsal.warm()
        _rehearsal.touch()
        assert calls == [], calls
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_failing_rehearsal_is_ignored_and_leaves_the_environment_as_it_was() -> None:
    done = run(
        """
        import os
        from render_sdk.worker import _rehearsal
        from render_core import callback

        def broken(response):
            raise ValueError("broken on purpose")

        environment = dict(os.environ)
        callback.parse_input = broken
        _rehearsal.warm()  # does not raise
        assert dict(os.environ) == environment
        print("ok")
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
