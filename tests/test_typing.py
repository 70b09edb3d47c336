"""Type checkers see task signatures through the kit's decorators."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SNIPPET = """
from taskqueue_kit import retrying_task

@retrying_task(name="polarity:analyze", retry_on=(ConnectionError,))
def analyze(review: str) -> float:
    return 0.0

analyze.delay(review=1)
analyze.delay("fine")
"""


@pytest.mark.slow
def test_mypy_reports_a_wrong_argument_type(tmp_path: Path) -> None:
    """mypy flags analyze.delay(review=1) where review: str, and only that line."""
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout
    assert "snippet.py:8:" in errors[0]
    assert '"delay"' in errors[0]
    assert '"int"' in errors[0]
