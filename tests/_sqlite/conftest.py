"""Fixtures for the embedded broker tests: data directories, apps, worker subprocesses."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import taskqueue_kit
from taskqueue_kit import _sqlite

from .workerapp import make_app

TESTS_DIR = Path(__file__).resolve().parent.parent
SRC_DIR = Path(taskqueue_kit.__file__).resolve().parent.parent


def child_env(home: Path | None = None) -> dict[str, str]:
    """Environment for a child process that imports ``_sqlite.*`` test modules and the kit."""
    path = os.pathsep.join(
        p for p in (str(TESTS_DIR), str(SRC_DIR), os.environ.get("PYTHONPATH", "")) if p
    )
    env = dict(os.environ, PYTHONPATH=path)
    if home is not None:
        env["TQ_TEST_HOME"] = str(home)
    return env


def sql(db: Path, statement: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one statement on a database file with a private connection, and close it."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def run_helper(*args: str, home: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``python -m _sqlite.helpers <args>``."""
    return subprocess.Popen([sys.executable, "-m", "_sqlite.helpers", *args], env=child_env(home))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh data directory (not yet created: the kit must create it)."""
    return tmp_path / "taskqueue"


@pytest.fixture
def broker(home: Path) -> str:
    """Broker URL in the fresh data directory."""
    _sqlite.register()
    return _sqlite.broker_url(home / "broker.sqlite3")


@pytest.fixture
def app(home: Path) -> Iterator[Celery]:
    """A plain Celery app on the embedded broker and backend."""
    celery_app = make_app(home)
    yield celery_app
    celery_app.close()


@pytest.fixture
def start_worker_process(home: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``celery worker`` subprocesses on ``home``; stop whatever is left at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        name: str, pool: str = "solo", module: str = "_sqlite.workerapp", **env: Any
    ) -> subprocess.Popen[bytes]:
        home.mkdir(parents=True, exist_ok=True)
        log = open(home / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", module, "worker",
             "-P", pool, "-c", "1", "-n", f"{name}@%h", "-l", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            env=dict(child_env(home), **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
