"""The source viewer in a real browser against a real server (evidence mode, real corpus files,
the real embedding model): from a result's source to its page with the passage highlighted,
to a Word document's passage among its neighbours, and the original downloaded; on a desktop
screen and on a phone 390 pixels wide."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from pitchcraft.documents import preview as pv
from tests import test_browser as shared
from tests.conftest import CORPUS, ServerProcess
from tests.test_browser import DESKTOP, MOBILE, Problems, _is_post, goto, register

pytestmark = pytest.mark.browser

database_url = shared.database_url
playwright = shared.playwright
browser = shared.browser

INDEXED_TIMEOUT = 120_000  # ms: the server's first ingestion loads the embedding model
MEMO = CORPUS / "pdf/fake-memo.pdf"
HANDBOOK = CORPUS / "docx/handbook-1p.docx"
TEXT = (
    "We delivered 20,000 bottles of water and 10,000 blankets with 3 trucks in 15 hours. "
    "The standing trustee has a fiduciary responsibility to the bankruptcy estate."
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Evidence mode: no model needed for sources.
    with shared.evidence_mode_server(tmp_path_factory.mktemp("sources-browser")) as proc:
        yield proc


def upload_and_wait(page: Page, path: Path) -> None:
    goto(page, "/documents")
    expect(page.locator("body")).to_have_attribute("data-documents-ready", "true")
    with page.expect_response(lambda r: _is_post(r, "/documents/upload")):
        page.get_by_test_id("file-input").set_input_files(str(path))
    row = page.locator(f'[data-testid=doc-row][data-filename="{path.name}"]')
    expect(row).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)


def run_job(page: Page) -> str:
    goto(page, "/compose")
    page.get_by_test_id("marketing-text").fill(TEXT)
    with page.expect_response(lambda r: _is_post(r, "/compose")):
        page.get_by_test_id("process").click()
    expect(page).to_have_url(re.compile(r"/results/[\w-]+$"))
    expect(page.get_by_test_id("result-live")).to_have_attribute(
        "data-status", "succeeded", timeout=60_000
    )
    return page.url.rsplit("/", 1)[1]


def no_sideways_scroll(page: Page, what: str) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{what} scrolls sideways by {overflow}px"


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
def test_open_a_source_where_it_stands_and_download_it(
    browser: Browser, server: ServerProcess, viewport: dict[str, int], tmp_path: Path
) -> None:
    ctx = browser.new_context(base_url=server.url, viewport=viewport, accept_downloads=True)  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    try:
        page = ctx.new_page()
        problems = Problems()
        problems.watch(page)
        register(page, email=f"sources.{viewport['width']}@example.com")
        upload_and_wait(page, MEMO)
        upload_and_wait(page, HANDBOOK)
        job_id = run_job(page)

        # The PDF source: its label on the result page opens the viewer.
        page.get_by_test_id("sources").get_by_role(
            "link", name=f"{MEMO.name}, page 1"
        ).first.click()
        expect(page).to_have_url(re.compile(rf"/results/{job_id}/sources/\d+$"))
        expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"Source \[\d+\]"))
        expect(page.get_by_test_id("viewer-label")).to_have_text(f"{MEMO.name}, page 1")
        image = page.get_by_test_id("page-image")
        expect(image).to_be_visible()
        expect(image).to_have_js_property("naturalWidth", 1200)  # loaded, 1200 wide
        box = image.bounding_box()
        assert box is not None and box["width"] <= viewport["width"]
        # What the person sees: the page with the highlight colour on it.
        shot = Image.open(io.BytesIO(image.screenshot())).convert("RGB")
        assert pv.highlight_mask(shot).sum() > 0.02 * shot.width * shot.height
        expect(page.get_by_test_id("passage")).to_contain_text("A total of 3 trucks")
        no_sideways_scroll(page, f"the PDF viewer at {viewport}")
        page.screenshot(path=str(tmp_path / "viewer-pdf.png"), full_page=True)

        # The original, downloaded with the page's own session.
        with page.expect_download() as info:
            page.get_by_test_id("download").click()
        download = info.value
        assert download.suggested_filename == MEMO.name
        assert Path(download.path()).read_bytes() == MEMO.read_bytes()

        # A quote from the passage: marked in the text, and the picture follows it.
        viewer = page.url
        goto(page, viewer + "?quote=A+total+of+3+trucks")
        expect(page.locator(".passage-text mark")).to_have_text("A total of 3 trucks")
        expect(image).to_have_attribute("src", re.compile(r"page\.png\?quote=A\+total"))

        # Back to the result: the ledger's quote opens the viewer with that quote marked.
        page.get_by_test_id("back-to-result").click()
        expect(page).to_have_url(re.compile(rf"/results/{job_id}#source-\d+$"))
        delivered = page.get_by_test_id("ledger").get_by_test_id("claim").first
        expect(delivered).to_have_attribute("data-verdict", "supported")
        if viewport["width"] <= 640:
            # On a phone each claim starts folded to its sentence and verdict.
            expect(delivered.get_by_test_id("claim-quote").first).to_be_hidden()
            delivered.get_by_test_id("claim-toggle").click()
        quote = delivered.get_by_test_id("claim-quote").first
        quoted = (quote.inner_text().split("”")[0]).lstrip("“").strip()
        assert "20,000 bottles" in quoted
        quote.get_by_test_id("quote-source").click()
        expect(page).to_have_url(re.compile(rf"/results/{job_id}/sources/\d+\?quote="))
        expect(page.locator(".passage-text mark")).to_have_text(quoted)
        page.go_back()

        # The Word document's source: its passage in context.
        page.get_by_test_id("sources").get_by_role("link", name=HANDBOOK.name).first.click()
        expect(page.get_by_test_id("viewer-label")).to_have_text(HANDBOOK.name)
        expect(page.get_by_test_id("page-image")).to_have_count(0)
        passages = page.get_by_test_id("context-passage")
        assert passages.count() >= 2
        focus = page.locator("[data-testid=context-passage][data-focus=true]")
        expect(focus).to_have_count(1)
        expect(focus.locator("mark")).to_be_visible()
        chunks = [int(c) for c in passages.evaluate_all("els => els.map(e => e.dataset.chunk)")]
        assert chunks == list(range(chunks[0], chunks[0] + len(chunks)))
        no_sideways_scroll(page, f"the Word viewer at {viewport}")
        page.screenshot(path=str(tmp_path / "viewer-docx.png"), full_page=True)
        assert problems.messages == [], problems.messages
    finally:
        ctx.close()


def test_another_users_source_is_a_404_page(browser: Browser, server: ServerProcess) -> None:
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP)
    try:
        page = ctx.new_page()
        register(page, email="owner.sources@example.com")
        upload_and_wait(page, MEMO)
        job_id = run_job(page)
        page.get_by_test_id("sources").get_by_role(
            "link", name=f"{MEMO.name}, page 1"
        ).first.click()
        viewer = page.url
        doc_link = page.get_by_test_id("download").get_attribute("href")
        assert doc_link and doc_link.endswith("/file")
        ctx.clear_cookies()
        register(page, email="stranger.sources@example.com")
        for path in (viewer, f"/results/{job_id}/sources/1/page.png", doc_link):
            response = goto(page, path)
            assert response.status == 404, (path, response.status)
            expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
            expect(page.locator("body")).not_to_contain_text("Mallori")
    finally:
        ctx.close()
