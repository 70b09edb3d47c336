"""The demo's pages in headless Chromium: the progress page, and the API docs offline.

Uses Debian's ``chromium`` (``apt-get install -y chromium``) driven by Playwright, never a
downloaded browser. Without ``/usr/bin/chromium`` the tests skip locally and fail under CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from celery import Celery

from taskqueue_kit.demo import fastapi_app, flask_app

from ._serve import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
# ReDoc's sidebar footer shows Redocly's logo from Redocly's CDN: offline, one missing image.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
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


def test_scores_appear_while_the_batch_runs_then_every_score(page: Any) -> None:
    """Paced, rows and stats fill from progress events before the task ends; then all scores."""
    page.fill("#reviews", "\n".join(REVIEWS) + "\n\n")
    assert page.is_checked("#pace")  # the page paces the worker by default
    page.click("#submit")
    # A scored row while the task is still running: shown from a progress event.
    page.wait_for_function(
        """() => document.querySelector('#results tbody tr[data-source="progress"]')
            && !['succeeded', 'failed', 'revoked'].includes(document.body.dataset.state)""",
        timeout=30_000,
    )
    assert int(page.get_attribute("#bar", "aria-valuenow")) < 100
    assert "of 4" in page.inner_text("#scored")
    assert "scored so far" in page.inner_text("#summary")
    assert page.inner_text("#elapsed").endswith(" s")
    page.wait_for_selector('#bar[aria-valuenow="100"]', timeout=30_000)
    page.wait_for_selector(f"#results tbody tr:nth-child({len(REVIEWS)})", timeout=30_000)
    rows = page.query_selector_all("#results tbody tr")
    assert len(rows) == len(REVIEWS)
    for row, (review, expected) in zip(rows, REVIEWS.items(), strict=True):
        assert row.query_selector("td.review").inner_text() == review
        score = float(row.query_selector("td.score").inner_text())
        assert (score > 0) == (expected == "positive"), (review, score)
        assert row.query_selector("td.sign").inner_text() == expected
    sources = [row.get_attribute("data-source") for row in rows]
    assert sources.count("progress") >= 2, sources  # most arrived before the result
    assert page.inner_text("#percent") == "100%"
    assert page.inner_text("#summary") == "4 reviews: 2 positive, 2 negative, 0 neutral."
    assert page.inner_text("#scored") == "4 of 4"
    assert "reviews/s (paced)" in page.inner_text("#rate")
    assert "received from the event stream" in page.inner_text("#updates")
    timeline = page.inner_text("#timeline")
    for step in ["sending 4 reviews", "accepted as task", "new score", "succeeded"]:
        assert step in timeline, (step, timeline)
    assert page.is_hidden("#error")


def test_unpaced_scores_all_appear(page: Any) -> None:
    """Unpaced, the batch is over at once; every score still appears, with a rate."""
    page.fill("#reviews", "\n".join(REVIEWS))
    page.uncheck("#pace")
    page.click("#submit")
    page.wait_for_selector('body[data-state="succeeded"]', timeout=30_000)
    page.wait_for_selector('#bar[aria-valuenow="100"]', timeout=30_000)
    assert len(page.query_selector_all("#results tbody tr:not(.pending)")) == len(REVIEWS)
    assert page.inner_text("#summary") == "4 reviews: 2 positive, 2 negative, 0 neutral."
    assert "(paced)" not in page.inner_text("#rate")


def test_refusals_are_shown(page: Any) -> None:
    """A review over the size limit shows the service's 422 and names it; an empty form says so."""
    page.fill("#reviews", "Fine.\n" + "x" * 5_001)
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])", timeout=30_000)
    message = page.inner_text("#error")
    assert "HTTP 422" in message
    assert "reviews.1" in message
    failures = page.inner_text("#failures")
    assert failures.startswith("Review 2 (“xxx"), failures
    assert "at most 5000 characters" in failures
    assert page.is_hidden("#results")
    assert page.inner_text("#summary") == "No scores."

    page.fill("#reviews", "  \n ")
    page.click("#submit")
    page.wait_for_function(
        "document.getElementById('error').textContent.includes('Paste at least one review')"
    )
    assert page.is_hidden("#failures")


# -- /docs and /redoc without a network -------------------------------------------------


@pytest.fixture
def offline_tab(browser: Any, demo_app: Celery) -> Iterator[tuple[Any, str, list[str]]]:
    """A tab on the FastAPI service in which every request off this machine fails.

    Yields the tab, the service's base URL and the URLs the pages tried to reach elsewhere.
    """
    with serve(fastapi_app.create_app(demo_app)) as base_url:
        context = browser.new_context()
        elsewhere: list[str] = []

        def only_loopback(route: Any) -> None:
            if urlsplit(route.request.url).hostname in {"127.0.0.1", "localhost"}:
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", only_loopback)
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        yield tab, base_url, elsewhere
        context.close()
        assert not errors, errors


def test_swagger_ui_renders_offline(offline_tab: tuple[Any, str, list[str]]) -> None:
    """/docs draws every operation with no network: its script and styles come from the service."""
    tab, base_url, elsewhere = offline_tab
    tab.goto(f"{base_url}/docs")
    batch = tab.locator('.opblock-post .opblock-summary-path[data-path="/tasks/polarity:batch"]')
    batch.wait_for(state="visible", timeout=30_000)
    assert tab.locator(".opblock").count() >= 8
    assert tab.locator('.opblock-get [data-path="/tasks/health"]').is_visible()
    # The styles applied: an operation is laid out as Swagger UI's block, not bare text.
    assert tab.eval_on_selector(".opblock-post", "e => getComputedStyle(e).borderStyle") == "solid"
    assert elsewhere == []


def test_redoc_renders_offline(offline_tab: tuple[Any, str, list[str]]) -> None:
    """/redoc draws every operation with no network (and asks for no web fonts)."""
    tab, base_url, elsewhere = offline_tab
    tab.goto(f"{base_url}/redoc")
    heading = tab.locator("h2", has_text="Send task polarity:batch")
    heading.wait_for(state="visible", timeout=30_000)
    assert tab.locator("h2", has_text="Broker, backend and workers").is_visible()
    assert [url for url in elsewhere if url != REDOCLY_LOGO] == []
