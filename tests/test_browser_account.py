"""The Account page and the Documents page's notes about sessions, in a real browser against
a real server: password change signing the other browser out, export, deletion behind a
typed confirmation; the note of documents cleared at sign-in (once), and duplicates."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests import test_browser as shared
from tests.conftest import CORPUS, ServerProcess
from tests.test_browser import (
    DESKTOP,
    EMAIL,
    PASSWORD,
    Problems,
    _is_post,
    goto,
    path_re,
    register,
    sign_in,
    sign_out,
)

pytestmark = pytest.mark.browser

database_url = shared.database_url
playwright = shared.playwright
browser = shared.browser
context = shared.context
page = shared.page
problems = shared.problems
server = shared.server  # CLEAR_DOCUMENTS_ON_LOGIN: the default, true

INDEXED_TIMEOUT = 120_000  # ms: the first ingestion loads the embedding model
FAKE_TEXT = CORPUS / "text" / "fake-text.txt"
NEW_PASSWORD = "a new and longer one 7"


def new_context(browser: Browser, server: ServerProcess) -> BrowserContext:
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP, accept_downloads=True)
    ctx.set_default_timeout(10_000)
    return ctx


def open_account(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account").click()
    expect(page).to_have_url(path_re("/account"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Account")


def upload_on_documents(page: Page, *, received: int | None) -> None:
    with page.expect_response(lambda r: _is_post(r, "/documents/upload")) as info:
        page.get_by_test_id("file-input").set_input_files([FAKE_TEXT])
    assert info.value.status == 303
    if received:
        expect(page.get_by_test_id("upload-flash")).to_contain_text(f"Received {received} file")


def test_account_page_password_export_and_delete(
    page: Page, browser: Browser, server: ServerProcess, problems: Problems
) -> None:
    register(page)
    goto(page, "/documents")
    upload_on_documents(page, received=1)
    open_account(page)
    expect(page.get_by_test_id("account-email")).to_have_text(EMAIL)
    expect(page.get_by_test_id("account-subscribed")).to_have_text("Not subscribed")
    expect(page.get_by_test_id("account-documents")).to_have_text("1")

    # The same account in another browser.
    other = new_context(browser, server)
    try:
        elsewhere = other.new_page()
        goto(elsewhere, "/login")
        assert sign_in(elsewhere).status == 303
        goto(elsewhere, "/account")
        expect(elsewhere.get_by_test_id("account-email")).to_have_text(EMAIL)

        # A wrong current password: said so, nothing changes.
        page.get_by_label("Current password").fill("not my password")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password, again").fill(NEW_PASSWORD)
        page.get_by_test_id("change-password").click()
        expect(page.get_by_test_id("password-error")).to_have_text("The password is not correct.")
        goto(elsewhere, "/account")
        expect(elsewhere).to_have_url(path_re("/account"))

        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_label("New password, again").fill(NEW_PASSWORD)
        page.get_by_test_id("change-password").click()
        expect(page.get_by_test_id("password-changed")).to_be_visible()
        # The other browser is signed out; this one is not.
        goto(elsewhere, "/account")
        expect(elsewhere).to_have_url(re.compile(r"/login\?next=/account$"))
    finally:
        other.close()

    with page.expect_download() as info:
        page.get_by_test_id("export-link").click()
    path = info.value.path()
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as zf:
        listed = json.loads(zf.read("documents.json"))
        assert [d["filename"] for d in listed] == [FAKE_TEXT.name]
        assert zf.read(listed[0]["file"]) == FAKE_TEXT.read_bytes()

    # Deleting asks for the email, typed, and the password.
    button = page.get_by_test_id("delete-account")
    expect(button).to_be_disabled()
    page.get_by_test_id("delete-confirm").fill("someone@else.com")
    expect(button).to_be_disabled()
    page.get_by_test_id("delete-confirm").fill(EMAIL)
    expect(button).to_be_enabled()
    page.get_by_test_id("delete-password").fill("wrong password")
    button.click()
    expect(page.get_by_test_id("delete-error")).to_have_text("The password is not correct.")
    expect(page.get_by_test_id("account-documents")).to_have_text("1")
    page.get_by_test_id("delete-password").fill(NEW_PASSWORD)
    expect(button).to_be_enabled()  # the typed email was kept
    button.click()
    expect(page).to_have_url(re.compile(r"/login\?deleted=1$"))
    expect(page.get_by_test_id("account-deleted")).to_be_visible()
    assert sign_in(page, password=NEW_PASSWORD).status == 401
    assert problems.messages == [], problems.messages


def test_documents_page_says_once_what_sign_in_cleared_and_names_duplicates(
    page: Page, context: BrowserContext, problems: Problems
) -> None:
    register(page)
    goto(page, "/documents")
    upload_on_documents(page, received=1)
    row = page.locator(f'[data-testid=doc-row][data-filename="{FAKE_TEXT.name}"]')
    expect(row).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)

    # The same file again: not added, and said so in words.
    upload_on_documents(page, received=None)
    expect(page.get_by_test_id("duplicate-flash")).to_have_text(
        f"A file you added is already in your library as “{FAKE_TEXT.name}”; "
        "it was not added again."
    )
    expect(page.get_by_test_id("upload-flash")).to_have_count(0)
    expect(page.get_by_test_id("doc-row")).to_have_count(1)

    # Signing out ends the session; the next sign-in clears its document, and says why.
    sign_out(page)
    expect(page).to_have_url(re.compile(r"/login\?signed_out=1$"))
    assert sign_in(page).status == 303
    expect(page).to_have_url(path_re("/documents"))
    flash = page.get_by_test_id("cleared-flash")
    expect(flash).to_contain_text("1 document from an earlier session was cleared")
    expect(flash).to_contain_text("CLEAR_DOCUMENTS_ON_LOGIN")
    expect(page.get_by_test_id("no-documents")).to_be_visible()
    # Once: not again on the next visit.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Documents")
    expect(page.get_by_test_id("cleared-flash")).to_have_count(0)
    assert problems.messages == [], problems.messages
