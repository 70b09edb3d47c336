"""Send figure: what sending alone costs the sending process, with no worker running.

The broker figures take the enqueue rate while a worker waits on the same two cores. This
one sends the no-op ``tasks`` times to a fresh queue that nothing consumes, after a
warm-up, for the kit's embedded default, plain Celery on the same SQLite transport,
Huey's ``SqliteHuey``, and plain Celery on kombu's in-memory transport with in-memory
results. That last one does no I/O at all: its figure is what Celery's own
``apply_async`` costs, the floor under every variant built on Celery.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._measure import compare as measure_variants
from bench._variants import CELERY_ON_KIT_SQLITE, Variant, session

WARMUP = 100


def variants() -> list[Variant]:
    """The kit first (every ratio is the kit's over the others)."""
    return [
        Variant("kit", "kit, embedded default", "kit"),
        CELERY_ON_KIT_SQLITE,
        Variant("huey", "Huey SqliteHuey", "huey"),
        Variant(
            "celery_memory",
            "plain Celery, in-memory transport and results (no I/O: Celery's own cost)",
            "plain",
            "memory://",
            "cache+memory://",
        ),
    ]


def cycle(variant: Variant, tasks: int) -> dict[str, Any]:
    """Send ``tasks`` no-ops on fresh state; sends per second and CPU per send."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-send-") as tmp,
        session(variant, Path(tmp)) as opened,
    ):
        for _ in range(WARMUP):
            opened.send_noop()
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(tasks):
            opened.send_noop()
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    return {"tasks": tasks, "send_per_s": tasks / elapsed, "send_cpu_us": used / tasks * 1e6}


def compare(
    compared: Sequence[Variant], *, rounds: int, tasks: int, log: Callable[[str], None]
) -> dict[str, Any]:
    """Alternate ``compared`` over ``rounds`` (see :func:`bench._measure.compare`)."""
    return measure_variants(compared, rounds, lambda variant: cycle(variant, tasks), _describe, log)


def _describe(figures: dict[str, Any]) -> str:
    return "{send_per_s:,.0f} sends/s, {send_cpu_us:,.0f} us CPU each".format(**figures)
