"""Child-process side of the multi-process tests: ``python -m _sqlite.helpers <command> ...``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from kombu import Connection, Exchange, Queue

from taskqueue_kit import _sqlite


def send(home: str, prefix: str, count: str) -> None:
    """Send ``count`` ``tq.record`` tasks with tokens ``<prefix>-<n>``."""
    from _sqlite.workerapp import make_app

    app = make_app(Path(home))
    record = app.tasks["tq.record"]
    for n in range(int(count)):
        record.delay(f"{prefix}-{n}")


def consume(url: str, queue: str, out: str) -> None:
    """Claim and ack messages from ``queue`` until it is empty; write the bodies to ``out``."""
    seen = []
    with Connection(url) as conn:
        channel = conn.channel()
        while (message := channel.basic_get(queue)) is not None:
            seen.append(json.loads(message.body))
            channel.basic_ack(message.delivery_tag)
    Path(out).write_text(json.dumps(seen))


def claim_and_die(url: str, queue: str) -> None:
    """Claim one message and exit at once, as a SIGKILLed worker would: no ack, no close."""
    conn = Connection(url)
    channel = conn.channel()
    assert channel.basic_get(queue) is not None
    os._exit(0)


def declare_and_die(url: str, queue: str) -> None:
    """Declare an auto-delete queue bound to a direct exchange, then exit without cleanup."""
    conn = Connection(url)
    Queue(queue, Exchange("ex-auto", "direct"), routing_key=queue, auto_delete=True)(
        conn.channel()
    ).declare()
    os._exit(0)


def publish(url: str, queue: str, body: str) -> None:
    """Publish one message to ``queue`` through the default exchange."""
    with Connection(url) as conn:
        conn.Producer().publish(json.loads(body), routing_key=queue, serializer="json")


def touch(path: str) -> None:
    """Append to a file, as a commit appends to the WAL."""
    with open(path, "ab") as f:
        f.write(b"x")


COMMANDS = {
    "send": send,
    "consume": consume,
    "claim_and_die": claim_and_die,
    "declare_and_die": declare_and_die,
    "publish": publish,
    "touch": touch,
}

if __name__ == "__main__":
    _sqlite.register()
    COMMANDS[sys.argv[1]](*sys.argv[2:])
