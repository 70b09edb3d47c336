"""The doctor command: explains what it checked, and fails fast with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def _doctor(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKQUEUE_HOME": str(home)}
    env.pop("TASKQUEUE_BROKER_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "taskqueue_kit._cli", "doctor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


def test_embedded_default_passes(tmp_path: Path) -> None:
    """On the embedded default every check passes (no worker is only a warning); exit 0."""
    result = _doctor("--timeout", "2", home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok  ] broker: reachable" in result.stdout
    assert "[ok  ] result backend" in result.stdout
    assert "[warn] workers" in result.stdout
    assert "Traceback" not in result.stderr


def test_closed_port_fails_fast_with_one_line(tmp_path: Path) -> None:
    """A broker on a closed port: one-line reason, non-zero exit, within 10 s, no traceback."""
    started = time.monotonic()
    result = _doctor(
        "--broker", "amqp://guest:guest@127.0.0.1:1//", "--timeout", "3", home=tmp_path
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert elapsed < 10
    failures = [line for line in result.stdout.splitlines() if line.startswith("[FAIL]")]
    assert len(failures) == 1
    assert "127.0.0.1:1" in failures[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_settings_are_explained(tmp_path: Path) -> None:
    """A malformed URL is reported as a settings problem naming the field."""
    result = _doctor("--broker", "nonsense", home=tmp_path)
    assert result.returncode != 0
    assert "[FAIL] settings" in result.stdout
    assert "broker_url" in result.stdout
