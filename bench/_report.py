"""From ``results.json`` to ``results.md``: machine, method, tables with ratios, targets.

``results.md`` is written to be included verbatim in the documentation, so it starts at
heading level 2 and says everything a reader needs to weigh the numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BROKER_TITLES = {
    "embedded": "Embedded default (SQLite): the kit, plain Celery and Huey",
    "amqp": "RabbitMQ: the kit and plain Celery",
    "redis": "Redis: the kit and plain Celery",
}
COLUMNS = (
    ("enqueue_per_s", "enqueue (tasks/s)", "{:,.0f}"),
    ("drain_per_s", "drain (tasks/s)", "{:,.0f}"),
    ("rt_p50_ms", "round trip p50 (ms)", "{:,.1f}"),
    ("rt_p99_ms", "round trip p99 (ms)", "{:,.1f}"),
    ("rss_peak_mib", "worker peak RSS (MiB)", "{:,.0f}"),
    ("enqueue_cpu_us", "sender CPU per task (µs)", "{:,.0f}"),
    ("drain_cpu_us", "worker CPU per task (µs)", "{:,.0f}"),
)

SEND_COLUMNS = (
    ("send_per_s", "sends/s", "{:,.0f}"),
    ("send_cpu_us", "CPU per send (µs)", "{:,.0f}"),
)

Target = dict[str, Any]


def _fmt(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else pattern.format(value)


def _times(value: float | None) -> str:
    if value is None:
        return "n/a"
    digits = f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"  # 0.0039, not 0.00
    return f"{digits}×"  # noqa: RUF001  # the multiplication sign


def _target(
    text: str, measured: str, value: float | None, threshold: float, at_least: bool
) -> Target:
    met = None if value is None else (value >= threshold if at_least else value <= threshold)
    if met is False and value is not None:
        measured += f" ({abs(value / threshold - 1):.0%} {'short' if at_least else 'over'})"
    return {
        "target": text,
        "measured": measured,
        "value": value,
        "threshold": threshold,
        "met": met,
    }


def _variant(figures: dict[str, Any], group: str, key: str) -> dict[str, Any] | None:
    found = figures.get(group)
    if not found or "variants" not in found:
        return None
    variant: dict[str, Any] | None = found["variants"].get(key)
    return variant


def targets(figures: dict[str, Any]) -> list[Target]:
    """The issue's targets, each with the measured value and whether it is met."""
    found: list[Target] = []
    for group, name in (("amqp", "RabbitMQ"), ("redis", "Redis")):
        plain = _variant(figures, group, "celery")
        for key, what in (("enqueue_per_s", "enqueue rate"), ("drain_per_s", "drain")):
            value = None if plain is None else plain["first_over"].get(key)
            found.append(
                _target(
                    f"{name}: kit ÷ plain Celery, {what} ≥ 0.95",
                    _times(value),
                    value,
                    0.95,
                    at_least=True,
                )
            )
    for key, name in (("huey", "SqliteHuey (stock)"), ("huey_1ms", "SqliteHuey (1 ms polling)")):
        huey = _variant(figures, "embedded", key)
        if huey is None and key != "huey":
            continue  # the tuned Huey is an extra; only the stock one is always judged
        ratios = {} if huey is None else huey["first_over"]
        enqueue = ratios.get("enqueue_per_s")
        found.append(
            _target(
                f"embedded default ÷ {name}, enqueue rate ≥ 1",
                _times(enqueue),
                enqueue,
                1.0,
                at_least=True,
            )
        )
        p50 = ratios.get("rt_p50_ms")
        found.append(
            _target(
                f"embedded default ÷ {name}, round trip p50 ≤ 1",
                _times(p50),
                p50,
                1.0,
                at_least=False,
            )
        )
    sentiment = figures.get("sentiment") or {}
    batch = sentiment.get("runs", {}).get("batch", {}).get("median", {}).get("reviews_per_s")
    found.append(
        _target(
            "sentiment, batch task ≥ 2,500 reviews/s end to end",
            _fmt(batch, "{:,.0f} reviews/s"),
            batch,
            2500.0,
            at_least=True,
        )
    )
    http = figures.get("http") or {}
    for broker in sorted(http):
        ratios = http[broker].get("adapter_over_plain", {})
        found.append(
            _target(
                f"HTTP ({broker}): adapter ÷ plain endpoint, requests/s ≥ 1.0",
                _times(ratios.get("rps")),
                ratios.get("rps"),
                1.0,
                at_least=True,
            )
        )
        found.append(
            _target(
                f"HTTP ({broker}): adapter ÷ plain endpoint, p99 latency ≤ 1.0",
                _times(ratios.get("p99_ms")),
                ratios.get("p99_ms"),
                1.0,
                at_least=False,
            )
        )
    return found


def _machine(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    servers = ", ".join(f"{name} {v}" for name, v in (machine.get("servers") or {}).items() if v)
    kind = (
        "a quick smoke run (tiny counts: not figures to quote)"
        if results["quick"]
        else ("a full run")
    )
    load_start = ", ".join(str(x) for x in machine["load_average_at_start"])
    load_end = ", ".join(str(x) for x in results.get("load_average_at_end", []))
    return [
        f"Measured on {results['finished']} by {kind}: `{results['command']}`, "
        f"{results['settings']['rounds']} round(s) per comparison, in {results['seconds']:.0f} s.",
        "",
        f"- Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"{machine['os']}; load average {load_start} at the start, {load_end} at the end "
        "(a busy machine blurs every figure alike, not the ratios' direction).",
        f"- Python {machine['python']}, SQLite {machine['sqlite']}; SQLite files in "
        f"{machine.get('temp_dir')} ({machine.get('temp_filesystem')}); {versions}"
        + (f"; servers: {servers}" if servers else "")
        + ".",
    ]


def _method(results: dict[str, Any]) -> list[str]:
    settings = results["settings"]
    return [
        "### Method",
        "",
        "Every comparison runs in one invocation, alternating the variants (A B, then B A, ...),"
        f" {settings['rounds']} round(s); each figure is the median over rounds and each ratio "
        "is the ratio of medians. Full details: `bench/README.md`.",
        "",
        f"- Broker figures, per variant and round, on fresh state (a new queue, a new SQLite "
        f"file) with a freshly started 2-process worker (Celery: `--pool=prefork "
        f"--concurrency=2 --loglevel=WARNING --without-gossip --without-mingle "
        f"--without-heartbeat`; Huey: `-w 2 -k process -q`), the same no-op task: "
        f"**round trip**, send then wait for the result the library's stock way, one at a time, "
        f"{settings['round_trips']} times (p50, p99); **enqueue**, {settings['tasks']:,} sends in"
        f" a loop while two gate tasks hold both worker processes; **drain**, from opening the "
        "gates until every one of those tasks has its result stored; **worker peak RSS**, main "
        "process plus pool children, sampled every 20 ms; **CPU per task**, CPU time of the "
        "sender during the enqueue loop and of the worker (main process and pool) during the "
        "drain, per task: steadier than rates when other work shares the machine.",
        f"- Sending alone: per variant and round, on fresh state with no worker, "
        f"{settings['tasks']:,} sends of the no-op in a loop after 100 unmeasured ones; sends "
        "per second and the sender's CPU time per send.",
        "- The kit is `create_celery(TaskQueueSettings(...))` with default settings "
        "(`track_sent` on, `task_track_started` on). Plain Celery is `Celery(broker=..., "
        "backend=...)` with stock settings plus JSON serialisation and the round's queue name. "
        "On RabbitMQ both store results in Redis (`rpc://` would let only the sender read them).",
        "- Stock kombu SQLAlchemy polls once a second, so its row runs "
        f"{results['settings'].get('sqla_scale', 0.2):.0%} of the counts; rates and "
        "percentiles stay comparable.",
        f"- Sentiment: the demo's tasks on the embedded default, {settings['reviews']:,} "
        "reviews, from the first send to every score read back; a fresh 2-process worker per "
        "measurement, warmed up (TextBlob loaded) first.",
        f"- HTTP ({settings.get('http_rounds', settings['rounds'])} rounds): one uvicorn "
        "process serves both routes; a second process keeps "
        f"{settings['concurrency']} keep-alive connections busy with {settings['requests']:,} "
        "POSTs per measurement, after a warm-up of as many to each route; the queue is purged "
        "between measurements.",
    ]


def _broker_table(
    group: dict[str, Any], columns: tuple[tuple[str, str, str], ...] = COLUMNS
) -> list[str]:
    variants = group["variants"]
    reference = group["reference"]
    head = "| variant | " + " | ".join(title for _, title, _ in columns) + " |"
    lines = [head, "|" + " --- |" * (len(columns) + 1)]
    for variant in variants.values():
        cells = [_fmt(variant["median"].get(col), fmt) for col, _, fmt in columns]
        tasks = int(variant["median"]["tasks"])
        lines.append(f"| {variant['label']} ({tasks:,} tasks) | " + " | ".join(cells) + " |")
    for key, variant in variants.items():
        if key == reference:
            continue
        cells = [_times(variant["first_over"].get(col)) for col, _, _ in columns]
        lines.append(
            f"| *{variants[reference]['label']} ÷ {variant['label']}* | " + " | ".join(cells) + " |"
        )
    return lines


def _broker(group: str) -> Callable[[dict[str, Any]], list[str]]:
    """The section of one broker figure (``embedded``, ``amqp``, ``redis``), if measured."""

    def section(figures: dict[str, Any]) -> list[str]:
        found = figures.get(group)
        if found is None:
            return []
        lines = ["", f"### {BROKER_TITLES[group]}", ""]
        if "skipped" in found:
            return [*lines, f"Not measured: {found['skipped']}."]
        return [
            *lines,
            *_broker_table(found),
            "",
            "Ratios above 1 mean the kit is faster (rates) or heavier (latency, RSS, CPU).",
        ]

    return section


def _sends(figures: dict[str, Any]) -> list[str]:
    found = figures.get("sends")
    if found is None:
        return []
    return [
        "",
        "### Sending alone, no worker running",
        "",
        *_broker_table(found, SEND_COLUMNS),
        "",
        "The last row sends over kombu's in-memory transport with in-memory results: no I/O "
        "at all, so its figure is what Celery's own `apply_async` costs, the floor under every "
        "variant built on Celery. Ratios above 1 mean the kit is faster (sends/s) or heavier "
        "(CPU).",
    ]


def _sentiment(figures: dict[str, Any]) -> list[str]:
    found = figures.get("sentiment")
    if not found:
        return []
    lines = ["", "### Sentiment: one task per review against the batch task", ""]
    if "skipped" in found:
        return [*lines, f"Not measured: {found['skipped']}."]
    lines += [
        "| run | reviews/s end to end | seconds | worker peak RSS (MiB) |",
        "| --- | --- | --- | --- |",
    ]
    for run in found["runs"].values():
        m = run["median"]
        lines.append(
            f"| {run['label']} | {m['reviews_per_s']:,.0f} | {m['seconds']:.2f} | "
            f"{m['rss_peak_mib']:,.0f} |"
        )
    lines += [
        "",
        f"{found['reviews']:,} reviews (the demo's samples, repeated); the batch task is "
        f"{_times(found['batch_over_per_review'])} as fast.",
    ]
    return lines


def _http(figures: dict[str, Any]) -> list[str]:
    found = figures.get("http")
    if not found:
        return []
    lines = ["", "### HTTP: `POST /tasks/{name}` through the FastAPI adapter", ""]
    for broker, result in found.items():
        if "skipped" in result:
            lines.append(f"- {broker}: not measured: {result['skipped']}.")
            continue
        lines += [
            f"On {broker}, {result['concurrency']} concurrent connections, "
            f"{result['requests']:,} requests per measurement:",
            "",
            "| route | requests/s | p50 (ms) | p99 (ms) | server CPU per request (µs) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for route in result["routes"].values():
            m = route["median"]
            lines.append(
                f"| {route['label']} (`{route['path']}`) | {m['rps']:,.0f} | "
                f"{m['p50_ms']:.1f} | {m['p99_ms']:.1f} | "
                f"{_fmt(m.get('server_cpu_us'), '{:,.0f}')} |"
            )
        r = result["adapter_over_plain"]
        lines += [
            f"| *adapter ÷ plain* | {_times(r['rps'])} | {_times(r['p50_ms'])} | "
            f"{_times(r['p99_ms'])} | {_times(r.get('server_cpu_us'))} |",
            "",
        ]
    return lines


def _targets(found: list[Target]) -> list[str]:
    marks: dict[bool | None, str] = {True: "met", False: "**missed**", None: "not measured"}
    lines = ["### Targets", "", "| target | measured | |", "| --- | --- | --- |"]
    lines += [f"| {t['target']} | {t['measured']} | {marks[t['met']]} |" for t in found]
    return lines


def render(results: dict[str, Any], bounds: str | None = None) -> str:
    """The Markdown page for ``results``.

    Args:
        results: The contents of ``results.json``.
        bounds: Hand-written profiling notes on what bounds the missed targets
            (``bench/bounds.md``), included under their own heading when given.
    """
    figures = results["figures"]
    sections: list[Callable[[dict[str, Any]], list[str]]] = [
        _broker("embedded"),
        _sends,  # sending alone goes with the embedded default
        _broker("amqp"),
        _broker("redis"),
        _sentiment,
        _http,
    ]
    lines = ["## Benchmark results", "", *_machine(results), "", *_targets(results["targets"])]
    for section in sections:
        lines += section(figures)
    if bounds and bounds.strip():
        lines += ["", bounds.strip()]
    lines += ["", *_method(results)]
    return "\n".join(lines).rstrip() + "\n"
