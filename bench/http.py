"""HTTP figure: ``POST /tasks/{name}`` through the FastAPI adapter against a plain endpoint.

One uvicorn process (one event loop, FastAPI's thread pool for ``def`` endpoints) serves
both routes of :mod:`bench.http_app`; a second process (:mod:`bench._load`) drives the
same concurrent load at one route, then the other, alternating over rounds. No worker
runs: the figure is the cost of accepting and enqueuing. The queue is purged between
measurements so every one starts from an empty queue. The server's CPU time per request
is recorded too: steadier than requests per second when other work shares the machine.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench import celery_apps
from bench._measure import alternating, medians, ratio, tree_cpu, wait_until
from bench._workers import ROOT, child_env, running
from bench.http_app import ADAPTER_PATH, PLAIN_PATH

Log = Callable[[str], None]
ROUTES = {"adapter": ADAPTER_PATH, "plain": PLAIN_PATH}
LABELS = {
    "adapter": "FastAPI adapter (task_router)",
    "plain": "plain endpoint calling apply_async",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _load(url: str, requests: int, concurrency: int) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "bench._load",
        url,
        f"--requests={requests}",
        f"--concurrency={concurrency}",
    ]
    done = subprocess.run(
        command, capture_output=True, env=child_env({}), cwd=ROOT, check=False, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr.decode(errors='replace')}")
    result: dict[str, Any] = json.loads(done.stdout)
    if result["statuses"] != {"202": requests}:
        raise RuntimeError(f"{url}: expected {requests} answers 202, got {result['statuses']}")
    return result


def _ready(base: str) -> bool:
    with (
        contextlib.suppress(OSError),
        urllib.request.urlopen(f"{base}/openapi.json", timeout=1) as r,
    ):
        return bool(r.status == 200)
    return False


def measure(
    *,
    broker: str | None,
    backend: str | None,
    rounds: int,
    requests: int,
    concurrency: int,
    log: Log,
) -> dict[str, Any]:
    """Alternate adapter and plain endpoint over ``rounds``; medians and ratios."""
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        queue = f"bench-{uuid.uuid4().hex[:10]}"
        home = str(Path(tmp) / "taskqueue")
        env = celery_apps.worker_env("kit", queue=queue, broker=broker, backend=backend, home=home)
        client = celery_apps.build("kit", queue=queue, broker=broker, backend=backend, home=home)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.http_app:api",
            "--host",
            "127.0.0.1",
            f"--port={port}",
            "--log-level=warning",
            "--no-access-log",
        ]
        measured: dict[str, list[dict[str, Any]]] = {key: [] for key in ROUTES}
        try:
            with running(command, env) as server:
                wait_until(lambda: _ready(base), 60, interval=0.1, what="uvicorn to answer")
                # Warm up both routes with a measurement's worth each: threads, pooled
                # connections and the SQLite files' size are then what every round finds,
                # not a cost the first round alone pays (it was 20% slower than the rest).
                for path in ROUTES.values():
                    _load(base + path, requests, concurrency)
                client.control.purge()
                process = psutil.Process(server.process.pid)
                for number, key in alternating(list(ROUTES), rounds):
                    server.check_alive()
                    cpu = tree_cpu(process)
                    result = _load(base + ROUTES[key], requests, concurrency)
                    result["server_cpu_us"] = (tree_cpu(process) - cpu) / requests * 1e6
                    _forget(client, result.pop("task_ids"))
                    client.control.purge()
                    log(
                        f"  round {number + 1}/{rounds}: {LABELS[key]}: {result['rps']:,.0f} "
                        f"req/s, p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms, "
                        f"server CPU {result['server_cpu_us']:,.0f} us per request"
                    )
                    measured[key].append(result)
            rss = server.peak_rss_mib
        finally:
            client.close()
    middle = {key: medians(rounds_) for key, rounds_ in measured.items()}
    return {
        "requests": requests,
        "concurrency": concurrency,
        "server_peak_rss_mib": rss,
        "routes": {
            key: {
                "label": LABELS[key],
                "path": ROUTES[key],
                "rounds": measured[key],
                "median": middle[key],
            }
            for key in ROUTES
        },
        "adapter_over_plain": {
            "rps": ratio(middle["adapter"]["rps"], middle["plain"]["rps"]),
            "p50_ms": ratio(middle["adapter"]["p50_ms"], middle["plain"]["p50_ms"]),
            "p99_ms": ratio(middle["adapter"]["p99_ms"], middle["plain"]["p99_ms"]),
            "server_cpu_us": ratio(
                middle["adapter"]["server_cpu_us"], middle["plain"]["server_cpu_us"]
            ),
        },
    }


def _forget(app: Any, task_ids: list[str]) -> None:
    """Drop the SENT records a shared Redis backend would otherwise keep for a day."""
    backend = app.backend
    client = getattr(backend, "client", None)
    if client is None or not hasattr(client, "delete"):
        return
    keys = [backend.get_key_for_task(t) for t in task_ids]
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])
