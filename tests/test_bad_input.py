"""Bad input gets a clear 4xx with {"detail", "code"}, never a 500, and loses nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous.url_safe import URLSafeSerializer

from pitchcraft.web.app import create_app
from pitchcraft.web.csrf import csrf_layer, csrf_secret
from tests.conftest import auth, make_settings, register

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
    ("missing-email", json.dumps({"password": "test-pass-123"}).encode(), 422),
    (
        "not-an-email",
        json.dumps({"email": "not-an-email", "password": "test-pass-123"}).encode(),
        422,
    ),
    (
        "email-too-long",
        json.dumps({"email": "a" * 5000 + "@example.com", "password": "test-pass-123"}).encode(),
        422,
    ),
    (
        "password-too-long",
        json.dumps({"email": "a@example.com", "password": "p" * 100_000}).encode(),
        422,
    ),
    ("invalid-utf8", b'{"email": "\xff\xfe@example.com", "password": "test-pass-123"}', {400, 422}),
    (
        "deeply-nested",
        b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b', "password": "x"}',
        {400, 422},
    ),
    ("nul-bytes", b'{"email": "a\\u0000@example.com", "password": "test-pass-123"}', 422),
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
        content=b"email=a@example.com&password=test-pass-123",
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
    r = client.post(REGISTER, json={"email": "jürgen@exämple.de", "password": "test-pass-123"})
    assert r.status_code == 201, r.text
    r = client.post(LOGIN, json={"email": "JÜRGEN@exämple.de", "password": "test-pass-123"})
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
        register(client, "nav@example.com", "test-pass-123")
        page = client.get("/login")
        token = page.cookies.get("csrftoken") or client.cookies.get("csrftoken")
        assert token
        r = client.post(
            "/login",
            data={
                "csrftoken": token,
                "email": "nav@example.com",
                "password": "test-pass-123",
                "next": "//evil.example",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/"


def test_service_refuses_control_characters_in_login(client: TestClient) -> None:
    from pitchcraft.core.errors import Unauthorized

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


# --- multipart uploads: odd bodies, and the CSRF check of multipart forms -------------

UPLOAD = "/api/v1/documents/upload"
PAGE_UPLOAD = "/documents/upload"
BOUNDARY = "xyz"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
CLOSE = f"--{BOUNDARY}--\r\n".encode()
NOTE = b"Our zero-trust gateway inspects every packet."


def part(
    name: str | None, data: bytes = b"", filename: str | None = None, extra: bytes = b""
) -> bytes:
    """One multipart part, as a browser writes it; `extra` is more header lines."""
    disposition = b"Content-Disposition: form-data"
    if name is not None:
        disposition += f'; name="{name}"'.encode()
    if filename is not None:
        disposition += f'; filename="{filename}"'.encode()
        extra = b"Content-Type: application/octet-stream\r\n" + extra
    return f"--{BOUNDARY}\r\n".encode() + disposition + b"\r\n" + extra + b"\r\n" + data + b"\r\n"


def stored_files(client: TestClient) -> list[object]:
    root = client.app.state.container.settings.storage_dir  # type: ignore[attr-defined]
    return [p for p in root.rglob("*") if p.is_file()]


def listed(client: TestClient, token: str) -> list[dict[str, object]]:
    documents: list[dict[str, object]] = client.get("/api/v1/documents", headers=auth(token)).json()
    return documents


# Each: the body after an optional leading csrftoken part, the content type, the code.
ODD_MULTIPART: list[tuple[str, bytes, str, str]] = [
    (
        "no-boundary",
        part("files", NOTE, "a.txt") + CLOSE,
        "multipart/form-data",
        "multipart_required",
    ),
    (
        "empty-boundary",
        part("files", NOTE, "a.txt") + CLOSE,
        "multipart/form-data; boundary=",
        "multipart_required",
    ),
    (
        "boundary-too-long",
        b"--" + b"b" * 300 + b"--\r\n",
        "multipart/form-data; boundary=" + "b" * 300,
        "bad_multipart",
    ),
    ("never-closes-in-a-file", part("files", NOTE, "a.txt")[:-2], MULTIPART, "bad_multipart"),
    ("no-closing-boundary", part("files", NOTE, "a.txt"), MULTIPART, "bad_multipart"),
    (
        "next-part-never-comes",
        part("files", NOTE, "a.txt") + f"--{BOUNDARY}\r\n".encode(),
        MULTIPART,
        "bad_multipart",
    ),
    (
        "cut-in-the-headers",
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="fi'.encode(),
        MULTIPART,
        "bad_multipart",
    ),
    ("file-part-without-a-name", part(None, NOTE, "a.txt") + CLOSE, MULTIPART, "no_files"),
    ("field-without-a-name", part(None, NOTE) + CLOSE, MULTIPART, "no_files"),
    ("files-field-that-is-not-a-file", part("files", NOTE) + CLOSE, MULTIPART, "no_files"),
    ("file-under-another-name", part("file", NOTE, "a.txt") + CLOSE, MULTIPART, "no_files"),
    ("no-file-chosen", part("files", b"", "") + CLOSE, MULTIPART, "no_files"),
    ("no-parts", CLOSE, MULTIPART, "no_files"),
    (
        "huge-header-line",
        part("files", NOTE, "a.txt", b"X-Big: " + b"a" * 100_000 + b"\r\n") + CLOSE,
        MULTIPART,
        "bad_multipart",
    ),
    (
        "huge-file-name",
        part("files", NOTE, "a" * 20_000 + ".txt") + CLOSE,
        MULTIPART,
        "bad_multipart",
    ),
    (
        "many-header-lines",
        part("files", NOTE, "a.txt", b"X-A: 1\r\n" * 100) + CLOSE,
        MULTIPART,
        "bad_multipart",
    ),
    (
        "header-line-without-colon",
        f"--{BOUNDARY}\r\nno colon\r\n\r\nabc\r\n".encode() + CLOSE,
        MULTIPART,
        "bad_multipart",
    ),
    ("not-multipart-inside", b"just some text", MULTIPART, "bad_multipart"),
]


@pytest.mark.parametrize(
    ("name", "body", "content_type", "code"), ODD_MULTIPART, ids=[c[0] for c in ODD_MULTIPART]
)
def test_odd_multipart_uploads_get_clear_errors(
    client: TestClient, name: str, body: bytes, content_type: str, code: str
) -> None:
    token = register(client)
    r = client.post(UPLOAD, content=body, headers={**auth(token), "content-type": content_type})
    assert assert_clear_error(r, {415, 422})["code"] == code
    assert listed(client, token) == []
    assert stored_files(client) == []


# Bodies in which even a valid token in the first part cannot be read: without a usable
# boundary, or without the boundary that would end the token's part.
TOKEN_UNREADABLE = {"no-boundary", "empty-boundary", "boundary-too-long", "not-multipart-inside"}


def page_session(client: TestClient, email: str = "pages@example.com") -> tuple[str, str]:
    """Sign a browser in: the session cookie, and the CSRF token its pages carry."""
    token = register(client, email)
    client.cookies.set("pitchcraft_session", token)
    assert client.get("/documents").status_code == 200
    csrf = client.cookies.get("csrftoken")
    assert csrf
    return token, csrf


def test_odd_multipart_from_the_page_never_fails_the_server(client: TestClient) -> None:
    """With a valid token first, the page answers with its own error; a body where the token
    cannot be read is refused as an expired form."""
    token, csrf = page_session(client)
    for name, body, content_type, code in ODD_MULTIPART:
        r = client.post(
            PAGE_UPLOAD,
            content=part("csrftoken", csrf.encode()) + body,
            headers={"content-type": content_type, "accept": "text/html"},
            follow_redirects=False,
        )
        if name in TOKEN_UNREADABLE:
            assert r.status_code == 403, (name, r.status_code, r.text[:300])
            assert "expired" in r.text, name
        else:
            assert r.status_code == 303, (name, r.status_code, r.text[:300])
            assert r.headers["location"] == f"/documents?error={code}", name
    assert listed(client, token) == []
    assert stored_files(client) == []


def test_no_javascript_upload_form_with_the_token_in_the_body(client: TestClient) -> None:
    """What a browser without JavaScript sends: the token as the form's first field."""
    token, csrf = page_session(client)
    r = client.post(
        PAGE_UPLOAD,
        content=part("csrftoken", csrf.encode()) + part("files", NOTE, "note.txt") + CLOSE,
        headers={"content-type": MULTIPART, "accept": "text/html"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/documents?uploaded=1"
    [doc] = listed(client, token)
    assert doc["filename"] == "note.txt"
    assert doc["size"] == len(NOTE)


def test_upload_with_the_token_in_the_header(client: TestClient) -> None:
    """What the page's script sends: the token in the header (and in the body)."""
    token, csrf = page_session(client)
    for body in (
        part("files", NOTE, "header.txt") + CLOSE,
        # Another content: the same one again would be a duplicate of the first.
        part("csrftoken", b"stale") + part("files", NOTE + b" Again.", "both.txt") + CLOSE,
    ):
        r = client.post(
            PAGE_UPLOAD,
            content=body,
            headers={"content-type": MULTIPART, "x-csrftoken": csrf},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
    assert sorted(str(d["filename"]) for d in listed(client, token)) == ["both.txt", "header.txt"]


def _refused_forms(csrf: str) -> list[tuple[str, bytes, str, dict[str, str]]]:
    file_part = part("files", NOTE, "a.txt")
    return [
        ("no-token", file_part + CLOSE, MULTIPART, {}),
        ("wrong-token", part("csrftoken", b"forged") + file_part + CLOSE, MULTIPART, {}),
        ("empty-token", part("csrftoken") + file_part + CLOSE, MULTIPART, {}),
        (
            "token-after-the-file",
            file_part + part("csrftoken", csrf.encode()) + CLOSE,
            MULTIPART,
            {},
        ),
        (
            "token-as-a-file",
            part("csrftoken", csrf.encode(), "t.txt") + file_part + CLOSE,
            MULTIPART,
            {},
        ),
        (
            "token-after-64-kb",
            part("notes", b"n" * 70_000) + part("csrftoken", csrf.encode()) + file_part + CLOSE,
            MULTIPART,
            {},
        ),
        (
            "token-far-too-long",
            part("csrftoken", csrf.encode() * 100) + file_part + CLOSE,
            MULTIPART,
            {},
        ),
        ("token-in-a-broken-body", part("csrftoken", csrf.encode())[:30], MULTIPART, {}),
        (
            "token-with-non-ascii-bytes",
            part("csrftoken", "jürgen".encode()) + file_part + CLOSE,
            MULTIPART,
            {},
        ),
        ("wrong-header-token", file_part + CLOSE, MULTIPART, {"x-csrftoken": "forged"}),
        (
            "no-boundary",
            part("csrftoken", csrf.encode()) + file_part + CLOSE,
            "multipart/form-data",
            {},
        ),
        (
            "upper-case-content-type",
            file_part + CLOSE,
            MULTIPART.upper().replace("XYZ", BOUNDARY),
            {},
        ),
    ]


def test_multipart_form_without_a_valid_token_is_refused(client: TestClient) -> None:
    token, csrf = page_session(client)
    for name, body, content_type, headers in _refused_forms(csrf):
        # A browser gets the friendly page, a script the JSON error.
        r = client.post(
            PAGE_UPLOAD,
            content=body,
            headers={"content-type": content_type, "accept": "text/html", **headers},
        )
        assert r.status_code == 403, (name, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith("text/html"), name
        assert "expired" in r.text and "Reload the page" in r.text, name
        r = client.post(
            PAGE_UPLOAD, content=body, headers={"content-type": content_type, **headers}
        )
        assert r.status_code == 403, (name, r.status_code, r.text[:300])
        assert assert_clear_error(r, 403)["code"] == "csrf_failed", name
    assert listed(client, token) == []
    assert stored_files(client) == []


def test_multipart_form_without_the_csrf_cookie_is_refused(client: TestClient) -> None:
    token, csrf = page_session(client)
    client.cookies.delete("csrftoken")
    body = part("csrftoken", csrf.encode()) + part("files", NOTE, "a.txt") + CLOSE
    r = client.post(PAGE_UPLOAD, content=body, headers={"content-type": MULTIPART})
    assert assert_clear_error(r, 403)["code"] == "csrf_failed"
    # Nor does a cookie of one's own making pass: it must carry the server's signature.
    client.cookies.set("csrftoken", "home-made")
    body = part("csrftoken", b"home-made") + part("files", NOTE, "a.txt") + CLOSE
    r = client.post(PAGE_UPLOAD, content=body, headers={"content-type": MULTIPART})
    assert assert_clear_error(r, 403)["code"] == "csrf_failed"
    assert listed(client, token) == []


def test_multipart_login_form_is_checked_too(client: TestClient) -> None:
    register(client, "multi@example.com", "test-pass-123")
    client.get("/login")
    csrf = client.cookies.get("csrftoken")
    assert csrf
    fields = part("email", b"multi@example.com") + part("password", b"test-pass-123")
    r = client.post("/login", content=fields + CLOSE, headers={"content-type": MULTIPART})
    assert assert_clear_error(r, 403)["code"] == "csrf_failed"
    r = client.post(
        "/login",
        content=part("csrftoken", csrf.encode()) + fields + CLOSE,
        headers={"content-type": MULTIPART},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


@pytest.mark.parametrize("path", ["/login", LOGIN, PAGE_UPLOAD])
def test_csrf_header_that_is_not_ascii(client: TestClient, path: str) -> None:
    """asgi-csrf compares the header as text, which fails for non-ASCII characters."""
    token, _ = page_session(client)
    headers = [("x-csrftoken", "jürgen".encode("latin-1")), ("accept", "application/json")]
    if path == LOGIN:
        r = client.post(
            path, json={"email": "pages@example.com", "password": "test-pass-123"}, headers=headers
        )
        assert r.status_code == 200, r.text
        return
    if path == PAGE_UPLOAD:
        headers.append(("content-type", MULTIPART))
        r = client.post(path, content=part("files", NOTE, "a.txt") + CLOSE, headers=headers)
    else:
        r = client.post(path, data={"email": "a@example.com", "password": "x"}, headers=headers)
    assert assert_clear_error(r, 403)["code"] == "csrf_failed"
    assert listed(client, token) == []


def test_upload_streamed_past_the_limit_is_a_413(tmp_path: Path) -> None:
    """A body without Content-Length that grows past the upload limit: 413, nothing kept."""
    settings = make_settings(tmp_path / "data", max_upload_mb=1, max_files_per_upload=1)
    with TestClient(create_app(settings)) as c:
        token = register(c)

        def body() -> Iterator[bytes]:
            yield part("files", b"", "big.txt")[:-2]  # the headers, no data yet
            for _ in range(40):
                yield b"x" * (64 * 1024)
            yield b"\r\n" + CLOSE

        r = c.post(UPLOAD, content=body(), headers={**auth(token), "content-type": MULTIPART})
        assert assert_clear_error(r, 413)["code"] == "too_large"
        assert listed(c, token) == []
        assert stored_files(c) == []


SIGNED = URLSafeSerializer(csrf_secret("s" * 32)).dumps("abc", salt="csrftoken")


@dataclass
class LayerRun:
    started_after: int | None = None  # chunks the CSRF layer had read when the app started
    chunks_read: int = 0
    app_body: Any = field(default_factory=hashlib.sha256)
    app_bytes: int = 0
    status: int | None = None


def _run_csrf_layer(chunks: Iterator[bytes], cookie: str) -> LayerRun:
    """Drive the CSRF layer alone (with a stand-in app) on a body arriving in chunks."""
    run = LayerRun()
    pending = iter(chunks)

    async def receive() -> dict[str, Any]:
        chunk = next(pending, None)
        if chunk is None:
            return {"type": "http.disconnect"}
        run.chunks_read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        run.started_after = run.chunks_read
        while (message := await receive())["type"] == "http.request":
            run.app_body.update(message["body"])
            run.app_bytes += len(message["body"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            run.status = message["status"]

    layer = csrf_layer(
        SimpleNamespace(cookie_secure=False),
        SimpleNamespace(accounts=SimpleNamespace(tokens=SimpleNamespace(secret="s" * 32))),
        lambda status, detail: detail.encode(),
    )(app)
    scope = {
        "type": "http",
        "method": "POST",
        "path": PAGE_UPLOAD,
        "headers": [(b"content-type", MULTIPART.encode()), (b"cookie", cookie.encode())],
    }
    asyncio.run(layer(scope, receive, send))
    return run


def _big_upload(token_first: bool, megabytes: int = 50) -> Iterator[bytes]:
    token = part("csrftoken", SIGNED.encode())
    if token_first:
        yield token[:20]  # the token's part split over two chunks
        yield token[20:]
    yield f"--{BOUNDARY}\r\nContent-Disposition: form-data".encode()
    yield b'; name="files"; filename="big.bin"\r\n\r\n'
    for _ in range(megabytes * 16):
        yield b"x" * (64 * 1024)
    if not token_first:
        yield b"\r\n" + token
    yield b"\r\n" + CLOSE


def test_csrf_check_reads_an_upload_only_up_to_the_first_file() -> None:
    """The token is found without holding the upload in memory: the app starts as soon as
    the first file part begins, and then reads the whole body, unchanged, itself."""
    run = _run_csrf_layer(_big_upload(token_first=True), f"csrftoken={SIGNED}; s=1")
    assert run.status == 204
    assert run.started_after is not None and run.started_after <= 4, run.started_after
    assert run.chunks_read == 4 + 50 * 16 + 1
    whole = hashlib.sha256(b"".join(_big_upload(token_first=True)))
    assert run.app_body.hexdigest() == whole.hexdigest()
    assert run.app_bytes > 50 * 1024 * 1024


def test_csrf_check_stops_at_a_file_before_the_token() -> None:
    run = _run_csrf_layer(_big_upload(token_first=False), f"csrftoken={SIGNED}; s=1")
    assert run.status == 403
    assert run.started_after is None
    assert run.chunks_read <= 2, run.chunks_read


def test_csrf_check_without_the_cookie_reads_nothing() -> None:
    for cookie in ("s=1", "csrftoken=home-made; s=1", f"csrftoken={SIGNED}x"):
        run = _run_csrf_layer(_big_upload(token_first=True), cookie)
        assert (run.status, run.started_after, run.chunks_read) == (403, None, 0), cookie
