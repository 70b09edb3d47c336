"""The ``taskqueue-kit`` command line (click, which Celery already depends on)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from taskqueue_kit._demo_cli import demo
from taskqueue_kit._doctor import run_checks
from taskqueue_kit._exceptions import MissingExtra

__all__ = ["main"]

_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


class _KitGroup(click.Group):
    """Every command: a missing extra is one ``Error:`` line and exit status 1, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MissingExtra as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_KitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taskqueue-kit")
def main() -> None:
    """Celery task queues for FastAPI and Flask: check the setup, run the demo."""


@main.command()
@click.option(
    "--broker", "broker_url", help="Broker URL (default: TASKQUEUE_BROKER_URL or embedded)."
)
@click.option("--backend", "result_backend", help="Result backend URL (default: embedded).")
@click.option(
    "--profile",
    type=click.Choice(["development", "production", "testing"]),
    help="Settings profile.",
)
@click.option("--timeout", default=4.0, show_default=True, help="Seconds allowed per check.")
def doctor(
    broker_url: str | None, result_backend: str | None, profile: str | None, timeout: float
) -> None:
    """Check settings, broker, result backend and workers; explain each problem."""
    kwargs: dict[str, Any] = {}
    if broker_url:
        kwargs["broker_url"] = broker_url
    if result_backend:
        kwargs["result_backend"] = result_backend
    if profile:
        kwargs["profile"] = profile
    checks = run_checks(kwargs, timeout=timeout)
    for check in checks:
        click.echo(f"[{_MARKS[check.status]}] {check.name}: {check.detail}")
    failed = [check.name for check in checks if check.status == "fail"]
    if failed:
        click.echo(f"doctor: {len(failed)} problem(s): {', '.join(failed)}", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        # Skip interpreter teardown: a broker library may still hold a thread on a dead socket.
        os._exit(1)
    click.echo("doctor: all checks passed")


main.add_command(demo)

if __name__ == "__main__":
    main()
