"""The one entry point for checks; CI (.ci/run) runs the same commands.

Sessions: tests, lint, typing, docs, bench, demo.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_existing_virtualenvs = True

DEV = ".[dev]"


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite, against the embedded broker, RabbitMQ and Redis."""
    session.install("-e", DEV)
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("-e", DEV)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typing(session: nox.Session) -> None:
    """mypy --strict on src/ and tests/typing/."""
    session.install("-e", DEV)
    session.run("mypy")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Build the documentation site, failing on any warning."""
    session.install("-e", DEV)
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks against plain Celery and Huey; writes bench/results.md and results.json."""
    session.install("-e", ".[dev,bench]")
    session.run("python", "-m", "bench", *session.posargs)


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The sentiment demo on the embedded default."""
    session.install("-e", ".[examples]")
    session.run("taskqueue-kit", "demo", *session.posargs)
