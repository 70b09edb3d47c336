"""The demo's report: the same facts in plain text (pipes, CI) and with rich (terminals)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from taskqueue_kit.demo._display import Display, PlainDisplay, RichDisplay, choose_display
from taskqueue_kit.demo._report import Phase, report
from taskqueue_kit.demo.reviews import Review

REVIEWS = [
    Review("hotels", "Lovely room."),
    Review("hotels", "Dirty and loud."),
    Review("books", "A textbook."),
]
SCORES = [0.5, -0.45, 0.0]


def _displays() -> list[tuple[Display, io.StringIO]]:
    plain = io.StringIO()
    fancy = io.StringIO()
    console = Console(file=fancy, force_terminal=True, width=120, color_system=None)
    return [(PlainDisplay(plain), plain), (RichDisplay(console), fancy)]


@pytest.mark.parametrize("index", [0, 1], ids=["plain", "rich"])
def test_report_shows_categories_counts_and_rates(index: int) -> None:
    """Table rows per category and in all, the extremes, counts by sign and both rates."""
    display, out = _displays()[index]
    agree = report(
        display,
        REVIEWS,
        Phase(tasks=3, seconds=0.5, scores=SCORES),
        Phase(tasks=1, seconds=0.1, scores=list(SCORES)),
        chunk_size=250,
    )
    text = out.getvalue()
    assert agree
    rows = [line.replace("│", " ").split() for line in text.splitlines()]
    assert ["books", "1", "0", "0", "1", "+0.000"] in rows
    assert ["hotels", "2", "1", "1", "0", "+0.025"] in rows
    assert ["all", "3", "1", "1", "1", "+0.017"] in rows
    assert "Most positive: +0.500  Lovely room." in text
    assert "Most negative: -0.450  Dirty and loud." in text
    assert "reviews scored: 3 (positive 1, negative 1, neutral 1)" in text
    assert "3 polarity:analyze tasks in 0.50 s, 6 tasks/s" in text
    assert "1 polarity:batch tasks in chunks of 250, 3 reviews in 0.10 s, 30 reviews/s" in text
    assert "batch scores equal the per-review scores: yes" in text


def test_report_flags_disagreeing_scores() -> None:
    """A batch that scored differently is reported, and report() returns False."""
    display, out = _displays()[0]
    agree = report(
        display,
        REVIEWS,
        Phase(tasks=3, seconds=0.5, scores=SCORES),
        Phase(tasks=1, seconds=0.1, scores=[0.5, -0.45, 0.1]),
        chunk_size=250,
    )
    assert not agree
    assert "batch scores equal the per-review scores: NO" in out.getvalue()


def test_plain_progress_prints_every_tenth_once() -> None:
    """The plain bar prints 0%, then a line each time a new tenth is reached, and 100%."""
    out = io.StringIO()
    with PlainDisplay(out).progress("work", 20) as advance:
        for done in (1, 2, 2, 3, 9, 20, 20):
            advance(done)
    assert out.getvalue().splitlines() == [
        "work: 0/20 (0%)",
        "work: 2/20 (10%)",
        "work: 9/20 (45%)",
        "work: 20/20 (100%)",
    ]


def test_rich_only_on_a_terminal() -> None:
    """A pipe or file gets the plain display."""
    assert isinstance(choose_display(io.StringIO()), PlainDisplay)
