"""A newcomer's first run in a real browser against a real server (evidence mode): many files
dropped at once go up in batches, each with its own progress and outcome; error banners can
be dismissed and clear on the next success; the sample library leads to a checked result;
the Result page fits a phone.

Set PITCHCRAFT_SCREENSHOTS=<dir> to keep a screenshot of each main page at 390x844 and
1280x800 there (docs/screenshots holds the ones the README shows).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests import test_browser as shared
from tests.conftest import ServerProcess
from tests.test_browser import DESKTOP, MOBILE, Problems, _is_post, goto, register

pytestmark = pytest.mark.browser

playwright = shared.playwright
browser = shared.browser

INDEXED_TIMEOUT = 180_000  # ms: the first ingestion loads the embedding model
DONE_TIMEOUT = 120_000
MAX_FILES = 10  # MAX_FILES_PER_UPLOAD on this server: 25 files make three batches


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shared.evidence_mode_server(
        tmp_path_factory.mktemp("first-run"),
        MAX_FILES_PER_UPLOAD=str(MAX_FILES),
        MAX_UPLOAD_MB="1",
    ) as proc:
        yield proc


def _page(browser: Browser, server: ServerProcess, viewport: dict[str, int]) -> Page:
    ctx = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    return ctx.new_page()


@pytest.fixture
def context(browser: Browser, server: ServerProcess) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP)  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


def open_documents(page: Page) -> None:
    goto(page, "/documents")
    expect(page.locator("body")).to_have_attribute("data-documents-ready", "true")


def rows(page: Page) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = page.get_by_test_id("doc-row").evaluate_all(
        """els => els.map(e => [e.dataset.filename, e.dataset.status,
            (e.querySelector('[data-testid=doc-error]') || {}).textContent || ''])"""
    )
    return [tuple(r) for r in found]  # type: ignore[misc]


def files(count: int) -> list[dict[str, object]]:
    """`count` small text files about different things, one empty and one too large."""
    out: list[dict[str, object]] = []
    for i in range(count - 2):
        text = (
            f"Note {i}: the Heron {i} router ships with {i + 2} ports and a {i + 10}-year warranty."
        )
        out.append({"name": f"note-{i:02d}.txt", "mimeType": "text/plain", "buffer": text.encode()})
    out.append({"name": "empty.txt", "mimeType": "text/plain", "buffer": b""})
    out.append({"name": "huge.txt", "mimeType": "text/plain", "buffer": b"x" * (1024 * 1024 + 1)})
    return out


def test_25_files_in_one_drop_go_up_in_batches(context: BrowserContext) -> None:
    page = context.new_page()
    problems = Problems()
    problems.watch(page)
    register(page, email="batches@example.com")
    open_documents(page)
    posts: list[int] = []
    page.on(
        "response", lambda r: posts.append(r.status) if _is_post(r, "/documents/upload") else None
    )
    dropped = files(25)
    page.get_by_test_id("file-input").set_input_files(dropped)  # type: ignore[arg-type]
    # The huge file is over MAX_UPLOAD_MB and is not sent; the other 24 go in 3 batches.
    expect(page.get_by_test_id("upload-status")).to_have_text(
        "Received 24 files, 1 not uploaded.", timeout=60_000
    )
    expect(page.get_by_test_id("upload-item")).to_have_count(25)
    huge = page.get_by_test_id("upload-item").filter(has_text="huge.txt")
    expect(huge).to_have_attribute("data-state", "failed")
    expect(huge).to_contain_text("Not uploaded: larger than the 1 MB limit")
    expect(page.get_by_test_id("upload-error")).to_contain_text("1 file was not uploaded")
    assert posts == [303, 303, 303], posts
    # Every file ends indexed or failed with a reason.
    page.wait_for_function(
        """() => {
            const rows = [...document.querySelectorAll('[data-testid=doc-row]')];
            const done = r => ['indexed', 'failed'].includes(r.dataset.status);
            return rows.length === 24 && rows.every(done);
        }""",
        timeout=INDEXED_TIMEOUT,
    )
    outcomes = {name: (status, error) for name, status, error in rows(page)}
    assert outcomes.pop("empty.txt")[1].strip().lower() == "empty document"
    assert {s for s, _ in outcomes.values()} == {"indexed"}, outcomes
    assert problems.messages == [], problems.messages


def test_a_failed_batch_does_not_stop_the_others_and_errors_go_away(
    context: BrowserContext,
) -> None:
    page = context.new_page()
    register(page, email="failures@example.com")
    open_documents(page)
    calls: list[str] = []

    def first_fails(route: Route) -> None:
        calls.append(route.request.url)
        if len(calls) == 1:
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route(re.compile(r".*/documents/upload$"), first_fails)
    page.get_by_test_id("file-input").set_input_files(files(14))  # type: ignore[arg-type]
    items = page.get_by_test_id("upload-item")
    expect(items).to_have_count(14)
    banner = page.get_by_test_id("upload-error")
    expect(banner).to_be_visible(timeout=60_000)
    expect(banner).to_contain_text("11 files were not uploaded")
    states = items.evaluate_all("els => els.map(e => e.dataset.state)")
    # The first batch (10 files) could not reach the server, the huge file was never sent;
    # the second batch went through all the same.
    assert states.count("failed") == 11 and states.count("received") == 3, states
    notes = page.get_by_test_id("upload-note").all_text_contents()
    assert "Not uploaded: the server could not be reached" in notes
    assert any("larger than the 1 MB limit" in n for n in notes)
    expect(page.get_by_test_id("doc-row")).to_have_count(3)
    # Dismissed by hand...
    banner.get_by_role("button", name="Dismiss this message").click()
    expect(banner).to_be_hidden()
    # ... or gone once the next action goes through.
    page.unroute(re.compile(r".*/documents/upload$"))
    page.route(re.compile(r".*/documents/upload$"), lambda route: route.abort("failed"))
    page.get_by_test_id("file-input").set_input_files(files(3)[:1])  # type: ignore[arg-type]
    expect(banner).to_be_visible(timeout=30_000)
    page.unroute(re.compile(r".*/documents/upload$"))
    page.get_by_test_id("search-input").fill("Heron router ports")
    with page.expect_response(lambda r: _is_post(r, "/documents/search"), timeout=90_000):
        page.get_by_test_id("search-input").press("Enter")
    expect(banner).to_be_hidden()
    # A server-rendered error banner can be dismissed too.
    goto(page, "/documents?error=no_files")
    server_banner = page.get_by_test_id("upload-flash-error-banner")
    expect(server_banner).to_be_visible()
    server_banner.get_by_role("button", name="Dismiss this message").click()
    expect(server_banner).to_have_count(0)


def _no_sideways_scroll(page: Page, what: str) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{what} scrolls sideways by {overflow}px"


def _shot(page: Page, name: str, viewport: dict[str, int], tmp_path: Path) -> None:
    folder = Path(os.environ.get("PITCHCRAFT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(viewport)  # type: ignore[arg-type]
    page.wait_for_timeout(200)
    _no_sideways_scroll(page, f"{name} at {viewport}")
    size = "phone" if viewport == MOBILE else "desktop"
    page.screenshot(path=str(folder / f"{name}-{size}.png"))


def test_samples_to_a_checked_result_on_a_phone(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    page = _page(browser, server, MOBILE)
    problems = Problems()
    problems.watch(page)
    register(page, email="newcomer@example.com")
    open_documents(page)
    for viewport in (MOBILE, DESKTOP):
        _shot(page, "documents-empty", viewport, tmp_path)
    page.set_viewport_size(MOBILE)  # type: ignore[arg-type]
    page.get_by_test_id("try-samples").click()
    expect(page.get_by_test_id("samples-flash")).to_be_visible()
    page.wait_for_function(
        """() => {
            const rows = [...document.querySelectorAll('[data-testid=doc-row]')];
            return rows.length === 4 && rows.every(r => r.dataset.status === 'indexed');
        }""",
        timeout=INDEXED_TIMEOUT,
    )
    for viewport in (MOBILE, DESKTOP):
        _shot(page, "documents", viewport, tmp_path)
    page.set_viewport_size(MOBILE)  # type: ignore[arg-type]
    page.get_by_test_id("try-example").click()
    expect(page.get_by_test_id("example-notice")).to_be_visible()
    expect(page.get_by_test_id("marketing-text")).to_contain_text("Growth plan costs $79")
    for viewport in (MOBILE, DESKTOP):
        _shot(page, "compose", viewport, tmp_path)
    page.set_viewport_size(MOBILE)  # type: ignore[arg-type]
    with page.expect_response(lambda r: _is_post(r, "/compose")):
        page.get_by_test_id("process").click()
    expect(page).to_have_url(re.compile(r"/results/[\w-]+$"))
    expect(page.get_by_test_id("result-live")).to_have_attribute(
        "data-status", "succeeded", timeout=DONE_TIMEOUT
    )

    # The phone layout: the prompt folded away, the sources within two screens.
    expect(page.get_by_test_id("prompt-details")).not_to_have_attribute("open", "")
    sources_top = page.locator("#sources-title").evaluate(
        "el => el.getBoundingClientRect().top + window.scrollY"
    )
    heights = page.locator("main section, main details").evaluate_all(
        "els => els.map(e => [e.getAttribute('aria-labelledby') || e.className, e.offsetHeight])"
    )
    assert sources_top < 2 * MOBILE["height"], f"the sources start at {sources_top}px: {heights}"
    _no_sideways_scroll(page, "the result on a phone")
    expect(page.locator("[data-testid=source][data-cited=true]").first).to_be_visible()
    _shot(page, "result", MOBILE, tmp_path)
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    page.reload()
    expect(page.get_by_test_id("result-live")).to_have_attribute("data-status", "succeeded")
    _shot(page, "result", DESKTOP, tmp_path)

    # A spreadsheet source opens on its rows.
    prices = page.locator("[data-testid=source]", has_text="beacon-prices.xlsx").first
    prices.locator("a.source-label").click()
    expect(page.get_by_test_id("rows-table")).to_be_visible()
    expect(page.get_by_test_id("viewer-label")).to_contain_text('beacon-prices.xlsx, sheet "')
    for viewport in (MOBILE, DESKTOP):
        _shot(page, "source", viewport, tmp_path)
    goto(page, "/history")
    for viewport in (MOBILE, DESKTOP):
        _shot(page, "history", viewport, tmp_path)
    assert problems.messages == [], problems.messages
    page.context.close()
