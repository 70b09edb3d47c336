"""The one entry point for checks; CI (.ci/run) runs the same commands.

Sessions: tests, lint, typing, docs, bench, demo, and compat (the supported dependency matrix).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_existing_virtualenvs = True

DEV = ".[dev]"
ROOT = Path(__file__).parent


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


# -- the supported dependency matrix ---------------------------------------------------

# API.md, "Supported and tested": every Celery minor from 5.5 on (with the kombu each
# brings), redis-py 5 to the newest, and each other dependency at the floor pyproject.toml
# declares and at the newest. A combination is the pip constraints laid over
# pyproject.toml's own requirements; "lowest" pins every declared floor, read from
# pyproject.toml (_floors), so that a floor is written there and nowhere else.
COMPAT_EXTRAS = ("fastapi", "flask", "redis")
COMBINATIONS: dict[str, list[str] | None] = {
    "lowest": None,  # every floor pyproject.toml declares
    "celery56": ["celery~=5.6.0", "kombu~=5.6.0"],  # the newest 5.6 patch with a 5.6 kombu
    "newest": [],
}


def _requirements() -> list[Requirement]:
    """The runtime requirements and those of ``COMPAT_EXTRAS``, as pyproject.toml says them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lines = [*project["dependencies"], *(line for name in COMPAT_EXTRAS for line in extras[name])]
    return [Requirement(line) for line in lines]


def _floors() -> list[str]:
    """``name==floor`` for each of ``_requirements()``; each must declare one floor."""
    pins = []
    for requirement in _requirements():
        floors = [s.version for s in requirement.specifier if s.operator in (">=", "~=", "==")]
        if len(floors) != 1:
            raise ValueError(f"pyproject.toml: {requirement} must declare one floor (>=)")
        pins.append(f"{requirement.name}=={floors[0]}")
    return pins


def _compat_modules() -> list[str]:
    """The test modules that hold ``compat`` tests.

    Given to pytest with ``-m compat``: collecting the whole suite would import modules
    whose dependencies (Playwright, the examples' packages) the session does not install.
    """
    return sorted(
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("test_*.py")
        if "pytest.mark.compat" in path.read_text()
    )


_PRINT_VERSIONS = """
import sys
from importlib.metadata import version
print("versions:", ", ".join(f"{name} {version(name)}" for name in sys.argv[1:]))
"""


@nox.session(python="3.11", reuse_venv=False)
@nox.parametrize("combination", list(COMBINATIONS), ids=list(COMBINATIONS))
def compat(session: nox.Session, combination: str) -> None:
    """The behaviour tests (-m compat) on one supported set of versions, on every broker.

    A fresh virtualenv each run ("newest" is today's newest), the project installed as a
    user would (not editable) with the extras under test and ``test``, nothing else.
    """
    pins = COMBINATIONS[combination]
    constraints = Path(session.create_tmp()) / "constraints.txt"
    constraints.write_text("\n".join(_floors() if pins is None else pins) + "\n")
    session.install("--constraint", str(constraints), f".[{','.join(COMPAT_EXTRAS)},test]")
    session.run("python", "-c", _PRINT_VERSIONS, *(r.name for r in _requirements()))
    session.run("python", "-m", "pytest", "-m", "compat", *_compat_modules(), *session.posargs)
