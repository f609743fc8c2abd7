"""Ingestion survives kill -9; sign-ins mid-ingestion leave it to finish, and clearing it
afterwards leaves nothing behind. One ingestion of the 619-page PDF serves both."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pitchcraft.vectors.qdrant_edge import EdgeIndex
from tests.conftest import CORPUS, ServerProcess, auth
from tests.docs_helpers import get_doc, wait_doc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

BIG = CORPUS / "large" / "DA-619p.pdf"


@pytest.fixture
def database_url() -> None:
    """These tests are about the embedded index and the worker: SQLite is enough."""
    return None


def _upload(server: ServerProcess, token: str, path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        r = httpx.post(
            f"{server.url}/api/v1/documents/upload",
            headers=auth(token),
            files=[("files", (path.name, fh, "application/pdf"))],
            timeout=60,
        )
    assert r.status_code == 202, r.text
    doc: dict[str, Any] = r.json()[0]
    return doc


def _wait(
    server: ServerProcess,
    token: str,
    doc_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float,
) -> dict[str, Any]:
    """wait_doc on a server process: a failed document fails the test at once, and a
    timeout shows the end of the server's log."""

    def settled(doc: dict[str, Any]) -> bool:
        assert doc["status"] != "failed", doc
        return done(doc)

    with httpx.Client(base_url=server.url, timeout=30) as client:
        return wait_doc(
            client, token, doc_id, settled, timeout, detail=lambda: server.log()[-3000:]
        )


def _register(server: ServerProcess, email: str) -> str:
    r = httpx.post(
        f"{server.url}/api/v1/auth/register",
        json={"email": email, "password": "test-pass-123"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    token: str = r.json()["access_token"]
    return token


def test_kill_9_mid_ingestion_resumes_and_sign_ins_leave_it_to_finish_then_clear_it(
    server_env: dict[str, str], start_server: Callable[[dict[str, str]], ServerProcess]
) -> None:
    """One ingestion of the 619-page PDF, killed with -9 half-way, resumes at the next start
    and ends with no duplicate passages. Sign-ins during the resumed ingestion (another
    device, a script) do not touch it, even once the uploading session has signed out;
    after that, the next sign-in clears it completely: row, file and vectors."""
    first = start_server(server_env)
    token = _register(first, "crash@example.com")
    doc = _upload(first, token, BIG)
    mid = _wait(
        first, token, doc["id"], lambda d: d["status"] == "processing" and d["chunks"] >= 128, 300
    )
    first.stop(signal.SIGKILL)
    assert mid["status"] == "processing"

    second = start_server(server_env)

    def sign_in(server: ServerProcess) -> dict[str, Any]:
        r = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": "crash@example.com", "password": "test-pass-123"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    # The document is being indexed again: sign-ins leave it alone, even once the session
    # that uploaded it has ended.
    with httpx.Client(base_url=second.url, timeout=30) as client:
        assert get_doc(client, token, doc["id"])["status"] in {"queued", "processing"}
    assert sign_in(second)["cleared_documents"] == 0
    r = httpx.post(f"{second.url}/api/v1/auth/logout", headers=auth(token), timeout=60)
    assert r.status_code == 204
    signed = sign_in(second)  # the uploading session has ended, but the document is processing
    assert signed["cleared_documents"] == 0
    fresh = signed["access_token"]

    final = _wait(second, fresh, doc["id"], lambda d: d["status"] == "indexed", 600)
    assert final["pages"] == 619
    assert final["chunks"] > mid["chunks"]
    second.stop(signal.SIGTERM)

    data = Path(server_env["DATA_DIR"])
    index = EdgeIndex(data / "qdrant", 384)
    try:
        assert index.count(1, doc["id"]) == final["chunks"]
        assert index.count(1) == final["chunks"]
    finally:
        index.close()
    assert [p.name for p in (data / "storage" / "1").iterdir()] == [f"{doc['id']}.pdf"]
    assert "Traceback" not in second.log()

    # Indexed, and its uploading session over: the next sign-in clears it completely.
    third = start_server(server_env)
    assert sign_in(third)["cleared_documents"] == 1
    assert httpx.get(f"{third.url}/api/v1/documents", headers=auth(fresh), timeout=60).json() == []
    third.stop(signal.SIGTERM)

    assert [p for p in (data / "storage").rglob("*") if p.is_file()] == []
    index = EdgeIndex(data / "qdrant", 384)
    try:
        assert index.count(1) == 0
        assert index.document_ids(1) == set()
    finally:
        index.close()
    for server in (second, third):
        log = server.log()
        assert "Traceback" not in log
        assert " ERROR " not in log
