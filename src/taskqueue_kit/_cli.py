"""The ``taskqueue-kit`` command line (click, which Celery already depends on)."""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

import click

from taskqueue_kit._demo_cli import demo
from taskqueue_kit._doctor import run_checks
from taskqueue_kit._exceptions import MissingExtra

__all__ = ["main"]

_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


class _KitGroup(click.Group):
    """Every command: a missing extra is one ``Error:`` line and exit status 1, no traceback.

    ``--help`` lists each command with its whole first sentence, wrapped, where click
    would cut it at the terminal's width with "...".
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MissingExtra as exc:
            raise click.ClickException(str(exc)) from exc

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, command.get_short_help_str(limit=sys.maxsize))
            for name in self.list_commands(ctx)
            if (command := self.get_command(ctx, name)) is not None and not command.hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _exit_at_once(status: int) -> NoReturn:
    """Exit without interpreter teardown: a broker library may still hold a thread on a dead
    socket, which teardown would wait for."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


@click.group(cls=_KitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="taskqueue-kit")
def main() -> None:
    """Celery task queues for FastAPI and Flask: check the setup, run the demo."""


@main.command()
@click.option(
    "--app",
    "-A",
    "app_spec",
    metavar="MODULE[:NAME]",
    help="Your Celery app, as for celery -A: MODULE (its app or celery) or MODULE:NAME, "
    "imported from the current directory; its own broker, backend and declared queues are "
    "checked (default: an app built from the TASKQUEUE_* settings).",
)
@click.option(
    "--broker",
    "broker_url",
    metavar="URL",
    help="Broker URL (default: TASKQUEUE_BROKER_URL, else CELERY_BROKER_URL, else the "
    "embedded broker under TASKQUEUE_HOME). Not with --app.",
)
@click.option(
    "--backend",
    "result_backend",
    metavar="URL",
    help="Result backend URL (default: TASKQUEUE_RESULT_BACKEND, else CELERY_RESULT_BACKEND, "
    "else the embedded backend under TASKQUEUE_HOME). Not with --app.",
)
@click.option(
    "--profile",
    type=click.Choice(["development", "production", "testing"]),
    help="Settings profile (default: TASKQUEUE_PROFILE, else CELERY_CONFIG, else "
    "development). Not with --app.",
)
@click.option("--timeout", default=4.0, show_default=True, help="Seconds allowed per check.")
def doctor(
    app_spec: str | None,
    broker_url: str | None,
    result_backend: str | None,
    profile: str | None,
    timeout: float,
) -> None:
    """Check settings, broker, result backend and workers; explain each problem.

    Prints one line per check and exits with status 1 when a check fails; a warning does
    not fail it.
    """
    given = {"broker_url": broker_url, "result_backend": result_backend, "profile": profile}
    kwargs: dict[str, Any] = {name: value for name, value in given.items() if value}
    if app_spec and kwargs:
        raise click.UsageError(
            "--app checks the app's own configuration: leave out --broker, --backend and "
            "--profile, or leave out --app"
        )
    checks = run_checks(kwargs, timeout=timeout, app_spec=app_spec)
    for check in checks:
        click.echo(f"[{_MARKS[check.status]}] {check.name}: {check.detail}")
    failed = [check.name for check in checks if check.status == "fail"]
    if failed:
        click.echo(f"doctor: {len(failed)} problem(s): {', '.join(failed)}", err=True)
        _exit_at_once(1)
    click.echo("doctor: all checks passed")


main.add_command(demo)

if __name__ == "__main__":
    main()
