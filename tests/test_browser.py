"""The sign-up, sign-in and sign-out pages in a real browser against a real server.

Debian's chromium is driven through Playwright's sync API; `playwright install` is never
needed. These tests run on the embedded SQLite database only: the database behaviour is
covered elsewhere on both backends, and here it is the browser that is under test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Response,
    expect,
    sync_playwright,
)

from tests.conftest import ServerProcess

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}

EMAIL, PASSWORD = "dana.writer@example.com", "correct horse 42"
# Long addresses are common in large companies; the layout must not break on them.
LONG_EMAIL = "marketing.communications.lead@northwind-industries-europe.com"
SESSION_COOKIE = "pitchcraft_session"


@pytest.fixture
def database_url() -> Iterator[str | None]:
    """Only the embedded SQLite database (overrides the sqlite/postgresql parametrisation)."""
    yield None


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def server(
    server_env: dict[str, str], start_server: Callable[[dict[str, str]], ServerProcess]
) -> ServerProcess:
    return start_server(server_env)


def module_server_env(data: Path) -> dict[str, str]:
    """The environment of a server that one test module's tests share: its own data folder,
    and sign-up and sign-in limits that the module's many accounts never reach."""
    return {
        "DATA_DIR": str(data),
        "LOG_LEVEL": "INFO",
        "CONTAINER_MODE": "no",
        "REGISTER_RATE_LIMIT_PER_CLIENT": "1000/minute",
        "LOGIN_RATE_LIMIT_PER_CLIENT": "1000/minute",
    }


@contextmanager
def evidence_mode_server(root: Path, **extra: str) -> Iterator[ServerProcess]:
    """A running module server with no model at all (evidence mode), stopped on exit."""
    proc = ServerProcess({**module_server_env(root / "data"), **extra}, root / "server.log")
    proc.env.pop("LLM_BASE_URL", None)
    proc.start()
    yield proc
    proc.stop()


class Problems:
    """What a person would not notice but a page must not do: script errors, console
    errors (CSP violations among them) and stylesheets, scripts or icons that fail to load.

    Chromium also logs "Failed to load resource" for pages answered with 401 or 404 on
    purpose; those statuses are asserted by the tests, so only sub-resources count here.
    """

    def __init__(self) -> None:
        self.messages: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("response", self._response)

    def _console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            self.messages.append(f"console: {msg.text}")

    def _page_error(self, exc: Exception) -> None:
        self.messages.append(f"pageerror: {exc}")

    def _response(self, response: Response) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            self.messages.append(f"{response.status} for {response.url}")


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def context(browser: Browser, server: ServerProcess) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=server.url, viewport=DESKTOP)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, problems: Problems) -> Page:
    p = context.new_page()
    problems.watch(p)
    return p


def goto(page: Page, path: str) -> Response:
    response = page.goto(path)
    assert response is not None, f"no response for {path}"
    return response


def register(page: Page, email: str = EMAIL, password: str = PASSWORD) -> Response:
    """Fill and send the sign-up form; returns the response to the form's POST."""
    goto(page, "/register")
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat password").fill(password)
    with page.expect_response(lambda r: _is_post(r, "/register")) as info:
        page.get_by_role("button", name="Create account").click()
    return info.value


def sign_in(page: Page, email: str = EMAIL, password: str = PASSWORD) -> Response:
    """Fill and send the sign-in form on the current page; returns the POST's response."""
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    with page.expect_response(lambda r: _is_post(r, "/login")) as info:
        page.get_by_role("button", name="Sign in").click()
    return info.value


def sign_out(page: Page) -> None:
    page.get_by_test_id("sign-out").click()


def _is_post(response: Response, path: str) -> bool:
    return response.request.method == "POST" and response.url.split("?")[0].endswith(path)


def path_re(path: str) -> re.Pattern[str]:
    """The page's URL is exactly this path (with any query string)."""
    return re.compile(rf"^https?://[^/]+{re.escape(path)}(\?.*)?$")


def session_cookie(context: BrowserContext) -> dict[str, object] | None:
    for cookie in context.cookies():
        if cookie.get("name") == SESSION_COOKIE:
            return dict(cookie)
    return None


def test_register_sign_out_and_sign_in_again(
    page: Page, context: BrowserContext, problems: Problems
) -> None:
    # Signed out, the home page sends people to sign in.
    goto(page, "/")
    expect(page).to_have_url(path_re("/login"))

    response = register(page)
    assert response.status == 303, f"register answered {response.status}"
    expect(page).to_have_url(path_re("/"))
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    assert session_cookie(context) is not None

    sign_out(page)
    expect(page).to_have_url(path_re("/login"))
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    assert session_cookie(context) is None, "signing out left the session cookie behind"
    # The session really is gone: home sends us back to sign in.
    goto(page, "/")
    expect(page).to_have_url(path_re("/login"))
    expect(page.get_by_text("You have signed out.")).to_have_count(0)

    response = sign_in(page)
    assert response.status == 303, f"sign-in answered {response.status}"
    expect(page).to_have_url(path_re("/"))
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    assert session_cookie(context) is not None

    # Signed in, the auth pages send people home instead of showing a form.
    goto(page, "/login")
    expect(page).to_have_url(path_re("/"))
    goto(page, "/register")
    expect(page).to_have_url(path_re("/"))

    assert problems.messages == [], problems.messages


def test_wrong_password_shows_error_and_keeps_email(
    page: Page, context: BrowserContext, problems: Problems
) -> None:
    register(page)
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    sign_out(page)
    expect(page).to_have_url(path_re("/login"))

    response = sign_in(page, password="not the password")
    assert response.status == 401, f"a wrong password answered {response.status}"
    expect(page.get_by_test_id("form-error")).to_have_text("The email or password is incorrect.")
    expect(page.get_by_label("Work email")).to_have_value(EMAIL)
    # The password is never sent back to the page.
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    assert "not the password" not in page.content()
    assert session_cookie(context) is None

    # The form still works after the error.
    response = sign_in(page)
    assert response.status == 303
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    assert problems.messages == [], problems.messages


def test_unknown_email_shows_the_same_error(page: Page, context: BrowserContext) -> None:
    goto(page, "/login")
    response = sign_in(page, email="nobody@example.com")
    assert response.status == 401
    expect(page.get_by_test_id("form-error")).to_have_text("The email or password is incorrect.")
    expect(page.get_by_label("Work email")).to_have_value("nobody@example.com")
    assert session_cookie(context) is None


def test_register_with_taken_email_shows_error(
    page: Page, context: BrowserContext, problems: Problems
) -> None:
    register(page)
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    sign_out(page)
    expect(page).to_have_url(path_re("/login"))

    # Same address in another case: emails are compared case-insensitively.
    response = register(page, email=EMAIL.upper(), password="another password")
    assert response.status == 409, f"a taken email answered {response.status}"
    expect(page).to_have_url(path_re("/register"))
    expect(page.get_by_test_id("form-error")).to_have_text(
        "An account with this email already exists."
    )
    expect(page.get_by_label("Work email")).to_have_value(EMAIL.upper())
    assert session_cookie(context) is None

    # The original password still signs in; the second sign-up changed nothing.
    goto(page, "/login")
    assert sign_in(page).status == 303
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    assert problems.messages == [], problems.messages


def test_register_with_mismatched_passwords_shows_error(
    page: Page, context: BrowserContext
) -> None:
    goto(page, "/register")
    page.get_by_label("Work email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD + "x")
    with page.expect_response(lambda r: _is_post(r, "/register")) as info:
        page.get_by_role("button", name="Create account").click()
    assert info.value.status == 400
    expect(page.get_by_test_id("form-error")).to_have_text("The two passwords do not match.")
    expect(page.get_by_label("Work email")).to_have_value(EMAIL)
    assert session_cookie(context) is None


def test_session_cookie_is_httponly_and_samesite_lax(page: Page, context: BrowserContext) -> None:
    register(page)
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    cookie = session_cookie(context)
    assert cookie is not None, f"no {SESSION_COOKIE} cookie in {context.cookies()}"
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["value"], "the session cookie is empty"
    # HttpOnly means page scripts cannot read it.
    assert SESSION_COOKIE not in page.evaluate("document.cookie")


def test_login_post_without_valid_csrf_token_is_refused(
    page: Page, context: BrowserContext
) -> None:
    register(page)
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    sign_out(page)
    expect(page).to_have_url(path_re("/login"))
    token = page.locator("input[name=csrftoken]").input_value()
    assert token, "the sign-in form has no CSRF token"
    credentials = {"email": EMAIL, "password": PASSWORD, "next": "/"}

    # No token field at all, sent with the browser's cookies.
    r = page.request.post("/login", form=credentials, max_redirects=0)
    assert r.status == 403, f"a POST without a token answered {r.status}"
    assert r.json()["code"] == "csrf_failed"
    # A token that does not match the cookie.
    r = page.request.post("/login", form={**credentials, "csrftoken": "forged"}, max_redirects=0)
    assert r.status == 403, f"a POST with a forged token answered {r.status}"
    assert session_cookie(context) is None

    # The form itself, with its hidden field tampered with in the page.
    page.evaluate("document.querySelector('input[name=csrftoken]').value = 'tampered'")
    page.get_by_label("Work email").fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_response(lambda r: _is_post(r, "/login")) as info:
        page.get_by_role("button", name="Sign in").click()
    assert info.value.status == 403, f"a tampered form answered {info.value.status}"
    assert session_cookie(context) is None

    # Control: the same request with the page's real token is accepted, so the
    # refusals above were about the token and nothing else.
    r = page.request.post("/login", form={**credentials, "csrftoken": token}, max_redirects=0)
    assert r.status == 303, f"a POST with the real token answered {r.status}"
    assert session_cookie(context) is not None


def test_sign_out_without_csrf_token_is_refused(page: Page, context: BrowserContext) -> None:
    register(page)
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)
    r = page.request.post("/logout", form={}, max_redirects=0)
    assert r.status == 403, f"a sign-out without a token answered {r.status}"
    assert session_cookie(context) is not None
    goto(page, "/")
    expect(page.get_by_test_id("welcome-email")).to_have_text(EMAIL)


def test_unknown_page_shows_a_404_page(page: Page, problems: Problems) -> None:
    response = goto(page, "/no-such-page")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(page.get_by_role("link", name="Go to Pitchcraft")).to_be_visible()
    assert problems.messages == [], problems.messages


@pytest.mark.parametrize("viewport", [DESKTOP, MOBILE], ids=["desktop", "mobile"])
def test_pages_fit_the_screen(
    browser: Browser,
    server: ServerProcess,
    viewport: dict[str, int],
    tmp_path: Path,
) -> None:
    """No page scrolls sideways, loads anything the CSP blocks, or hides its heading."""
    ctx = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    try:
        page = ctx.new_page()
        problems = Problems()
        problems.watch(page)
        shots: list[str] = []

        def check(name: str, heading: str) -> None:
            expect(page.get_by_role("heading", name=heading)).to_be_visible()
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {viewport}"
            css_loaded = page.evaluate("getComputedStyle(document.body).display === 'flex'")
            assert css_loaded, f"{name}: the stylesheet did not apply"
            shot = tmp_path / f"{name}.png"
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot.name)

        goto(page, "/login")
        check("login", "Sign in")
        goto(page, "/register")
        check("register", "Create your account")
        register(page, email=LONG_EMAIL)
        expect(page.get_by_test_id("welcome-email")).to_have_text(LONG_EMAIL)
        check("home", "Welcome to Pitchcraft")
        goto(page, "/no-such-page")
        check("not-found", "Page not found")

        assert shots == ["login.png", "register.png", "home.png", "not-found.png"]
        assert problems.messages == [], problems.messages
    finally:
        ctx.close()
