"""The Model and Users pages in a real browser against a real server: an administrator picks
a preset, tests the connection, picks a listed model and saves; a local "Ollama" (the test
LLM server on another port) is detected; a member sees neither page nor their menu entries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests import test_browser as shared
from tests.conftest import FAKE_LLM_KEY, ServerProcess, auth
from tests.llm_server import FakeLLM
from tests.test_browser import DESKTOP, MOBILE, Problems, goto, path_re, register, sign_out

pytestmark = pytest.mark.browser

database_url = shared.database_url
playwright = shared.playwright
browser = shared.browser
page = shared.page
problems = shared.problems

ADMIN, MEMBER, PASSWORD = "admin.ops@example.com", "member.writer@example.com", "correct horse 42"


@pytest.fixture(scope="module")
def remote() -> Iterator[FakeLLM]:
    """A hosted endpoint that needs a key."""
    with FakeLLM(api_key=FAKE_LLM_KEY) as fake:
        fake.models = ["fake-model", "fake-large"]
        yield fake


@pytest.fixture(scope="module")
def ollama() -> Iterator[FakeLLM]:
    """A keyless local server standing in for Ollama."""
    with FakeLLM() as fake:
        fake.models = ["llama3.1:8b", "qwen2.5:7b"]
        yield fake


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ollama: FakeLLM) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("admin-pages")
    env = {
        "DATA_DIR": str(root / "data"),
        "LOG_LEVEL": "INFO",
        "CONTAINER_MODE": "no",
        "REGISTER_RATE_LIMIT_PER_CLIENT": "1000/minute",
        "OLLAMA_BASE_URL": ollama.base_url,
    }
    proc = ServerProcess(env, root / "server.log")
    proc.start()
    yield proc
    proc.stop()
    assert FAKE_LLM_KEY not in proc.log()


@pytest.fixture
def context(browser: Browser, server: ServerProcess) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


def test_admin_connects_a_model_and_manages_users_and_a_member_sees_neither(
    page: Page, problems: Problems, server: ServerProcess, remote: FakeLLM, ollama: FakeLLM
) -> None:
    assert register(page, ADMIN, PASSWORD).status == 303  # the first account: administrator
    expect(page.get_by_test_id("nav-model")).to_be_visible()
    page.get_by_test_id("nav-model").click()
    expect(page).to_have_url(path_re("/admin/model"))
    expect(page.get_by_test_id("model-source")).to_contain_text("LLM_* settings")
    expect(page.get_by_test_id("detected-ollama")).to_contain_text("llama3.1:8b")

    # The detected Ollama preset fills the address and its models at once.
    page.get_by_test_id("preset").select_option("ollama")
    expect(page.get_by_test_id("base-url")).to_have_value(ollama.base_url)
    expect(page.get_by_test_id("model-picker")).to_be_enabled()
    expect(page.get_by_test_id("model-name")).to_have_value("llama3.1:8b")

    # Another OpenAI-compatible server with a key: test, pick, save.
    page.get_by_test_id("preset").select_option("other")
    page.get_by_test_id("base-url").fill(remote.base_url)
    page.get_by_test_id("api-key").fill("sk-not-the-key")
    page.get_by_test_id("test-button").click()
    expect(page.locator("#test-result [data-ok=false]")).to_contain_text("refused the API key")
    page.get_by_test_id("api-key").fill(FAKE_LLM_KEY)
    page.get_by_test_id("model-name").fill("")
    page.get_by_test_id("test-button").click()
    expect(page.locator("#test-result [data-ok=true]")).to_contain_text("2 models")
    page.get_by_test_id("model-picker").select_option("fake-large")
    expect(page.get_by_test_id("model-name")).to_have_value("fake-large")
    page.get_by_test_id("save-button").click()
    expect(page).to_have_url(path_re("/admin/model"))
    expect(page.get_by_test_id("model-saved")).to_be_visible()
    expect(page.get_by_test_id("model-source")).to_contain_text("saved on this page")
    expect(page.get_by_test_id("model-key-state")).to_have_text("set (hidden)")
    assert FAKE_LLM_KEY not in page.content()
    listed = [r for r in remote.requests if r.path.endswith("/models")]
    assert listed[-1].headers["authorization"] == f"Bearer {FAKE_LLM_KEY}"

    health = httpx.get(f"{server.url}/health").json()
    assert health["llm"] == "fake-large"

    # A member: no admin entries, and the pages and API answer 403.
    sign_out(page)
    assert register(page, MEMBER, PASSWORD).status == 303
    expect(page.get_by_test_id("welcome-email")).to_have_text(MEMBER)
    expect(page.get_by_test_id("nav-model")).to_have_count(0)
    expect(page.get_by_test_id("nav-users")).to_have_count(0)
    assert goto(page, "/admin/model").status == 403
    expect(page.get_by_text("This page is for administrators.")).to_be_visible()
    assert goto(page, "/admin/users").status == 403
    token = httpx.post(
        f"{server.url}/api/v1/auth/login", json={"email": MEMBER, "password": PASSWORD}
    ).json()["access_token"]
    assert httpx.get(f"{server.url}/api/v1/admin/users", headers=auth(token)).status_code == 403

    # The administrator again: the Users page lists both; subscribe, disable, promote.
    goto(page, "/")
    sign_out(page)
    page.get_by_label("Work email").fill(ADMIN)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("nav-users").click()
    expect(page).to_have_url(path_re("/admin/users"))
    member_row = page.locator(f"[data-testid=user-row][data-email='{MEMBER}']")
    admin_row = page.locator(f"[data-testid=user-row][data-email='{ADMIN}']")
    expect(admin_row.get_by_test_id("user-role")).to_have_text("administrator")
    expect(admin_row.get_by_test_id("disable-button")).to_have_count(0)  # not oneself
    admin_row.get_by_test_id("role-button").click()
    expect(page.get_by_test_id("users-error")).to_contain_text("last administrator")

    member_row = page.locator(f"[data-testid=user-row][data-email='{MEMBER}']")
    member_row.get_by_test_id("subscribe-button").click()
    expect(page.get_by_test_id("users-done")).to_contain_text("is subscribed")
    member_row = page.locator(f"[data-testid=user-row][data-email='{MEMBER}']")
    expect(member_row.get_by_test_id("user-subscribed")).to_have_text("yes")
    member_row.get_by_test_id("disable-button").click()
    expect(page.get_by_test_id("users-done")).to_contain_text("disabled")
    member_row = page.locator(f"[data-testid=user-row][data-email='{MEMBER}']")
    expect(member_row.get_by_test_id("user-disabled")).to_be_visible()
    # The member's session ended with it.
    assert httpx.get(f"{server.url}/api/v1/auth/me", headers=auth(token)).status_code == 401
    member_row.get_by_test_id("disable-button").click()  # enable again
    member_row = page.locator(f"[data-testid=user-row][data-email='{MEMBER}']")
    member_row.get_by_test_id("role-button").click()
    member_row = page.locator(f"[data-testid=user-row][data-email='{MEMBER}']")
    expect(member_row.get_by_test_id("user-role")).to_have_text("administrator")
    assert FAKE_LLM_KEY not in page.content()

    # On a phone, neither page scrolls sideways (the users table scrolls inside its card).
    page.set_viewport_size(MOBILE)
    for path in ("/admin/users", "/admin/model"):
        goto(page, path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
    assert problems.messages == []


def test_the_model_page_works_without_javascript(
    browser: Browser, server: ServerProcess, remote: FakeLLM, tmp_path: Path
) -> None:
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP, java_script_enabled=False)
    try:
        page = ctx.new_page()
        page.goto("/login")
        page.get_by_label("Work email").fill(ADMIN)
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.goto("/admin/model")
        page.get_by_test_id("base-url").fill(remote.base_url)
        page.get_by_test_id("test-button").click()  # the saved key, for the saved address
        expect(page.locator("#test-result [data-ok=true]")).to_contain_text("2 models")
        expect(page.get_by_test_id("model-picker")).to_be_enabled()
        assert FAKE_LLM_KEY not in page.content()
    finally:
        ctx.close()
