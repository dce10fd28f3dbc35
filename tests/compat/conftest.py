"""Official Render SDKs in their own virtual environments, for wire-compatibility tests.

The official SDKs share our import name (``render_sdk`` 0.6.1) or live beside it
(``render`` 1.x), so they cannot be imported into the test process: each one gets a
virtual environment, created once per test session under pytest's tmp dir, and is
driven as a subprocess (a client script, or a worker started by our dev server).

Both environments are built in parallel the first time either is asked for. If the
package index cannot be reached the fixtures FAIL (never skip): CI has PyPI access,
and a compatibility suite that silently skips proves nothing.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pytest

# What each official SDK is installed as, and the module it is imported as.
SPECS = {
    "0.6.1": ("render_sdk==0.6.1", "render_sdk", "render_sdk"),
    "1.x": ("render>=1,<2", "render", "render"),
}
INSTALL_TIMEOUT = 600.0

_INDEX_TROUBLE = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Max retries exceeded",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "SSLError",
    "ProxyError",
    "Network is unreachable",
)


@dataclass(frozen=True)
class OfficialSDK:
    """One official SDK, installed: run ``python`` to use it."""

    label: str
    """``"0.6.1"`` or ``"1.x"``."""
    python: str
    module: str
    """The import name: ``render_sdk`` (0.6.1) or ``render`` (1.x)."""
    version: str
    """The installed distribution's version (``0.6.1``, ``1.5.0``, ...)."""
    install_seconds: float


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test environment without anything that could leak our SDK or a setting in.

    ``PYTHONPATH`` would put this repository's ``render_sdk`` ahead of the official
    one; ``RENDER_*`` would point clients somewhere else or supply a token the
    test did not choose; ``VIRTUAL_ENV``/``PYTHONHOME`` confuse the other venvs.
    """
    drop = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONNOUSERSITE"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("RENDER_", "COV_CORE_", "PYTEST_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONNOUSERSITE"] = "1"
    if extra:
        env.update(extra)
    return env


def _venv_python(directory: pathlib.Path) -> pathlib.Path:
    if os.name == "nt":  # pragma: no cover - CI and developers are on POSIX
        return directory / "Scripts" / "python.exe"
    return directory / "bin" / "python"


def _build(label: str, root: pathlib.Path) -> OfficialSDK:
    requirement, distribution, module = SPECS[label]
    directory = root / ("venv-" + label.replace(".", "_"))
    began = time.monotonic()
    created = subprocess.run(
        [sys.executable, "-m", "venv", str(directory)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if created.returncode != 0:
        raise RuntimeError(
            f"could not create a virtual environment for the official SDK {label} "
            f"({sys.executable} -m venv): {created.stdout}{created.stderr}"
        )
    python = _venv_python(directory)
    installed = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--quiet",
            requirement,
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
        env=clean_env(),
    )
    if installed.returncode != 0:
        output = (installed.stdout + installed.stderr).strip()
        hint = ""
        if any(marker in output for marker in _INDEX_TROUBLE):
            hint = (
                " The package index looks unreachable: these compatibility tests need "
                "PyPI (CI has it); they fail rather than skip so that a broken network "
                "cannot pass for compatibility."
            )
        raise RuntimeError(
            f"pip install {requirement!r} for the official SDK {label} failed "
            f"(exit {installed.returncode}).{hint}\n{output[-4000:]}"
        )
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, json, sys; "
            f"print(json.dumps(m.version({distribution!r})))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    if probe.returncode != 0:
        raise RuntimeError(f"the official SDK {label} did not install: {probe.stderr}")
    return OfficialSDK(
        label=label,
        python=str(python),
        module=module,
        version=json.loads(probe.stdout),
        install_seconds=time.monotonic() - began,
    )


@pytest.fixture(scope="session")
def _official_builds(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Future[OfficialSDK]]]:
    """Start building every official venv at once (they take ~10-20 s each)."""
    root = tmp_path_factory.mktemp("official-sdks")
    with ThreadPoolExecutor(max_workers=len(SPECS), thread_name_prefix="venv") as pool:
        yield {label: pool.submit(_build, label, root) for label in SPECS}


def _wait(builds: dict[str, Future[OfficialSDK]], label: str) -> OfficialSDK:
    try:
        return builds[label].result(timeout=INSTALL_TIMEOUT + 120)
    except Exception as exc:
        pytest.fail(f"official SDK {label} unavailable: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def official_061(_official_builds: dict[str, Future[OfficialSDK]]) -> OfficialSDK:
    """The official ``render_sdk==0.6.1`` (PyPI), in its own venv."""
    sdk = _wait(_official_builds, "0.6.1")
    assert sdk.version == "0.6.1"
    return sdk


@pytest.fixture(scope="session")
def official_1x(_official_builds: dict[str, Future[OfficialSDK]]) -> OfficialSDK:
    """The newest official ``render`` 1.x (PyPI), in its own venv."""
    sdk = _wait(_official_builds, "1.x")
    assert sdk.version.split(".")[0] == "1", sdk.version
    return sdk


@pytest.fixture(scope="session", params=sorted(SPECS))
def official(request: pytest.FixtureRequest) -> OfficialSDK:
    """Each official SDK in turn (0.6.1, then 1.x)."""
    name = "official_061" if request.param == "0.6.1" else "official_1x"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]
