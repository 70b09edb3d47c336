"""Worker and server subprocesses: started, watched for peak RSS, stopped, logs kept on failure.

Celery workers run ``--pool=prefork --concurrency=2`` at log level WARNING (a log line per
task would be measured too) with gossip, mingle and heartbeat off, the same for the kit and
plain Celery. Huey's consumer runs two worker *processes* (``-k process``), quiet.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._measure import RssSampler

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 2


def celery_worker_command(app_path: str, queues: Sequence[str]) -> list[str]:
    """``celery worker`` with the pool, concurrency and quiet options every variant shares."""
    return [
        sys.executable, "-m", "celery", "-A", app_path, "worker",
        "--pool=prefork", f"--concurrency={CONCURRENCY}", "--loglevel=WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        f"--queues={','.join(queues)}", f"--hostname=bench-{uuid.uuid4().hex[:8]}@%h",
    ]  # fmt: skip


def huey_consumer_command(huey_path: str) -> list[str]:
    """``huey_consumer`` with two worker processes, quiet."""
    return [
        sys.executable, "-m", "huey.bin.huey_consumer", huey_path,
        f"--workers={CONCURRENCY}", "--worker-type=process", "--quiet",
    ]  # fmt: skip


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a subprocess: ours, ``bench`` importable, plus ``extra``."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


@dataclass
class Running:
    """A started subprocess, with its RSS sampler and log file."""

    process: subprocess.Popen[bytes]
    sampler: RssSampler
    log: Path
    peak_rss_mib: float = 0.0

    def check_alive(self) -> None:
        """Raise with the tail of the log if the process has exited."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.process.args!r} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the process's output."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running(
    command: Sequence[str],
    env: dict[str, str],
    *,
    stop_signal: int = signal.SIGTERM,
    cwd: Path = ROOT,
) -> Iterator[Running]:
    """Run ``command`` while the block runs, sampling its process tree's RSS.

    On exit the sampler stops first (the peak is of the working process, not its
    shutdown), then the process gets ``stop_signal``, and SIGKILL after 30 s.
    """
    handle, name = tempfile.mkstemp(prefix="bench-", suffix=".log")
    log = Path(name)
    with os.fdopen(handle, "wb") as sink:
        process = subprocess.Popen(
            list(command),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=child_env(env),
            cwd=cwd,
            start_new_session=True,
        )
    run = Running(process, RssSampler(process.pid), log)
    failed = True
    try:
        yield run
        failed = False
    finally:
        run.peak_rss_mib = run.sampler.stop()
        _stop(process, stop_signal)
        if failed:
            sys.stderr.write(f"--- output of {command[2:5]} ---\n{run.log_tail()}\n")
        log.unlink(missing_ok=True)


def _stop(process: subprocess.Popen[bytes], stop_signal: int) -> None:
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # any pool child left behind
