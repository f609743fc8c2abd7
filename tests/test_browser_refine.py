"""Compose, Result and History in a real browser against a real server.

One `pitchcraft serve` per module, pointed at the test suite's OpenAI-compatible server
(tests/llm_server.py), so jobs run in `llm` mode and the answer's citations come back as
sources; one more server without a model for the evidence-mode page. Each test signs up
its own users, so the tests share the servers without seeing each other's data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Locator, Page, Request, expect

from tests import test_browser as shared
from tests.conftest import FAKE_LLM_KEY, ServerProcess
from tests.llm_server import FakeLLM
from tests.test_browser import DESKTOP, MOBILE, Problems, _is_post, goto, path_re, register

pytestmark = pytest.mark.browser

database_url = shared.database_url
playwright = shared.playwright
browser = shared.browser
page = shared.page
problems = shared.problems

INDEXED_TIMEOUT = 120_000  # ms: the server's first ingestion loads the embedding model
DONE_TIMEOUT = 60_000
MODEL = "fake-model"
DECK = "acme-deck.pptx"
SLIDES = [
    ("Acme Shield", "Acme Shield is the endpoint protection platform for mid-sized companies."),
    (
        "Stops ransomware",
        "Acme Shield stops ransomware before it spreads: behavioural detection isolates an "
        "infected laptop within 30 seconds, and encrypted files are rolled back automatically.",
    ),
    (
        "Certified everywhere",
        "Acme Shield is certified to ISO 27001 and runs on Windows, macOS and Linux. "
        "Customers cut incident response time by 70 percent.",
    ),
]
TEXT = "Our product protects your company from ransomware attacks. It runs on every laptop."
EDITED = "Acme Shield stops ransomware within 30 seconds, on Windows, macOS and Linux."
# What the model answers to the first job, streamed slowly enough to be seen growing.
ANSWER = (
    "Acme Shield stops ransomware before it spreads, isolating an infected laptop within "
    "30 seconds [1]. It is certified to ISO 27001 and runs on Windows, macOS and Linux [2]."
)


# --- servers, one per module ------------------------------------------------------------


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=FAKE_LLM_KEY, model=MODEL) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("refine-llm")
    proc = ServerProcess(
        {**shared.module_server_env(root / "data"), **llm.env()}, root / "server.log"
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def evidence_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with shared.evidence_mode_server(tmp_path_factory.mktemp("refine-evidence")) as proc:
        yield proc


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small slide deck, so sources are labelled by slide."""
    from pptx import Presentation

    prs = Presentation()
    for title, body in SLIDES:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    path = tmp_path_factory.mktemp("deck") / DECK
    prs.save(str(path))
    return path


def _context(browser: Browser, server: ServerProcess, **kw: object) -> BrowserContext:
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP, **kw)  # type: ignore[arg-type]
    ctx.set_default_timeout(10_000)
    return ctx


@pytest.fixture
def context(browser: Browser, server: ServerProcess) -> Iterator[BrowserContext]:
    ctx = _context(browser, server)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"])
    yield ctx
    ctx.close()


# --- helpers ------------------------------------------------------------------------------


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)


def upload_and_wait(page: Page, deck: Path) -> None:
    nav(page, "Documents")
    # The page's script has attached its handlers (the heading shows before it runs).
    expect(page.locator("body")).to_have_attribute("data-documents-ready", "true")
    with page.expect_response(lambda r: _is_post(r, "/documents/upload")):
        page.get_by_test_id("file-input").set_input_files(str(deck))
    row = page.locator(f'[data-testid=doc-row][data-filename="{deck.name}"]')
    expect(row).to_have_attribute("data-status", "indexed", timeout=INDEXED_TIMEOUT)


def chip(page: Page, name: str) -> Locator:
    return page.locator("label.chip", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))


def checked_backgrounds(page: Page) -> list[str]:
    values: list[str] = page.locator("input.chip-input:checked").evaluate_all(
        "els => els.map(e => e.value)"
    )
    return values


def process(page: Page) -> str:
    """Send the Compose form; returns the new job's id from the Result page's address."""
    with page.expect_response(lambda r: _is_post(r, "/compose")) as info:
        page.get_by_test_id("process").click()
    assert info.value.status == 303, f"Process answered {info.value.status}"
    expect(page).to_have_url(re.compile(r"/results/[\w-]+$"))
    return page.url.rsplit("/", 1)[1]


def wait_done(page: Page) -> None:
    expect(page.get_by_test_id("result-live")).to_have_attribute(
        "data-status", "succeeded", timeout=DONE_TIMEOUT
    )
    expect(page.get_by_test_id("result-status")).to_have_text("Done")


def live_polls(page: Page) -> list[str]:
    seen: list[str] = []

    def on_request(request: Request) -> None:
        if request.method == "GET" and request.url.split("?")[0].endswith("/live"):
            seen.append(request.url)

    page.on("request", on_request)
    return seen


def clipboard(page: Page) -> str:
    text: str = page.evaluate("navigator.clipboard.readText()")
    return text


# --- the journey ---------------------------------------------------------------------------


def test_compose_result_history_and_rerun_with_edits(
    page: Page,
    browser: Browser,
    server: ServerProcess,
    llm: FakeLLM,
    deck: Path,
    problems: Problems,
) -> None:
    register(page, email="refine.journey@example.com")
    # Home points at the next step.
    expect(page.get_by_role("main").get_by_role("link", name="Compose")).to_be_visible()
    upload_and_wait(page, deck)

    nav(page, "Compose")
    expect(page.get_by_test_id("mode-hint")).to_contain_text(MODEL)
    expect(page.get_by_test_id("mode-hint")).to_have_attribute("data-mode", "llm")
    page.get_by_test_id("marketing-text").fill(TEXT)
    expect(page.get_by_test_id("text-count")).to_contain_text(f"{len(TEXT)} / 20,000 characters")

    # A default chip by pointer, a custom one with Enter, another added and removed again.
    chip(page, "cybersecurity").click()
    new = page.get_by_test_id("new-background")
    new.fill("healthcare IT")
    new.press("Enter")  # adds a chip; does not send the form
    expect(page).to_have_url(path_re("/compose"))
    new.fill("retail")
    new.press("Enter")
    expect(new).to_have_value("")
    assert checked_backgrounds(page) == ["cybersecurity", "healthcare IT", "retail"]
    page.get_by_role("button", name="Remove retail").click()
    expect(chip(page, "retail")).to_have_count(0)
    # Chips are checkboxes: the keyboard toggles them too.
    page.locator("input.chip-input[value=marketing]").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Space")
    assert checked_backgrounds(page) == ["cybersecurity", "healthcare IT"]

    # The first answer streams in slowly, so the page shows it growing.
    llm.ok(ANSWER, delay=0.12)
    polls = live_polls(page)
    job_id = process(page)
    page.evaluate("window.__noReload = true")
    expect(page.get_by_role("heading", level=1)).to_have_text("Result")
    expect(page.get_by_test_id("result-status")).to_have_text(re.compile("Queued|Running|Done"))
    expect(page.get_by_test_id("partial-text")).to_contain_text("Acme Shield", timeout=DONE_TIMEOUT)
    wait_done(page)
    assert page.evaluate("window.__noReload === true"), "the page reloaded instead of polling"
    assert polls, "the result page never polled"
    expect(page.get_by_test_id("result-announce")).to_contain_text("Done")

    refined = page.get_by_test_id("refined-text")
    expect(refined).to_have_text(ANSWER)  # line breaks and citations as the model wrote
    expect(refined.locator("a.cite")).to_have_count(2)
    expect(page.get_by_test_id("result-mode")).to_have_text(MODEL)
    sources = page.get_by_test_id("source")
    cited = page.locator("[data-testid=source][data-cited=true]")
    expect(cited).to_have_count(2)
    for i in range(2):
        expect(cited.nth(i).get_by_test_id("source-label")).to_have_text(
            re.compile(rf"^{re.escape(DECK)}, slide [1-3]$")
        )
        expect(cited.nth(i).get_by_test_id("source-state")).to_have_text("Cited")
    expect(sources.filter(has_text="isolates an infected laptop")).to_have_count(1)
    if sources.count() > 2:
        expect(sources.nth(2).get_by_test_id("source-state")).to_have_text("Also in context")
    # The citation link goes to its source.
    refined.locator("a.cite").first.click()
    expect(page).to_have_url(re.compile(r"#source-1$"))
    # The job's own times, in UTC, machine-readable.
    for name in ("created-at", "started-at", "finished-at"):
        stamp = page.get_by_test_id(name)
        expect(stamp).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT[\d:]{8}Z$"))
        expect(stamp).to_contain_text("UTC")
    expect(page.get_by_test_id("original-text")).to_have_text(TEXT)
    expect(page.get_by_test_id("result-backgrounds")).to_have_text(
        re.compile(r"cybersecurity\s*healthcare IT")
    )
    # Nothing left to wait for: the polling has stopped.
    page.wait_for_timeout(300)
    settled = len(polls)
    page.wait_for_timeout(1_600)
    assert len(polls) == settled, "the result page kept polling after the job finished"

    # Copy puts the text on the clipboard and says so.
    copy = page.get_by_test_id("copy-output")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert clipboard(page) == ANSWER
    expect(copy).to_have_text("Copy text", timeout=5_000)
    # The template and the rendered prompt, each behind a disclosure; the prompt can be copied.
    page.get_by_test_id("template-used").locator("summary").click()
    expect(page.get_by_test_id("template-used")).to_contain_text("{{marketing_text}}")
    prompt = page.get_by_test_id("prompt-details")
    prompt.locator("summary").click()
    expect(page.get_by_test_id("prompt-text")).to_contain_text(TEXT)
    expect(page.get_by_test_id("prompt-text")).to_contain_text(f"[1] {DECK}, slide")
    page.get_by_test_id("copy-prompt").click()
    assert TEXT in clipboard(page)

    # History lists the job.
    nav(page, "History")
    items = page.get_by_test_id("history-item")
    expect(items).to_have_count(1)
    expect(items.first.get_by_test_id("history-status")).to_have_text("Done")
    expect(items.first).to_contain_text("healthcare IT")
    expect(items.first.get_by_test_id("history-sources")).to_have_text(
        re.compile(r"^\d+ sources?$")
    )
    items.first.get_by_test_id("history-link").click()
    expect(page).to_have_url(path_re(f"/results/{job_id}"))

    # Re-run with edits: the form comes back filled in; change the text and process again.
    page.get_by_test_id("rerun-edit").click()
    expect(page).to_have_url(path_re("/compose"))
    expect(page.get_by_test_id("from-notice")).to_be_visible()
    expect(page.get_by_test_id("marketing-text")).to_have_value(TEXT)
    assert checked_backgrounds(page) == ["cybersecurity", "healthcare IT"]
    expect(page.get_by_test_id("template-badge")).to_have_text("Default")
    page.get_by_test_id("marketing-text").fill(EDITED)
    second = process(page)
    assert second != job_id
    wait_done(page)
    expect(page.get_by_test_id("refined-text")).to_contain_text("Refined:")  # default answer
    expect(page.get_by_test_id("original-text")).to_have_text(EDITED)
    expect(page.get_by_role("link", name="an earlier result")).to_have_attribute(
        "href", f"/results/{job_id}"
    )
    # The model saw the edited text.
    last_prompt = llm.requests[-1].body["messages"][-1]["content"]
    assert EDITED in last_prompt and TEXT not in last_prompt

    nav(page, "History")
    expect(items).to_have_count(2)
    expect(page.get_by_test_id("history-count")).to_have_text("2 runs")
    expect(items.nth(0).get_by_test_id("history-link")).to_have_text(EDITED)
    expect(items.nth(1).get_by_test_id("history-link")).to_have_text(TEXT)

    # Someone else gets the not-found page for these addresses, not the result.
    other = _context(browser, server)
    try:
        stranger = other.new_page()
        register(stranger, email="someone.else@example.com")
        response = goto(stranger, f"/results/{job_id}")
        assert response.status == 404
        expect(stranger.get_by_role("heading", level=1)).to_have_text("Page not found")
        assert TEXT not in stranger.content()
        assert goto(stranger, f"/results/{job_id}/live").status == 404
        assert goto(stranger, f"/compose?from={job_id}").status == 404
        expect(stranger.get_by_test_id("marketing-text")).to_have_value("")
        goto(stranger, "/history")
        expect(stranger.get_by_test_id("no-history")).to_be_visible()
    finally:
        other.close()

    assert problems.messages == [], problems.messages


def test_template_editor_save_errors_reset_and_validation(
    page: Page, llm: FakeLLM, problems: Problems
) -> None:
    register(page, email="template.editor@example.com")
    goto(page, "/compose")
    details = page.get_by_test_id("template-details")
    expect(details).not_to_have_attribute("open", "")
    details.locator("summary").click()
    editor = page.get_by_test_id("template-editor")
    default = editor.input_value()
    assert "{{marketing_text}}" in default
    expect(page.get_by_test_id("template-panel")).to_contain_text("{{backgrounds}}")
    expect(page.get_by_test_id("template-badge")).to_have_text("Default")

    # An unknown placeholder: the server says which, and nothing is saved.
    editor.fill(default + "\nWrite for {{audience}}.")
    expect(page.get_by_test_id("template-badge")).to_have_text("Edited: this run only")
    with page.expect_response(lambda r: _is_post(r, "/compose/template/save")) as info:
        page.get_by_test_id("template-save").click()
    assert info.value.status == 422
    error = page.get_by_test_id("template-error")
    expect(error).to_contain_text("Unknown placeholder {{audience}}")
    expect(page.get_by_test_id("template-editor")).to_have_value(
        default + "\nWrite for {{audience}}."
    )

    # Fixed, it saves; the page says so and a reload shows it as the user's template.
    page.get_by_test_id("template-editor").fill(default + "\nKeep it short.")
    page.get_by_test_id("template-save").click()
    expect(page.get_by_test_id("template-flash")).to_have_text(
        "Saved as your template. Every run uses it from now on."
    )
    expect(page.get_by_test_id("template-error")).to_have_count(0)
    expect(page.get_by_test_id("template-badge")).to_have_text("Your template")
    page.reload()
    expect(page.get_by_test_id("template-editor")).to_have_value(default + "\nKeep it short.")
    expect(page.get_by_test_id("template-badge")).to_have_text("Your template")

    # Validation errors come back on the page with what was typed kept.
    page.get_by_test_id("template-details").locator("summary").click()
    page.get_by_test_id("template-editor").fill("Only {{contxt}} here {{marketing_text}}")
    chip(page, "SaaS").click()
    with page.expect_response(lambda r: _is_post(r, "/compose")) as info:
        page.get_by_test_id("process").click()  # no text yet
    assert info.value.status == 422
    expect(page.get_by_test_id("form-error")).to_have_text("Paste the marketing text to refine.")
    assert checked_backgrounds(page) == ["SaaS"]
    expect(page.get_by_test_id("template-editor")).to_have_value(
        "Only {{contxt}} here {{marketing_text}}"
    )
    page.get_by_test_id("marketing-text").fill(TEXT)
    with page.expect_response(lambda r: _is_post(r, "/compose")) as info:
        page.get_by_test_id("process").click()
    assert info.value.status == 422
    expect(page.get_by_test_id("form-error")).to_contain_text("Unknown placeholder {{contxt}}")
    expect(page.get_by_test_id("template-error")).to_contain_text("{{contxt}}")
    expect(page.get_by_test_id("template-details")).to_have_attribute("open", "")
    expect(page.get_by_test_id("marketing-text")).to_have_value(TEXT)

    # Reset asks first, then brings the default back.
    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.get_by_test_id("template-reset").click()
    expect(page.get_by_test_id("template-flash")).to_have_text(
        "Your template is back to the default."
    )
    expect(page.get_by_test_id("template-editor")).to_have_value(default)
    expect(page.get_by_test_id("template-badge")).to_have_text("Default")
    assert asked and "Reset your template" in asked[0]

    # A run whose model call fails shows why.
    llm.status(400, message="This model does not accept such long prompts.")
    process(page)
    expect(page.get_by_test_id("result-live")).to_have_attribute(
        "data-status", "failed", timeout=DONE_TIMEOUT
    )
    expect(page.get_by_test_id("result-status")).to_have_text("Failed")
    expect(page.get_by_test_id("result-error")).to_contain_text("HTTP 400")
    expect(page.get_by_test_id("result-error")).to_contain_text("long prompts")
    expect(page.get_by_test_id("run-again")).to_be_visible()

    # The refused template saves and forms answered 422 on purpose; nothing else went wrong.
    unexpected = [m for m in problems.messages if not m.startswith("422 for ")]
    assert unexpected == [], unexpected


def test_evidence_mode_result_is_labelled_as_a_brief(
    browser: Browser, evidence_server: ServerProcess, deck: Path, tmp_path: Path
) -> None:
    ctx = _context(browser, evidence_server)
    try:
        page = ctx.new_page()
        problems = Problems()
        problems.watch(page)
        register(page, email="evidence.mode@example.com")
        upload_and_wait(page, deck)
        nav(page, "Compose")
        expect(page.get_by_test_id("mode-hint")).to_have_text(
            "Evidence mode No language model is configured: you will get an evidence brief "
            "and a ready-to-paste prompt."
        )
        page.get_by_test_id("marketing-text").fill(
            "Acme Shield isolates an infected laptop in 45 seconds.\n"
            "Customers cut incident response time by 70 percent.\n"
            "We bake the best bread in Lisbon."
        )
        chip(page, "cybersecurity").click()
        process(page)
        wait_done(page)
        expect(page.get_by_test_id("result-mode")).to_have_text("Evidence mode")
        output = page.get_by_test_id("output")
        expect(output.get_by_role("heading", level=2)).to_have_text("Evidence brief not a rewrite")
        # The ledger: one row per sentence, a verdict each, counts on top.
        expect(page.get_by_test_id("claim-counts")).to_have_text(
            "3 claims: 1 supported 1 contradicted 1 unsupported"
        )
        rows = page.get_by_test_id("ledger").get_by_test_id("claim")
        expect(rows).to_have_count(3)
        assert [rows.nth(i).get_attribute("data-verdict") for i in range(3)] == [
            "contradicted",
            "supported",
            "unsupported",
        ]
        expect(rows.nth(0).get_by_test_id("claim-reason")).to_contain_text("30")
        expect(rows.nth(0).get_by_test_id("claim-quote")).to_contain_text("30 seconds")
        expect(rows.nth(1).get_by_test_id("quote-source")).to_contain_text(f"{DECK}, slide 3")
        expect(rows.nth(2)).to_contain_text("No passage states it.")
        # The corrected draft shows each change.
        draft = page.get_by_test_id("corrected-draft")
        expect(draft.get_by_test_id("draft-old")).to_contain_text("45")
        expect(draft.get_by_test_id("draft-new")).to_contain_text("30")
        expect(draft.get_by_test_id("draft-flag")).to_contain_text("bread in Lisbon")
        expect(page.get_by_test_id("refined-text")).to_contain_text("EVIDENCE BRIEF")
        # The prompt is what evidence mode hands over: open, with its copy button.
        expect(page.get_by_test_id("prompt-details")).to_have_attribute("open", "")
        expect(page.get_by_test_id("copy-prompt")).to_be_visible()
        expect(page.locator("[data-testid=source][data-cited=true]").first).to_be_visible()
        for viewport in (DESKTOP, MOBILE):
            page.set_viewport_size(viewport)
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"the ledger scrolls sideways by {overflow}px at {viewport}"
        page.screenshot(path=str(tmp_path / "evidence.png"), full_page=True)
        assert problems.messages == [], problems.messages
    finally:
        ctx.close()


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
def test_refine_pages_fit_the_screen(
    browser: Browser, server: ServerProcess, viewport: dict[str, int], tmp_path: Path
) -> None:
    """No refine page scrolls sideways or loads anything the CSP blocks."""
    ctx = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    try:
        page = ctx.new_page()
        problems = Problems()
        problems.watch(page)
        register(page, email=f"layout.{viewport['width']}@example.com")

        def check(name: str) -> None:
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {viewport}"
            page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)

        goto(page, "/history")
        expect(page.get_by_test_id("no-history")).to_be_visible()
        check("history-empty")
        goto(page, "/compose")
        page.get_by_test_id("template-details").locator("summary").click()
        page.get_by_test_id("marketing-text").fill(TEXT)
        new = page.get_by_test_id("new-background")
        new.fill("a rather long background name for regulated industries in Europe")
        new.press("Enter")
        check("compose")
        process(page)
        wait_done(page)
        check("result")
        goto(page, "/history")
        expect(page.get_by_test_id("history-item")).to_have_count(1)
        check("history")
        assert problems.messages == [], problems.messages
    finally:
        ctx.close()


def test_a_run_is_deleted_from_history(browser: Browser, evidence_server: ServerProcess) -> None:
    ctx = _context(browser, evidence_server)
    try:
        page = ctx.new_page()
        problems = Problems()
        problems.watch(page)
        register(page, email="history.delete@example.com")
        ids = []
        for text in ("Keep this run about ransomware.", "Delete this run about bread."):
            nav(page, "Compose")
            page.get_by_test_id("marketing-text").fill(text)
            ids.append(process(page))
            wait_done(page)
        nav(page, "History")
        expect(page.get_by_test_id("history-count")).to_have_text("2 runs")
        doomed = page.locator(f'[data-testid=history-item][data-job="{ids[1]}"]')
        # The button asks first; dismissing keeps the run.
        page.once("dialog", lambda d: d.dismiss())
        doomed.get_by_test_id("history-delete").click()
        expect(page.get_by_test_id("history-count")).to_have_text("2 runs")
        page.once("dialog", lambda d: d.accept())
        with page.expect_response(lambda r: _is_post(r, f"/results/{ids[1]}/delete")) as info:
            doomed.get_by_test_id("history-delete").click()
        assert info.value.status == 200
        expect(page.get_by_test_id("history-count")).to_have_text("1 run")
        expect(page.get_by_test_id("history-item")).to_have_count(1)
        expect(page.get_by_test_id("history-link")).to_have_text("Keep this run about ransomware.")
        # Gone for good: its Result page is a 404 now, the other one still opens.
        assert goto(page, f"/results/{ids[1]}").status == 404
        assert goto(page, f"/results/{ids[0]}").status == 200
        assert problems.messages == []
    finally:
        ctx.close()
