"""The original system's web frontend against this backend: its calls replayed as it makes
them (the bodies it sends, the fields it reads), against a started server on both
databases.

What the frontend does, from the compatibility issue: it registers with an `is_subscribed`
opt-in and reads `/auth/me`; uploads `files` and lists documents, reading `file_size`;
edits the prompt template; posts Process and then fetches the result ONCE (the original
answered Process only when the work was done, or with an error status and `detail`, shown
as an alert); reads `topics`, and per source `doc_id`, `file_type` and `score` (shown as a
percentage); and it is served from another origin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS, ServerProcess, auth, free_port
from tests.llm_server import FakeLLM

FRONTEND = "http://localhost:3000"  # the original frontend's own dev server
OTHER_SITE = "https://elsewhere.example"
FILES = (CORPUS / "text" / "norwich-city.txt", CORPUS / "pdf" / "fake-memo.pdf")
TEXT = (
    "Iwan Roberts played as a forward for Norwich City from 1997 to 2004. "
    "He scored 84 goals for the club."
)
TEMPLATE = "Sharpen this for {{backgrounds}}:\n{{marketing_text}}\n\nFacts:\n{{context}}"
Start = Callable[[dict[str, str]], ServerProcess]


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM(model="fake-model") as server:
        yield server


def _client(server: ServerProcess) -> httpx.Client:
    # The original frontend's axios client: JSON, a bearer token, its own origin.
    return httpx.Client(base_url=server.url, timeout=120, headers={"Origin": FRONTEND})


def _upload_and_wait(c: httpx.Client, token: str) -> list[dict[str, Any]]:
    files = [("files", (p.name, p.read_bytes(), "application/octet-stream")) for p in FILES]
    r = c.post("/api/v1/documents/upload", files=files, headers=auth(token))
    assert r.status_code == 202, r.text
    for entry, path in zip(r.json(), FILES, strict=True):
        assert entry["file_size"] == entry["size"] == path.stat().st_size
    deadline = time.monotonic() + 240
    while True:
        listed = c.get("/api/v1/documents/list", headers=auth(token)).json()
        if all(d["status"] in ("indexed", "failed") for d in listed):
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.3)
    assert {d["status"] for d in listed} == {"indexed"}, listed
    by_name = {d["filename"]: d for d in listed}
    for path in FILES:
        # The frontend shows file_size as a size: a whole number of bytes, the file's own.
        assert by_name[path.name]["file_size"] == path.stat().st_size
    return listed


def _score_ok(value: Any) -> bool:
    return isinstance(value, float | int) and 0 <= value <= 1


def test_the_original_frontend_sees_what_it_reads(
    server_env: dict[str, str], start_server: Start, fake: FakeLLM
) -> None:
    server = start_server(
        {**server_env, **fake.env(), "PROCESS_WAIT_S": "120", "ALLOWED_ORIGINS": FRONTEND}
    )
    with _client(server) as c:
        # Sign-up with the opt-in, and without it.
        r = c.post(
            "/api/v1/auth/register",
            json={
                "email": "optin@example.com",
                "password": "opt-in-sparrow-42",
                "is_subscribed": True,
            },
        )
        assert r.status_code == 201, r.text
        token = r.json()["access_token"]
        me = c.get("/api/v1/auth/me", headers=auth(token)).json()
        assert me["email"] == "optin@example.com" and me["is_subscribed"] is True
        assert isinstance(me["id"], int)
        other = c.post(
            "/api/v1/auth/register",
            json={"email": "plain@example.com", "password": "opt-in-sparrow-42"},
        ).json()["access_token"]
        assert c.get("/api/v1/auth/me", headers=auth(other)).json()["is_subscribed"] is False
        # Sign-in keeps the flag.
        r = c.post(
            "/api/v1/auth/login",
            json={"email": "optin@example.com", "password": "opt-in-sparrow-42"},
        )
        token = r.json()["access_token"]
        assert c.get("/api/v1/auth/me", headers=auth(token)).json()["is_subscribed"] is True

        listed = _upload_and_wait(c, token)
        ids = {d["filename"]: d["id"] for d in listed}

        # The template editor.
        r = c.post("/api/v1/rag/prompt-template", json={"template": TEMPLATE}, headers=auth(token))
        assert r.status_code == 200, r.text
        assert c.get("/api/v1/rag/prompt-template", headers=auth(token)).json()["template"] == (
            TEMPLATE
        )

        # Process, then the one fetch of the result.
        r = c.post(
            "/api/v1/rag/process",
            json={"backgrounds": ["football", "sports marketing"], "marketing_text": TEXT},
            headers=auth(token),
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded"
        result = c.get(f"/api/v1/rag/results/{r.json()['job_id']}", headers=auth(token)).json()
        assert result["status"] == "succeeded"
        assert result["refined_text"] and result["refined_text"].strip()
        assert result["topics"] == ["football", "sports marketing"] == result["backgrounds"]
        assert result["sources"], "the sources the refined text was made from"
        assert "norwich-city.txt" in {s["filename"] for s in result["sources"]}
        for source in result["sources"]:
            assert source["doc_id"] == source["document_id"] == ids[source["filename"]]
            assert source["file_type"] == {"norwich-city.txt": "text"}.get(
                source["filename"], "pdf"
            )
            assert _score_ok(source["score"]), source
        assert fake.requests and "Sharpen this for football" in str(fake.requests[-1].body)

        # Search, the same scale.
        r = c.post(
            "/api/v1/search", json={"query": "Iwan Roberts goals for Norwich"}, headers=auth(token)
        )
        hits = r.json()["results"]
        assert hits and all(_score_ok(h["score"]) for h in hits), hits
        assert hits[0]["filename"] == "norwich-city.txt"

        # Another origin's page may not read the API; the frontend's may.
        assert r.headers.get("access-control-allow-origin") == FRONTEND
        preflight = c.options(
            "/api/v1/rag/process",
            headers={
                "Origin": FRONTEND,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == FRONTEND
        elsewhere = c.get("/api/v1/auth/me", headers={**auth(token), "Origin": OTHER_SITE})
        assert elsewhere.status_code == 200
        assert "access-control-allow-origin" not in elsewhere.headers
        refused = c.options(
            "/api/v1/rag/process",
            headers={"Origin": OTHER_SITE, "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in refused.headers


def test_a_job_that_cannot_reach_its_model_is_an_error_status(
    server_env: dict[str, str], start_server: Start
) -> None:
    closed = free_port()  # nothing listens there
    server = start_server(
        {
            **server_env,
            "LLM_BASE_URL": f"http://127.0.0.1:{closed}/v1",
            "LLM_MAX_RETRIES": "0",
            "PROCESS_WAIT_S": "120",
        }
    )
    with _client(server) as c:
        token = c.post(
            "/api/v1/auth/register",
            json={"email": "u@example.com", "password": "opt-in-sparrow-42"},
        ).json()["access_token"]
        r = c.post(
            "/api/v1/rag/process",
            json={"backgrounds": ["football"], "marketing_text": TEXT},
            headers=auth(token),
        )
        assert r.status_code == 502, r.text
        body = r.json()
        assert body["code"] == "model_unreachable"
        assert "could not reach the language model" in body["detail"]
        # The job says the same when it is looked up.
        jobs = c.get("/api/v1/jobs", headers=auth(token)).json()
        assert len(jobs) == 1 and jobs[0]["status"] == "failed"
        result = c.get(f"/api/v1/rag/results/{jobs[0]['job_id']}", headers=auth(token)).json()
        assert result["error"] == body["detail"] and result["error_code"] == "model_unreachable"

        # A refused template is refused before any job, waiting or not.
        r = c.post(
            "/api/v1/rag/process",
            json={"marketing_text": TEXT, "template_override": "{{nonsense}} {{marketing_text}}"},
            headers=auth(token),
        )
        assert r.status_code == 422 and "nonsense" in r.json()["detail"]


def test_a_client_that_leaves_does_not_cancel_its_job(
    server_env: dict[str, str], start_server: Start, fake: FakeLLM
) -> None:
    fake.ok(delay=0.5)  # a slow answer: the client is gone before it ends
    server = start_server({**server_env, **fake.env(), "PROCESS_WAIT_S": "120"})
    with _client(server) as c:
        token = c.post(
            "/api/v1/auth/register",
            json={"email": "u@example.com", "password": "opt-in-sparrow-42"},
        ).json()["access_token"]
        with pytest.raises(httpx.ReadTimeout):
            c.post(
                "/api/v1/rag/process",
                json={"marketing_text": TEXT},
                headers=auth(token),
                timeout=httpx.Timeout(120, read=1.0),
            )
        deadline = time.monotonic() + 120
        while True:
            jobs = c.get("/api/v1/jobs", headers=auth(token)).json()
            if jobs and jobs[0]["status"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.3)
        assert jobs[0]["status"] == "succeeded", jobs
        # Per request: no wait at all, whatever the server's default.
        r = c.post("/api/v1/rag/process?wait=0", json={"marketing_text": TEXT}, headers=auth(token))
        assert r.status_code == 202 and r.json()["status"] == "queued"
