"""The bad-input catalog: hostile files, bodies, query strings, file names and tokens. Each
gets a clear 4xx (or is indexed as plain text, or fails with a reason), never a 500, and
each is followed by a check that the data already there (an indexed document, a finished
job) is intact.

Covered elsewhere and not repeated here: malformed and oversized JSON on register/login
(tests/test_bad_input.py: BODIES), truncated and odd multipart bodies (ODD_MULTIPART there),
the CSRF checks of forms, size limits per endpoint (tests/test_hardening.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
import pymupdf
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from pitchcraft.auth.models import User
from pitchcraft.web.app import create_app
from tests.conftest import PgSchema, auth, make_settings, register
from tests.docs_helpers import upload, wait_final
from tests.test_refine import process, wait_job

pytestmark = pytest.mark.timeout(600)

BROCHURE = "The Heron firewall blocks ransomware at the branch office and logs every attempt."
JSON = {"content-type": "application/json"}


@dataclass
class World:
    client: TestClient
    token: str
    doc_id: str
    job_id: str
    storage: Path

    def intact(self) -> None:
        """The server answers, and the user's indexed document and finished job are there."""
        c, headers = self.client, auth(self.token)
        assert c.get("/health").status_code == 200
        doc = c.get(f"/api/v1/documents/{self.doc_id}", headers=headers).json()
        assert doc["status"] == "indexed" and doc["filename"] == "heron.txt", doc
        job = c.get(f"/api/v1/rag/results/{self.job_id}", headers=headers).json()
        assert job["status"] == "succeeded" and job["sources"], job
        hits = c.post("/api/v1/search", headers=headers, json={"query": "Heron firewall"}).json()
        assert hits["results"] and hits["results"][0]["document_id"] == self.doc_id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    schema = PgSchema() if request.param == "postgresql" else None
    if schema:
        schema.create()
    data = tmp_path_factory.mktemp(f"catalog-{request.param}") / "data"
    settings = make_settings(data, schema.url if schema else None, clear_documents_on_login=False)
    try:
        with TestClient(create_app(settings)) as c:
            token = register(c, "catalog@example.com", "catalog-pass")
            (entry,) = upload(c, token, ("heron.txt", BROCHURE.encode()))
            assert wait_final(c, token, entry["id"])["status"] == "indexed"
            job = wait_job(c, token, process(c, token, marketing_text="We stop ransomware."))
            assert job["status"] == "succeeded"
            w = World(c, token, entry["id"], job["job_id"], settings.storage_dir)
            w.intact()
            yield w
    finally:
        if schema:
            schema.drop()


def assert_clear_error(r: Any, status: int | set[int]) -> dict[str, str]:
    expected = {status} if isinstance(status, int) else status
    assert r.status_code in expected, (r.status_code, r.text[:500])
    body: dict[str, str] = r.json()
    assert body["detail"].strip() and body["code"], body
    return body


# --- hostile PDFs ---------------------------------------------------------------------------

VISIBLE = "Visible brochure text: the Kestrel gateway filters phishing mail for every branch."
JS_SOURCE = "app.alert('JS-PAYLOAD-RAN')"
JS_PDF_STRING = JS_SOURCE.replace("'", "\\'")  # inside a PDF string ( ... )
EMBEDDED = b"EMBEDDED-PAYLOAD-TEXT inside an attached file"


def hostile_pdf(marker: Path) -> bytes:
    """A PDF that tries everything a reader might run: JavaScript when opened, a Launch
    action when a page opens and from a link, and an attached file."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 72), VISIBLE, fontsize=11)
    doc.embfile_add("payload.txt", EMBEDDED, filename="payload.txt", desc="attachment")
    js = doc.get_new_xref()
    doc.update_object(js, f"<< /Type /Action /S /JavaScript /JS ({JS_PDF_STRING}) >>")
    doc.xref_set_key(doc.pdf_catalog(), "OpenAction", f"{js} 0 R")
    launch = doc.get_new_xref()
    doc.update_object(launch, f"<< /Type /Action /S /Launch /F (/usr/bin/touch) /P ({marker}) >>")
    actions = doc.get_new_xref()
    doc.update_object(actions, f"<< /O {launch} 0 R >>")
    doc.xref_set_key(page.xref, "AA", f"{actions} 0 R")
    page.insert_link(
        {"kind": pymupdf.LINK_LAUNCH, "from": pymupdf.Rect(72, 100, 300, 120), "file": str(marker)}
    )
    data: bytes = doc.tobytes()
    doc.close()
    return data


def test_pdf_with_javascript_launch_actions_and_attachments(world: World, tmp_path: Path) -> None:
    marker = tmp_path / "launched"
    data = hostile_pdf(marker)
    check = pymupdf.open(stream=data, filetype="pdf")
    assert check.embfile_names() == ["payload.txt"]
    assert check.xref_get_key(check.pdf_catalog(), "OpenAction")[0] == "xref"
    check.close()

    c, headers = world.client, auth(world.token)
    (entry,) = upload(c, world.token, ("hostile.pdf", data))
    doc = wait_final(c, world.token, entry["id"])
    if doc["status"] == "failed":  # allowed, with a reason a person understands
        assert doc["error"] and "Traceback" not in doc["error"], doc
    else:
        assert doc["status"] == "indexed" and doc["chunks"] >= 1, doc
        r = c.post("/api/v1/search", headers=headers, json={"query": "Kestrel gateway phishing"})
        ours = [h for h in r.json()["results"] if h["document_id"] == entry["id"]]
        assert ours and "Kestrel gateway" in ours[0]["snippet"]
        # Text only: neither the script nor the attachment became passages.
        for query in ("JS-PAYLOAD-RAN app.alert", "EMBEDDED-PAYLOAD-TEXT attached file"):
            r = c.post("/api/v1/search", headers=headers, json={"query": query, "limit": 50})
            for hit in r.json()["results"]:
                assert (
                    "JS-PAYLOAD" not in hit["snippet"] and "EMBEDDED-PAYLOAD" not in hit["snippet"]
                )
    # Nothing ran: the launch action's command would have created the marker.
    assert not marker.exists()
    assert c.delete(f"/api/v1/documents/{entry['id']}", headers=headers).status_code == 204
    world.intact()


# --- bodies ---------------------------------------------------------------------------------


def _asgi_call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int | None, int, bytes]:
    """Drive the whole app (every middleware) directly: (status, body messages read, body)."""
    pending = list(chunks)
    read = 0
    status: int | None = None
    body = b""

    async def receive() -> dict[str, Any]:
        nonlocal read
        if not pending:
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": pending.pop(0), "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    return status, read, body


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/v1/documents/upload", "multipart/form-data; boundary=x"),
        ("/api/v1/search", "application/json"),
        ("/api/v1/auth/register", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
        ("/documents/upload", "multipart/form-data; boundary=x"),
    ],
)
def test_ten_gigabytes_declared_is_refused_before_reading(
    world: World, path: str, content_type: str
) -> None:
    app = world.client.app
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(10 * 1024**3).encode()),
        (b"authorization", f"Bearer {world.token}".encode()),
    ]
    status, read, body = _asgi_call(app, "POST", path, headers, [b"tiny"])
    assert status == 413, body
    assert read == 0, "the body was read before refusing it"
    assert json.loads(body)["code"] == "too_large"
    world.intact()


def test_client_leaving_in_the_middle_of_an_upload(world: World) -> None:
    """The connection drops after half a file: nothing is kept, nothing half-written."""
    before = {p for p in world.storage.rglob("*") if p.is_file()}
    head = (
        b'--x\r\nContent-Disposition: form-data; name="files"; filename="half.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
    )
    chunks = [head, b"half of a file " * 1000]  # then http.disconnect
    headers = [
        (b"content-type", b"multipart/form-data; boundary=x"),
        (b"authorization", f"Bearer {world.token}".encode()),
    ]
    _asgi_call(world.client.app, "POST", "/api/v1/documents/upload", headers, chunks)
    after = {p for p in world.storage.rglob("*") if p.is_file()}
    assert after == before
    names = [
        d["filename"]
        for d in world.client.get("/api/v1/documents", headers=auth(world.token)).json()
    ]
    assert "half.txt" not in names
    world.intact()


NESTED: list[tuple[str, bytes]] = [
    ("100k-nested-arrays", b"[" * 100_000 + b"]" * 100_000),
    ("100k-nested-objects", b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    ("nested-in-a-field", b'{"query": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("unclosed-nesting", b"[" * 100_000),
]


@pytest.mark.parametrize(("name", "body"), NESTED, ids=[n for n, _ in NESTED])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/search",
        "/api/v1/rag/process",
        "/api/v1/rag/prompt-template",
        "/api/v1/auth/register",
        "/api/v1/jobs/{job}/rerun",
    ],
)
def test_deeply_nested_json(world: World, path: str, name: str, body: bytes) -> None:
    r = world.client.post(
        path.format(job=world.job_id), content=body, headers={**auth(world.token), **JSON}
    )
    assert_clear_error(r, {400, 422})
    world.intact()


@pytest.mark.parametrize("path", ["/api/v1/search", "/api/v1/rag/process", "/api/v1/jobs/x/rerun"])
def test_json_over_the_request_limit(world: World, path: str) -> None:
    """MAX_REQUEST_KB is 1024 by default: 2 MB of JSON is refused with 413."""
    body = json.dumps({"query": "x" * (2 * 1024 * 1024), "marketing_text": "y"}).encode()
    r = world.client.post(path, content=body, headers={**auth(world.token), **JSON})
    assert assert_clear_error(r, 413)["code"] == "too_large"
    world.intact()


INVALID_UTF8: list[tuple[str, bytes]] = [
    ("search", b'{"query": "caf\xe9 \xff\xfe"}'),
    ("rag/process", b'{"marketing_text": "\xc3\x28 broken", "backgrounds": ["\xff"]}'),
    ("rag/prompt-template", b'{"template": "{{marketing_text}} \xed\xa0\x80"}'),
    ("jobs/{job}/rerun", b'{"marketing_text": "\xf8\x88\x80\x80\x80"}'),
    ("search", b'{"query": "\\ud800 lone surrogate"}'),
    ("search", b'\xef\xbb\xbf{"query": "bom first"}'),
]


@pytest.mark.parametrize(("path", "body"), INVALID_UTF8)
def test_invalid_utf8_in_json(world: World, path: str, body: bytes) -> None:
    r = world.client.post(
        "/api/v1/" + path.format(job=world.job_id),
        content=body,
        headers={**auth(world.token), **JSON},
    )
    if r.status_code in {200, 202}:  # cleaned and accepted is fine; never stored broken
        json.dumps(r.json(), ensure_ascii=False).encode("utf-8")
    else:
        assert_clear_error(r, {400, 422})
    world.intact()


QUERY_STRINGS = [
    ("/api/v1/jobs", b"limit=%FF&offset=%C0%AF"),
    ("/api/v1/jobs", b"%FF%FE=1&limit=5"),
    ("/api/v1/jobs", b"limit=\xff\xfe"),  # raw, not even percent-encoded
    ("/api/v1/documents", b"x=%ED%A0%80"),
    ("/documents", b"error=%FF%FE&uploaded=%C0%80"),
    ("/documents", b"uploaded=\xff"),
    ("/history", b"page=%FF"),
    ("/history/list", b"page=%F0%9F%92"),
    ("/compose", b"from=%FF%FE%00"),
    ("/login", b"next=%FF%FE"),
    ("/results/%FF%FE", b""),
    ("/api/v1/rag/results/%FF%00", b""),
    ("/api/v1/documents/%C0%AF..%C0%AF", b""),
    # A NUL in an id: PostgreSQL refuses to even compare it (these were 500s there).
    ("/api/v1/documents/%00", b""),
    ("/api/v1/jobs/a%00b", b""),
    ("/results/%00/live", b""),
    ("/compose", b"from=%00"),
]


@pytest.mark.parametrize(("path", "query"), QUERY_STRINGS)
def test_invalid_utf8_in_paths_and_query_strings(world: World, path: str, query: bytes) -> None:
    """Straight to the app (httpx would re-encode a raw query string)."""
    app = world.client.app
    pending = [b""]

    async def receive() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw_path = path.encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(path),  # as uvicorn decodes it: bad UTF-8 becomes U+FFFD
        "raw_path": raw_path,
        "root_path": "",
        "query_string": query,
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {world.token}".encode()),
            (b"cookie", f"pitchcraft_session={world.token}".encode()),
            (b"accept", b"text/html" if not path.startswith("/api/") else b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    status = sent[0]["status"]
    assert status < 500, (path, query, status, sent[1:])
    world.intact()


FILENAMES: list[tuple[str, bytes]] = [
    ("latin-1 bytes", b"caf\xe9 \xff\xfe.txt"),
    ("broken utf-8", b"\xc3\x28\xa0\xa1.txt"),
    ("path traversal", b"../../../etc/passwd"),
    ("windows path", b"C:\\Users\\x\\..\\secret.txt"),
    ("control and bidi", b"inv\x01oice\xe2\x80\xaetxt.exe"),
    ("nul", b"a\x00b.txt"),
    ("only dots", b".."),
    ("rfc 5987 broken", b"x.txt\"; filename*=UTF-8''%FF%FE.txt; x=\""),
]


@pytest.mark.parametrize(("name", "filename"), FILENAMES, ids=[n for n, _ in FILENAMES])
def test_odd_multipart_filenames(world: World, name: str, filename: bytes) -> None:
    body = (
        b'--x\r\nContent-Disposition: form-data; name="files"; filename="'
        + filename
        + b'"\r\nContent-Type: text/plain\r\n\r\n'
        + b"A small note about the Heron firewall.\r\n--x--\r\n"
    )
    headers = {**auth(world.token), "content-type": "multipart/form-data; boundary=x"}
    r = world.client.post("/api/v1/documents/upload", content=body, headers=headers)
    if r.status_code == 202:
        for entry in r.json():
            shown = entry["filename"]
            shown.encode("utf-8")  # valid text, whatever came in
            assert "/" not in shown and "\\" not in shown and "\x00" not in shown, shown
            assert not any(ch in shown for ch in "\u202e\x01"), shown
            assert shown not in {"", ".", ".."}, shown
            wait_final(world.client, world.token, entry["id"])
            assert (
                world.client.delete(
                    f"/api/v1/documents/{entry['id']}", headers=auth(world.token)
                ).status_code
                == 204
            )
    else:
        assert_clear_error(r, {400, 415, 422})
    # Nothing landed outside the user's storage folder.
    assert not (world.storage.parent / "etc").exists()
    assert all(
        p.resolve().is_relative_to(world.storage.resolve()) for p in world.storage.rglob("*")
    )
    world.intact()


# --- tokens ---------------------------------------------------------------------------------


def _claims(world: World) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(world.token, options={"verify_signature": False})
    return claims


def bad_tokens(world: World) -> dict[str, bytes]:
    secret: str = world.client.app.state.container.accounts.tokens.secret  # type: ignore[attr-defined]
    claims = _claims(world)
    past = datetime.now(UTC) - timedelta(hours=3)
    expired = {**claims, "iat": past, "exp": past + timedelta(minutes=5)}
    return {
        "alg none": b"Bearer " + jwt.encode(claims, None, algorithm="none").encode(),
        "alg none, no signature dot": b"Bearer "
        + jwt.encode(claims, None, algorithm="none").rstrip(".").encode(),
        "expired": b"Bearer " + jwt.encode(expired, secret, algorithm="HS256").encode(),
        "forged": b"Bearer "
        + jwt.encode(
            claims, "not-the-secret-but-long-enough-0123456789", algorithm="HS256"
        ).encode(),
        "HS512 with the secret": b"Bearer "
        + jwt.encode(claims, secret, algorithm="HS512").encode(),
        "other issuer": b"Bearer "
        + jwt.encode({**claims, "iss": "elsewhere"}, secret, algorithm="HS256").encode(),
        "no expiry": b"Bearer "
        + jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, secret, algorithm="HS256"
        ).encode(),
        "sub not a number": b"Bearer "
        + jwt.encode({**claims, "sub": "admin"}, secret, algorithm="HS256").encode(),
        "sub of nobody": b"Bearer "
        + jwt.encode({**claims, "sub": "999999"}, secret, algorithm="HS256").encode(),
        "old token version": b"Bearer "
        + jwt.encode({**claims, "ver": claims["ver"] - 1}, secret, algorithm="HS256").encode(),
        "garbage": b"Bearer not.a.token",
        "empty bearer": b"Bearer ",
        "basic": b"Basic Y2F0YWxvZ0BleGFtcGxlLmNvbTpjYXRhbG9nLXBhc3M=",
        "utf-8 bytes": "Bearer jürgen.ünïcode.tøken".encode(),
        "latin-1 bytes": "Bearer \xe9\xe8.\xff.\xfe".encode("latin-1"),
        "token plus utf-8": b"Bearer " + world.token.encode() + "é".encode(),
        "huge": b"Bearer " + b"a" * 60_000,
    }


TOKEN_ENDPOINTS = [
    ("GET", "/api/v1/auth/me"),
    ("GET", "/api/v1/documents"),
    ("GET", "/api/v1/documents/{doc}"),
    ("DELETE", "/api/v1/documents/{doc}"),
    ("POST", "/api/v1/search"),
    ("POST", "/api/v1/rag/process"),
    ("GET", "/api/v1/rag/results/{job}"),
    ("POST", "/api/v1/jobs/{job}/rerun"),
    ("POST", "/api/v1/documents/upload"),
]


def test_bad_tokens_get_401_with_a_code(world: World) -> None:
    c = world.client
    for what, header in bad_tokens(world).items():
        for method, path in TOKEN_ENDPOINTS:
            target = path.format(doc=world.doc_id, job=world.job_id)
            kwargs: dict[str, Any] = {}
            if method == "POST" and "upload" in path:
                kwargs["files"] = [("files", ("t.txt", b"token test", "text/plain"))]
            elif method == "POST":
                kwargs["json"] = {"query": "Heron", "marketing_text": "Heron"}
            r = c.request(method, target, headers=[(b"authorization", header)], **kwargs)
            if what == "huge" and r.status_code == 431:
                continue  # a server may refuse the header itself
            body = assert_clear_error(r, 401)
            assert body["code"] in {"invalid_token", "not_authenticated"}, (what, body)
            assert r.headers["www-authenticate"].startswith("Bearer"), what
        # As the session cookie of a page: the sign-in page, never an error.
        cookie = b"pitchcraft_session=" + header.removeprefix(b"Bearer ").replace(b" ", b"")
        r = c.get("/documents", headers=[(b"cookie", cookie)], follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), what
    world.intact()


def test_token_of_a_deleted_user(world: World) -> None:
    c = world.client
    token = register(c, "deleted@example.com", "deleted-pass")
    (entry,) = upload(c, token, ("theirs.txt", b"A note that goes away with its owner."))
    wait_final(c, token, entry["id"])
    db = c.app.state.container.db  # type: ignore[attr-defined]
    # No CLI command deletes accounts: straight in the database, documents first.
    assert c.delete(f"/api/v1/documents/{entry['id']}", headers=auth(token)).status_code == 204
    with db.session() as s:
        s.execute(delete(User).where(User.email == "deleted@example.com"))
    for method, path in TOKEN_ENDPOINTS:
        target = path.format(doc=entry["id"], job=world.job_id)
        r = c.request(method, target, headers=auth(token))
        assert assert_clear_error(r, 401)["code"] == "invalid_token", (method, path)
    c.cookies.set("pitchcraft_session", token)
    try:
        assert c.get("/history", follow_redirects=False).status_code == 303
    finally:
        c.cookies.clear()
    world.intact()


def test_nul_in_ids_of_every_kind_of_call(world: World) -> None:
    """httpx sends %00 as it is; the server decodes it into a NUL in the id."""
    c, headers = world.client, auth(world.token)
    for method, path in [
        ("GET", "/api/v1/documents/%00"),
        ("DELETE", "/api/v1/documents/a%00b"),
        ("GET", "/api/v1/rag/results/%00"),
        ("GET", "/api/v1/jobs/%00"),
        ("POST", "/api/v1/jobs/%00/rerun"),
    ]:
        r = c.request(method, path, headers=headers)
        assert assert_clear_error(r, 404)["code"] in {"document_not_found", "job_not_found"}
    c.cookies.set("pitchcraft_session", world.token)
    try:
        for path in ("/results/%00", "/results/%00/live", "/compose?from=%00"):
            assert c.get(path, headers={"accept": "text/html"}).status_code == 404, path
        csrf = c.cookies.get("csrftoken")
        assert csrf
        for path, form in [
            ("/documents/%00/delete", {}),
            ("/results/%00/rerun", {}),
            ("/compose", {"marketing_text": "A pitch.", "rerun_of": "\x00"}),
            ("/compose/template/save", {"template": "{{marketing_text}}", "rerun_of": "\x00"}),
        ]:
            r = c.post(path, data={"csrftoken": csrf, **form}, follow_redirects=False)
            assert r.status_code in {200, 303, 404}, (path, r.status_code, r.text[:300])
    finally:
        c.cookies.clear()
    # The template saved just now is put back.
    assert c.delete("/api/v1/rag/prompt-template", headers=headers).status_code == 200
    world.intact()
