"""The one entry point for checks; CI (.ci/run) runs the same commands.

Sessions: tests, lint, typing, docs, bench, demo, compat (the supported dependency matrix),
kombu_suite (kombu's own transport integration suite on the embedded broker and Redis) and
celery_suite (Celery's own integration suite on the embedded broker and backend, and on
RabbitMQ + Redis).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from urllib.parse import quote

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


def _unpacked_sdist(session: nox.Session, name: str, version: str, tmp: Path) -> Path:
    """Download ``name``'s sdist at ``version`` into ``tmp`` and unpack it; its source tree."""
    sdist_dir = tmp / f"{name}-sdist"
    shutil.rmtree(sdist_dir, ignore_errors=True)
    options = ["--no-binary", ":all:", "--no-deps", "--dest", str(sdist_dir)]
    session.run("python", "-m", "pip", "download", *options, f"{name}=={version}")
    (archive,) = sdist_dir.glob(f"{name}-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(sdist_dir, filter="data")
    (tree,) = (path for path in sdist_dir.glob(f"{name}-*") if path.is_dir())
    return tree


def _kombu_common(session: nox.Session, version: str, tmp: Path) -> Path:
    """Download kombu's sdist at ``version``, unpack it, copy its t/integration/common.py."""
    source = _unpacked_sdist(session, "kombu", version, tmp) / "t" / "integration" / "common.py"
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


# -- Celery's own integration suite --------------------------------------------------------

CELERY_SUITE = ROOT / "suites" / "celery"
#: The modules of Celery's t/integration that ``celery_suite`` runs, in this order.
CELERY_SUITE_MODULES = ("test_tasks.py", "test_inspect.py", "test_backend.py", "test_canvas.py")
#: The baseline: RabbitMQ as broker, Redis (db 13, not the main suite's) as result backend.
CELERY_SUITE_AMQP_URL = "pyamqp://guest:guest@127.0.0.1:5672//"
CELERY_SUITE_REDIS_URL = "redis://127.0.0.1:6379/13"
#: The embedded run's database for the Redis helper of Celery's suite (some of its tests use
#: it whatever the backend), not the baseline's: the two runs go on at the same time.
CELERY_SUITE_EMBEDDED_REDIS_URL = "redis://127.0.0.1:6379/14"
#: Outcomes of the plugin's report, grouped into the summary's columns.
CELERY_SUITE_COLUMNS = {
    "passed": ("passed", "xpassed"),
    "failed": ("failed",),
    "skipped": ("skipped", "xfailed"),
    "errors": ("error",),
}

_PRINT_CELERY_VERSION = """
from importlib.metadata import version
print(version("celery"))
"""


def _celery_integration(session: nox.Session, version: str, tmp: Path) -> Path:
    """Download Celery's sdist at ``version``; copy its ``t/`` helpers and ``t/integration``.

    Returns the directory holding the copied ``t`` package (and not Celery's own source,
    which would shadow the installed ``celery`` on ``sys.path``).
    """
    source = _unpacked_sdist(session, "celery", version, tmp) / "t"
    target = tmp / "celery-integration"
    shutil.rmtree(target, ignore_errors=True)
    (target / "t").mkdir(parents=True)
    for helper in source.glob("*.py"):  # __init__.py, skip.py, canvas_helpers.py
        shutil.copyfile(helper, target / "t" / helper.name)
    shutil.copytree(source / "integration", target / "t" / "integration")
    return target


def _celery_tqsqlite_url(path: Path) -> str:
    """``tqsqlite:////abs/path``, as ``taskqueue_kit._sqlite.broker_url`` spells it."""
    return "tqsqlite:///" + quote(path.resolve().as_posix(), safe="/")


def _celery_report(path: Path) -> dict[str, dict[str, object]]:
    """The plugin's outcome of each test (nodeid -> entry); empty if the run wrote none."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text())["tests"]


def _celery_counts(tests: dict[str, dict[str, object]], module: str) -> dict[str, int]:
    counts = dict.fromkeys(CELERY_SUITE_COLUMNS, 0)
    for nodeid, entry in tests.items():
        if nodeid.split("::")[0].endswith(f"/{module}"):
            for column, outcomes in CELERY_SUITE_COLUMNS.items():
                counts[column] += entry["outcome"] in outcomes
    return counts


def _celery_failing(tests: dict[str, dict[str, object]]) -> set[str]:
    return {n for n, e in tests.items() if e["outcome"] in ("failed", "error")}


def _celery_side_by_side(version: str, runs: dict[str, dict[str, dict[str, object]]]) -> str:
    """Counts per module for each run in columns, then each run's failing tests.

    A failing test of the first run (the embedded one) that passed on the second is marked
    ``EMBEDDED-ONLY``; ``TIMEOUT`` marks a test stopped by the per-test timeout,
    ``WORKER-STUCK`` one after which the worker stayed busy until its active tasks were
    terminated, ``<outcome> on the other`` a test the other run skipped or xfailed.
    """
    (embedded_label, embedded), (baseline_label, baseline) = runs.items()
    width = 34
    head = "|".join(f" {label:<{width - 1}}" for label in runs)
    columns = " ".join(f"{c:>7}" for c in CELERY_SUITE_COLUMNS)
    lines = [
        f"Celery {version} integration suite (t/integration)",
        f"{'module':<16}|{head}".rstrip(),
        f"{'':<16}|" + "|".join(f" {columns:<{width - 1}}" for _ in runs).rstrip(),
    ]
    totals = {label: dict.fromkeys(CELERY_SUITE_COLUMNS, 0) for label in runs}
    for module in (*CELERY_SUITE_MODULES, "total"):
        cells = []
        for label, tests in runs.items():
            counts = totals[label] if module == "total" else _celery_counts(tests, module)
            if module != "total":
                for column, n in counts.items():
                    totals[label][column] += n
            cells.append(" ".join(f"{n:>7}" for n in counts.values()))
        lines.append(
            f"{module:<16}|" + "|".join(f" {cell:<{width - 1}}" for cell in cells).rstrip()
        )
    passed_on_baseline = {n for n, e in baseline.items() if e["outcome"] in ("passed", "xpassed")}
    for label, tests in runs.items():
        failing = sorted(_celery_failing(tests))
        lines.append(f"{label}: {len(failing)} failing")
        for nodeid in failing:
            entry = tests[nodeid]
            marks = [entry["outcome"].upper()]
            if tests is embedded and nodeid in passed_on_baseline:
                marks.append("EMBEDDED-ONLY")
            if entry["timeout"]:
                marks.append("TIMEOUT")
            if entry.get("teardown_timeout") is not None:
                marks.append(f"WORKER-STUCK (terminated {entry['teardown_timeout']})")
            elsewhere = (baseline if tests is embedded else embedded).get(nodeid, {}).get("outcome")
            if elsewhere not in (None, "passed", "xpassed", "failed", "error"):
                marks.append(f"{elsewhere} on the other")
            message = str(entry["message"]).strip().partition("\n")[0][:160]
            lines.append(f"  [{' '.join(marks)}] {nodeid}: {message}")
    for label, tests in runs.items():
        reasons = Counter(
            str(e["message"]).strip()[:100]
            for e in tests.values()
            if e["outcome"] in ("skipped", "xfailed")
        )
        lines.append(f"{label}: skipped or xfailed, by reason")
        lines.extend(f"  {n:>4} {reason}" for reason, n in reasons.most_common())
    only = sorted(_celery_failing(embedded) & passed_on_baseline)
    lines.append(f"embedded-only failures ({embedded_label} vs {baseline_label}): {len(only)}")
    return "\n".join(lines)


@nox.session(python="3.11")
def celery_suite(session: nox.Session) -> None:
    """Celery's integration suite on the embedded broker and backend, and on the baseline.

        ``test_tasks``, ``test_inspect``, ``test_backend`` and ``test_canvas`` of
        ``t/integration`` in the sdist of the Celery this session installs (fetched now, never
        kept in the repository), with Celery's conftest and tasks unchanged and
        suites/celery/celery_suite_plugin.py beside them. Two runs, at the same time (most of
    the suite waits on sleeping tasks; ``CELERY_SUITE_PARALLEL=0``: one after the other, with
    pytest's output on the terminal rather than in ``celery-suite-<run>.log`` of the session's
    tmp directory):

        * embedded: ``tqsqlite`` broker and result backend in a fresh directory;
        * baseline: RabbitMQ (``CELERY_SUITE_AMQP_URL``) and Redis (``CELERY_SUITE_REDIS_URL``,
          default db 13 of the local one; the run's keys are deleted afterwards).

        Prints both summaries side by side. Per-test timeout ``CELERY_SUITE_TIMEOUT`` (60 s),
        reruns of Celery's ``flaky`` tests ``CELERY_SUITE_RERUNS`` (1); posargs go to both
        pytest runs (``-k chord``, ``-x``). Failing tests are the report, not an error of the
        session: it fails only when a run cannot complete (pytest's exit status 2 and above).
    """
    session.install("-e", ".[redis,test]", "pytest-rerunfailures")
    output = session.run("python", "-c", _PRINT_CELERY_VERSION, silent=True)
    version = str(output).strip().splitlines()[-1]
    # test_backend.py imports Celery's Azure backend before it skips (Celery's integration
    # requirements install the extra too); without credentials its tests then skip.
    session.install(f"celery[azureblockblob]=={version}")
    tmp = Path(session.create_tmp())
    root = _celery_integration(session, version, tmp)
    modules = [str(root / "t" / "integration" / module) for module in CELERY_SUITE_MODULES]
    redis_url = os.environ.get("CELERY_SUITE_REDIS_URL", CELERY_SUITE_REDIS_URL)
    config = ["-c", str(CELERY_SUITE / "pytest.ini"), f"--rootdir={root}", "-v", "--durations=20"]
    embedded_home = tmp / "embedded-data"
    shutil.rmtree(embedded_home, ignore_errors=True)
    embedded_home.mkdir()
    embedded_redis_url = os.environ.get(
        "CELERY_SUITE_EMBEDDED_REDIS_URL", CELERY_SUITE_EMBEDDED_REDIS_URL
    )
    runs = {
        "embedded (tqsqlite)": {
            "TEST_BROKER": _celery_tqsqlite_url(embedded_home / "broker.sqlite3"),
            "TEST_BACKEND": _celery_tqsqlite_url(embedded_home / "results.sqlite3"),
            "CELERY_SUITE_REDIS_URL": embedded_redis_url,
        },
        "baseline (RabbitMQ + Redis)": {
            "TEST_BROKER": os.environ.get("CELERY_SUITE_AMQP_URL", CELERY_SUITE_AMQP_URL),
            "TEST_BACKEND": redis_url,
            "CELERY_SUITE_REDIS_URL": redis_url,
        },
    }
    parallel = os.environ.get("CELERY_SUITE_PARALLEL", "1") != "0"
    processes = {}
    for label, urls in runs.items():
        name = label.split()[0]
        report = tmp / f"celery-suite-{name}.json"
        report.unlink(missing_ok=True)
        env = {
            **urls,
            "CELERY_SUITE_ROOT": str(root),
            "CELERY_SUITE_REPORT": str(report),
            "PYTHONPATH": str(CELERY_SUITE),
        }
        outputs = [f"--basetemp={tmp / f'pytest-{name}'}"]
        run = ["python", "-m", "pytest", *config, *outputs, *modules, *session.posargs]
        session.log(f"{label}: broker {urls['TEST_BROKER']}, backend {urls['TEST_BACKEND']}")
        if not parallel:
            session.run(*run, env=env, success_codes=[0, 1])
            continue
        log = tmp / f"celery-suite-{name}.log"
        session.log(f"{label}: running in the background, output in {log}")
        with log.open("w") as out:
            processes[label] = subprocess.Popen(
                [str(Path(str(session.bin)) / "python"), *run[1:]],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    broken = [label for label, process in processes.items() if process.wait() not in (0, 1)]
    if broken:
        session.error(f"{', '.join(broken)}: pytest did not complete; see the log")
    reports = {
        label: _celery_report(tmp / f"celery-suite-{label.split()[0]}.json") for label in runs
    }
    summary = _celery_side_by_side(version, reports)
    (tmp / "celery-suite-summary.txt").write_text(summary + "\n")
    session.log(summary)
