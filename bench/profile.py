"""Find what bounds a broker figure: ``python -m bench.profile {ablate,enqueue,worker}``.

* ``ablate``: the broker figures for the kit, plain Celery, and the kit with one default
  switched off at a time (``track_sent``, ``task_track_started``, ``result_extended``);
  the CPU-per-task columns then say what each default costs, even on a busy machine.
* ``enqueue``: cProfile (CPU time) of the sender while it enqueues the no-op; the
  functions with the most cumulative time.
* ``worker``: py-spy samples of the worker and its pool children during a drain, summed
  by what ``trace_task`` was calling (storing STARTED, storing the result, ...). py-spy
  needs root or ptrace rights.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench import brokers, celery_apps
from bench.__main__ import log
from bench.__main__ import parser as bench_parser
from bench._measure import wait_until
from bench._variants import CelerySession, Variant
from bench._workers import running

SWITCHES: dict[str, dict[str, Any]] = {
    "kit, track_sent off": {"taskqueue_track_sent": False},
    "kit, task_track_started off": {"task_track_started": False},
    "kit, result_extended off": {"result_extended": False},
    "kit, prefetch 4": {"worker_prefetch_multiplier": 4},
}


def _urls(kind: str, args: argparse.Namespace) -> tuple[str | None, str | None]:
    if kind == "embedded":
        return None, None
    return (args.amqp_url if kind == "amqp" else args.redis_url), args.redis_url


def _plain_urls(kind: str, args: argparse.Namespace) -> tuple[str | None, str | None]:
    if kind == "embedded":  # plain Celery on the same SQLite transport as the kit
        return "tqsqlite:///{dir}/broker.sqlite3", "tqsqlite:///{dir}/results.sqlite3"
    return _urls(kind, args)


def ablate(args: argparse.Namespace) -> None:
    """Broker figures with one kit default off at a time."""
    broker, backend = _urls(args.broker, args)
    variants = [
        Variant("kit", "kit", "kit", broker, backend),
        Variant("celery", "plain Celery", "plain", *_plain_urls(args.broker, args)),
    ]
    variants += [
        Variant(f"off{i}", label, "kit", broker, backend, conf=conf)
        for i, (label, conf) in enumerate(SWITCHES.items())
    ]
    result = brokers.compare(
        variants, rounds=args.rounds, tasks=args.tasks, round_trips=args.round_trips, log=log
    )
    keys = ("enqueue_cpu_us", "drain_cpu_us", "enqueue_per_s", "drain_per_s", "rt_p50_ms")
    print(f"{'variant':32}" + "".join(f"{k:>16}" for k in keys))
    for variant in result["variants"].values():
        median = variant["median"]
        print(f"{variant['label']:32}" + "".join(f"{median[k]:16,.1f}" for k in keys))


def _session(args: argparse.Namespace, directory: Path) -> CelerySession:
    broker, backend = _urls(args.broker, args) if args.flavour == "kit" else (
        _plain_urls(args.broker, args)
    )  # fmt: skip
    return CelerySession(
        Variant(args.flavour, args.flavour, args.flavour, broker, backend), directory
    )


def enqueue(args: argparse.Namespace) -> None:
    """cProfile (CPU time) of ``args.tasks`` sends."""
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        opened = _session(args, Path(tmp))
        try:
            for _ in range(50):
                opened.send_noop()
            profile = cProfile.Profile(time.process_time)
            start = time.process_time()
            profile.enable()
            for _ in range(args.tasks):
                opened.send_noop()
            profile.disable()
            cpu = time.process_time() - start
        finally:
            opened.close()
    print(f"{args.flavour} on {args.broker}: {cpu / args.tasks * 1e6:,.0f} us CPU per send "
          "(under cProfile, which inflates every call alike)")  # fmt: skip
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
    print(out.getvalue())


def _callee_of_trace(raw: Path) -> Counter[str]:
    """py-spy raw samples inside ``trace_task``, summed by the function it was calling."""
    found: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        marks = [i for i, frame in enumerate(frames) if "trace_task (celery/app/trace.py" in frame]
        if not marks or any("gate (bench/celery_apps.py" in frame for frame in frames):
            continue
        where = marks[-1]
        callee = frames[where + 1].split(" (")[0] if where + 1 < len(frames) else "(itself)"
        found[f"{frames[where].split('(')[1].rstrip(')')} -> {callee}"] += int(count)
    return found


def worker(args: argparse.Namespace) -> None:
    """py-spy the worker during a drain; shares of ``trace_task`` by callee."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        directory = Path(tmp)
        opened = _session(args, directory)
        raw = directory / "samples.txt"
        try:
            with running(opened.worker_command, opened.worker_env) as run:
                for _ in range(5):
                    opened.round_trip(60)
                gates = directory / "gate"
                gates.mkdir()
                tokens = [uuid.uuid4().hex for _ in range(2)]
                for token in tokens:
                    opened.send_gate(gates, token)
                wait_until(lambda: all((gates / f"{t}.started").exists() for t in tokens), 60)
                ids = [opened.send_noop() for _ in range(args.tasks)]
                sampler = subprocess.Popen(
                    [spy, "record", "--pid", str(run.process.pid), "--subprocesses",
                     "--format", "raw", "--rate", "250", "--nonblocking", "-o", str(raw)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                time.sleep(1.5)  # py-spy attaches to every process of the tree
                (gates / "open").touch()
                wait_until(lambda: opened.finished(ids[-1:])[0], 600, what="the drain")
                sampler.send_signal(2)
                sampler.wait(timeout=60)
        finally:
            opened.close()
        found = _callee_of_trace(raw)
        if args.raw:
            shutil.copyfile(raw, args.raw)
    total = sum(found.values()) or 1
    print(f"{args.flavour} on {args.broker}: {total} samples inside trace_task (gates left out)")
    for where, count in found.most_common(args.top):
        print(f"{count:8} {count / total:6.1%}  trace.py:{where}")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run one profile."""
    base = bench_parser()
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("what", choices=("ablate", "enqueue", "worker"))
    p.add_argument("--broker", choices=("embedded", "amqp", "redis"), default="amqp")
    p.add_argument("--flavour", choices=celery_apps.FLAVOURS, default="kit")
    p.add_argument("--tasks", type=int, default=3000)
    p.add_argument("--round-trips", type=int, default=50)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--raw", type=Path, help="worker: also keep py-spy's raw samples in this file")
    for action in base._actions:
        if action.dest in {"amqp_url", "redis_url"}:
            p.add_argument(*action.option_strings, default=action.default, dest=action.dest)
    args = p.parse_args(argv)
    {"ablate": ablate, "enqueue": enqueue, "worker": worker}[args.what](args)


if __name__ == "__main__":
    main(sys.argv[1:])
