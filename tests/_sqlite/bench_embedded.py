"""Measure the embedded broker: publish rate and round-trip latency with a worker process.

Run from the repository root: ``python tests/_sqlite/bench_embedded.py [--n 1000]``.
Numbers, not assertions: the tests pin behaviour, this script reports speed. The same
publish loops run over kombu's in-memory transport first, to show Celery's own share.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent.parent / "src")]

from celery import Celery  # noqa: E402
from kombu import Connection  # noqa: E402

from _sqlite.workerapp import make_app  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def publish_rates(app: Celery, count: int) -> tuple[float, float]:
    """(apply_async per second, kombu Producer.publish per second) of a no-op task."""
    noop = app.tasks["tq.noop"]
    for _ in range(100):
        noop.apply_async(ignore_result=True)
    started = time.perf_counter()
    for _ in range(count):
        noop.apply_async(ignore_result=True)
    celery_rate = count / (time.perf_counter() - started)
    with Connection(app.conf.broker_url) as conn:
        producer = conn.Producer(serializer="json")
        body = [[], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
        started = time.perf_counter()
        for _ in range(count):
            producer.publish(body, routing_key="bench", headers={"task": "tq.noop"})
        kombu_rate = count / (time.perf_counter() - started)
    return celery_rate, kombu_rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000, help="round trips to time")
    parser.add_argument("--publish", type=int, default=5000, help="messages to publish")
    parser.add_argument("--no-inotify", action="store_true", help="force the backoff fallback")
    args = parser.parse_args()
    options = {"polling_interval": 1.0, "use_inotify": not args.no_inotify}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "taskqueue"
        memory = make_app(home / "memory", broker_url="memory://", result_backend="disabled://")
        celery_rate, kombu_rate = publish_rates(memory, args.publish)
        print(f"publish over memory://  : apply_async {celery_rate:,.0f}/s, "
              f"kombu publish {kombu_rate:,.0f}/s")  # fmt: skip
        app = make_app(
            home,
            broker_transport_options=options,
            result_backend_transport_options=options,
            task_acks_late=False,
        )
        celery_rate, kombu_rate = publish_rates(app, args.publish)
        print(f"publish over tqsqlite://: apply_async {celery_rate:,.0f}/s, "
              f"kombu publish {kombu_rate:,.0f}/s")  # fmt: skip
        env = dict(
            os.environ,
            TQ_TEST_HOME=str(home),
            PYTHONPATH=os.pathsep.join([*sys.path[:2], os.environ.get("PYTHONPATH", "")]),
        )
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "_sqlite.workerapp", "worker", "-P", "solo",
             "-c", "1", "-l", "WARNING", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            env=env,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            now = app.tasks["tq.now"]
            for _ in range(50):  # warm up (and wait for the worker)
                now.delay().get(timeout=30)
            total, there, back = [], [], []
            for _ in range(args.n):
                t0 = time.time()
                ran_at = now.delay().get(timeout=10)
                t1 = time.time()
                total.append((t1 - t0) * 1000)
                there.append((ran_at - t0) * 1000)
                back.append((t1 - ran_at) * 1000)
            for label, samples in (
                ("round trip (send -> no-op runs -> result read)", total),
                ("  send -> task starts in worker", there),
                ("  task starts -> result read by client", back),
            ):
                print(
                    f"{label}: p50 {statistics.median(samples):.2f} ms, "
                    f"p90 {percentile(samples, 0.9):.2f}, p99 {percentile(samples, 0.99):.2f}, "
                    f"max {max(samples):.2f} (n={args.n})"
                )
        finally:
            worker.terminate()
            worker.wait(timeout=30)


if __name__ == "__main__":
    main()
