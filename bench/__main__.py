"""``python -m bench``: run the benchmarks, write ``results.json`` and ``results.md``.

Figures (``--figures``, all by default): ``embedded`` (the kit's embedded default against
plain Celery on kombu's SQLAlchemy transport, plain Celery on the kit's SQLite transport,
and Huey's ``SqliteHuey``), ``amqp`` and ``redis`` (the kit against plain Celery),
``sends`` (what a send alone costs, no worker running, against plain Celery with no I/O at
all), ``sentiment`` (one task per review against the batch task) and ``http`` (the FastAPI
adapter against a plain endpoint). ``--quick`` is a smoke run with tiny counts, written to
a temporary directory unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench._measure import machine, now
from bench._report import render, targets
from bench._variants import CELERY_ON_KIT_SQLITE, Variant

HERE = Path(__file__).resolve().parent
FIGURES = ("embedded", "sends", "amqp", "redis", "sentiment", "http")
SCHEMA = 1
SQLA_SCALE = 0.1
EMBEDDED_OTHERS = ("celery_sqla", "celery_tqsqlite", "huey", "huey_1ms")
# HTTP gets more rounds: a measurement takes seconds, and round to round it varies by ±10%.
FULL = {"rounds": 3, "http_rounds": 5, "tasks": 5000, "round_trips": 200, "reviews": 10_000,
        "requests": 2000}  # fmt: skip
QUICK = {"rounds": 1, "http_rounds": 1, "tasks": 200, "round_trips": 10, "reviews": 500,
         "requests": 200}  # fmt: skip


def embedded_variants(only: Sequence[str] | None) -> list[Variant]:
    """The embedded comparison: the kit first (every ratio is the kit's over the others)."""
    variants = [
        Variant("kit", "kit, embedded default", "kit"),
        Variant(
            "celery_sqla",
            "plain Celery, kombu SQLAlchemy + database backend",
            "plain",
            "sqla+sqlite:///{dir}/broker.db",
            "db+sqlite:///{dir}/results.db",
            scale=SQLA_SCALE,
        ),
        CELERY_ON_KIT_SQLITE,
        Variant("huey", "Huey SqliteHuey", "huey"),
        Variant("huey_1ms", "Huey SqliteHuey, 1 ms polling", "huey", poll=0.001),
    ]
    return [v for v in variants if v.key == "kit" or not only or v.key in only]


#: What the kit turns on in every profile that stock Celery leaves off; plain Celery with
#: these set costs what the kit's settings cost, so the kit against it is the kit's code.
KIT_SETTINGS = {
    "task_track_started": True,
    "result_extended": True,
    "worker_prefetch_multiplier": 1,
}


def server_variants(broker: str, backend: str) -> list[Variant]:
    """The kit and plain Celery on a real broker, both storing results in ``backend``.

    Plain Celery twice: stock, and with the kit's settings (``KIT_SETTINGS``), which
    leaves the ``SENT`` record as the only difference from the kit.
    """
    return [
        Variant("kit", "kit", "kit", broker, backend),
        Variant("celery", "plain Celery", "plain", broker, backend),
        Variant(
            "celery_kit_settings",
            "plain Celery, the kit's settings",
            "plain",
            broker,
            backend,
            conf=KIT_SETTINGS,
        ),
    ]


def reachable(url: str) -> bool:
    """Whether a TCP connection to the URL's host and port opens within a second."""
    parts = urlsplit(url)
    port = parts.port or {"amqp": 5672, "redis": 6379}.get(parts.scheme, 0)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def server_versions(args: argparse.Namespace) -> dict[str, str | None]:
    """Versions the RabbitMQ and Redis servers report, when they answer."""
    from kombu import Connection
    from redis import Redis

    found: dict[str, str | None] = {"rabbitmq": None, "redis": None}
    with contextlib.suppress(Exception), Connection(args.amqp_url, connect_timeout=2) as conn:
        conn.connect()
        version = conn.connection.server_properties.get("version")
        found["rabbitmq"] = version.decode() if isinstance(version, bytes) else version
    with contextlib.suppress(Exception):
        client = Redis.from_url(args.redis_url, socket_timeout=2)
        found["redis"] = str(client.info("server").get("redis_version"))
        client.close()
    return found


def _csv(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(value: str) -> list[str]:
        items = [item.strip() for item in value.split(",") if item.strip()]
        unknown = sorted(set(items) - set(allowed))
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
        return items

    return parse


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="smoke run: tiny counts, one round")
    p.add_argument(
        "--figures",
        type=_csv(FIGURES),
        default=list(FIGURES),
        help=f"comma-separated, from {','.join(FIGURES)} (default: all)",
    )
    p.add_argument(
        "--variants",
        type=_csv(EMBEDDED_OTHERS),
        default=None,
        help="which to set against the kit in the embedded figure",
    )
    p.add_argument(
        "--http-brokers",
        type=_csv(["embedded", "amqp", "redis"]),
        default=["embedded", "amqp"],
        help="brokers of the HTTP figure",
    )
    p.add_argument("--rounds", type=_positive, help="rounds per comparison (3; quick: 1)")
    p.add_argument("--http-rounds", type=_positive, help="rounds of the HTTP figure (5)")
    p.add_argument("--tasks", type=_positive, help="tasks enqueued and drained (5000)")
    p.add_argument("--round-trips", type=_positive, help="round trips timed (200)")
    p.add_argument("--reviews", type=_positive, help="reviews of the sentiment figure (10000)")
    p.add_argument("--requests", type=_positive, help="HTTP requests per measurement (3000)")
    p.add_argument("--concurrency", type=_positive, default=32, help="HTTP connections (32)")
    p.add_argument(
        "--amqp-url",
        default=os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    )
    p.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    p.add_argument(
        "--out",
        type=Path,
        help="directory for results.json and results.md "
        "(default: bench/; quick: a temporary directory)",
    )
    p.add_argument(
        "--render",
        action="store_true",
        help="only rewrite results.md from the results.json in --out",
    )
    return p


def log(message: str) -> None:
    """Progress on stderr, so stdout stays free for the results path."""
    print(message, file=sys.stderr, flush=True)


def _server_urls(kind: str, args: argparse.Namespace) -> tuple[str, str] | str:
    """(broker, backend) of ``amqp`` or ``redis``, or why it cannot be measured.

    Results go to Redis for both: ``rpc://`` would let only the sender read them.
    """
    broker: str = args.amqp_url if kind == "amqp" else args.redis_url
    for url in dict.fromkeys((broker, args.redis_url)):
        if not reachable(url):
            return f"{url} is not reachable"
    return broker, args.redis_url


def _broker_figure(kind: str, args: argparse.Namespace, counts: dict[str, int]) -> dict[str, Any]:
    from bench import brokers

    if kind == "embedded":
        variants = embedded_variants(args.variants)
    else:
        urls = _server_urls(kind, args)
        if isinstance(urls, str):
            log(f"  skipped: {urls}")
            return {"skipped": urls}
        variants = server_variants(*urls)
    return brokers.compare(
        variants,
        rounds=counts["rounds"],
        tasks=counts["tasks"],
        round_trips=counts["round_trips"],
        log=log,
    )


def _http_figure(kind: str, args: argparse.Namespace, counts: dict[str, int]) -> dict[str, Any]:
    from bench import http

    urls: tuple[str | None, str | None] | str = (
        (None, None) if kind == "embedded" else _server_urls(kind, args)
    )
    if isinstance(urls, str):
        log(f"  skipped: {urls}")
        return {"skipped": urls}
    return http.measure(
        broker=urls[0],
        backend=urls[1],
        rounds=counts["http_rounds"],
        requests=counts["requests"],
        concurrency=args.concurrency,
        log=log,
    )


def run(args: argparse.Namespace, counts: dict[str, int]) -> dict[str, Any]:
    """Measure every figure asked for; the ``figures`` mapping of the results."""
    figures: dict[str, Any] = {}
    for kind in ("embedded", "amqp", "redis"):
        if kind in args.figures:
            log(f"{kind}:")
            figures[kind] = _broker_figure(kind, args, counts)
        if kind == "embedded" and "sends" in args.figures:
            from bench import sends

            log("sends:")
            figures["sends"] = sends.compare(
                sends.variants(), rounds=counts["rounds"], tasks=counts["tasks"], log=log
            )
    if "sentiment" in args.figures:
        from bench import sentiment

        log("sentiment:")
        figures["sentiment"] = sentiment.measure(
            reviews=counts["reviews"], rounds=counts["rounds"], log=log
        )
    if "http" in args.figures:
        figures["http"] = {}
        for kind in args.http_brokers:
            log(f"http ({kind}):")
            figures["http"][kind] = _http_figure(kind, args, counts)
    return figures


def write(out: Path, results: dict[str, Any]) -> None:
    """Write ``results.json`` and ``results.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    bounds = HERE / "bounds.md"
    text = bounds.read_text(encoding="utf-8") if bounds.exists() and not results["quick"] else None
    (out / "results.md").write_text(render(results, text), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks (or re-render); print the results directory."""
    args = parser().parse_args(argv)
    out: Path = args.out or (
        Path(tempfile.gettempdir()) / "taskqueue-bench-quick" if args.quick else HERE
    )
    if args.render:
        stored: dict[str, Any] = json.loads((out / "results.json").read_text(encoding="utf-8"))
        stored["targets"] = targets(stored["figures"])
        write(out, stored)
        print(out)
        return 0
    counts = dict(QUICK if args.quick else FULL)
    for key in counts:
        if getattr(args, key, None):
            counts[key] = getattr(args, key)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema": SCHEMA,
        "started": now(),
        "command": shlex.join(
            ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])]
        ),
        "quick": args.quick,
        "machine": {**machine(), "servers": server_versions(args)},
        "settings": {**counts, "concurrency": args.concurrency, "sqla_scale": SQLA_SCALE},
    }
    results["figures"] = run(args, counts)
    results["finished"] = now()
    results["seconds"] = time.perf_counter() - started
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["targets"] = targets(results["figures"])
    write(out, results)
    log(f"wrote {out / 'results.md'} and results.json in {results['seconds']:.0f} s")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
