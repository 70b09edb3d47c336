"""The doctor command: explains what it checked, and fails fast with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from taskqueue_kit._cli import main
from taskqueue_kit._exceptions import MissingExtra

pytestmark = pytest.mark.compat

# Runs the command line with some modules made to look uninstalled (``sys.argv[1]``).
_HIDING = (
    "import sys\n"
    "for name in filter(None, sys.argv.pop(1).split(',')):\n"
    "    sys.modules[name] = None\n"
    "from taskqueue_kit._cli import main\n"
    "main()\n"
)


def _doctor(*args: str, home: Path, hide: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TASKQUEUE_HOME": str(home)}
    for name in ("TASKQUEUE_BROKER_URL", "CELERY_BROKER_URL", "TASKQUEUE_RESULT_BACKEND"):
        env.pop(name, None)
    env.pop("CELERY_RESULT_BACKEND", None)
    return subprocess.run(
        [sys.executable, "-c", _HIDING, hide, "doctor", *args],
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


def test_extras_line_lists_what_is_installed(tmp_path: Path) -> None:
    """The extras line names each extra found, its adapter imported to prove it."""
    result = _doctor("--timeout", "1", home=tmp_path)
    assert "[ok  ] extras: installed: examples, fastapi, flask, redis" in result.stdout


def test_missing_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    """A redis:// broker without redis-py fails on the broker line, naming the extra; exit 1."""
    result = _doctor("--broker", "redis://127.0.0.1:6379/0", home=tmp_path, hide="redis")
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("[FAIL]")]
    assert failures == [
        "[FAIL] broker: the Redis broker needs the redis extra: pip install 'taskqueue-kit[redis]'"
    ]
    assert "not installed: redis" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_missing_extra_of_the_backend(tmp_path: Path) -> None:
    """A redis:// result backend without packaging fails on the result backend line."""
    result = _doctor("--backend", "redis://127.0.0.1:6379/0", home=tmp_path, hide="packaging")
    assert result.returncode == 1
    assert (
        "[FAIL] result backend: the Redis result backend needs the redis extra "
        "(packaging is not installed): pip install 'taskqueue-kit[redis]'"
    ) in result.stdout


def test_incomplete_extra_is_a_warning(tmp_path: Path) -> None:
    """FastAPI without sse-starlette: a warning naming the extra; the checks still pass."""
    result = _doctor("--timeout", "1", home=tmp_path, hide="sse_starlette")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "[warn] extras: taskqueue_kit.web.fastapi needs the fastapi extra "
        "(sse_starlette is not installed): pip install 'taskqueue-kit[fastapi]'"
    ) in result.stdout
    assert "installed: flask, redis; not installed: examples, fastapi" in result.stdout


def test_any_command_reports_a_missing_extra_in_one_line() -> None:
    """A MissingExtra escaping a command is an ``Error:`` line and exit 1, not a traceback."""

    @main.command("needs-redis")
    def needs_redis() -> None:
        raise MissingExtra("the Redis broker", "redis")

    try:
        result = CliRunner().invoke(main, ["needs-redis"])
    finally:
        main.commands.pop("needs-redis")
    assert result.exit_code == 1
    assert result.output == (
        "Error: the Redis broker needs the redis extra: pip install 'taskqueue-kit[redis]'\n"
    )
