"""Bad input gets a clear 4xx with {"detail", "code"}, never a 500, and loses nothing."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import auth, register

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
JSON = {"content-type": "application/json"}


def assert_clear_error(r: object, status: int | set[int]) -> dict[str, str]:
    code = r.status_code  # type: ignore[attr-defined]
    expected = {status} if isinstance(status, int) else status
    assert code in expected, (code, r.text)  # type: ignore[attr-defined]
    body: dict[str, str] = r.json()  # type: ignore[attr-defined]
    assert isinstance(body["detail"], str) and body["detail"].strip()
    assert isinstance(body["code"], str) and body["code"]
    return body


BODIES: list[tuple[str, bytes, int | set[int]]] = [
    ("malformed-json", b'{"email": "a@b.com", "password": ', 422),
    ("not-an-object", b"[1, 2, 3]", 422),
    ("json-null", b"null", 422),
    ("json-string", b'"hello"', 422),
    ("empty-body", b"", 422),
    ("wrong-types", json.dumps({"email": 123, "password": ["x"]}).encode(), 422),
    ("missing-password", json.dumps({"email": "a@example.com"}).encode(), 422),
    ("missing-email", json.dumps({"password": "test123"}).encode(), 422),
    ("not-an-email", json.dumps({"email": "not-an-email", "password": "test123"}).encode(), 422),
    (
        "email-too-long",
        json.dumps({"email": "a" * 5000 + "@example.com", "password": "test123"}).encode(),
        422,
    ),
    (
        "password-too-long",
        json.dumps({"email": "a@example.com", "password": "p" * 100_000}).encode(),
        422,
    ),
    ("invalid-utf8", b'{"email": "\xff\xfe@example.com", "password": "test123"}', {400, 422}),
    (
        "deeply-nested",
        b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b', "password": "x"}',
        {400, 422},
    ),
    ("nul-bytes", b'{"email": "a\\u0000@example.com", "password": "test123"}', 422),
]


@pytest.mark.parametrize(("path"), [REGISTER, LOGIN])
@pytest.mark.parametrize(("name", "body", "status"), BODIES, ids=[b[0] for b in BODIES])
def test_bad_bodies(
    client: TestClient, path: str, name: str, body: bytes, status: int | set[int]
) -> None:
    existing = register(client, "keeper@example.com", "keeper-pass")
    r = client.post(path, content=body, headers=JSON)
    if path == LOGIN and name == "not-an-email":
        status = 401  # login does not validate the address: it simply matches no account
    body_out = assert_clear_error(r, status)
    # Passwords are never echoed back in error messages.
    assert "p" * 50 not in body_out["detail"]
    # Earlier data is intact.
    assert client.get("/api/v1/auth/me", headers=auth(existing)).status_code == 200


def test_ten_megabyte_body(client: TestClient) -> None:
    big = b'{"email": "a@example.com", "password": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    body = assert_clear_error(client.post(REGISTER, content=big, headers=JSON), 413)
    assert body["code"] == "too_large"
    assert "MB" in body["detail"]


def test_lying_content_length_is_refused_before_reading(client: TestClient) -> None:
    r = client.post(REGISTER, content=b"{}", headers={**JSON, "content-length": str(10**12)})
    assert_clear_error(r, 413)


def test_non_numeric_content_length(client: TestClient) -> None:
    r = client.post(REGISTER, content=b"{}", headers={**JSON, "content-length": "lots"})
    assert_clear_error(r, 400)


def test_wrong_content_type(client: TestClient) -> None:
    r = client.post(
        REGISTER,
        content=b"email=a@example.com&password=test123",
        headers={"content-type": "text/plain"},
    )
    assert_clear_error(r, 422)


def test_unknown_path_and_method(client: TestClient) -> None:
    assert assert_clear_error(client.get("/api/v1/nope"), 404)["code"] == "not_found"
    assert assert_clear_error(client.delete(LOGIN), 405)["code"] == "method_not_allowed"


def test_bad_authorization_headers(client: TestClient) -> None:
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b c", "bearer " + "x" * 10_000]:
        assert_clear_error(
            client.get("/api/v1/auth/me", headers={"Authorization": header}), {401, 403}
        )


def test_unicode_email_is_handled(client: TestClient) -> None:
    r = client.post(REGISTER, json={"email": "jürgen@exämple.de", "password": "test123"})
    assert r.status_code == 201, r.text
    r = client.post(LOGIN, json={"email": "JÜRGEN@exämple.de", "password": "test123"})
    assert r.status_code == 200


class TestPages:
    def test_form_post_without_csrf_token_is_refused(self, client: TestClient) -> None:
        client.get("/login")  # sets the CSRF cookie
        r = client.post("/login", data={"email": "a@example.com", "password": "x"})
        assert r.status_code == 403
        assert r.json()["code"] == "csrf_failed"

    def test_form_post_with_invalid_utf8(self, client: TestClient) -> None:
        client.get("/login")
        r = client.post(
            "/login",
            content=b"csrftoken=\xff\xfe&email=\xff",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code in {400, 403}

    def test_broken_multipart(self, client: TestClient) -> None:
        client.get("/login")
        r = client.post(
            "/login", content=b"--xx\r\nbroken", headers={"content-type": "multipart/form-data"}
        )
        assert r.status_code in {400, 403}

    def test_unknown_page_is_a_friendly_404(self, client: TestClient) -> None:
        r = client.get("/no-such-page", headers={"accept": "text/html"})
        assert r.status_code == 404
        assert "Page not found" in r.text

    def test_open_redirect_is_not_followed(self, client: TestClient) -> None:
        register(client, "nav@example.com", "test123")
        page = client.get("/login")
        token = page.cookies.get("csrftoken") or client.cookies.get("csrftoken")
        assert token
        r = client.post(
            "/login",
            data={
                "csrftoken": token,
                "email": "nav@example.com",
                "password": "test123",
                "next": "//evil.example",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/"


def test_service_refuses_control_characters_in_login(client: TestClient) -> None:
    from pitchcraft.errors import Unauthorized

    accounts = client.app.state.container.accounts  # type: ignore[attr-defined]
    with pytest.raises(Unauthorized):
        accounts.authenticate(email="a\x00@example.com", password="x", client="test")


def test_expired_form_shows_a_page_to_browsers(client: TestClient) -> None:
    client.get("/login")
    r = client.post(
        "/login", data={"email": "a@example.com", "password": "x"}, headers={"accept": "text/html"}
    )
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("text/html")
    assert "expired" in r.text
    assert "Reload the page" in r.text


def test_error_page_keeps_the_signed_in_header(client: TestClient) -> None:
    token = register(client, "header@example.com")
    client.cookies.set("pitchcraft_session", token)
    r = client.get("/missing", headers={"accept": "text/html"})
    assert r.status_code == 404
    assert "header@example.com" in r.text
    assert 'action="/logout"' in r.text
