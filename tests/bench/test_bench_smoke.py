"""Smoke test of the benchmark harness: it runs, and writes results of the documented shape.

No timing is asserted: the numbers of a tiny run on a shared machine mean nothing. What is
pinned is that ``python -m bench`` measures every figure for every variant, computes the
ratios and targets from them, and renders the page the docs include.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("huey", reason="the bench extra is not installed")
pytest.importorskip("psutil", reason="the bench extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"enqueue_per_s", "drain_per_s", "rt_p50_ms", "rt_p99_ms", "rss_peak_mib", "tasks"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One quick run of the embedded and sends figures, kit against Huey, with tiny counts."""
    out = tmp_path_factory.mktemp("bench")
    command = [
        sys.executable, "-m", "bench", "--quick", "--figures=embedded,sends", "--variants=huey",
        "--tasks=40", "--round-trips=5", f"--out={out}",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == str(out)
    return out


def test_results_json_holds_every_figure_of_both_variants(quick_run: Path) -> None:
    """Each variant has one round with every figure positive, and a median of the same keys."""
    results = json.loads((quick_run / "results.json").read_text())
    assert results["quick"] is True
    assert results["machine"]["cores"] >= 1
    assert results["machine"]["versions"]["celery"]
    embedded = results["figures"]["embedded"]
    assert embedded["reference"] == "kit"
    assert set(embedded["variants"]) == {"kit", "huey"}
    for variant in embedded["variants"].values():
        (only,) = variant["rounds"]
        assert set(only) >= FIGURES
        assert only["tasks"] == 40
        assert all(only[key] > 0 for key in FIGURES)
        assert only["rt_p50_ms"] <= only["rt_p99_ms"]
        assert variant["median"]["enqueue_per_s"] == only["enqueue_per_s"]
    huey = embedded["variants"]["huey"]
    kit = embedded["variants"]["kit"]["median"]
    expected = kit["enqueue_per_s"] / huey["median"]["enqueue_per_s"]
    assert huey["first_over"]["enqueue_per_s"] == pytest.approx(expected)


def test_sends_set_the_kit_against_celerys_floor(quick_run: Path) -> None:
    """Sending alone: every variant, plain Celery with no I/O among them, with both figures."""
    sends = json.loads((quick_run / "results.json").read_text())["figures"]["sends"]
    assert sends["reference"] == "kit"
    assert set(sends["variants"]) == {"kit", "celery_tqsqlite", "huey", "celery_memory"}
    for variant in sends["variants"].values():
        (only,) = variant["rounds"]
        assert only["tasks"] == 40
        assert only["send_per_s"] > 0
        assert only["send_cpu_us"] > 0
    floor = sends["variants"]["celery_memory"]
    expected = sends["variants"]["kit"]["median"]["send_cpu_us"] / floor["median"]["send_cpu_us"]
    assert floor["first_over"]["send_cpu_us"] == pytest.approx(expected)


def test_targets_are_judged_only_where_measured(quick_run: Path) -> None:
    """The Huey targets get a verdict from the figures; unmeasured ones say so."""
    results = json.loads((quick_run / "results.json").read_text())
    verdicts = {t["target"]: t for t in results["targets"]}
    enqueue = verdicts["embedded default ÷ SqliteHuey (stock), enqueue rate ≥ 1"]
    ratio = results["figures"]["embedded"]["variants"]["huey"]["first_over"]["enqueue_per_s"]
    assert enqueue["value"] == pytest.approx(ratio)
    assert enqueue["met"] is (ratio >= 1)
    assert verdicts["RabbitMQ: kit ÷ plain Celery, drain ≥ 0.95"]["met"] is None


def test_results_md_is_the_page_the_docs_include(quick_run: Path) -> None:
    """The page names the machine, the targets, a table row per variant and the method."""
    page = (quick_run / "results.md").read_text()
    assert page.startswith("## Benchmark results\n")
    assert "quick smoke run" in page
    for needle in (
        "### Targets",
        "### Sending alone, no worker running",
        "| plain Celery, in-memory transport and results (no I/O: Celery's own cost) (40 tasks)",
        "| kit, embedded default (40 tasks) |",
        "| Huey SqliteHuey (40",
        "*kit, embedded default ÷ Huey SqliteHuey*",
        "### Method",
        "2-process worker",
    ):
        assert needle in page
