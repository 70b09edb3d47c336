"""``taskqueue-kit demo``: the sentiment example, end to end or served.

The demo's modules are imported when the command runs, not when the CLI loads, so
``taskqueue-kit --help`` and ``doctor`` stay fast and need none of the examples' extras.
"""

from __future__ import annotations

import sys

import click

__all__ = ["demo"]


@click.command()
@click.option(
    "--count",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Reviews to score (default: the 240 shipped; repeated past 240).",
)
@click.option(
    "--broker",
    "broker_url",
    metavar="URL",
    default=None,
    help="A RabbitMQ (amqp://) or Redis (redis://) broker instead of the embedded one.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Run the FastAPI service and a worker until Ctrl-C, instead of the batch run.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="Port to serve on.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes (default: one per CPU, at most 4).",
)
def demo(
    count: int | None,
    broker_url: str | None,
    serve: bool,
    host: str,
    port: int,
    concurrency: int | None,
) -> None:
    """Score sample reviews with TextBlob in a real Celery worker; no broker to install.

    Starts a worker on the embedded SQLite broker, sends the shipped reviews as tasks,
    shows a live progress bar, prints the results and a summary, stops the worker and
    exits. With --serve, runs the sentiment web service (a progress page, /docs, the
    event streams) and a worker until Ctrl-C.
    """
    if serve and count is not None:
        raise click.UsageError("--count applies to the batch run, not to --serve")
    if serve:
        from taskqueue_kit.demo.serve import serve_demo

        status = serve_demo(broker_url=broker_url, host=host, port=port, concurrency=concurrency)
    else:
        from taskqueue_kit.demo.runner import run_demo

        status = run_demo(count=count, broker_url=broker_url, concurrency=concurrency)
    sys.stdout.flush()
    sys.exit(status)
