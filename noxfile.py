"""Developer tasks. `nox` runs the default set (what CI runs); `nox -s NAME` runs one."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "docs", "tests"]
nox.options.error_on_missing_interpreters = False

PACKAGES = ["render_core", "render_transports", "render_sdk", "render_devserver", "render"]


# The dev server forks attempts from a warm template when it can; these suites run a
# second time with cold processes only, so that both modes stay tested in CI (about
# three more minutes). `nox -s tests_cold` runs the whole suite that way.
COLD_SUITES = ["tests/devserver", "tests/compat"]
COLD_ENV = {"RENDER_DEV_NO_FORK": "1"}


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with branch coverage of render_core (fails under 95%); then the
    dev-server and compatibility suites again with cold processes (RENDER_DEV_NO_FORK)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)
    if not session.posargs:
        session.run("python", "-m", "pytest", "--no-cov", *COLD_SUITES, env=COLD_ENV)


@nox.session
def tests_cold(session: nox.Session) -> None:
    """The whole suite (or the paths given) with every attempt a cold process."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "--no-cov", *(session.posargs or ["tests"]), env=COLD_ENV)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the packages."""
    session.install("-e", ".[test]")
    session.run("mypy", "--strict", *PACKAGES)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the user documentation with mkdocs, strictly (warnings are errors)."""
    session.install("-e", ".", "mkdocs-material", "mkdocstrings[python]")
    session.run("mkdocs", "build", "--strict", "--site-dir", "site")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the official SDK (own venv); writes bench/RESULTS.md (not a default)."""
    session.install("-e", ".")
    session.run("python", "bench/run.py", *session.posargs)
