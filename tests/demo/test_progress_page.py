"""The progress page in headless Chromium: paste reviews, watch the bar fill, read the scores.

Uses Debian's ``chromium`` (``apt-get install -y chromium``) driven by Playwright, never a
downloaded browser. Without ``/usr/bin/chromium`` the tests skip locally and fail under CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from taskqueue_kit.demo import fastapi_app, flask_app

from ._serve import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
REVIEWS = {
    "Wonderful staff and a beautiful, quiet room.": "positive",
    "The battery died in a day and support was rude. Awful.": "negative",
    "Great value, works perfectly.": "positive",
    "Boring, predictable and far too long.": "negative",
}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser test may not be skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium from the system package, through Playwright."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} not found: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: pip install playwright")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(params=["fastapi", "flask"])
def page_url(request: pytest.FixtureRequest, demo_app: Celery) -> Iterator[str]:
    """The service of either framework, served on a loopback port."""
    module = fastapi_app if request.param == "fastapi" else flask_app
    with serve(module.create_app(demo_app)) as base_url:
        yield base_url + "/"


@pytest.fixture
def page(browser: Any, page_url: str) -> Iterator[Any]:
    """A fresh tab on the progress page; JavaScript errors fail the test."""
    context = browser.new_context()
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(page_url)
    yield tab
    context.close()
    assert not errors, errors


def test_bar_reaches_100_and_every_score_appears(page: Any) -> None:
    """Submitted reviews fill the bar to 100% from the event stream, then show one score each."""
    page.fill("#reviews", "\n".join(REVIEWS) + "\n\n")
    page.click("#submit")
    page.wait_for_selector('#bar[aria-valuenow="100"]', timeout=30_000)
    page.wait_for_selector(f"#results tbody tr:nth-child({len(REVIEWS)})", timeout=30_000)
    rows = page.query_selector_all("#results tbody tr")
    assert len(rows) == len(REVIEWS)
    for row, (review, expected) in zip(rows, REVIEWS.items(), strict=True):
        assert row.query_selector("td.review").inner_text() == review
        score = float(row.query_selector("td.score").inner_text())
        assert (score > 0) == (expected == "positive"), (review, score)
        assert row.query_selector("td.sign").inner_text() == expected
    assert page.inner_text("#percent") == "100%"
    assert page.inner_text("#summary") == "4 reviews: 2 positive, 2 negative, 0 neutral."
    assert "received from the event stream" in page.inner_text("#updates")
    assert page.is_hidden("#error")


def test_refusals_are_shown(page: Any) -> None:
    """A review over the size limit shows the service's 422; an empty form says what to do."""
    page.fill("#reviews", "x" * 5_001)
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    message = page.inner_text("#error")
    assert "HTTP 422" in message
    assert "reviews.0" in message
    assert page.is_hidden("#results")

    page.fill("#reviews", "  \n ")
    page.click("#submit")
    page.wait_for_function(
        "document.getElementById('error').textContent.includes('Paste at least one review')"
    )
