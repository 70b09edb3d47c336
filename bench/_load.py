"""HTTP load generator, run in its own process: ``python -m bench._load URL ...``.

``concurrency`` asyncio clients, one keep-alive HTTP/1.1 connection each, send POSTs back
to back until ``requests`` have been answered; prints one JSON object: requests per
second, latency percentiles, statuses, and the task ids the server returned.

The client is a few lines of asyncio streams rather than httpx: httpx spends about 7 ms of
CPU per request at 32 connections here, so it, not the server, would be measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from bench._measure import percentile


class _Connection:
    """One keep-alive HTTP/1.1 connection that POSTs a fixed JSON body."""

    def __init__(self, host: str, port: int, path: str, body: bytes) -> None:
        self._host, self._port = host, port
        self._request = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self) -> tuple[int, bytes]:
        """Send the request; the status code and the body of the answer."""
        if self._writer is None or self._reader is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        self._writer.write(self._request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise RuntimeError(f"answer without Content-Length: {head!r}")
        body = await self._reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        """Close the connection (it reopens on the next request)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


async def _client(
    connection: _Connection,
    remaining: list[int],
    latencies: list[float],
    statuses: Counter[int],
    ids: list[str],
) -> None:
    try:
        while remaining[0] > 0:
            remaining[0] -= 1
            start = time.perf_counter()
            status, body = await connection.post()
            latencies.append(time.perf_counter() - start)
            statuses[status] += 1
            if status == 202:
                ids.append(json.loads(body)["task_id"])
    finally:
        await connection.close()


async def _run(url: str, body: bytes, requests: int, concurrency: int) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise ValueError(f"expected http://host:port/path, got {url!r}")
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    ids: list[str] = []
    remaining = [requests]
    connections = [_Connection(parts.hostname, parts.port, path, body) for _ in range(concurrency)]
    start = time.perf_counter()
    await asyncio.gather(*(_client(c, remaining, latencies, statuses, ids) for c in connections))
    seconds = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "task_ids": ids,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the load, print the JSON result."""
    parser = argparse.ArgumentParser(prog="python -m bench._load", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--body", default='{"review": "a fine film"}')
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    result = asyncio.run(_run(args.url, args.body.encode(), args.requests, args.concurrency))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
