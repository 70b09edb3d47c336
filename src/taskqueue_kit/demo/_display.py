"""How the demo talks to a person: rich bars and tables on a terminal, plain lines elsewhere.

``rich`` (in the ``examples`` extra) draws live progress bars; when the output is a pipe,
a file or a CI log, or ``rich`` is missing, the same facts are printed as plain lines (a
progress line every tenth), which also keeps the output easy to test.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TextIO

__all__ = ["Display", "PlainDisplay", "RichDisplay", "choose_display"]

Advance = Callable[[int], None]
"""Tells a progress bar how many units are done."""


class Display(Protocol):
    """What the demo shows: lines, progress bars and tables."""

    def line(self, text: str = "", *, style: str | None = None) -> None:
        """Print one line; ``style`` is a hint a plain display ignores."""

    def progress(self, description: str, total: int) -> contextlib.AbstractContextManager[Advance]:
        """A progress bar for the block; call the yielded function with units done."""

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        footer: Sequence[str] | None = None,
    ) -> None:
        """A table; the first column is left-aligned, the others right-aligned."""


class PlainDisplay:
    """Plain text, one progress line per tenth: for pipes, files and logs."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def line(self, text: str = "", *, style: str | None = None) -> None:
        """Print one line and flush, so a reader of the pipe sees it at once."""
        print(text, file=self._stream, flush=True)

    @contextlib.contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        """Print ``description: done/total (percent)`` each time another tenth is done."""
        shown = -1

        def advance(done: int) -> None:
            nonlocal shown
            tenth = 10 * done // total if total else 10
            if tenth > shown:
                shown = tenth
                percent = 100 * done // total if total else 100
                self.line(f"{description}: {done}/{total} ({percent}%)")

        advance(0)
        yield advance

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        footer: Sequence[str] | None = None,
    ) -> None:
        """A fixed-width table under its title."""
        every = [list(columns), *map(list, rows), *([list(footer)] if footer else [])]
        widths = [max(len(row[index]) for row in every) for index in range(len(columns))]

        def render(cells: Sequence[str]) -> str:
            parts = [
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ]
            return "  ".join(parts).rstrip()

        rule = "  ".join("-" * width for width in widths)
        self.line(title)
        self.line(render(columns))
        self.line(rule)
        for row in rows:
            self.line(render(row))
        if footer:
            self.line(rule)
            self.line(render(footer))


class RichDisplay:
    """Live bars and boxed tables on a terminal, with ``rich``."""

    def __init__(self, console: Any) -> None:
        self._console = console

    def line(self, text: str = "", *, style: str | None = None) -> None:
        """Print one line, styled; the text is never read as markup."""
        self._console.print(text, style=style, markup=False, highlight=False)

    @contextlib.contextmanager
    def progress(self, description: str, total: int) -> Iterator[Advance]:
        """A live bar with counts, percent and elapsed time."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self._console) as bars:
            task = bars.add_task(description, total=total)
            yield lambda done: bars.update(task, completed=done)

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        footer: Sequence[str] | None = None,
    ) -> None:
        """A boxed table, its footer row in bold."""
        from rich.table import Table

        table = Table(title=title, title_justify="left", show_footer=footer is not None)
        for index, name in enumerate(columns):
            table.add_column(
                name,
                justify="left" if index == 0 else "right",
                footer=footer[index] if footer else "",
            )
        for row in rows:
            table.add_row(*row)
        self._console.print(table)


def choose_display(stream: TextIO | None = None) -> Display:
    """Rich on a terminal when ``rich`` is installed; plain lines otherwise."""
    stream = sys.stdout if stream is None else stream
    if stream.isatty():
        try:
            from rich.console import Console
        except ImportError:
            return PlainDisplay(stream)
        return RichDisplay(Console(file=stream))
    return PlainDisplay(stream)
