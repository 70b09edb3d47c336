"""pytest plugin for Celery's own integration suite, run by ``nox -s celery_suite``.

Not part of the main test suite (pyproject.toml's ``testpaths`` is ``tests``). The nox
session downloads the sdist of the installed Celery, copies its ``t/`` test package (never
kept in this repository) and runs four of its ``t/integration`` modules twice, with this
plugin loaded (``-p celery_suite_plugin``, from suites/celery/pytest.ini). Celery's tests,
conftest and tasks run unchanged; the plugin only

* registers the kit's ``tqsqlite`` transport with kombu (the result backend needs no call:
  Celery finds it through the package's ``celery.result_backends`` entry point);
* points the suite's Redis helper (``get_redis_connection`` in ``t/integration/tasks.py``,
  which tasks such as ``redis_echo`` and some tests write to, on any backend) at the
  database of ``CELERY_SUITE_REDIS_URL`` (default db 13) instead of db 0, and deletes the
  keys the run created there when it ends (never a flush). Runs going on at the same time
  need a database each: the suite's keys (``redis-echo``, ``redis-group-ids``) are fixed;
* caps each test at ``CELERY_SUITE_TIMEOUT`` seconds (default 60; Celery's own ``flaky``
  marker allows 300) and the reruns of its ``flaky`` marker at ``CELERY_SUITE_RERUNS``
  (default 1; Celery's marker asks for 5), so that a hang or a steady failure costs minutes,
  not half an hour;
* caps each teardown at as many seconds again: Celery's ``manager`` fixture waits, with no
  limit, until the suite's one worker process is idle, so a task that never ends (a chord
  joining a result that is queued behind it) would hang every later test. When that limit
  is hit the test counts as an error (or stays failed) marked as a timeout, and the tasks
  still active on the worker are terminated so that the next test finds it idle;
* writes the outcome of every test (and of every module that could not be collected) as
  JSON to ``CELERY_SUITE_REPORT``, for the session's side-by-side summary.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from taskqueue_kit import _sqlite

ROOT_ENV = "CELERY_SUITE_ROOT"  # the directory holding the copied ``t`` package
REPORT_ENV = "CELERY_SUITE_REPORT"
REDIS_URL = os.environ.get("CELERY_SUITE_REDIS_URL", "redis://127.0.0.1:6379/13")
TIMEOUT = float(os.environ.get("CELERY_SUITE_TIMEOUT", "60"))
RERUNS = int(os.environ.get("CELERY_SUITE_RERUNS", "1"))

_sqlite.register()

#: nodeid -> what became of the test: outcome, message, traceback tail, timeout, reruns.
_results: dict[str, dict[str, Any]] = {}
_redis_keys_before: set[bytes] | None = None
#: nodeid -> the tasks terminated after its teardown hit the limit.
_teardown_timeouts: dict[str, list[str]] = {}


class TeardownTimeout(Exception):
    """A teardown outlasted the limit. An ``Exception``, so that Celery's ``manager``
    fixture, which logs any ``Exception`` of ``wait_until_idle``, goes on with the rest."""


def _redis_client() -> Any:
    import redis

    return redis.Redis.from_url(REDIS_URL, socket_timeout=None)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Patch the suite's Redis helper before its conftest imports it by name."""
    root = os.environ.get(ROOT_ENV)
    if not root or not (Path(root) / "t" / "integration" / "tasks.py").is_file():
        raise pytest.UsageError(
            f"{ROOT_ENV} does not name a copy of Celery's t/ package; "
            "run this suite with `nox -s celery_suite`"
        )
    if root not in sys.path:
        sys.path.insert(0, root)
    from t.integration import tasks  # Celery's own module, from the copy

    def get_redis_connection() -> Any:
        """Celery's helper, on ``CELERY_SUITE_REDIS_URL`` rather than db 0."""
        return _redis_client()

    tasks.get_redis_connection = get_redis_connection


def pytest_configure(config: pytest.Config) -> None:
    global _redis_keys_before
    try:
        _redis_keys_before = set(_redis_client().scan_iter(count=1000))
    except Exception:  # Redis down: the Redis-only tests fail or skip on their own
        _redis_keys_before = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Cap every test's timeout and the reruns of Celery's ``flaky`` marker."""
    for item in items:
        own = item.get_closest_marker("timeout")
        asked = None if own is None else own.kwargs.get("timeout", (own.args or [None])[0])
        timeout = TIMEOUT if asked is None else min(float(asked), TIMEOUT)
        item.add_marker(pytest.mark.timeout(timeout=timeout), append=False)
        flaky = item.get_closest_marker("flaky")
        if flaky is not None:
            kwargs = dict(flaky.kwargs)
            kwargs["reruns"] = min(int(kwargs.get("reruns", 1)), RERUNS)
            item.add_marker(pytest.mark.flaky(**kwargs), append=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Run the teardown under its own limit (pytest-timeout's timer covers the call)."""
    fired = False

    def alarm(signum: int, frame: object) -> None:
        nonlocal fired
        fired = True
        raise TeardownTimeout(f"Timeout (>{TIMEOUT:g}s) in teardown: the worker stayed busy")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if fired:
            _teardown_timeouts[item.nodeid] = _terminate_active(item)


def _terminate_active(item: pytest.Item) -> list[str]:
    """Purge the queue and SIGKILL the worker's active tasks until it is idle (≤ ~20 s)."""
    from celery import current_app

    app = getattr(item, "funcargs", {}).get("app") or current_app
    terminated: list[str] = []
    try:
        for _ in range(5):
            app.control.purge()
            replies = app.control.inspect(timeout=2).active() or {}
            ids = [task["id"] for tasks in replies.values() for task in tasks or ()]
            if not ids:
                break
            app.control.revoke(ids, terminate=True, signal="SIGKILL")
            terminated.extend(i for i in ids if i not in terminated)
            time.sleep(2)
    except Exception as exc:
        print(f"celery_suite: could not terminate the active tasks: {exc!r}", file=sys.stderr)
    return terminated


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        return str(report.longrepr[-1])
    return str(report.longrepr or "").strip().splitlines()[-1:][0] if report.longrepr else ""


#: pytest 9's own subtests (Celery's tests use the ``subtests`` fixture); none before it.
_SUBTEST_REPORT: type | tuple[type, ...] = getattr(pytest, "SubtestReport", ())


def _note_failure(entry: dict[str, Any], report: pytest.TestReport) -> None:
    text = report.longreprtext
    entry["message"] = _message(report)
    entry["traceback"] = text[-8000:]
    entry["timeout"] = entry["timeout"] or "Timeout (>" in text
    entry["when"] = report.when


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.setdefault(
        report.nodeid,
        {
            "outcome": "passed",
            "message": "",
            "traceback": "",
            "timeout": False,
            "reruns": 0,
            "subtests_failed": 0,
        },
    )
    if report.outcome == "rerun":  # pytest-rerunfailures: an attempt that will be retried
        entry.update(reruns=entry["reruns"] + 1, subtests_failed=0, timeout=False)
        return
    if isinstance(report, _SUBTEST_REPORT):
        if report.failed:
            if not entry["subtests_failed"]:
                _note_failure(entry, report)  # the first failing subtest tells the cause
            entry["subtests_failed"] += 1
        return
    if report.when == "setup" and report.outcome != "passed":
        # A skip (or an xfail decided in setup), or an error of a fixture.
        entry["outcome"] = "skipped" if report.skipped else "error"
    elif report.when == "call":
        if hasattr(report, "wasxfail"):
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
        else:
            entry["outcome"] = report.outcome
        if entry["subtests_failed"]:  # pytest fails a test whose subtests failed
            entry["outcome"] = "failed"
            entry["message"] = f"{entry['subtests_failed']} failed subtests, the first: " + str(
                entry["message"]
            )
            return
    elif report.when == "teardown":
        if report.nodeid in _teardown_timeouts:
            terminated = _teardown_timeouts.pop(report.nodeid)
            entry["timeout"] = True
            entry["teardown_timeout"] = len(terminated)
            if entry["outcome"] == "passed":
                entry["outcome"] = "error"
                entry["when"] = "teardown"
                entry["message"] = (
                    f"Timeout (>{TIMEOUT:g}s) in teardown: the worker stayed busy; "
                    f"terminated {len(terminated)} active task(s)"
                )
            return
        if report.failed and entry["outcome"] == "passed":
            entry["outcome"] = "error"
    if report.failed:
        _note_failure(entry, report)
    elif report.skipped and not entry["message"]:
        entry["message"] = _message(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.outcome in ("skipped", "failed") and report.nodeid.endswith(".py"):
        _results[report.nodeid] = {
            "outcome": "skipped" if report.skipped else "error",
            "message": _message(report),
            "traceback": report.longreprtext[-8000:],
            "timeout": False,
            "reruns": 0,
            "when": "collect",
        }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    location = os.environ.get(REPORT_ENV)
    if location:
        Path(location).write_text(
            json.dumps({"exitstatus": int(exitstatus), "tests": _results}, indent=1)
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Delete the Redis keys this run created (results of the baseline, helper lists)."""
    if _redis_keys_before is None:
        return
    try:
        client = _redis_client()
        created = set(client.scan_iter(count=1000)) - _redis_keys_before
        if created:
            client.delete(*created)
        client.close()
    except Exception as exc:  # never fail the run over cleanup
        print(f"celery_suite: could not delete the run's Redis keys: {exc}", file=sys.stderr)
