"""A ``celery worker`` for the demo, in its own process group, stopped with everything it forked.

The worker is the command a user would run by hand. It gets its settings through
``TASKQUEUE_*`` variables, so it reads exactly what the demo process uses. Its output goes
to the terminal, to a file, or through the demo (``relay``), which holds it back until the
demo has said what it started, then prints it as it comes. It runs in a
session of its own: a Ctrl-C in the terminal reaches the demo alone, which then stops the
worker warmly (SIGTERM), and kills the whole group if it lingers. On Linux the worker also
gets SIGTERM if the demo dies without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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
# The CELERY_* fallbacks the settings read; the worker must not see the user's.
_CELERY_FALLBACKS = ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_CONFIG")
# A Celery log line below WARNING: start-up chatter the demo's own summary replaces.
_CHATTER = re.compile(r"^\[[^\]]*: (?:DEBUG|INFO)/")


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
    means the embedded one), so neither a ``.env`` file nor ``CELERY_*`` variables can
    make the worker disagree with the process that sends the tasks.
    """
    env = dict(os.environ if base is None else base)
    for name in _CELERY_FALLBACKS:
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


class _Relay:
    """Reads the worker's output from a pipe: held back until :meth:`show`, then printed."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._held: collections.deque[str] = collections.deque(maxlen=200)
        self._shown = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._pump, name="demo-worker-output", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with self._stream:
            for raw in self._stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                with self._lock:
                    if self._shown:
                        _print(line)
                    else:
                        self._held.append(line)

    def show(self) -> None:
        """Print what comes from now on, after what was held that is not start-up chatter."""
        with self._lock:
            for line in self._held:
                if not _CHATTER.match(line):
                    _print(line)
            self._held.clear()
            self._shown = True

    def tail(self, lines: int) -> str:
        """The end of what is held back (nothing once shown: it is on the terminal)."""
        with self._lock:
            return "\n".join(list(self._held)[-lines:])

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the end of the output (every writer gone); then stop printing it."""
        self._thread.join(timeout)


def _print(line: str) -> None:
    with contextlib.suppress(OSError, ValueError):  # a closed or broken stdout
        print(line, flush=True)


class WorkerProcess:
    """One ``celery -A taskqueue_kit.demo.celery_app worker`` process and its pool.

    Args:
        settings: The settings the worker must use.
        concurrency: Pool processes.
        loglevel: Celery log level.
        output: Where the worker's output goes; a file, or ``None`` for the terminal.
        events: Send task events (``-E``), for Flower.
        relay: Start without Celery's banner and pass the output through this process,
            held back until :meth:`show_output` (instead of ``output``).
    """

    def __init__(
        self,
        settings: TaskQueueSettings,
        *,
        concurrency: int,
        loglevel: str = "WARNING",
        output: Path | None = None,
        events: bool = False,
        relay: bool = False,
    ) -> None:
        if relay and output is not None:
            raise ValueError("a relayed worker's output goes through this process, not a file")
        self.hostname = f"demo-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.concurrency = concurrency
        self.output = output
        self.relay = relay
        quiet = ["--quiet"] if relay else []  # no banner: the demo says what it started
        self.command: list[str] = [
            sys.executable, "-m", "celery", *quiet, "-A", APP_PATH, "worker",
            "--queues", QUEUE, "--pool", "prefork", "--concurrency", str(concurrency),
            "--loglevel", loglevel, "--hostname", self.hostname,
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        if events:
            self.command.append("--task-events")
        self._env = worker_environment(settings)
        # The worker's processes keep their temporary files in a directory of the demo's
        # own, removed when the worker stops: a pool process killed at the end cannot
        # leave its files behind.
        self._tmpdir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._relay: _Relay | None = None

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
        sink: IO[bytes] | int | None = subprocess.PIPE if self.relay else None
        if self.output is not None:
            sink = self.output.open("wb")
        self._tmpdir = tempfile.mkdtemp(prefix="taskqueue-demo-worker-")
        try:
            self._process = subprocess.Popen(
                self.command,
                env=dict(self._env, TMPDIR=self._tmpdir),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT if sink is not None else None,
                start_new_session=True,
                preexec_fn=_die_with_parent if _LIBC is not None else None,
            )
        finally:
            if sink is not None and not isinstance(sink, int):
                sink.close()
        if self._process.stdout is not None:
            self._relay = _Relay(self._process.stdout)

    def show_output(self) -> None:
        """Print a relayed worker's output from now on; of what came before, only warnings.

        Celery's start-up lines below ``WARNING`` are dropped: by then the demo has said
        where the worker runs. Nothing to do for a worker whose output is not relayed.
        """
        if self._relay is not None:
            self._relay.show()

    def log_tail(self, lines: int = 30) -> str:
        """The end of the worker's output, when it goes to a file or is held back."""
        if self._relay is not None:
            return self._relay.tail(lines)
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
        # Pool processes end with their parent and clean up after themselves (their
        # temporary files); give them a moment, then kill anything left in the group.
        deadline = time.monotonic() + 5.0
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(process.pid, signal.SIGKILL)
        if self._relay is not None:
            self._relay.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _group_alive(group: int) -> bool:
    """Whether any process of the process group still runs."""
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)
