"""The account routes: summary, password change, export, deletion; and the operator's
`pitchcraft user set-subscribed`. On SQLite and PostgreSQL, with real files, the real
worker, MiniLM and Qdrant Edge."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from pitchcraft.auth.models import User, UserSession
from pitchcraft.documents.models import Document
from pitchcraft.jobs.models import Job
from pitchcraft.templates.models import PromptTemplate
from pitchcraft.vectors.base import collection_name
from tests.conftest import CORPUS, app_on, auth, register
from tests.docs_helpers import upload, wait_final
from tests.test_cli_users import run_cli
from tests.test_refine import process, wait_job

ACCOUNT = "/api/v1/account"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
EMAIL, PASSWORD = "owner@example.com", "owner-pass-1"
OTHER, OTHER_PASSWORD = "neighbour@example.com", "neighbour-pass"
PDF = CORPUS / "pdf" / "fake-memo.pdf"
NOTE = b"The Heron 4 tent weighs 2.1 kg and sleeps four people in alpine conditions."
SECRET = b"Neighbour's private plan: the Osprey kayak ships in March at 899 euros."


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(database: str, tmp_path: Path) -> Iterator[TestClient]:
    with app_on(database, tmp_path / "data") as c:
        yield c


def login(c: TestClient, email: str, password: str) -> str:
    r = c.post(LOGIN, json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def owner_with_data(c: TestClient) -> tuple[str, list[dict[str, Any]], str]:
    """The owner with two indexed documents and a finished refine job; a neighbour with
    a document of their own."""
    token = register(c, EMAIL, PASSWORD)
    docs = upload(c, token, (PDF.name, PDF.read_bytes()), ("heron.txt", NOTE))
    for d in docs:
        assert wait_final(c, token, d["id"])["status"] == "indexed"
    job_id = process(c, token, marketing_text="Our Heron 4 tent weighs 2.1 kg.")
    assert wait_job(c, token, job_id)["status"] == "succeeded"
    template = {"template": "{{context}}\n{{marketing_text}}"}
    r = c.post("/api/v1/rag/prompt-template", headers=auth(token), json=template)
    assert r.status_code == 200, r.text
    other = register(c, OTHER, OTHER_PASSWORD)
    [theirs] = upload(c, other, ("osprey-plan.txt", SECRET))
    wait_final(c, other, theirs["id"])
    return token, docs, job_id


def rows_of(c: TestClient, uid: int) -> dict[str, int]:
    db = c.app.state.container.db  # type: ignore[attr-defined]
    with db.session() as s:
        return {
            table.__tablename__: int(
                s.scalar(select(func.count()).select_from(table).where(col == uid)) or 0
            )
            for table, col in [
                (User, User.id),
                (UserSession, UserSession.user_id),
                (Document, Document.user_id),
                (Job, Job.user_id),
                (PromptTemplate, PromptTemplate.user_id),
            ]
        }


def test_account_summary(client: TestClient) -> None:
    token, _, _ = owner_with_data(client)
    r = client.get(ACCOUNT, headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {
        "email",
        "is_subscribed",
        "is_admin",
        "created_at",
        "documents",
        "jobs",
        "storage_bytes",
    }
    # The first account of an install administers it; a second one does not.
    assert body["email"] == EMAIL and body["is_subscribed"] is False and body["is_admin"] is True
    other = register(client, "second-member@example.com", PASSWORD)
    assert client.get(ACCOUNT, headers=auth(other)).json()["is_admin"] is False
    assert body["documents"] == 2
    assert body["storage_bytes"] == PDF.stat().st_size + len(NOTE)
    assert body["jobs"] == 1  # the refine job (History); ingestion is not the user's job
    assert client.get(ACCOUNT).status_code == 401


def test_password_change_signs_the_other_sessions_out(client: TestClient) -> None:
    here = register(client, EMAIL, PASSWORD)
    elsewhere = login(client, EMAIL, PASSWORD)
    url = f"{ACCOUNT}/password"

    def change(**body: str) -> Any:
        return client.post(url, headers=auth(here), json=body)

    r = change(current_password="nope", new_password="brand-new-1")
    assert r.status_code == 422 and r.json()["code"] == "wrong_password"
    r = change(current_password=PASSWORD, new_password="ab")
    assert r.status_code == 422 and r.json()["code"] == "password_too_short"
    assert change(current_password=PASSWORD).status_code == 422
    # Nothing changed so far: both sessions live, the old password works.
    assert client.get(ME, headers=auth(elsewhere)).status_code == 200

    r = change(current_password=PASSWORD, new_password="brand-new-1")
    assert r.status_code == 204, r.text
    assert client.get(ME, headers=auth(here)).status_code == 200
    r = client.get(ME, headers=auth(elsewhere))
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    assert client.post(LOGIN, json={"email": EMAIL, "password": PASSWORD}).status_code == 401
    login(client, EMAIL, "brand-new-1")


def test_export_holds_the_users_data_and_nothing_else(client: TestClient) -> None:
    token, docs, job_id = owner_with_data(client)
    r = client.get(f"{ACCOUNT}/export", headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert r.headers["content-disposition"].startswith("attachment;")
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        everything = b"".join(zf.read(n) for n in names)
        listed = json.loads(zf.read("documents.json"))
        jobs = json.loads(zf.read("jobs.json"))
        account = json.loads(zf.read("account.json"))
        template = json.loads(zf.read("prompt_template.json"))
        files = {n: zf.read(n) for n in names if n.startswith("files/")}
        manifest = json.loads(zf.read("manifest.json"))
    assert account["email"] == EMAIL
    assert {d["id"] for d in listed} == {d["id"] for d in docs}
    by_name = {d["filename"]: d for d in listed}
    assert files[by_name["heron.txt"]["file"]] == NOTE
    assert files[by_name[PDF.name]["file"]] == PDF.read_bytes()
    [refine] = [j for j in jobs if j["kind"] == "refine"]
    assert refine["id"] == job_id and refine["result"]["sources"]
    assert refine["request"]["marketing_text"] == "Our Heron 4 tent weighs 2.1 kg."
    assert template["template"] == "{{context}}\n{{marketing_text}}"
    assert manifest["missing"] == []
    # Nothing of the neighbour's.
    assert b"Osprey" not in everything and OTHER.encode() not in everything
    assert b"osprey-plan" not in everything


def test_wrong_password_deletes_nothing(client: TestClient) -> None:
    token, _, _ = owner_with_data(client)
    uid = client.get(ME, headers=auth(token)).json()["id"]
    before = rows_of(client, uid)
    r = client.request("DELETE", ACCOUNT, headers=auth(token), json={"password": "wrong-one"})
    assert r.status_code == 422 and r.json()["code"] == "wrong_password"
    r = client.request("DELETE", ACCOUNT, headers=auth(token), json={})
    assert r.status_code == 422
    assert rows_of(client, uid) == before
    assert client.get(ACCOUNT, headers=auth(token)).json()["documents"] == 2


def test_delete_removes_files_vectors_rows_and_sessions(client: TestClient) -> None:
    token, _, _ = owner_with_data(client)
    other = login(client, OTHER, OTHER_PASSWORD)
    uid = client.get(ME, headers=auth(token)).json()["id"]
    other_id = client.get(ME, headers=auth(other)).json()["id"]
    container = client.app.state.container  # type: ignore[attr-defined]
    storage, qdrant = container.settings.storage_dir, container.settings.qdrant_dir
    assert (storage / str(uid)).is_dir() and container.index().count(uid) > 0
    assert [p for p in qdrant.rglob("*") if p.name == collection_name(uid)]
    other_before = rows_of(client, other_id)

    r = client.request("DELETE", ACCOUNT, headers=auth(token), json={"password": PASSWORD})
    assert r.status_code == 204, r.text
    assert not (storage / str(uid)).exists()
    assert container.index().count(uid) == 0 and container.index().document_ids(uid) == set()
    assert not [p for p in qdrant.rglob("*") if p.name == collection_name(uid)]
    assert rows_of(client, uid) == dict.fromkeys(rows_of(client, uid), 0)
    r = client.get(ME, headers=auth(token))
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"
    again = client.request("DELETE", ACCOUNT, headers=auth(token), json={"password": PASSWORD})
    assert again.status_code == 401

    # The neighbour is untouched.
    assert rows_of(client, other_id) == other_before
    assert len(client.get("/api/v1/documents", headers=auth(other)).json()) == 1
    assert container.index().count(other_id) > 0

    # The email can register again and finds nothing.
    again = register(client, EMAIL, "another-pass-1")
    assert client.get("/api/v1/documents", headers=auth(again)).json() == []
    summary = client.get(ACCOUNT, headers=auth(again)).json()
    assert (summary["documents"], summary["jobs"], summary["storage_bytes"]) == (0, 0, 0)
    r = client.get("/api/v1/rag/prompt-template", headers=auth(again))
    assert r.json()["is_default"] is True


def test_delete_racing_uploads_leaves_nothing(client: TestClient) -> None:
    token = register(client, EMAIL, PASSWORD)
    uid = client.get(ME, headers=auth(token)).json()["id"]
    statuses: list[int] = []
    stop = threading.Event()

    def keep_uploading() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            r = client.post(
                "/api/v1/documents/upload",
                headers=auth(token),
                files=[("files", (f"n{n}.txt", NOTE + str(n).encode(), "text/plain"))],
            )
            statuses.append(r.status_code)
            if r.status_code == 401:
                return

    worker = threading.Thread(target=keep_uploading)
    worker.start()
    while len(statuses) < 3:
        stop.wait(0.05)
    r = client.request("DELETE", ACCOUNT, headers=auth(token), json={"password": PASSWORD})
    stop.set()
    worker.join(60)
    assert r.status_code == 204, r.text
    assert set(statuses) <= {202, 401}, statuses
    storage = client.app.state.container.settings.storage_dir  # type: ignore[attr-defined]
    assert [p for p in storage.rglob("*") if p.is_file()] == []
    assert rows_of(client, uid) == dict.fromkeys(rows_of(client, uid), 0)
    assert client.app.state.container.index().count(uid) == 0  # type: ignore[attr-defined]


def test_set_subscribed_command(client: TestClient, database: str, tmp_path: Path) -> None:
    token = register(client, EMAIL, PASSWORD)
    settings = client.app.state.container.settings  # type: ignore[attr-defined]
    env = {"DATA_DIR": str(settings.data_dir), "CONTAINER_MODE": "no"}
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    done = run_cli(env, tmp_path, "user", "set-subscribed", EMAIL.upper(), "true")
    assert done.returncode == 0, done.stderr
    assert "now subscribed" in done.stdout
    assert client.get(ACCOUNT, headers=auth(token)).json()["is_subscribed"] is True
    done = run_cli(env, tmp_path, "user", "set-subscribed", EMAIL, "false")
    assert done.returncode == 0 and "not subscribed" in done.stdout
    assert client.get(ACCOUNT, headers=auth(token)).json()["is_subscribed"] is False

    bad = run_cli(env, tmp_path, "user", "set-subscribed", EMAIL, "maybe")
    assert bad.returncode != 0 and "true or false" in bad.stderr
    ghost = run_cli(env, tmp_path, "user", "set-subscribed", "ghost@example.com", "true")
    assert ghost.returncode != 0 and "No account" in ghost.stderr
    assert client.get(ACCOUNT, headers=auth(token)).json()["is_subscribed"] is False


def test_export_racing_a_delete_lists_the_missing_file(client: TestClient) -> None:
    token = register(client, EMAIL, PASSWORD)
    kept, gone = upload(client, token, ("kept.txt", NOTE), ("gone.txt", SECRET))
    uid = client.get(ME, headers=auth(token)).json()["id"]
    stream = client.app.state.container.account_data.export(uid)  # type: ignore[attr-defined]
    # The rows are read; the file goes before the stream reaches it.
    assert client.delete(f"/api/v1/documents/{gone['id']}", headers=auth(token)).status_code == 204
    with zipfile.ZipFile(io.BytesIO(b"".join(stream))) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        files = [n for n in zf.namelist() if n.startswith("files/")]
        assert zf.read(files[0]) == NOTE
    assert manifest["missing"] == [gone["id"]] and len(files) == 1
    assert kept["id"] in files[0]


def test_delete_during_an_ingestion_leaves_no_vectors(client: TestClient) -> None:
    token = register(client, EMAIL, PASSWORD)
    uid = client.get(ME, headers=auth(token)).json()["id"]
    data = (CORPUS / "pdf" / "GeoTopo-komprimiert.pdf").read_bytes()
    upload(client, token, ("GeoTopo.pdf", data))
    container = client.app.state.container  # type: ignore[attr-defined]
    deadline = time.monotonic() + 600
    while container.index().count(uid) == 0:  # the first passages are written
        assert time.monotonic() < deadline
        time.sleep(0.1)
    r = client.request("DELETE", ACCOUNT, headers=auth(token), json={"password": PASSWORD})
    assert r.status_code == 204, r.text
    # The ingestion notices at its next batch and stops; it writes nothing back.
    time.sleep(3)
    assert container.index().count(uid) == 0
    qdrant = container.settings.qdrant_dir
    assert not [p for p in qdrant.rglob("*") if p.name == collection_name(uid)]
    assert not (container.settings.storage_dir / str(uid)).exists()
    assert rows_of(client, uid) == dict.fromkeys(rows_of(client, uid), 0)


def test_only_a_postgresql_deadlock_is_retried_by_account_deletion() -> None:
    from types import SimpleNamespace

    from sqlalchemy.exc import OperationalError

    from pitchcraft.accounts.service import _deadlock

    def error(sqlstate: str | None) -> OperationalError:
        return OperationalError("DELETE FROM users", {}, SimpleNamespace(sqlstate=sqlstate))

    assert _deadlock(error("40P01"))
    assert not _deadlock(error("40001"))  # a serialization failure is not this case
    assert not _deadlock(error(None))
    assert not _deadlock(ValueError("40P01"))
