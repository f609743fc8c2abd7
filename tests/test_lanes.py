"""The refine lane beside ingestion, on SQLite and PostgreSQL with the real model and a
large real document: a refine job runs while a 619-page PDF ingests, its wait is reported
honestly, a flood of jobs from one user gets 429, and the parse child never loads the
embedding model."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pitchcraft.settings import Settings
from tests.conftest import CORPUS, app_on, auth, register
from tests.docs_helpers import upload, wait_final

pytestmark = pytest.mark.timeout(900)

BIG = CORPUS / "large" / "DA-619p.pdf"
SMALL = (
    "Acme Shield stops ransomware before it spreads: behavioural detection isolates an "
    "infected laptop within 30 seconds. Acme Shield is certified to ISO 27001."
)
TEXT = "Acme Shield isolates an infected laptop within 30 seconds."
FLOOD_LIMIT = 6
SESSION = "pitchcraft_session"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp(f"lanes-{request.param}")
    with app_on(request.param, data, refine_rate_limit_per_user=f"{FLOOD_LIMIT}/minute") as client:
        yield client


def doc_status(client: TestClient, token: str, doc_id: str) -> str:
    r = client.get(f"/api/v1/documents/{doc_id}", headers=auth(token))
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_refine_job_finishes_while_a_large_document_ingests(app: TestClient) -> None:
    uploader = register(app, "uploader@example.com")
    marketer = register(app, "marketer@example.com")
    (small,) = upload(app, marketer, ("shield.txt", SMALL.encode()))
    assert wait_final(app, marketer, small["id"])["status"] == "indexed"
    (big,) = upload(app, uploader, (BIG.name, BIG.read_bytes()))
    deadline = time.monotonic() + 120
    while doc_status(app, uploader, big["id"]) != "processing":  # the ingestion lane is busy
        assert time.monotonic() < deadline
        time.sleep(0.1)
    r = app.post(
        "/api/v1/rag/process",
        headers=auth(marketer),
        json={"marketing_text": TEXT, "backgrounds": []},
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    while True:
        body: dict[str, Any] = app.get(
            f"/api/v1/rag/results/{job_id}", headers=auth(marketer)
        ).json()
        if body["status"] in {"succeeded", "failed"}:
            break
        assert time.monotonic() < deadline + 600, body
        time.sleep(0.1)
    still = doc_status(app, uploader, big["id"])
    assert body["status"] == "succeeded", body
    assert still in {"queued", "processing"}  # the job finished first: it never waited
    # queued_ms is the wait from the request to the start, as the job's own times say.
    timings = body["timings"]
    waited = (parsed(body["started_at"]) - parsed(body["created_at"])).total_seconds() * 1000
    assert timings["queued_ms"] == pytest.approx(waited, abs=2)
    ran = (parsed(body["finished_at"]) - parsed(body["started_at"])).total_seconds() * 1000
    assert timings["queued_ms"] < ran + 1000  # it waited less than it ran (plus a poll)
    # The Result page says both.
    app.cookies.set(SESSION, marketer)
    try:
        page = app.get(f"/results/{job_id}")
    finally:
        app.cookies.clear()
    assert page.status_code == 200
    assert 'data-testid="waited"' in page.text and 'data-testid="took"' in page.text
    # Deleting the document stops its ingestion (no need to wait for the 619 pages).
    r = app.delete(f"/api/v1/documents/{big['id']}", headers=auth(uploader))
    assert r.status_code == 204


def test_a_flood_of_refine_jobs_from_one_user_is_refused_politely(app: TestClient) -> None:
    flooder = register(app, "flooder@example.com")
    other = register(app, "other@example.com")
    body = {"marketing_text": TEXT, "backgrounds": []}
    codes = []
    for _ in range(FLOOD_LIMIT + 3):
        r = app.post("/api/v1/rag/process", headers=auth(flooder), json=body)
        codes.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert r.json()["code"] == "rate_limited"
    assert codes == [202] * FLOOD_LIMIT + [429] * 3
    # Invalid input is refused as such and never counted.
    assert app.post("/api/v1/rag/process", headers=auth(other), json={}).status_code == 422
    # Everyone else still gets in.
    assert app.post("/api/v1/rag/process", headers=auth(other), json=body).status_code == 202


# -- the parse child ----------------------------------------------------------------------


def loaded_modules() -> list[str]:
    return sorted(sys.modules)


def test_the_parse_child_never_loads_the_embedding_model(tmp_path: Path) -> None:
    from pitchcraft.embedding.local import LocalEmbedder
    from pitchcraft.ingestion import sandbox

    LocalEmbedder("all-MiniLM-L6-v2").embed_query("loaded in this process")
    assert "tokenizers" in sys.modules  # so its absence below means something
    child = sandbox.run_sandboxed(
        loaded_modules, timeout_s=120, memory_mb=1024, name="parse-modules"
    )
    assert "pitchcraft.ingestion.parsers.pdf" in child  # it is the parser process
    for model in ("pitchcraft.embedding.local", "tokenizers", "torch", "sentence_transformers"):
        assert model not in child


def test_a_parse_child_out_of_memory_fails_the_document_and_the_server_stays_up(
    settings: Settings,
) -> None:
    """The parse child of one document runs out of memory (the sandbox's test kind that
    allocates without end): that document fails with a reason, the next one is indexed."""
    from sqlalchemy import update

    from pitchcraft.container import build
    from pitchcraft.documents.models import Document
    from pitchcraft.ingestion.sandbox import TEST_MEMORY
    from pitchcraft.runtime import start_background_work
    from pitchcraft.web.app import create_app

    settings = settings.model_copy(
        update={
            "worker_in_process": False,
            "parse_memory_mb": 512,
            "clear_documents_on_login": False,
        }
    )
    container = build(settings)
    with TestClient(create_app(settings, container=container)) as client:
        token = register(client)
        (hog,) = upload(client, token, ("hog.txt", b"allocates without end"))
        with container.db.session() as s:  # only tests can ask for this kind
            s.execute(
                update(Document).where(Document.id == hog["id"]).values(file_type=TEST_MEMORY)
            )
        lanes = start_background_work(container)
        try:
            failed = wait_final(client, token, hog["id"])
            assert failed["status"] == "failed"
            assert "too much memory" in failed["error"]
            (fine,) = upload(client, token, ("shield.txt", SMALL.encode()))
            assert wait_final(client, token, fine["id"])["status"] == "indexed"
            assert client.get("/health").status_code == 200
        finally:
            lanes.stop()


# -- lanes by kind ------------------------------------------------------------------------


def test_each_kind_has_a_lane_of_its_own(settings: Settings) -> None:
    from pitchcraft.container import build
    from pitchcraft.runtime import REFINE_ATTEMPTS, build_worker

    container = build(settings.model_copy(update={"worker_concurrency": 3}))
    lanes = {kind: build_worker(container, kind) for kind in ("ingest", "refine", "all")}
    # Multilingual enrichment runs where ingestion does, in a lane of its own.
    assert [list(w.kinds) for w in lanes["ingest"].workers] == [["ingest"], ["enrich"]]
    assert [list(w.kinds) for w in lanes["refine"].workers] == [["refine"]]
    ingest, refine, enrich = lanes["all"].workers
    assert (list(ingest.kinds), list(refine.kinds)) == (["ingest"], ["refine"])
    # Ingestion yields the CPU; refine jobs, which a person waits for, do not; enrichment
    # yields to both.
    assert (ingest.concurrency, ingest.nice) == (3, settings.worker_nice)
    assert (refine.concurrency, refine.nice) == (settings.refine_concurrency, 0)
    assert (enrich.concurrency, enrich.nice) == (1, min(19, settings.worker_nice + 5))
    assert refine.kinds["refine"].max_attempts == REFINE_ATTEMPTS == 2
    assert ingest.id == refine.id == enrich.id == lanes["all"].id  # one process, one id
    off = build(settings.model_copy(update={"multilingual_search": False}))
    assert [list(w.kinds) for w in build_worker(off, "all").workers] == [["ingest"], ["refine"]]
    off.close()


def test_the_worker_command_names_the_kinds() -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "pitchcraft", "worker", "--kind", "everything"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "--kind must be one of ingest, refine, all" in done.stderr
