"""A ``celery worker`` for the demo, in its own process group, stopped with everything it forked.

The worker is the command a user would run by hand. It gets its settings through
``TASKQUEUE_*`` variables, so it reads exactly what the demo process uses. It runs in a
session of its own: a Ctrl-C in the terminal reaches the demo alone, which then stops the
worker warmly (SIGTERM), and kills the whole group if it lingers. On Linux the worker also
gets SIGTERM if the demo dies without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO, Any

from celery import Celery

from taskqueue_kit import TaskQueueSettings
from taskqueue_kit.demo.tasks import QUEUE

__all__ = ["WorkerError", "WorkerProcess", "worker_environment"]

APP_PATH = "taskqueue_kit.demo.celery_app"
_PR_SET_PDEATHSIG = 1
# Variables older code reads as fallbacks; the worker must not see the user's.
_SEED_NAMES = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_CONFIG")


class WorkerError(RuntimeError):
    """The worker did not start, died, or stopped answering."""


def _env_value(value: Any) -> str:
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    if isinstance(value, tuple | list | dict):
        return json.dumps(value)
    return str(value)


def worker_environment(
    settings: TaskQueueSettings, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment that makes a worker build the same settings as ``settings``.

    Every field is written as a ``TASKQUEUE_*`` variable (an empty broker or backend URL
    means the embedded one), so neither a ``.env`` file nor the seed's ``CELERY_*``
    variables can make the worker disagree with the process that sends the tasks.
    """
    env = dict(os.environ if base is None else base)
    for name in _SEED_NAMES:
        env.pop(name, None)
    values = settings.model_dump()
    values["home"] = str(settings.home.resolve())
    for name, value in values.items():
        key = f"TASKQUEUE_{name.upper()}"
        if value is None and name in {"broker_url", "result_backend"}:
            env[key] = ""
        elif value is None:
            env.pop(key, None)
        else:
            env[key] = _env_value(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


# Loaded before any fork: the child, between fork and exec, only calls it.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerProcess:
    """One ``celery -A taskqueue_kit.demo.celery_app worker`` process and its pool.

    Args:
        settings: The settings the worker must use.
        concurrency: Pool processes.
        loglevel: Celery log level.
        output: Where the worker's output goes; a file, or ``None`` for the terminal.
        events: Send task events (``-E``), for Flower.
    """

    def __init__(
        self,
        settings: TaskQueueSettings,
        *,
        concurrency: int,
        loglevel: str = "WARNING",
        output: Path | None = None,
        events: bool = False,
    ) -> None:
        self.hostname = f"demo-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.concurrency = concurrency
        self.output = output
        self.command: list[str] = [
            sys.executable, "-m", "celery", "-A", APP_PATH, "worker",
            "--queues", QUEUE, "--pool", "prefork", "--concurrency", str(concurrency),
            "--loglevel", loglevel, "--hostname", self.hostname,
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        if events:
            self.command.append("--task-events")
        self._env = worker_environment(settings)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def display_command(self) -> str:
        """The command as a person would type it."""
        return f"celery -A {APP_PATH} worker -Q {QUEUE} --concurrency {self.concurrency}"

    @property
    def pid(self) -> int | None:
        """The worker's main process id, once started."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the worker process; :meth:`wait_ready` tells when it takes tasks."""
        sink: IO[bytes] | None = None
        if self.output is not None:
            sink = self.output.open("wb")
        try:
            self._process = subprocess.Popen(
                self.command,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT if sink is not None else None,
                start_new_session=True,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        finally:
            if sink is not None:
                sink.close()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the worker's output, when it goes to a file."""
        if self.output is None or not self.output.exists():
            return ""
        text = self.output.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise :class:`WorkerError` if the worker has exited."""
        if self._process is None:
            raise WorkerError("the worker was never started")
        code = self._process.poll()
        if code is not None:
            tail = self.log_tail()
            raise WorkerError(
                f"the worker exited with status {code}" + (f":\n{tail}" if tail else "")
            )

    def wait_ready(self, app: Celery, timeout: float = 60.0) -> float:
        """Wait until the worker answers a ping; return the seconds it took.

        Raises:
            WorkerError: it exited, or did not answer within ``timeout`` seconds.
        """
        started = time.monotonic()
        while True:
            self.check_alive()
            if app.control.ping(destination=[self.hostname], timeout=0.5, limit=1):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                tail = self.log_tail()
                raise WorkerError(
                    f"the worker did not answer within {timeout:.0f} s"
                    + (f":\n{tail}" if tail else "")
                )

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker warmly (SIGTERM), then kill its whole process group if needed.

        Idempotent. Running tasks get ``timeout`` seconds to finish.
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            # The main process alone: it stops its pool itself, after the running tasks.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        # Pool processes end with their parent; anything left in the group is killed.
        _signal_group(process.pid, signal.SIGKILL)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
