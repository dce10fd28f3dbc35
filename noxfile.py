"""Developer tasks. `nox` runs the default set (what CI runs); `nox -s NAME` runs one."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "docs", "tests"]
nox.options.error_on_missing_interpreters = False

PACKAGES = ["render_core", "render_transports", "render_sdk", "render_devserver", "render"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, with branch coverage of render_core (fails under 95%)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


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
