"""Waiting for a refine job (PROCESS_WAIT_S, ?wait=): the wait itself on both databases,
job failures as the status a person expects, and scores and names a reader can use."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from pitchcraft.auth.models import User
from pitchcraft.core.db import Database
from pitchcraft.core.migrate import upgrade
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import FAILED, QUEUED, SUCCEEDED, Job
from pitchcraft.jobs.watch import Finished, wait_finished
from pitchcraft.refine.schemas import ResultOut
from pitchcraft.settings import Settings
from tests.conftest import FAKE_LLM_KEY, app_on, auth, make_settings, register
from tests.llm_server import FakeLLM

TEXT = "Our platform blocks phishing emails before they reach the inbox."


# -- the wait, on a real database ----------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path, database_url: str | None) -> Iterator[Database]:
    database = Database(make_settings(tmp_path / "data", database_url))
    upgrade(database)
    with database.session() as s:
        s.add(User(id=1, email="u@example.com", password_hash="x"))
    yield database
    database.dispose()


def _queued(db: Database) -> str:
    with db.session() as s:
        job = queue.enqueue(s, kind="refine", user_id=1, payload={})
        s.flush()
        return job.id


def _finish_later(db: Database, job_id: str, after: float, tell: Finished | None) -> None:
    """A worker elsewhere (tell=None: only the database knows) or in this process."""

    def run() -> None:
        claimed = queue.claim(db, worker_id="w", kinds=("refine",), lease_seconds=60)
        assert claimed is not None and claimed.id == job_id
        threading.Event().wait(after)
        assert queue.finish(db, job_id, worker_id="w", status=SUCCEEDED, result={})
        if tell is not None:
            tell(job_id)

    threading.Thread(target=run, daemon=True).start()


def _wait(db: Database, job_id: str, finished: Finished, timeout: float) -> str | None:
    return asyncio.run(
        wait_finished(
            job_id,
            status_of=lambda i: queue.status_of(db, i),
            finished=finished,
            timeout=timeout,
        )
    )


def test_a_job_finished_by_another_process_is_seen_by_reading_its_status(db: Database) -> None:
    job_id = _queued(db)
    finished = Finished()
    _finish_later(db, job_id, 0.3, tell=None)
    assert _wait(db, job_id, finished, timeout=60) == SUCCEEDED
    assert finished.listening() == 0  # nothing left behind


def test_a_job_finished_in_this_process_wakes_its_waiters(db: Database) -> None:
    job_id = _queued(db)
    finished = Finished()
    _finish_later(db, job_id, 0.3, tell=finished)
    assert _wait(db, job_id, finished, timeout=60) == SUCCEEDED


def test_past_the_wait_the_status_is_as_it_stands(db: Database) -> None:
    job_id = _queued(db)
    assert _wait(db, job_id, Finished(), timeout=0.3) == QUEUED
    assert _wait(db, "no-such-job", Finished(), timeout=5) is None


def test_a_client_that_left_ends_the_wait_not_the_job(db: Database) -> None:
    job_id = _queued(db)
    asked: list[bool] = []

    async def gone() -> bool:
        asked.append(True)
        return True

    async def wait() -> str | None:
        waiting = wait_finished(
            job_id,
            status_of=lambda i: queue.status_of(db, i),
            finished=Finished(),
            timeout=3600,
            gone=gone,
        )
        # The guard only keeps a broken `gone` from hanging the test run.
        return await asyncio.wait_for(waiting, 120)

    assert asyncio.run(wait()) == QUEUED and asked == [True]
    assert queue.status_of(db, job_id) == QUEUED  # the job itself is untouched


def test_the_default_wait_cannot_exceed_the_maximum(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"PROCESS_WAIT_S .* PROCESS_WAIT_MAX_S"):
        make_settings(tmp_path, process_wait_s=60, process_wait_max_s=30)
    assert Settings(_env_file=None).process_wait_s == 0  # type: ignore[call-arg]


# -- failures as statuses, through the API ----------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def waiting_app(
    request: pytest.FixtureRequest, tmp_path: Path, fake_llm: FakeLLM
) -> Iterator[TestClient]:
    with app_on(
        request.param,
        tmp_path / "data",
        llm_base_url=fake_llm.base_url,
        llm_api_key=FAKE_LLM_KEY,
        llm_max_retries=0,
        llm_timeout_s=1,
        process_wait_s=60,
        process_wait_max_s=60,
    ) as client:
        yield client


def _process(client: TestClient, token: str, query: str = "") -> Any:
    return client.post(
        f"/api/v1/rag/process{query}", json={"marketing_text": TEXT}, headers=auth(token)
    )


def test_model_failures_answer_with_the_status_a_person_expects(
    waiting_app: TestClient, fake_llm: FakeLLM
) -> None:
    token = register(waiting_app)
    fake_llm.status(401)
    r = _process(waiting_app, token)
    assert r.status_code == 502 and r.json()["code"] == "model_refused"
    assert "401" in r.json()["detail"]
    fake_llm.timeout(5)
    r = _process(waiting_app, token)
    assert r.status_code == 504 and r.json()["code"] == "model_timeout"
    assert "did not answer within 1 s" in r.json()["detail"]
    fake_llm.empty_content()
    r = _process(waiting_app, token)
    assert r.status_code == 502 and r.json()["code"] == "model_failed"
    jobs = waiting_app.get("/api/v1/jobs", headers=auth(token)).json()
    assert [j["status"] for j in jobs] == [FAILED] * 3
    # Success: 200, and the result is complete at the first look.
    r = _process(waiting_app, token)
    assert r.status_code == 200 and r.json()["status"] == SUCCEEDED
    result = waiting_app.get(f"/api/v1/rag/results/{r.json()['job_id']}", headers=auth(token))
    assert result.json()["refined_text"] and result.json()["error_code"] is None


def test_a_request_asks_for_its_own_wait_up_to_the_maximum(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.ok(delay=0.3)  # a few seconds of streaming
    with app_on(
        "sqlite",
        tmp_path / "data",
        llm_base_url=fake_llm.base_url,
        llm_api_key=FAKE_LLM_KEY,
        process_wait_max_s=0.5,
    ) as client:
        token = register(client)
        r = _process(client, token, "?wait=600")  # cut to the server's 0.5 s
        assert r.status_code == 202 and r.json()["status"] in (QUEUED, "running")
        r = _process(client, token, "?wait=-1")
        assert r.status_code == 422
        openapi = client.get("/openapi.json").json()
        process = openapi["paths"]["/api/v1/rag/process"]["post"]
        assert {"200", "202", "502", "503", "504"} <= set(process["responses"])
        assert any(p["name"] == "wait" for p in process["parameters"])


# -- what the result shows ----------------------------------------------------------------


def _job(sources: list[dict[str, Any]], backgrounds: list[str]) -> Job:
    now = datetime.now(UTC)
    return Job(
        id="j1",
        user_id=1,
        kind="refine",
        status=SUCCEEDED,
        payload={"marketing_text": TEXT, "backgrounds": backgrounds},
        result={"mode": "evidence", "sources": sources},
        created_at=now,
        finished_at=now,
    )


def test_sources_keep_their_meaning_whenever_they_were_stored() -> None:
    now = {"n": 1, "document_id": "d1", "filename": "deck.PPTX", "snippet": "a"}
    out = ResultOut.of(
        _job(
            [
                {**now, "score": 0.42, "rank_score": 1.1},  # stored by this release
                {**now, "filename": "brief.pdf", "score": 1.05},  # before: score was the rank
                {"filename": "scan.png", "snippet": "b", "score": 0.8},  # the original system's
                {"filename": "README", "snippet": "c", "score": 1.7},
            ],
            ["security"],
        )
    )
    assert out.topics == out.backgrounds == ["security"]
    first, before, imported, odd = out.sources
    assert (first.score, first.rank_score, first.doc_id, first.file_type) == (
        0.42,
        1.1,
        "d1",
        "pptx",
    )
    assert (before.score, before.rank_score, before.file_type) == (None, 1.05, "pdf")
    assert (imported.score, imported.rank_score, imported.file_type) == (0.8, None, "image")
    assert (odd.score, odd.file_type) == (1.0, "unknown")
