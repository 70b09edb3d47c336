"""The one entry point for checks; CI (.ci/run) runs the same commands.

Sessions: tests, lint, typing, docs, bench, demo, compat (the supported dependency matrix),
and kombu_suite (kombu's own transport integration suite on the embedded broker and Redis).
"""

from __future__ import annotations

import shutil
import tarfile
import tomllib
import xml.etree.ElementTree as ET
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


# -- kombu's own transport integration suite -------------------------------------------

KOMBU_SUITE = ROOT / "suites" / "kombu"
#: The pytest runs of ``kombu_suite``: a label, and the -k expression selecting its classes.
KOMBU_SUITE_RUNS = (("embedded (tqsqlite)", "Embedded"), ("redis (baseline)", "Redis"))

_PRINT_KOMBU_VERSION = """
from importlib.metadata import version
print(version("kombu"))
"""


def _kombu_common(session: nox.Session, version: str, tmp: Path) -> Path:
    """Download kombu's sdist at ``version``, unpack it, copy its t/integration/common.py."""
    sdist_dir = tmp / "kombu-sdist"
    shutil.rmtree(sdist_dir, ignore_errors=True)
    options = ["--no-binary", ":all:", "--no-deps", "--dest", str(sdist_dir)]
    session.run("python", "-m", "pip", "download", *options, f"kombu=={version}")
    (archive,) = sdist_dir.glob("kombu-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(sdist_dir, filter="data")
    (source,) = sdist_dir.glob("kombu-*/t/integration/common.py")
    target = tmp / "kombu-integration" / "common.py"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return target


#: Embedded-broker tests of kombu's suite known to fail, and why (also on the docs page
#: "Internals and compatibility"). Any other embedded failure fails the session.
KOMBU_SUITE_KNOWN_FAILURES = {
    "TestEmbeddedExchangeTypes::test_fanout": "fanout reaches the consumers that exist when "
    "a message is sent (as on Redis); the test publishes before it consumes",
    "TestEmbeddedPriority::test_publish_consume": "the mixin expects one drain to deliver "
    "every message; kombu overrides it for its own virtual transport (Redis fails alike)",
    "TestEmbeddedPriority::test_publish_requeue_consume": "as test_publish_consume",
    "TestEmbeddedFailover::test_failover_switches_to_alternate_url": "the test tells URLs "
    "apart by port, and file URLs have none",
}


def _failing(path: Path) -> set[str]:
    """``Class::test`` (without parameters) of each failed or erroring test in a JUnit file."""
    return {
        f"{case.get('classname', '').rsplit('.', 1)[-1]}::{(case.get('name') or '').split('[')[0]}"
        for case in ET.parse(path).getroot().iter("testcase")
        if any(child.tag in {"failure", "error"} for child in case)
    }


def _junit_summary(path: Path) -> str:
    """``N passed, N failed, N errors, N skipped``, then each failing test and its message."""
    outcomes = {"failure": "failed", "error": "errors", "skipped": "skipped"}
    counts = dict.fromkeys(("passed", "failed", "errors", "skipped"), 0)
    failing = []
    for case in ET.parse(path).getroot().iter("testcase"):
        problem = next((c for c in case if c.tag in outcomes), None)
        outcome = "passed" if problem is None else outcomes[problem.tag]
        counts[outcome] += 1
        if problem is not None and outcome != "skipped":
            test = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            message = (problem.get("message") or "").strip().partition("\n")[0][:120]
            failing.append(f"  {problem.tag.upper()} {test}: {message}")
    return "\n".join([", ".join(f"{n} {k}" for k, n in counts.items()), *failing])


@nox.session(python="3.11")
def kombu_suite(session: nox.Session) -> None:
    """kombu's transport integration suite on the embedded broker, and on Redis as baseline.

    The mixins of ``t/integration/common.py`` in the sdist of the kombu this session
    installs (fetched now, never kept in the repository), subclassed by
    suites/kombu/test_transport_suite.py. Redis is ``KOMBU_SUITE_REDIS_URL`` (default db
    12 of the local one). Failing tests are the report, not an error of the session: it
    fails when a run cannot complete (pytest's exit status 2 and above) or when an
    embedded-broker test fails that is not in ``KOMBU_SUITE_KNOWN_FAILURES``.
    """
    session.install("-e", DEV)
    output = session.run("python", "-c", _PRINT_KOMBU_VERSION, silent=True)
    version = str(output).strip().splitlines()[-1]
    tmp = Path(session.create_tmp())
    common = _kombu_common(session, version, tmp)
    summaries = []
    config = ["-c", str(KOMBU_SUITE / "pytest.ini"), "-p", "no:cacheprovider"]
    env = {"KOMBU_INTEGRATION_COMMON": str(common)}
    for label, selection in KOMBU_SUITE_RUNS:
        junit = tmp / f"kombu-suite-{selection.lower()}.xml"
        outputs = [f"--junitxml={junit}", f"--basetemp={tmp / f'pytest-{selection.lower()}'}"]
        run = [*config, *outputs, "-k", selection, str(KOMBU_SUITE / "test_transport_suite.py")]
        session.run("python", "-m", "pytest", *run, *session.posargs, env=env, success_codes=[0, 1])
        summaries.append(f"{label}: {_junit_summary(junit)}")
    session.log("\n".join([f"kombu {version} transport integration suite", *summaries]))
    unexpected = _failing(tmp / "kombu-suite-embedded.xml") - set(KOMBU_SUITE_KNOWN_FAILURES)
    if unexpected:
        session.error(f"embedded broker: new failures in kombu's suite: {sorted(unexpected)}")
