"""Isolation: every endpoint and page, called by a second user, answers 404/403 or only
that user's own data, never the first user's.

The routes are enumerated from the app itself: a route without a row in ROUTES fails
`test_every_route_has_an_isolation_check`, so a new endpoint cannot ship unchecked.
"""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Mount

from pitchcraft.web.app import create_app
from tests.conftest import PgSchema, auth, make_settings, register
from tests.docs_helpers import upload, wait_final

pytestmark = pytest.mark.timeout(600)

# A's material: words that appear nowhere else, so any of them in B's answers is a leak.
A_EMAIL = "aardvark-owner@example.com"
A_FILE = "aardvark-secret-plans.txt"
A_DOC = (
    "Zanzibar flamingo protocol: the Okapi gateway encrypts every quasar handshake with a "
    "pelican key, rotated each Tuesday by the narwhal team."
)
A_TEXT = "Our Okapi gateway guards every quasar handshake for flamingo fleets."
A_BACKGROUND = "aardvark audience"
A_TEMPLATE = "AARDVARK-TEMPLATE for {{backgrounds}}: {{marketing_text}}\n{{context}}"
A_MARKERS = (A_EMAIL, A_FILE, "Zanzibar", "Okapi", "flamingo", "narwhal", "AARDVARK", "aardvark")
A_GLOSSARY = {"terms": [{"use": "Okapi Gateway", "avoid": ["okapi gate"]}], "banned": ["narwhal"]}
A_CHANNEL = {"name": "Aardvark newsletter", "max_chars": 321, "guidance": "Zanzibar tone."}

B_EMAIL = "bakery-b@example.com"
B_FILE = "bakery-notes.txt"
B_DOC = "Bakery notes: sourdough loaves rise overnight in the Lisbon oven at dawn."
# What B types to look for A's passages: A's words, but none of the markers (B's own
# history and pages may show what B typed).
B_PROBES = ("quasar handshake pelican key", "every quasar handshake with a pelican key rotated")


@dataclass
class World:
    client: TestClient
    app: FastAPI
    a_token: str
    a_doc: str
    a_job: str
    b_token: str
    b_doc: str
    a_channel: str = ""
    a_user: int = 0

    def b_page(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request from B's browser: B's session cookie (and CSRF token on forms)."""
        self.client.cookies.clear()
        self.client.cookies.set("pitchcraft_session", self.b_token)
        if method == "POST":
            assert self.client.get("/documents").status_code == 200  # the CSRF cookie
            csrf = self.client.cookies.get("csrftoken")
            assert csrf
            kwargs["data"] = {"csrftoken": csrf, **kwargs.get("data", {})}
        kwargs.setdefault("follow_redirects", False)
        try:
            return self.client.request(method, path, **kwargs)
        finally:
            self.client.cookies.clear()

    def b_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, headers=auth(self.b_token), **kwargs)

    def a_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, path, headers=auth(self.a_token), **kwargs)

    def assert_a_intact(self) -> None:
        docs = self.a_api("GET", "/api/v1/documents").json()
        assert [(d["id"], d["filename"], d["status"]) for d in docs] == [
            (self.a_doc, A_FILE, "indexed")
        ]
        jobs = self.a_api("GET", "/api/v1/jobs").json()
        assert [j["job_id"] for j in jobs] == [self.a_job]
        template = self.a_api("GET", "/api/v1/rag/prompt-template").json()
        assert template["template"] == A_TEMPLATE
        hits = self.a_api("POST", "/api/v1/search", json={"query": "Okapi quasar handshake"})
        assert [h["document_id"] for h in hits.json()["results"]][:1] == [self.a_doc]
        glossary = self.a_api("GET", "/api/v1/glossary").json()
        assert {k: glossary[k] for k in ("terms", "banned")} == A_GLOSSARY
        channels = self.a_api("GET", "/api/v1/rag/channels").json()
        assert [c["id"] for c in channels if c["custom"]] == [self.a_channel]


def assert_no_leak(r: httpx.Response, what: str) -> None:
    for marker in A_MARKERS:
        assert marker not in r.text, f"{what}: B's answer shows A's {marker!r}: {r.text[:500]}"


def wait_job(client: TestClient, token: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while True:
        job: dict[str, Any] = client.get(
            f"/api/v1/rag/results/{job_id}", headers=auth(token)
        ).json()
        if job["status"] in {"succeeded", "failed"}:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    schema = PgSchema() if request.param == "postgresql" else None
    if schema:
        schema.create()
    data = tmp_path_factory.mktemp(f"isolation-{request.param}") / "data"
    settings = make_settings(data, schema.url if schema else None, clear_documents_on_login=False)
    app = create_app(settings)
    try:
        with TestClient(app) as c:
            a = register(c, A_EMAIL, "a-password-41")
            b = register(c, B_EMAIL, "b-password-77")
            (a_entry,) = upload(c, a, (A_FILE, A_DOC.encode()))
            (b_entry,) = upload(c, b, (B_FILE, B_DOC.encode()))
            assert wait_final(c, a, a_entry["id"])["status"] == "indexed"
            assert wait_final(c, b, b_entry["id"])["status"] == "indexed"
            r = c.post(
                "/api/v1/rag/prompt-template", headers=auth(a), json={"template": A_TEMPLATE}
            )
            assert r.status_code == 200, r.text
            r = c.post(
                "/api/v1/rag/process",
                headers=auth(a),
                json={"marketing_text": A_TEXT, "backgrounds": [A_BACKGROUND]},
            )
            assert r.status_code == 202, r.text
            job = wait_job(c, a, r.json()["job_id"])
            assert job["status"] == "succeeded" and job["sources"], job
            assert c.put("/api/v1/glossary", headers=auth(a), json=A_GLOSSARY).status_code == 200
            channel = c.post("/api/v1/rag/channels", headers=auth(a), json=A_CHANNEL).json()
            a_user = c.get("/api/v1/auth/me", headers=auth(a)).json()["id"]
            yield World(
                c, app, a, a_entry["id"], job["job_id"], b, b_entry["id"], channel["id"], a_user
            )
    finally:
        if schema:
            schema.drop()


# --- the checks, one per route --------------------------------------------------------------


def public(reason: str) -> str:
    """A route that serves no user's data (the reason says why)."""
    return reason


def api_me(w: World) -> None:
    r = w.b_api("GET", "/api/v1/auth/me")
    assert r.json()["email"] == B_EMAIL
    assert_no_leak(r, "me")


def api_login(w: World) -> None:
    r = w.client.post("/api/v1/auth/login", json={"email": A_EMAIL, "password": "b-password-77"})
    assert r.status_code == 401
    assert_no_leak(r, "login as A with B's password")


def api_register(w: World) -> None:
    r = w.client.post("/api/v1/auth/register", json={"email": A_EMAIL, "password": "b-password-77"})
    assert r.status_code == 409
    assert "access_token" not in r.text
    w.assert_a_intact()


def api_list(path: str) -> Callable[[World], None]:
    def check(w: World) -> None:
        r = w.b_api("GET", path)
        assert [d["id"] for d in r.json()] == [w.b_doc]
        assert_no_leak(r, path)

    return check


def api_get_document(w: World) -> None:
    r = w.b_api("GET", f"/api/v1/documents/{w.a_doc}")
    assert r.status_code == 404
    assert_no_leak(r, "GET A's document")


def api_delete_document(w: World) -> None:
    r = w.b_api("DELETE", f"/api/v1/documents/{w.a_doc}")
    assert r.status_code == 404
    assert_no_leak(r, "DELETE A's document")
    w.assert_a_intact()


def api_upload(w: World) -> None:
    r = w.client.post(
        "/api/v1/documents/upload",
        headers=auth(w.b_token),
        files=[("files", (A_FILE, b"B's copy, same name", "text/plain"))],
    )
    assert r.status_code == 202
    (entry,) = r.json()
    w.assert_a_intact()  # B's file of the same name is B's, A's list is unchanged
    assert w.b_api("DELETE", f"/api/v1/documents/{entry['id']}").status_code == 204


def api_document_part(path: str, code: str = "document_not_found") -> Callable[[World], None]:
    """One of A's documents by its address (file, page, passage): 404 for B, A's still there."""

    def check(w: World) -> None:
        target = path.format(a_doc=w.a_doc)
        r = w.b_api("GET", target)
        assert r.status_code == 404, (target, r.status_code, r.text[:300])
        assert r.json()["code"] == code
        assert_no_leak(r, target)
        assert w.a_api("GET", target).status_code in {200, 422}  # A's own: served or "no pages"

    return check


def api_search(w: World) -> None:
    for query in B_PROBES:
        r = w.b_api("POST", "/api/v1/search", json={"query": query, "limit": 50})
        assert r.status_code == 200
        assert {h["document_id"] for h in r.json()["results"]} <= {w.b_doc}
        assert_no_leak(r, f"search {query!r}")


def api_get_template(w: World) -> None:
    r = w.b_api("GET", "/api/v1/rag/prompt-template")
    assert r.json()["is_default"] is True
    assert_no_leak(r, "B's template")


def api_save_template(w: World) -> None:
    r = w.b_api("POST", "/api/v1/rag/prompt-template", json={"template": "B {{marketing_text}}"})
    assert r.status_code == 200
    w.assert_a_intact()
    assert w.b_api("DELETE", "/api/v1/rag/prompt-template").status_code == 200


def api_reset_template(w: World) -> None:
    r = w.b_api("DELETE", "/api/v1/rag/prompt-template")
    assert r.status_code == 200
    assert_no_leak(r, "B resets")
    w.assert_a_intact()


def api_backgrounds(w: World) -> None:
    r = w.b_api("GET", "/api/v1/rag/backgrounds")
    assert A_BACKGROUND not in r.json()["recent"]
    assert_no_leak(r, "backgrounds")


def api_process(w: World) -> None:
    r = w.b_api("POST", "/api/v1/rag/process", json={"marketing_text": B_PROBES[1]})
    assert r.status_code == 202
    job = wait_job(w.client, w.b_token, r.json()["job_id"])
    assert {s["document_id"] for s in job["sources"]} <= {w.b_doc}
    for marker in ("Okapi gateway encrypts", A_FILE, "narwhal team"):
        assert marker not in (job["prompt"] or "")
        assert all(marker not in s["snippet"] for s in job["sources"])


def api_job(path: str, method: str = "GET") -> Callable[[World], None]:
    def check(w: World) -> None:
        r = w.b_api(method, path.format(job_id=w.a_job))
        assert r.status_code == 404, r.text
        assert_no_leak(r, f"{method} {path}")
        w.assert_a_intact()

    return check


def api_channels(w: World) -> None:
    r = w.b_api("GET", "/api/v1/rag/channels")
    assert r.status_code == 200 and not [c for c in r.json() if c["custom"]]
    assert_no_leak(r, "B's channels")


def api_add_channel(w: World) -> None:
    r = w.b_api("POST", "/api/v1/rag/channels", json={"name": "B's flyer", "max_chars": 99})
    assert r.status_code == 201
    w.assert_a_intact()
    assert w.b_api("DELETE", f"/api/v1/rag/channels/{r.json()['id']}").status_code == 204


def api_delete_channel(w: World) -> None:
    r = w.b_api("DELETE", f"/api/v1/rag/channels/{w.a_channel}")
    assert r.status_code == 404
    assert_no_leak(r, "DELETE A's channel")
    w.assert_a_intact()


def api_get_glossary(w: World) -> None:
    r = w.b_api("GET", "/api/v1/glossary")
    assert r.status_code == 200 and r.json()["terms"] == [] and r.json()["banned"] == []
    assert_no_leak(r, "B's glossary")


def api_put_glossary(w: World) -> None:
    r = w.b_api("PUT", "/api/v1/glossary", json={"terms": [{"use": "Sourdough"}]})
    assert r.status_code == 200
    w.assert_a_intact()
    assert w.b_api("PUT", "/api/v1/glossary", json={}).status_code == 200


def api_suggestions(w: World) -> None:
    r = w.b_api("GET", "/api/v1/glossary/suggestions")
    assert r.status_code == 200
    assert_no_leak(r, "B's suggested names")


def page_channel_delete(w: World) -> None:
    r = w.b_page("POST", f"/settings/channels/{w.a_channel}/delete")
    assert r.status_code == 404
    assert_no_leak(r, "B deletes A's channel on the Settings page")
    w.assert_a_intact()


def api_history(w: World) -> None:
    r = w.b_api("GET", "/api/v1/jobs", params={"limit": 100})
    assert w.a_job not in {j["job_id"] for j in r.json()}
    assert_no_leak(r, "history")


def api_logout(w: World) -> None:
    """B signing out ends B's session only."""
    r = w.client.post("/api/v1/auth/login", json={"email": B_EMAIL, "password": "b-password-77"})
    b_again = r.json()["access_token"]
    assert w.client.post("/api/v1/auth/logout", headers=auth(b_again)).status_code == 204
    assert w.client.get("/api/v1/auth/me", headers=auth(b_again)).status_code == 401
    assert w.b_api("GET", "/api/v1/auth/me").status_code == 200
    w.assert_a_intact()


def api_account(w: World) -> None:
    r = w.b_api("GET", "/api/v1/account")
    assert r.json()["email"] == B_EMAIL and r.json()["documents"] == 1
    assert r.json()["storage_bytes"] == len(B_DOC.encode())
    assert_no_leak(r, "B's account")


def api_password(w: World) -> None:
    body = {"current_password": "a-password-41", "new_password": "bakery-new-sourdough-9"}
    r = w.b_api("POST", "/api/v1/account/password", json=body)
    assert r.status_code == 422 and r.json()["code"] == "wrong_password"
    assert_no_leak(r, "B changing a password with A's")
    w.assert_a_intact()


def _zip_text(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())


def api_export(w: World) -> None:
    r = w.b_api("GET", "/api/v1/account/export")
    assert r.status_code == 200
    text = _zip_text(r.content)
    assert B_DOC in text and B_EMAIL in text
    for marker in A_MARKERS:
        assert marker not in text, f"B's export holds A's {marker!r}"


def page_export(w: World) -> None:
    r = w.b_page("GET", "/account/export")
    assert r.status_code == 200
    text = _zip_text(r.content)
    assert B_DOC in text
    for marker in A_MARKERS:
        assert marker not in text, f"B's export page holds A's {marker!r}"


def api_delete_account(w: World) -> None:
    """B with A's password deletes nothing; a third user deleting their account leaves A's."""
    r = w.b_api("DELETE", "/api/v1/account", json={"password": "a-password-41"})
    assert r.status_code == 422
    c_token = register(w.client, "third-c@example.com", "cormorant-third-93")
    r = w.client.request(
        "DELETE", "/api/v1/account", headers=auth(c_token), json={"password": "cormorant-third-93"}
    )
    assert r.status_code == 204
    w.assert_a_intact()
    assert w.b_api("GET", "/api/v1/account").json()["documents"] == 1


def page(path: str, *, status: int = 200, **kwargs: Any) -> Callable[[World], None]:
    """GET a page as B: its own status, nothing of A's."""

    def check(w: World) -> None:
        target = path.format(a_job=w.a_job, a_doc=w.a_doc)
        r = w.b_page("GET", target, **kwargs)
        assert r.status_code == status, (target, r.status_code, r.text[:300])
        assert_no_leak(r, target)

    return check


def page_post(path: str, data: dict[str, str], *, expect: set[int]) -> Callable[[World], None]:
    def check(w: World) -> None:
        target = path.format(a_job=w.a_job, a_doc=w.a_doc)
        form = {k: v.replace("{a_job}", w.a_job) for k, v in data.items()}
        r = w.b_page("POST", target, data=form)
        assert r.status_code in expect, (target, r.status_code, r.text[:300])
        assert_no_leak(r, target)
        if r.status_code == 303 and r.headers["location"].startswith("/results/"):
            followed = w.b_page("GET", r.headers["location"])
            assert_no_leak(followed, f"{target} → {r.headers['location']}")
        w.assert_a_intact()

    return check


def page_search(w: World) -> None:
    for hx in ({}, {"hx-request": "true"}):
        r = w.b_page("POST", "/documents/search", data={"query": B_PROBES[0]}, headers=hx)
        assert r.status_code == 200
        assert_no_leak(r, "the Documents page's search")


def page_compose_rerun_of(w: World) -> None:
    """Compose with `rerun_of` naming A's job: B's own run, not linked to A's."""
    r = w.b_page("POST", "/compose", data={"marketing_text": "B's own pitch.", "rerun_of": w.a_job})
    assert r.status_code == 303
    job_id = r.headers["location"].rsplit("/", 1)[1]
    job = wait_job(w.client, w.b_token, job_id)
    assert job["rerun_of"] is None and job["original_request"] == "B's own pitch."
    w.assert_a_intact()


def admin_api(method: str, path: str, **kwargs: Any) -> Callable[[World], None]:
    """An administrators' route: B (a member; A, the first account, administers) gets 403."""

    def check(w: World) -> None:
        r = w.b_api(method, path.format(a_user=w.a_user), **kwargs)
        assert r.status_code == 403 and r.json()["code"] == "admin_only", (path, r.text[:300])
        assert_no_leak(r, path)
        w.assert_a_intact()

    return check


def admin_page(method: str, path: str, **kwargs: Any) -> Callable[[World], None]:
    def check(w: World) -> None:
        r = w.b_page(method, path.format(a_user=w.a_user), **kwargs)
        assert r.status_code == 403, (path, r.status_code, r.text[:300])
        assert_no_leak(r, path)
        w.assert_a_intact()

    return check


def api_samples(w: World) -> None:
    """Samples go to the caller's own library (a third user here, so B's stays as it is)."""
    token = register(w.client, "samples-d@example.com", "dormouse-samples-58")
    r = w.client.post("/api/v1/documents/samples", headers=auth(token))
    assert r.status_code == 202, r.text
    assert_no_leak(r, "adding the samples")
    mine = w.client.get("/api/v1/documents", headers=auth(token)).json()
    assert {d["id"] for d in mine} == {d["id"] for d in r.json()}
    w.assert_a_intact()


def page_samples(w: World) -> None:
    token = register(w.client, "samples-e@example.com", "emu-samples-page-61")
    w.client.cookies.clear()
    w.client.cookies.set("pitchcraft_session", token)
    try:
        assert w.client.get("/documents").status_code == 200  # the CSRF cookie
        csrf = w.client.cookies.get("csrftoken")
        r = w.client.post(
            "/documents/samples", data={"csrftoken": csrf or ""}, follow_redirects=False
        )
    finally:
        w.client.cookies.clear()
    assert r.status_code == 303, r.text[:300]
    mine = w.client.get("/api/v1/documents", headers=auth(token)).json()
    assert mine and all(d["filename"] != A_FILE for d in mine)
    w.assert_a_intact()


# (method, path) → a check, or a string: why the route serves no user's data.
ROUTES: dict[tuple[str, str], Callable[[World], None] | str] = {
    ("GET", "/openapi.json"): public("the API description"),
    ("GET", "/docs"): public("Swagger UI"),
    ("GET", "/health"): public("server health, no user data"),
    ("MOUNT", "/static"): public("CSS, scripts, images shipped with the app"),
    ("GET", "/login"): page("/login", status=303),  # signed in: sent on
    ("POST", "/login"): public("signs in with a password; api_login covers guessing"),
    ("GET", "/register"): page("/register", status=303),
    ("POST", "/register"): public("creates an account; api_register covers a taken email"),
    ("POST", "/logout"): public("ends the caller's own session and clears its cookie"),
    ("POST", "/api/v1/auth/register"): api_register,
    ("POST", "/api/v1/auth/login"): api_login,
    ("GET", "/api/v1/auth/me"): api_me,
    ("POST", "/api/v1/auth/logout"): api_logout,
    ("GET", "/api/v1/admin/llm"): admin_api("GET", "/api/v1/admin/llm"),
    ("PUT", "/api/v1/admin/llm"): admin_api(
        "PUT", "/api/v1/admin/llm", json={"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    ),
    ("DELETE", "/api/v1/admin/llm"): admin_api("DELETE", "/api/v1/admin/llm"),
    ("POST", "/api/v1/admin/llm/test"): admin_api(
        "POST", "/api/v1/admin/llm/test", json={"base_url": "http://127.0.0.1:9/v1"}
    ),
    ("GET", "/api/v1/admin/llm/presets"): admin_api("GET", "/api/v1/admin/llm/presets"),
    ("GET", "/api/v1/admin/users"): admin_api("GET", "/api/v1/admin/users"),
    ("PATCH", "/api/v1/admin/users/{user_id}"): admin_api(
        "PATCH", "/api/v1/admin/users/{a_user}", json={"is_admin": False}
    ),
    ("GET", "/admin/model"): admin_page("GET", "/admin/model"),
    ("POST", "/admin/model"): admin_page(
        "POST", "/admin/model", data={"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    ),
    ("POST", "/admin/model/reset"): admin_page("POST", "/admin/model/reset"),
    ("POST", "/admin/model/test"): admin_page(
        "POST", "/admin/model/test", data={"base_url": "http://127.0.0.1:9/v1"}
    ),
    ("GET", "/admin/users"): admin_page("GET", "/admin/users"),
    ("POST", "/admin/users/{user_id}"): admin_page(
        "POST", "/admin/users/{a_user}", data={"action": "demote"}
    ),
    ("POST", "/api/v1/documents/samples"): api_samples,
    ("POST", "/documents/samples"): page_samples,
    ("GET", "/api/v1/documents/samples/example"): public(
        "the bundled example text, the same for everyone"
    ),
    ("GET", "/api/v1/account"): api_account,
    ("POST", "/api/v1/account/password"): api_password,
    ("GET", "/api/v1/account/export"): api_export,
    ("DELETE", "/api/v1/account"): api_delete_account,
    ("GET", "/account"): page("/account"),
    ("POST", "/account/password"): page_post(
        "/account/password",
        {"current_password": "a-password", "new_password": "x-123456"},
        expect={400},
    ),
    ("GET", "/account/export"): page_export,
    ("POST", "/account/delete"): page_post(
        "/account/delete", {"confirm_email": A_EMAIL, "password": "a-password"}, expect={400}
    ),
    ("POST", "/api/v1/documents/upload"): api_upload,
    ("GET", "/api/v1/documents/list"): api_list("/api/v1/documents/list"),
    ("GET", "/api/v1/documents"): api_list("/api/v1/documents"),
    ("GET", "/api/v1/documents/{document_id}"): api_get_document,
    ("DELETE", "/api/v1/documents/{document_id}"): api_delete_document,
    ("GET", "/api/v1/documents/{document_id}/file"): api_document_part(
        "/api/v1/documents/{a_doc}/file"
    ),
    ("GET", "/api/v1/documents/{document_id}/pages/{page}/preview"): api_document_part(
        "/api/v1/documents/{a_doc}/pages/1/preview"
    ),
    ("GET", "/api/v1/documents/{document_id}/passages/{chunk_index}/context"): api_document_part(
        "/api/v1/documents/{a_doc}/passages/0/context"
    ),
    ("POST", "/api/v1/search"): api_search,
    ("GET", "/api/v1/rag/prompt-template"): api_get_template,
    ("POST", "/api/v1/rag/prompt-template"): api_save_template,
    ("DELETE", "/api/v1/rag/prompt-template"): api_reset_template,
    ("GET", "/api/v1/rag/backgrounds"): api_backgrounds,
    ("POST", "/api/v1/rag/process"): api_process,
    ("GET", "/api/v1/rag/results/{job_id}"): api_job("/api/v1/rag/results/{job_id}"),
    ("GET", "/api/v1/jobs"): api_history,
    ("GET", "/api/v1/jobs/{job_id}/export"): api_job("/api/v1/jobs/{job_id}/export?format=docx"),
    ("GET", "/api/v1/rag/channels"): api_channels,
    ("POST", "/api/v1/rag/channels"): api_add_channel,
    ("DELETE", "/api/v1/rag/channels/{channel_id}"): api_delete_channel,
    ("GET", "/api/v1/glossary"): api_get_glossary,
    ("PUT", "/api/v1/glossary"): api_put_glossary,
    ("GET", "/api/v1/glossary/suggestions"): api_suggestions,
    ("GET", "/settings"): page("/settings"),
    ("POST", "/settings/glossary"): page_post(
        "/settings/glossary", {"use": "Sourdough", "avoid": "sour dough"}, expect={303}
    ),
    ("POST", "/settings/glossary/import"): page_post(
        "/settings/glossary/import", {"csv_text": "Lisbon Oven,lisbon oven"}, expect={303}
    ),
    ("POST", "/settings/glossary/add"): page_post(
        "/settings/glossary/add", {"use": "Dawn Bake"}, expect={303}
    ),
    ("POST", "/settings/channels"): page_post(
        "/settings/channels", {"name": "B's poster", "max_chars": "50"}, expect={303}
    ),
    ("POST", "/settings/channels/{channel_id}/delete"): page_channel_delete,
    ("GET", "/results/{job_id}/export"): page("/results/{a_job}/export?format=md", status=404),
    ("GET", "/api/v1/jobs/{job_id}"): api_job("/api/v1/jobs/{job_id}"),
    ("POST", "/api/v1/jobs/{job_id}/rerun"): api_job("/api/v1/jobs/{job_id}/rerun", "POST"),
    ("DELETE", "/api/v1/jobs/{job_id}"): api_job("/api/v1/jobs/{job_id}", "DELETE"),
    ("GET", "/"): page("/"),
    ("GET", "/documents"): page("/documents"),
    ("GET", "/documents/table"): page("/documents/table", headers={"hx-request": "true"}),
    ("POST", "/documents/upload"): page_post(
        "/documents/upload", {}, expect={303}
    ),  # no file: "no files", and nothing of A's
    ("POST", "/documents/{document_id}/delete"): page_post(
        "/documents/{a_doc}/delete", {}, expect={303}
    ),
    ("POST", "/documents/search"): page_search,
    ("GET", "/compose"): page("/compose?from={a_job}", status=404),
    ("POST", "/compose"): page_compose_rerun_of,
    ("POST", "/compose/template/save"): page_post(
        "/compose/template/save",
        {"template": "B: {{marketing_text}} {{context}}", "rerun_of": "{a_job}"},
        expect={200},
    ),
    ("POST", "/compose/template/reset"): page_post(
        "/compose/template/reset", {"rerun_of": "{a_job}"}, expect={200}
    ),
    ("GET", "/results/{job_id}"): page("/results/{a_job}", status=404),
    ("GET", "/results/{job_id}/live"): page("/results/{a_job}/live", status=404),
    ("POST", "/results/{job_id}/rerun"): page_post("/results/{a_job}/rerun", {}, expect={404}),
    ("POST", "/results/{job_id}/delete"): page_post("/results/{a_job}/delete", {}, expect={404}),
    ("GET", "/results/{job_id}/sources/{n}"): page("/results/{a_job}/sources/1", status=404),
    ("GET", "/results/{job_id}/sources/{n}/page.png"): page(
        "/results/{a_job}/sources/1/page.png", status=404
    ),
    ("GET", "/documents/{document_id}/file"): page("/documents/{a_doc}/file", status=404),
    ("GET", "/history"): page("/history"),
    ("GET", "/history/list"): page("/history/list"),
}


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route, and ("MOUNT", path) of every mount."""

    def walk(routes: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI's included routers
            if inner is not None:
                context = getattr(route, "include_context", None)
                yield from walk(inner.routes, prefix + getattr(context, "prefix", ""))
            elif isinstance(route, Mount):
                yield ("MOUNT", prefix + route.path)
            else:
                for method in getattr(route, "methods", None) or ():
                    if method != "HEAD":
                        yield (method, prefix + route.path)

    return set(walk(app.routes))


def test_every_route_has_an_isolation_check(world: World) -> None:
    routes = app_routes(world.app)
    # The walk sees what the OpenAPI schema lists (so it cannot silently miss routers).
    documented = {
        (method.upper(), path)
        for path, item in world.app.openapi()["paths"].items()
        for method in item
    }
    assert documented <= routes, documented - routes
    unknown = routes - set(ROUTES)
    assert not unknown, (
        f"routes without an isolation check: {sorted(unknown)}; add a row to ROUTES in "
        "tests/test_isolation.py saying how a second user is kept out (or why it is public)"
    )
    assert set(ROUTES) - routes == set(), "ROUTES names routes the app no longer has"


@pytest.mark.parametrize(
    "route",
    [r for r, check in ROUTES.items() if not isinstance(check, str)],
    ids=lambda r: f"{r[0]} {r[1]}",
)
def test_second_user_is_kept_out(world: World, route: tuple[str, str]) -> None:
    check = ROUTES[route]
    assert not isinstance(check, str)
    check(world)


def test_first_users_data_is_intact_after_all(world: World) -> None:
    world.assert_a_intact()
    r = world.a_api("GET", f"/api/v1/rag/results/{world.a_job}")
    assert r.status_code == 200 and r.json()["original_request"] == A_TEXT
