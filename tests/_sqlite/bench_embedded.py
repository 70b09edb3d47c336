"""Measure the embedded broker: publish rate and round-trip latency with a worker process.

Run from the repository root: ``python tests/_sqlite/bench_embedded.py [--n 1000]``.
Numbers, not assertions: the tests pin behaviour, this script reports speed.
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

from _sqlite.workerapp import make_app  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000, help="round trips to time")
    parser.add_argument("--publish", type=int, default=5000, help="messages to publish")
    parser.add_argument("--no-inotify", action="store_true", help="force the backoff fallback")
    args = parser.parse_args()
    options = {"polling_interval": 1.0, "use_inotify": not args.no_inotify}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "taskqueue"
        app = make_app(
            home,
            broker_transport_options=options,
            result_backend_transport_options=options,
            task_acks_late=False,
        )
        noop = app.tasks["tq.noop"]

        started = time.perf_counter()
        for _ in range(args.publish):
            noop.apply_async(ignore_result=True)
        elapsed = time.perf_counter() - started
        print(f"publish, no worker: {args.publish / elapsed:,.0f} msg/s ({args.publish} tasks)")

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
        )  # fmt: skip
        try:
            drained = time.perf_counter()
            while app.connection().default_channel.queue_declare("celery", passive=True)[1]:
                time.sleep(0.05)
            print(
                f"consume by one solo worker: {args.publish / (time.perf_counter() - drained):,.0f}"
                " msg/s (including worker start-up)"
            )
            for _ in range(50):  # warm up
                noop.delay().get(timeout=10)
            samples = []
            for _ in range(args.n):
                t0 = time.perf_counter()
                noop.delay().get(timeout=10)
                samples.append((time.perf_counter() - t0) * 1000)
            print(
                f"round trip (send -> worker runs no-op -> result read), n={args.n}: "
                f"p50 {statistics.median(samples):.2f} ms, p90 {percentile(samples, 0.9):.2f} ms, "
                f"p99 {percentile(samples, 0.99):.2f} ms, max {max(samples):.2f} ms"
            )
        finally:
            worker.terminate()
            worker.wait(timeout=30)


if __name__ == "__main__":
    main()
