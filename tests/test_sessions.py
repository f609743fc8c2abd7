"""Sessions: sign-out revokes, idle and expired sessions end, clearing at sign-in takes only
the documents of ended sessions (with the count), duplicates are recognised per user.

On SQLite and PostgreSQL, with the real worker, MiniLM and Qdrant Edge."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pitchcraft.auth.models import UserSession
from pitchcraft.core.db import utcnow
from pitchcraft.documents.models import Document
from tests.conftest import CORPUS, app_on, auth, register
from tests.docs_helpers import upload, wait_final

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
DOCS = "/api/v1/documents"
EMAIL, PASSWORD = "sess@example.com", "sess-pass-1"
NOTE = b"The Heron 4 tent weighs 2.1 kg and sleeps four people in alpine conditions."
OTHER_NOTE = b"Falcon roadmap: the spring launch moves to May, with two new colours."


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(database: str, tmp_path: Path) -> Iterator[TestClient]:
    with app_on(database, tmp_path / "data", clear_documents_on_login=True) as c:
        yield c


def login(c: TestClient, email: str = EMAIL, password: str = PASSWORD) -> dict[str, Any]:
    r = c.post(LOGIN, json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def files_on_disk(c: TestClient) -> list[Path]:
    root = c.app.state.container.settings.storage_dir  # type: ignore[attr-defined]
    return sorted(p for p in root.rglob("*") if p.is_file())


def user_id(c: TestClient, token: str) -> int:
    me: int = c.get(ME, headers=auth(token)).json()["id"]
    return me


def test_sign_out_revokes_only_that_token(client: TestClient) -> None:
    first = register(client, EMAIL, PASSWORD)
    second = login(client)["access_token"]
    assert client.get(ME, headers=auth(first)).status_code == 200

    assert client.post(LOGOUT, headers=auth(first)).status_code == 204
    r = client.get(ME, headers=auth(first))
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    assert "signed out" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    # Signing out twice, or uploading with the revoked token: 401, nothing stored.
    assert client.post(LOGOUT, headers=auth(first)).status_code == 401
    r = client.post(
        f"{DOCS}/upload", headers=auth(first), files=[("files", ("n.txt", NOTE, "text/plain"))]
    )
    assert r.status_code == 401
    assert files_on_disk(client) == []
    # The other session is untouched.
    assert client.get(ME, headers=auth(second)).status_code == 200


def test_idle_session_ends(database: str, tmp_path: Path) -> None:
    # A short idle limit: 3 seconds.
    with app_on(database, tmp_path / "data", session_idle_minutes=0.05) as c:
        token = register(c, EMAIL, PASSWORD)
        busy = login(c)["access_token"]
        # Used every half second, a session stays alive well past the idle limit.
        for _ in range(10):
            assert c.get(ME, headers=auth(busy)).status_code == 200
            time.sleep(0.5)
        r = c.get(ME, headers=auth(token))
        assert r.status_code == 401 and "without activity" in r.json()["detail"]
        # Ended for good: the session row says so.
        db = c.app.state.container.db  # type: ignore[attr-defined]
        with db.session() as s:
            reasons = sorted(str(x.end_reason) for x in s.scalars(select(UserSession)))
        assert reasons == ["None", "idle"]


def test_expired_forged_and_old_tokens(client: TestClient) -> None:
    token = register(client, EMAIL, PASSWORD)
    db = client.app.state.container.db  # type: ignore[attr-defined]
    secret = client.app.state.container.accounts.tokens.secret  # type: ignore[attr-defined]
    claims = jwt.decode(token, secret, algorithms=["HS256"], issuer="pitchcraft")

    # A token without a session (as issued before sessions existed), signed correctly.
    old = {k: v for k, v in claims.items() if k != "sid"}
    r = client.get(ME, headers=auth(jwt.encode(old, secret, algorithm="HS256")))
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    # Forged: another key; or a real session id under another user's id.
    assert client.get(ME, headers=auth(jwt.encode(claims, "x" * 40, "HS256"))).status_code == 401
    other = register(client, "other@example.com", "other-pass")
    stolen = {**claims, "sub": str(user_id(client, other))}
    r = client.get(ME, headers=auth(jwt.encode(stolen, secret, algorithm="HS256")))
    assert r.status_code == 401

    # Expired on the server's side (the session's end), whatever the token says.
    with db.session() as s:
        s.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = client.get(ME, headers=auth(token))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    assert client.get(ME, headers=auth(other)).status_code == 401


def test_clearing_takes_only_documents_of_ended_sessions(client: TestClient) -> None:
    first = register(client, EMAIL, PASSWORD)
    [old] = upload(client, first, ("old.txt", NOTE))
    assert wait_final(client, first, old["id"])["status"] == "indexed"

    # A second sign-in while the first session is live (another device): nothing cleared.
    signed = login(client)
    assert signed["cleared_documents"] == 0
    second = signed["access_token"]
    assert [d["id"] for d in client.get(DOCS, headers=auth(first)).json()] == [old["id"]]
    [mine] = upload(client, second, ("mine.txt", OTHER_NOTE))
    assert wait_final(client, second, mine["id"])["status"] == "indexed"

    # The first session signs out; the next sign-in clears its document and says so.
    assert client.post(LOGOUT, headers=auth(first)).status_code == 204
    signed = login(client)
    assert signed["cleared_documents"] == 1
    third = signed["access_token"]
    listed = client.get(DOCS, headers=auth(third)).json()
    assert [d["id"] for d in listed] == [mine["id"]]
    index = client.app.state.container.index()  # type: ignore[attr-defined]
    uid = user_id(client, third)
    assert index.document_ids(uid) == {mine["id"]}
    assert [p.name for p in files_on_disk(client)] == [f"{mine['id']}.txt"]
    # Nothing more to clear on the next sign-in.
    assert login(client)["cleared_documents"] == 0


def test_clearing_after_idle_and_never_a_queued_document(database: str, tmp_path: Path) -> None:
    with app_on(
        database,
        tmp_path / "data",
        clear_documents_on_login=True,
        session_idle_minutes=0.05,
        worker_in_process=False,  # documents stay queued
    ) as c:
        token = register(c, EMAIL, PASSWORD)
        [queued] = upload(c, token, ("queued.txt", NOTE))
        db = c.app.state.container.db  # type: ignore[attr-defined]
        [failed] = upload(c, token, ("other.txt", OTHER_NOTE))
        with db.session() as s:  # as if the worker had given up on it
            s.execute(update(Document).where(Document.id == failed["id"]).values(status="failed"))
        time.sleep(3.5)  # the session goes idle
        signed = login(c)
        assert signed["cleared_documents"] == 1
        listed = c.get(DOCS, headers=auth(signed["access_token"])).json()
        assert [d["id"] for d in listed] == [queued["id"]]
        assert c.get(ME, headers=auth(token)).status_code == 401


def test_second_sign_in_during_ingestion_leaves_the_document_to_finish(client: TestClient) -> None:
    token = register(client, EMAIL, PASSWORD)
    data = (CORPUS / "pdf" / "GeoTopo-komprimiert.pdf").read_bytes()
    [doc] = upload(client, token, ("GeoTopo.pdf", data))
    deadline = time.monotonic() + 300
    while client.get(f"{DOCS}/{doc['id']}", headers=auth(token)).json()["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    signed = login(client)
    assert signed["cleared_documents"] == 0
    final = wait_final(client, signed["access_token"], doc["id"], timeout=600)
    assert final["status"] == "indexed" and final["chunks"] > 0
    index = client.app.state.container.index()  # type: ignore[attr-defined]
    assert index.count(user_id(client, token), doc["id"]) == final["chunks"]


def test_two_sign_ins_at_once_clear_once(client: TestClient) -> None:
    token = register(client, EMAIL, PASSWORD)
    docs = upload(client, token, ("a.txt", NOTE), ("b.txt", OTHER_NOTE))
    for d in docs:
        wait_final(client, token, d["id"])
    assert client.post(LOGOUT, headers=auth(token)).status_code == 204
    results: list[Any] = []
    start = threading.Barrier(2)

    def sign_in() -> None:
        start.wait()
        r = client.post(LOGIN, json={"email": EMAIL, "password": PASSWORD})
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [code for code, _ in results] == [200, 200], results
    assert sorted(body["cleared_documents"] for _, body in results) == [0, 2]
    for _, body in results:
        assert client.get(DOCS, headers=auth(body["access_token"])).json() == []
    assert files_on_disk(client) == []


def test_duplicates_are_recognised_per_user(client: TestClient) -> None:
    alice = register(client, "alice@example.com", "alice-pass")
    bob = register(client, "bob@example.com", "bob-pass-1")
    [first, again] = upload(client, alice, ("heron.txt", NOTE), ("copy of heron.txt", NOTE))
    assert first["duplicate_of"] is None
    assert again["duplicate_of"] == first["id"] and again["id"] == first["id"]
    assert again["status"] == first["status"]
    done = wait_final(client, alice, first["id"])
    [later] = upload(client, alice, ("heron-2.txt", NOTE))
    assert later["duplicate_of"] == first["id"] and later["status"] == done["status"]
    assert len(client.get(DOCS, headers=auth(alice)).json()) == 1
    assert len(files_on_disk(client)) == 1

    # Bob's identical file is his alone: a new document, nothing said about Alice's.
    [bobs] = upload(client, bob, ("tent.txt", NOTE))
    assert bobs["duplicate_of"] is None and bobs["id"] != first["id"]
    assert bobs["filename"] == "tent.txt"
    wait_final(client, bob, bobs["id"])
    index = client.app.state.container.index()  # type: ignore[attr-defined]
    assert index.document_ids(user_id(client, bob)) == {bobs["id"]}
    assert index.document_ids(user_id(client, alice)) == {first["id"]}
    assert len(files_on_disk(client)) == 2
    # Once deleted, the same content is new again.
    assert client.delete(f"{DOCS}/{first['id']}", headers=auth(alice)).status_code == 204
    [fresh] = upload(client, alice, ("heron.txt", NOTE))
    assert fresh["duplicate_of"] is None and fresh["id"] != first["id"]
