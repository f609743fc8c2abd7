"""The copy workflow in a real browser: Compose (channel counter, variants), Result
(versions, their changes inline and side by side, export buttons) and Settings (the
glossary: edit, CSV import, names from the documents), against a real server whose model
is the test suite's OpenAI-compatible server."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from docx import Document as read_docx
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests import test_browser as shared
from tests import test_browser_refine as refine
from tests.conftest import ServerProcess
from tests.llm_server import FakeLLM
from tests.test_browser import Problems, register
from tests.test_browser_refine import _context, nav, process, upload_and_wait, wait_done

pytestmark = pytest.mark.browser

database_url = shared.database_url
playwright = shared.playwright
browser = shared.browser
page = shared.page
problems = shared.problems
# The model server and the app's server, set up as for the refine pages (one per module).
llm = refine.llm
server = refine.server

TEXT = "Our product protects your company from ransomware attacks. It runs on every laptop."
ANSWERS = [
    "Acme Shield stops ransomware before it spreads.",
    "Acme Shield protects every laptop from ransomware, the world-class way.",
    "Ransomware stops at Acme Shield.",
]
NOTES = (
    "LayoutParser reads scanned pages. Teams use LayoutParser with Qdrant every day. "
    "Our LayoutParser models are small, and Layoutparser is a common misspelling."
)


@pytest.fixture
def context(browser: Browser, server: ServerProcess) -> Iterator[BrowserContext]:
    ctx = _context(browser, server, accept_downloads=True)
    yield ctx
    ctx.close()


def test_compose_counter_variants_result_diff_and_exports(
    page: Page, llm: FakeLLM, problems: Problems
) -> None:
    register(page, email="copy.journey@example.com")
    nav(page, "Compose")
    counter = page.get_by_test_id("channel-count")
    expect(counter).to_be_hidden()
    page.get_by_test_id("channel").select_option("google-ads-description")
    page.get_by_test_id("marketing-text").fill(TEXT)
    expect(counter).to_be_visible()
    expect(counter).to_contain_text(f"{len(TEXT)} / 90 characters for Google Ads description")
    expect(counter).to_have_attribute("data-over", "false")
    expect(page.get_by_test_id("channel-guidance")).to_contain_text("90 characters at most")
    page.get_by_test_id("channel").select_option("google-ads-headline")
    expect(counter).to_have_attribute("data-over", "true")
    expect(counter).to_contain_text(f"{len(TEXT) - 30} over")
    page.get_by_test_id("channel").select_option("x-post")
    expect(counter).to_have_attribute("data-over", "false")
    page.get_by_test_id("variants").select_option("3")

    for answer in ANSWERS:
        llm.ok(answer, latency=0.3)
    process(page)
    wait_done(page)
    variants = page.get_by_test_id("variant")
    expect(variants).to_have_count(3)
    shown = sorted(variants.get_by_test_id("variant-text").all_inner_texts())
    assert shown == sorted(ANSWERS)
    expect(variants.get_by_test_id("variant-limit")).to_have_count(3)
    expect(variants.locator('[data-testid=variant-limit][data-within="true"]')).to_have_count(3)
    expect(page.get_by_test_id("submitted-length")).to_contain_text(f"{len(TEXT)} / 280")
    expect(page.get_by_test_id("variant-style")).to_have_count(0)  # no glossary yet

    first = variants.first
    diff = first.get_by_test_id("diff")
    expect(diff.get_by_test_id("diff-inline")).to_be_visible()
    expect(diff.get_by_test_id("diff-sides")).to_be_hidden()
    expect(diff.locator("del").first).to_be_visible()
    expect(diff.locator("ins").first).to_be_visible()
    diff.get_by_role("button", name="Side by side").click()
    expect(diff.get_by_test_id("diff-sides")).to_be_visible()
    expect(diff.get_by_test_id("diff-inline")).to_be_hidden()
    before = diff.get_by_test_id("diff-before").inner_text()
    assert " ".join(before.split()) == " ".join(TEXT.split())

    with page.expect_download() as info:
        page.get_by_test_id("export-docx").click()
    download = info.value
    assert re.fullmatch(r"refined-\d{4}-\d{2}-\d{2}-\d{4}\.docx", download.suggested_filename)
    doc = read_docx(io.BytesIO(Path(download.path()).read_bytes()))
    w = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
    assert doc.element.body.findall(f".//{w}ins") and doc.element.body.findall(f".//{w}del")
    with page.expect_download() as info:
        page.get_by_test_id("export-md").click()
    md = Path(info.value.path()).read_text()
    assert info.value.suggested_filename.endswith(".md") and "## Claim ledger" in md
    assert all(a in md for a in ANSWERS)
    assert problems.messages == []


def test_settings_glossary_edit_import_suggest_and_its_findings(
    page: Page, llm: FakeLLM, problems: Problems, tmp_path: Path
) -> None:
    register(page, email="copy.glossary@example.com")
    notes = tmp_path / "notes.txt"
    notes.write_text(NOTES)
    upload_and_wait(page, notes)

    nav(page, "Settings")
    section = page.get_by_test_id("glossary-section")
    suggestion = section.get_by_test_id("add-suggestion").filter(has_text="LayoutParser")
    expect(suggestion).to_contain_text("not Layoutparser")
    rows = section.get_by_test_id("glossary-row")
    rows.nth(0).get_by_test_id("glossary-use").fill("Acme Shield")
    rows.nth(0).get_by_test_id("glossary-avoid").fill("our product, the shield")
    section.get_by_test_id("glossary-banned").fill("world-class")
    section.get_by_test_id("glossary-save").click()
    expect(page.get_by_test_id("settings-flash")).to_have_text("Saved.")
    expect(rows.nth(0).get_by_test_id("glossary-avoid")).to_have_value("our product, the shield")

    # A hostile edit is refused, with the reason, and what was typed stays on the page.
    rows.nth(1).get_by_test_id("glossary-avoid").fill("orphan")
    section.get_by_test_id("glossary-save").click()
    expect(page.get_by_test_id("glossary-error")).to_contain_text("Row 2: write the word to use")
    expect(rows.nth(1).get_by_test_id("glossary-avoid")).to_have_value("orphan")

    nav(page, "Settings")
    csv = tmp_path / "glossary.csv"
    csv.write_text("use,avoid\nsign in,login;log-in\nbanned,synergy\n")
    section.get_by_test_id("csv-file").set_input_files(str(csv))
    expect(section.get_by_test_id("csv-text")).to_have_value(re.compile("sign in,login"))
    section.get_by_test_id("import-submit").click()
    expect(page.get_by_test_id("settings-flash")).to_have_text("Saved.")
    uses = section.get_by_test_id("glossary-use")
    expect(uses.nth(1)).to_have_value("sign in")
    expect(section.get_by_test_id("glossary-banned")).to_have_value("world-class\nsynergy")
    section.get_by_test_id("add-suggestion").filter(has_text="LayoutParser").click()
    expect(uses.nth(2)).to_have_value("LayoutParser")

    channels = page.get_by_test_id("channels-section")
    channels.get_by_test_id("channel-name").fill("Trade-show banner")
    channels.get_by_test_id("channel-max").fill("40")
    channels.get_by_test_id("channel-add").click()
    expect(page.get_by_test_id("custom-channel")).to_contain_text("Trade-show banner — 40")

    nav(page, "Compose")
    page.get_by_test_id("marketing-text").fill(TEXT)
    page.get_by_test_id("channel").select_option(label="Trade-show banner (40)")
    expect(page.get_by_test_id("channel-count")).to_contain_text(f"{len(TEXT)} / 40 characters")
    page.get_by_test_id("channel").select_option("")
    llm.ok(ANSWERS[1])
    process(page)
    wait_done(page)
    found = page.get_by_test_id("variant-style").get_by_test_id("style-finding")
    expect(found).to_have_count(1)
    expect(found.first).to_have_attribute("data-kind", "banned")
    expect(found.first).to_contain_text("world-class")
    expect(page.get_by_test_id("prompt-text")).to_contain_text(
        "Never use: “world-class”, “synergy”."
    )
    assert problems.messages == []
