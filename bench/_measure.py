"""Measuring helpers: summaries, peak RSS of a process tree, the machine, round order.

Every figure is a median over rounds, and the variants of one comparison run in the same
invocation, alternating, so slow drift of a shared machine hits them alike.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import psutil  # type: ignore[import-untyped]  # no stubs needed to run

T = TypeVar("T")

MIB = 1024 * 1024

#: Distributions whose versions every results file records.
VERSIONED = (
    "taskqueue-kit",
    "celery",
    "kombu",
    "huey",
    "redis",
    "amqp",
    "SQLAlchemy",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "pydantic",
    "textblob",
    "psutil",
)


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100): a value that was actually measured."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """Median of the rounds of one figure."""
    if not values:
        raise ValueError("no values")
    return float(statistics.median(values))


def medians(rounds: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per-key median over rounds, for every numeric key the rounds share."""
    keys = [
        k for k, v in rounds[0].items() if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return {k: median([float(r[k]) for r in rounds if k in r]) for k in keys}


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``, or ``None`` when either is missing or zero."""
    if not numerator or not denominator:
        return None
    return numerator / denominator


def alternating(variants: Sequence[T], rounds: int) -> Iterator[tuple[int, T]]:
    """``(round, variant)`` in ABAB... order, reversed every other round (AB BA AB ...).

    Reversing cancels a linear drift of the machine's speed within a round pair.
    """
    for number in range(rounds):
        order = list(variants) if number % 2 == 0 else list(reversed(variants))
        for variant in order:
            yield number, variant


class Compared(Protocol):
    """What :func:`compare` needs of a variant."""

    @property
    def key(self) -> str: ...

    @property
    def label(self) -> str: ...


V = TypeVar("V", bound=Compared)


def compare(
    variants: Sequence[V],
    rounds: int,
    measure: Callable[[V], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Alternate ``variants`` over ``rounds``; rounds, medians and the first one's ratios.

    ``first_over`` holds, for each figure, the first variant's median (the kit's) divided
    by this variant's: above 1 the kit is faster for rates, heavier for latency and costs.
    """
    measured: dict[str, list[dict[str, Any]]] = {v.key: [] for v in variants}
    for number, variant in alternating(variants, rounds):
        log(f"  round {number + 1}/{rounds}: {variant.label}")
        figures = measure(variant)
        log(f"    {describe(figures)}")
        measured[variant.key].append(figures)
    base = medians(measured[variants[0].key])
    results: dict[str, Any] = {}
    for variant in variants:
        middle = medians(measured[variant.key])
        results[variant.key] = {
            "label": variant.label,
            "rounds": measured[variant.key],
            "median": middle,
            "first_over": {k: ratio(base[k], middle[k]) for k in middle if k in base},
        }
    return {"reference": variants[0].key, "variants": results}


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.005, what: str = "condition"
) -> float:
    """Poll ``predicate`` until true; the ``perf_counter`` time at which it was seen true.

    Raises:
        TimeoutError: not true within ``timeout`` seconds, naming ``what``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return time.perf_counter()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def tree_rss(process: psutil.Process) -> int:
    """Resident set size of a process and all its descendants, in bytes (0 once gone).

    Forked children share pages with their parent, so the sum over-counts shared pages
    alike for every variant measured this way.
    """
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def tree_cpu(process: psutil.Process) -> float:
    """CPU seconds (user + system) spent so far by a process and its live descendants.

    CPU time per task is steadier than a rate on a shared machine: other work slows the
    clock-time figures but adds little CPU time to ours.
    """
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for member in members:
        try:
            times = member.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class RssSampler:
    """Sample the RSS of a process tree in a background thread; keep the peak.

    Args:
        pid: Root of the tree (the worker's main process).
        interval: Seconds between samples.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self._process = psutil.Process(pid)
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self._process))
            self._stop.wait(self._interval)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return self.peak / MIB


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _filesystem(path: str) -> str | None:
    """Type of the file system holding ``path``: SQLite commit costs depend on it."""
    best: tuple[int, str] | None = None
    for part in psutil.disk_partitions(all=True):
        mount = part.mountpoint
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and (
            best is None or len(mount) > best[0]
        ):
            best = (len(mount), part.fstype)
    return None if best is None else best[1]


def machine() -> dict[str, Any]:
    """What the numbers were measured on: cores, CPU, memory, Python, library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": cpu,
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "temp_dir": tempfile.gettempdir(),
        "temp_filesystem": _filesystem(os.path.realpath(tempfile.gettempdir())),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {name: _version(name) for name in VERSIONED},
    }


def now() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()
