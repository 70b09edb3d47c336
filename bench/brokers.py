"""Broker figures: the kit against plain Celery (and Huey) on the same no-op task.

One cycle per (variant, round), each on fresh state and a freshly started 2-process worker:

1. warm up: a few round trips (the first also tells that the worker is up);
2. round trip: send the no-op and wait for its result the stock way, one at a time;
   p50 and p99 in milliseconds;
3. enqueue: two gate tasks occupy both worker processes, then the no-op is sent ``tasks``
   times in a loop; tasks per second;
4. drain: the gates open; time until every one of those tasks has its result stored
   (the last one sent is polled every 5 ms, then all are checked at once; stragglers are
   waited for). Tasks per second;
5. the worker's peak RSS (main process plus pool children, sampled every 20 ms).

Alongside, CPU time: the sender's per task enqueued, and the worker's (main process and
pool) per task drained, in microseconds; steadier than rates on a shared machine.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench._measure import compare as measure_variants
from bench._measure import percentile, tree_cpu, wait_until
from bench._variants import Session, Variant, session
from bench._workers import Running, running

WARMUP = 10
TIMEOUT = 120.0

Log = Callable[[str], None]


def cycle(variant: Variant, tasks: int, round_trips: int, log: Log) -> dict[str, Any]:
    """Measure one variant once, on fresh state and a fresh worker."""
    tasks = max(10, round(tasks * variant.scale))
    round_trips = max(5, round(round_trips * variant.scale))
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        directory = Path(tmp)
        with (
            session(variant, directory) as opened,
            running(opened.worker_command, opened.worker_env) as worker,
        ):
            started = time.perf_counter()
            for _ in range(max(2, round(WARMUP * variant.scale))):
                worker.check_alive()
                opened.round_trip(TIMEOUT)
            log(f"    worker ready in {time.perf_counter() - started:.1f}s")
            latencies = _round_trips(opened, round_trips)
            drained = _enqueue_and_drain(opened, tasks, directory / "gate", worker)
            worker.check_alive()
        rss = worker.peak_rss_mib
    return {
        "tasks": tasks,
        "enqueue_per_s": tasks / drained.enqueue_s,
        "drain_per_s": tasks / drained.drain_s,
        "drain_s": drained.drain_s,
        "enqueue_cpu_us": drained.enqueue_cpu_s / tasks * 1e6,
        "drain_cpu_us": drained.worker_cpu_s / tasks * 1e6,
        "round_trips": round_trips,
        "rt_p50_ms": percentile(latencies, 50) * 1000,
        "rt_p99_ms": percentile(latencies, 99) * 1000,
        "rss_peak_mib": rss,
    }


def _round_trips(opened: Session, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        opened.round_trip(TIMEOUT)
        samples.append(time.perf_counter() - start)
    return samples


@dataclass(frozen=True)
class Drained:
    """Seconds and CPU seconds of one enqueue-then-drain."""

    enqueue_s: float
    enqueue_cpu_s: float
    drain_s: float
    worker_cpu_s: float


def _enqueue_and_drain(opened: Session, tasks: int, gate_dir: Path, worker: Running) -> Drained:
    gate_dir.mkdir()
    tokens = [uuid.uuid4().hex for _ in range(2)]
    for token in tokens:
        opened.send_gate(gate_dir, token)
    wait_until(
        lambda: all((gate_dir / f"{t}.started").exists() for t in tokens),
        TIMEOUT,
        what="both worker processes to hold a gate task",
    )
    start, cpu = time.perf_counter(), time.process_time()
    ids = [opened.send_noop() for _ in range(tasks)]
    enqueue_s, enqueue_cpu_s = time.perf_counter() - start, time.process_time() - cpu

    process = psutil.Process(worker.process.pid)
    worker_cpu = tree_cpu(process)
    (gate_dir / "open").touch()
    start = time.perf_counter()
    end = wait_until(lambda: opened.finished(ids[-1:])[0], TIMEOUT, what="the last task")
    pending = [i for i, done in zip(ids, opened.finished(ids), strict=True) if not done]
    for task_id in pending:  # at most the one the other process was still running, usually
        end = wait_until(_finished(opened, task_id), TIMEOUT, what=task_id)
    worker_cpu_s = tree_cpu(process) - worker_cpu
    return Drained(enqueue_s, enqueue_cpu_s, end - start, worker_cpu_s)


def _finished(opened: Session, task_id: str) -> Callable[[], bool]:
    return lambda: opened.finished([task_id])[0]


def compare(
    variants: Sequence[Variant],
    *,
    rounds: int,
    tasks: int,
    round_trips: int,
    log: Log,
) -> dict[str, Any]:
    """Alternate ``variants`` over ``rounds`` (see :func:`bench._measure.compare`)."""
    return measure_variants(
        variants, rounds, lambda variant: cycle(variant, tasks, round_trips, log), _describe, log
    )


def _describe(figures: dict[str, Any]) -> str:
    return (
        "enqueue {enqueue_per_s:,.0f}/s ({enqueue_cpu_us:,.0f} us CPU each), drain "
        "{drain_per_s:,.0f}/s ({drain_cpu_us:,.0f} us worker CPU each), round trip p50 "
        "{rt_p50_ms:.1f} ms p99 {rt_p99_ms:.1f} ms, RSS {rss_peak_mib:.0f} MiB".format(**figures)
    )
