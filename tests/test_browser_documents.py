"""The Documents page in a real browser against a real server: upload, live status,
search, delete, failures, drag and drop, and the layout at desktop and phone sizes.

The launch helpers and fixtures are those of tests/test_browser.py. The first ingestion
on a fresh server loads the embedding model, so reaching "indexed" gets a generous timeout.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Locator,
    Page,
    Request,
    ViewportSize,
    expect,
)

from tests import test_browser as shared
from tests.conftest import CORPUS, ServerProcess
from tests.test_browser import (
    DESKTOP,
    EMAIL,
    LONG_EMAIL,
    MOBILE,
    Problems,
    _is_post,
    goto,
    path_re,
    register,
    sign_in,
)

pytestmark = pytest.mark.browser

# The fixtures of the sign-in browser tests, found by pytest under these names.
database_url = shared.database_url
playwright = shared.playwright
browser = shared.browser
context = shared.context
page = shared.page
problems = shared.problems
server = shared.server

TABLET = {"width": 768, "height": 1024}
INDEXED_TIMEOUT = 120_000  # ms: the first ingestion loads the embedding model
FAKE_TEXT = CORPUS / "text" / "fake-text.txt"
FAKE_MEMO = CORPUS / "pdf" / "fake-memo.pdf"
LONG_NAME = (
    "Q3 2024 Northwind Industries Enterprise Zero-Trust Network Access Product Brochure"
    " FINAL v7 (approved by legal, do not circulate externally).pdf"
)
LONG_REASON = (
    "could not be read: the reader stopped (exit code 137) after using more memory than"
    " PARSE_MEMORY_MB allows; split the document into smaller files or ask an administrator"
    " to raise the limit"
)


@pytest.fixture
def idle_server(
    server_env: dict[str, str], start_server: Callable[[dict[str, str]], ServerProcess]
) -> ServerProcess:
    """A server without its in-process worker: uploads stay queued, so the page keeps
    polling and rows can be put in any state deterministically."""
    return start_server({**server_env, "WORKER_IN_PROCESS": "false"})


@pytest.fixture
def idle_context(browser: Browser, idle_server: ServerProcess) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=idle_server.url, viewport=size(DESKTOP))
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


# --- helpers --------------------------------------------------------------------------


def size(viewport: dict[str, int]) -> ViewportSize:
    return {"width": viewport["width"], "height": viewport["height"]}


def open_documents(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Documents").click()
    expect(page).to_have_url(path_re("/documents"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Documents")
    # The page's script has attached its handlers (the heading shows before it runs).
    expect(page.locator("body")).to_have_attribute("data-documents-ready", "true")


def rows(page: Page) -> Locator:
    return page.get_by_test_id("doc-row")


def row(page: Page, filename: str) -> Locator:
    return page.locator(f'[data-testid=doc-row][data-filename="{filename}"]')


def statuses(page: Page) -> list[str]:
    found: list[str] = rows(page).evaluate_all("els => els.map(e => e.dataset.status)")
    return found


def upload(page: Page, files: list[Path] | list[dict[str, object]], count: int) -> None:
    """Choose files in the file input; the page uploads them and shows the new list."""
    with page.expect_response(lambda r: _is_post(r, "/documents/upload")) as info:
        page.get_by_test_id("file-input").set_input_files(files)  # type: ignore[arg-type]
    assert info.value.status == 303, f"the upload answered {info.value.status}"
    noun = "file" if count == 1 else "files"
    expect(page.get_by_test_id("upload-flash")).to_contain_text(f"Received {count} {noun}.")
    expect(rows(page)).to_have_count(count)


def search(page: Page, phrase: str) -> Locator:
    page.get_by_test_id("search-input").fill(phrase)
    with page.expect_response(lambda r: _is_post(r, "/documents/search")):
        page.get_by_test_id("search-input").press("Enter")
    expect(page.locator("#search-results")).to_contain_text(phrase)
    return page.get_by_test_id("search-result")


def count_polls(page: Page) -> list[str]:
    polls: list[str] = []

    def seen(request: Request) -> None:
        if request.method == "GET" and request.url.split("?")[0].endswith("/documents/table"):
            polls.append(request.url)

    page.on("request", seen)
    return polls


def set_rows(server: ServerProcess, filename: str, **values: object) -> None:
    """Put a document in a given state directly in the database (idle server only)."""
    db = Path(server.env["DATA_DIR"]) / "db" / "pitchcraft.db"
    columns = ", ".join(f"{k} = ?" for k in values)
    with sqlite3.connect(db, timeout=10) as conn:
        done = conn.execute(
            f"UPDATE documents SET {columns} WHERE filename = ?",  # noqa: S608 (test-made names)
            [*values.values(), filename],
        )
        assert done.rowcount == 1, f"no document named {filename}"
    conn.close()


# --- the main journey -----------------------------------------------------------------


def test_upload_two_files_watch_them_index_search_and_delete(
    page: Page, problems: Problems
) -> None:
    register(page)
    open_documents(page)
    expect(page.get_by_test_id("no-documents")).to_be_visible()
    polls = count_polls(page)

    upload(page, [FAKE_TEXT, FAKE_MEMO], 2)
    expect(row(page, "fake-text.txt")).to_have_count(1)
    expect(row(page, "fake-memo.pdf")).to_have_count(1)
    first_seen = statuses(page)
    # From here on the page must update itself: any reload would drop this marker.
    page.evaluate("window.__noReload = true")

    for name in ("fake-text.txt", "fake-memo.pdf"):
        expect(row(page, name)).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)
        expect(row(page, name).get_by_test_id("doc-status")).to_contain_text("Ready")
    assert page.evaluate("window.__noReload === true"), "the page reloaded instead of polling"
    if set(first_seen) != {"indexed"}:
        assert polls, f"rows started as {first_seen} but the page never polled"
    # Nothing is left to wait for, so the polling stops.
    expect(page.get_by_test_id("documents-table")).to_have_attribute("data-busy", "false")
    page.wait_for_timeout(500)
    settled = len(polls)
    page.wait_for_timeout(2_500)
    assert len(polls) == settled, "the page kept polling after every file was ready"
    # Screen readers hear the outcome once, from a status region outside the table.
    if polls:
        expect(page.locator("#documents-status")).to_have_text("2 documents: 2 ready.")

    # Pages and passages: a PDF has pages, plain text has none; both have passages.
    memo, text = row(page, "fake-memo.pdf"), row(page, "fake-text.txt")
    expect(memo.get_by_test_id("doc-pages")).to_have_text("1")
    expect(text.get_by_test_id("doc-pages")).to_have_text("—")
    for r in (memo, text):
        expect(r.get_by_test_id("doc-chunks")).to_have_text(re.compile(r"^[1-9]\d*$"))
    expect(text).to_contain_text("169 bytes")
    expect(memo).to_contain_text("PDF")

    # Search finds a phrase from each file, named by its file.
    results = search(page, "Hamburgers are delicious")
    expect(results.first.get_by_test_id("result-file")).to_have_text("fake-text.txt")
    expect(results.first).to_contain_text("Hamburgers are delicious")
    results = search(page, "bottles of water and blankets delivered")
    expect(results.first.get_by_test_id("result-file")).to_have_text("fake-memo.pdf")
    expect(results.first).to_contain_text("Page 1")
    expect(results.first).to_contain_text("10,000 blankets")
    # Nothing relevant: the page says so instead of listing the nearest noise.
    results = search(page, "blorf snargle wizzpop klemth")
    expect(page.get_by_test_id("no-match")).to_have_text(
        "Nothing in your documents speaks to this."
    )
    expect(results).to_have_count(0)

    # Delete asks first: saying no keeps the file, saying yes removes it.
    answers: list[bool] = [False, True]
    asked: list[str] = []

    def answer(dialog: Dialog) -> None:
        asked.append(dialog.message)
        if answers.pop(0):
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    delete = memo.get_by_role("button", name="Delete fake-memo.pdf")
    delete.click()
    page.wait_for_timeout(500)
    expect(rows(page)).to_have_count(2)
    with page.expect_response(lambda r: _is_post(r, "/delete")):
        delete.click()
    expect(rows(page)).to_have_count(1)
    expect(row(page, "fake-memo.pdf")).to_have_count(0)
    expect(row(page, "fake-text.txt")).to_have_attribute("data-status", "indexed")
    assert asked == ["Delete fake-memo.pdf? This cannot be undone."] * 2, asked
    # The button that had focus is gone; focus continues from the list's heading.
    expect(page.locator("#files-title")).to_be_focused()

    # The server agrees after a reload, and search no longer finds the deleted file.
    page.reload()
    expect(rows(page)).to_have_count(1)
    expect(row(page, "fake-text.txt")).to_have_count(1)
    # The memo's passage is gone, and the file left says nothing about it.
    results = search(page, "bottles of water and blankets delivered")
    expect(page.get_by_test_id("no-match")).to_be_visible()
    expect(results).to_have_count(0)

    assert problems.messages == [], problems.messages


def test_files_that_cannot_be_read_show_failed_and_why(page: Page, problems: Problems) -> None:
    register(page)
    open_documents(page)
    upload(page, [CORPUS / "text" / "empty.txt", CORPUS / "pdf" / "password.pdf"], 2)

    expected = {"empty.txt": "empty document", "password.pdf": "password-protected"}
    for name, reason in expected.items():
        r = row(page, name)
        expect(r).to_have_attribute("data-status", "failed", timeout=INDEXED_TIMEOUT)
        expect(r.get_by_test_id("doc-status")).to_contain_text("Failed")
        expect(r.get_by_test_id("doc-error")).to_have_text(re.compile(reason, re.IGNORECASE))
        expect(r.get_by_test_id("doc-error")).to_be_visible()
        expect(r.get_by_test_id("doc-chunks")).to_have_text("—")
    # A failed file can still be removed.
    page.once("dialog", lambda d: d.accept())
    row(page, "empty.txt").get_by_role("button", name="Delete empty.txt").click()
    expect(rows(page)).to_have_count(1)
    assert problems.messages == [], problems.messages


def test_drag_and_drop_uploads_a_file(page: Page, problems: Problems) -> None:
    """Headless chromium cannot drag a file from the desktop, but the page only sees DOM
    drag events carrying a DataTransfer, and those can be built and dispatched."""
    register(page)
    open_documents(page)
    zone = page.get_by_test_id("upload-form")

    # A file dropped beside the card must not make the browser open it instead of the page.
    missed = page.evaluate(
        """() => {
            const dt = new DataTransfer();
            dt.items.add(new File(["x"], "stray.txt", {type: "text/plain"}));
            const e = new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: dt});
            document.querySelector("h1").dispatchEvent(e);
            return e.defaultPrevented;
        }"""
    )
    assert missed is True, "a drop outside the card would navigate away from the page"
    expect(rows(page)).to_have_count(0)

    data = list(FAKE_TEXT.read_bytes())
    with page.expect_response(lambda r: _is_post(r, "/documents/upload")) as info:
        highlighted = zone.evaluate(
            """(zone, [name, bytes]) => {
                const dt = new DataTransfer();
                dt.items.add(new File([new Uint8Array(bytes)], name, {type: "text/plain"}));
                const fire = (type) => zone.dispatchEvent(
                    new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
                fire("dragenter");
                fire("dragover");
                const on = zone.classList.contains("dragging");
                fire("drop");
                return on && !zone.classList.contains("dragging");
            }""",
            ["dropped notes.txt", data],
        )
    assert highlighted, "the card did not highlight while a file was dragged over it"
    assert info.value.status == 303
    expect(page.get_by_test_id("upload-flash")).to_contain_text("Received 1 file.")
    dropped = row(page, "dropped notes.txt")
    expect(dropped).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)
    expect(dropped).to_contain_text("169 bytes")
    assert problems.messages == [], problems.messages


# --- without a worker: states, focus, layout ------------------------------------------


def test_live_updates_keep_keyboard_focus(
    idle_context: BrowserContext, idle_server: ServerProcess
) -> None:
    page = idle_context.new_page()
    problems = Problems()
    problems.watch(page)
    register(page)
    open_documents(page)
    upload(page, [FAKE_TEXT, FAKE_MEMO], 2)
    expect(rows(page).first).to_have_attribute("data-status", "queued")

    button = row(page, "fake-memo.pdf").get_by_test_id("delete-doc")
    button.focus()
    focused_id = button.get_attribute("id")
    assert focused_id
    for _ in range(2):  # two live updates replace every row, this button among them
        with page.expect_response(lambda r: r.url.endswith("/documents/table")):
            pass
    page.wait_for_timeout(200)  # let htmx settle
    expect(page.locator(f"#{focused_id}")).to_be_focused()
    # A status change arrives through the polling and is announced once.
    set_rows(idle_server, "fake-text.txt", status="indexed", chunks=3, progress=1.0)
    expect(row(page, "fake-text.txt")).to_have_attribute("data-status", "indexed")
    expect(page.locator("#documents-status")).to_have_text("2 documents: 1 ready, 1 queued.")
    expect(page.locator(f"#{focused_id}")).to_be_focused()
    assert problems.messages == [], problems.messages


def test_an_ended_session_sends_the_page_to_sign_in(
    idle_context: BrowserContext, idle_server: ServerProcess
) -> None:
    """Search and the live list are fragments: when the session is gone they must move the
    whole page to the sign-in form, not paste the sign-in form into the page."""
    page = idle_context.new_page()
    register(page)
    open_documents(page)
    idle_context.clear_cookies()
    page.get_by_test_id("search-input").fill("anything")
    page.get_by_test_id("search-input").press("Enter")
    expect(page).to_have_url(re.compile(r"/login\?next=/documents$"))
    expect(page.get_by_role("button", name="Sign in")).to_have_count(1)

    assert sign_in(page).status == 303
    expect(page).to_have_url(path_re("/documents"))
    upload(page, [FAKE_TEXT], 1)
    expect(page.get_by_test_id("documents-table")).to_have_attribute("data-busy", "true")
    idle_context.clear_cookies()
    # No click: the next poll notices.
    expect(page).to_have_url(re.compile(r"/login\?next=/documents$"))
    expect(page.get_by_role("button", name="Sign in")).to_have_count(1)


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET, MOBILE], ids=["desktop", "tablet", "mobile"])
def test_documents_page_fits_the_screen(
    browser: Browser, idle_server: ServerProcess, viewport: dict[str, int], tmp_path: Path
) -> None:
    """Every state a row can be in, with long names and a long reason, at both sizes."""
    ctx = browser.new_context(base_url=idle_server.url, viewport=size(viewport))
    try:
        page = ctx.new_page()
        problems = Problems()
        problems.watch(page)
        register(page, email=LONG_EMAIL)
        open_documents(page)
        page.screenshot(path=str(tmp_path / "documents-empty.png"), full_page=True)

        def payload(name: str, source: Path) -> dict[str, object]:
            data = source.read_bytes()
            if data:  # a comment after the end: one PDF per name, not duplicates of one
                data += f"\n% {name}\n".encode()
            return {"name": name, "mimeType": "application/octet-stream", "buffer": data}

        files = [
            payload(LONG_NAME, FAKE_MEMO),
            payload("processing-deck.pdf", FAKE_MEMO),
            payload("ready-brochure.pdf", FAKE_MEMO),
            payload(
                "NorthwindIndustries_ZeroTrustNetworkAccess_Whitepaper_2024_FINAL.pdf", FAKE_MEMO
            ),
            payload("empty.txt", CORPUS / "text" / "empty.txt"),
        ]
        upload(page, files, 5)
        set_rows(idle_server, "processing-deck.pdf", status="processing", progress=0.42, pages=12)
        set_rows(
            idle_server, "ready-brochure.pdf", status="indexed", progress=1.0, pages=4, chunks=37
        )
        set_rows(
            idle_server,
            "NorthwindIndustries_ZeroTrustNetworkAccess_Whitepaper_2024_FINAL.pdf",
            status="failed",
            error=LONG_REASON,
            notes="OCR used on 2 pages",
        )
        # The live polling brings the new states in.
        expect(row(page, "processing-deck.pdf")).to_have_attribute("data-status", "processing")
        expect(row(page, "ready-brochure.pdf")).to_have_attribute("data-status", "indexed")
        expect(page.get_by_test_id("doc-error")).to_have_count(2)
        expect(row(page, "processing-deck.pdf").get_by_role("progressbar")).to_have_attribute(
            "value", "42"
        )

        # The menu, the account button and the brand never sit on top of each other.
        nav = page.get_by_role("navigation", name="Main").get_by_role("link", name="Documents")
        boxes = [
            page.get_by_role("link", name="Pitchcraft").bounding_box(),
            nav.bounding_box(),
            page.get_by_test_id("sign-out").bounding_box(),
        ]
        for left, right in pairwise(boxes):
            assert left is not None and right is not None
            side_by_side = left["x"] + left["width"] <= right["x"]
            stacked = (
                left["y"] + left["height"] <= right["y"]
                or right["y"] + right["height"] <= left["y"]
            )
            assert side_by_side or stacked, f"the top bar overlaps itself at {viewport}"

        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {viewport}"
        card = page.locator("#documents-table").bounding_box()
        assert card is not None
        for i in range(rows(page).count()):
            r = rows(page).nth(i)
            name, delete = r.get_by_test_id("doc-name"), r.get_by_test_id("delete-doc")
            expect(name).to_be_visible()
            expect(delete).to_be_visible()
            nb, db = name.bounding_box(), delete.bounding_box()
            assert nb is not None and db is not None
            # Inside the card, and the name never runs under the Delete button.
            assert (
                nb["x"] >= card["x"] - 1 and db["x"] + db["width"] <= card["x"] + card["width"] + 1
            )
            assert nb["x"] + nb["width"] <= db["x"] or nb["y"] >= db["y"] + db["height"], (
                f"row {i}: the file name overlaps the Delete button at {viewport}"
            )
            # Long words wrap instead of being cut off.
            clipped = name.evaluate("e => e.scrollWidth > e.clientWidth + 1")
            assert not clipped, f"row {i}: the file name is cut off at {viewport}"
        reason = row(page, "NorthwindIndustries_ZeroTrustNetworkAccess_Whitepaper_2024_FINAL.pdf")
        expect(reason.get_by_test_id("doc-error")).to_contain_text("Could not be read")
        expect(reason.get_by_test_id("doc-notes")).to_have_text("OCR used on 2 pages")
        page.screenshot(path=str(tmp_path / "documents-states.png"), full_page=True)
        assert problems.messages == [], problems.messages
    finally:
        ctx.close()


# --- signed out, and without JavaScript -----------------------------------------------


def test_signed_out_documents_page_asks_to_sign_in_and_comes_back(page: Page) -> None:
    register(page)
    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(path_re("/login"))
    goto(page, "/documents")
    expect(page).to_have_url(re.compile(r"/login\?next=/documents$"))
    assert sign_in(page).status == 303
    expect(page).to_have_url(path_re("/documents"))
    expect(page.get_by_test_id("no-documents")).to_be_visible()


def test_search_without_javascript_answers_with_the_whole_page(
    browser: Browser, server: ServerProcess
) -> None:
    ctx = browser.new_context(
        base_url=server.url, viewport=size(DESKTOP), java_script_enabled=False
    )
    try:
        page = ctx.new_page()
        register(page, email=EMAIL)
        goto(page, "/documents")
        page.get_by_test_id("search-input").fill("zero trust")
        page.get_by_test_id("search-button").click()
        expect(page).to_have_url(path_re("/documents/search"))
        expect(page.get_by_role("heading", level=1)).to_have_text("Documents")
        expect(page.get_by_test_id("no-results")).to_contain_text("zero trust")
        expect(page.get_by_test_id("search-input")).to_have_value("zero trust")
    finally:
        ctx.close()


def test_upload_without_javascript(browser: Browser, server: ServerProcess) -> None:
    """The plain form carries the CSRF token only in its body, as the field before the
    file (asgi-csrf's own multipart check was a 500 with python-multipart 0.0.26+)."""
    ctx = browser.new_context(
        base_url=server.url, viewport=size(DESKTOP), java_script_enabled=False
    )
    try:
        page = ctx.new_page()
        register(page, email=EMAIL)
        goto(page, "/documents")
        page.get_by_test_id("file-input").set_input_files([FAKE_TEXT])
        with page.expect_response(lambda r: _is_post(r, "/documents/upload")) as info:
            page.get_by_role("button", name="Upload").click()
        assert info.value.status == 303, f"the plain form upload answered {info.value.status}"
        expect(page.get_by_test_id("upload-flash")).to_contain_text("Received 1 file.")
        expect(row(page, "fake-text.txt")).to_have_count(1)
    finally:
        ctx.close()


def test_the_address_cannot_put_words_on_the_page(page: Page, problems: Problems) -> None:
    """The upload's outcome comes back in the address; only known codes become text."""
    register(page)
    goto(page, "/documents?error=Your+account+is+locked.+Call+555-0100")
    expect(page.get_by_test_id("upload-flash-error")).to_have_text(
        "The upload did not go through. Please try again."
    )
    # The page tidies its address, so a reload does not repeat an old message.
    expect(page).to_have_url(re.compile(r"/documents$"))
    page.reload()
    expect(page.get_by_test_id("upload-flash-error")).to_have_count(0)

    goto(page, "/documents?error=no_files")
    expect(page.get_by_test_id("upload-flash-error")).to_contain_text("No files were received")
    goto(page, "/documents?uploaded=lots")
    expect(page.get_by_test_id("upload-flash")).to_have_count(0)
    goto(page, "/documents?uploaded=3")
    expect(page.get_by_test_id("upload-flash")).to_contain_text("Received 3 files.")
    assert problems.messages == [], problems.messages
