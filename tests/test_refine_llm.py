"""Refine jobs against the test suite's OpenAI-compatible server, and jobs that survive kill -9."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ServerProcess, auth, register
from tests.llm_app import app_with_llm, fake_llm, register_with_brochures
from tests.llm_server import FakeLLM
from tests.test_refine import process, prompt_passages, wait_job

pytestmark = pytest.mark.timeout(600)

KEY = "sk-test-refine-0123456789"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with fake_llm(KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def client(llm: FakeLLM, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir = tmp_path_factory.mktemp("refine-llm") / "data"
    with app_with_llm(
        data_dir,
        llm,
        KEY,
        llm_temperature=0.2,
        llm_max_tokens=700,
        llm_timeout_s=1.5,
        llm_max_retries=1,
    ) as c:
        yield c


@pytest.fixture(scope="module")
def token(client: TestClient) -> str:
    return register_with_brochures(client, "llm@example.com")


def requests_since(llm: FakeLLM, start: int) -> list[Any]:
    return [r for r in llm.requests[start:] if r.path.endswith("/chat/completions")]


def test_the_model_gets_the_filled_template_and_citations_are_cleaned(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    start = len(llm.requests)
    text = "We stop ransomware on every laptop. Ignore {{context}} here."
    job = wait_job(
        client,
        token,
        process(client, token, marketing_text=text, backgrounds=["cybersecurity", "SaaS"]),
    )
    assert job["status"] == "succeeded", job
    assert job["mode"] == "llm" and job["model"] == "fake-model"

    (request,) = requests_since(llm, start)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body["model"] == "fake-model" and body["stream"] is True
    assert body["temperature"] == 0.2 and body["max_tokens"] == 700
    # The rules in a system message; the filled template, passages fenced, as the user's.
    system, message = body["messages"]
    assert system["role"] == "system" and system["content"] == job["system_prompt"]
    assert message["role"] == "user" and message["content"] == job["prompt"]
    prompt = message["content"]
    assert "cybersecurity, SaaS" in prompt
    assert text in prompt, "the marketing text reaches the model verbatim"
    assert prompt.count("{{context}}") == 1, "the placeholder in the text was not expanded"
    assert re.search(r"\[1\] acme-(shield\.txt|mesh\.md): ", prompt)

    # The fake cites two passages and [99], which no passage has.
    refined = job["refined_text"]
    cited = [int(n) for n in re.findall(r"\[(\d+)\]", refined)]
    assert cited and 99 not in cited
    # The sources are exactly the passages the server received, under the same numbers.
    sources = job["sources"]
    received = prompt_passages(prompt)
    assert [s["n"] for s in sources] == sorted(received) == list(range(1, len(sources) + 1))
    for s in sources:
        assert received[s["n"]] == f"{s['label']}: {s['snippet']}"
    assert set(cited) == {s["n"] for s in sources if s["cited"]}
    assert all(s["snippet"] and s["filename"].startswith("acme-") for s in sources)
    # The model's copy is checked too: its sentences copy the passages they cite.
    out = job["output_claims"]
    assert out and [c["verdict"] for c in out][:2] != ["unsupported", "unsupported"]
    for c in out:
        for e in c["evidence"]:
            assert e["quote"] in {s["n"]: s["snippet"] for s in sources}[e["n"]]
    assert job["claims"] and job["claims"][0]["text"] == "We stop ransomware on every laptop."
    assert job["timings"]["model_ms"] > 0 and job["error"] is None


def test_an_invented_number_in_the_model_s_copy_is_flagged(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    llm.ok(
        "Acme Shield isolates an infected laptop within 30 seconds [1]. "
        "Acme Shield isolates an infected laptop in 5 seconds [1]. "
        "It blocks 97% of phishing emails [1]."
    )
    text = "Acme Shield isolates an infected laptop within 30 seconds."
    job = wait_job(client, token, process(client, token, marketing_text=text))
    assert job["status"] == "succeeded", job
    assert job["sources"][0]["filename"] == "acme-shield.txt"
    right, invented_value, invented_claim = job["output_claims"]
    assert right["verdict"] == "supported" and right["evidence"][0]["n"] == 1
    assert invented_value["verdict"] == "contradicted", invented_value
    assert any(
        c["document_value"] and "30" in c["document_value"] for c in invented_value["checks"]
    )
    assert invented_claim["verdict"] == "unsupported", invented_claim
    assert [c["verdict"] for c in job["claims"]] == ["supported"]


def test_server_errors_are_retried_then_the_job_fails_with_the_reason(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    start = len(llm.requests)
    llm.status(500).status(503)
    job = wait_job(client, token, process(client, token, marketing_text="We stop ransomware."))
    assert job["status"] == "failed"
    assert "language model" in job["error"] and "503" in job["error"]
    assert len(requests_since(llm, start)) == 2  # one try plus LLM_MAX_RETRIES=1
    # What the job found is kept: the sources and the prompt to paste elsewhere.
    assert job["sources"] and job["prompt"] and job["refined_text"] is None


def test_rate_limit_with_retry_after_then_success(
    client: TestClient, token: str, llm: FakeLLM
) -> None:
    start = len(llm.requests)
    llm.status(429, retry_after=1)
    job = wait_job(client, token, process(client, token, marketing_text="Zero-trust networks."))
    assert job["status"] == "succeeded", job
    first, second = requests_since(llm, start)
    assert second.at - first.at >= 1.0


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (lambda f: f.timeout(5).timeout(5), "did not answer"),
        (lambda f: f.empty_content(), "empty"),
        (lambda f: f.status(401), "401"),
    ],
)
def test_model_failures_end_the_job_with_a_reason(
    client: TestClient,
    token: str,
    llm: FakeLLM,
    script: Callable[[FakeLLM], Any],
    reason: str,
) -> None:
    script(llm)
    job = wait_job(client, token, process(client, token, marketing_text="Fast and safe."))
    assert job["status"] == "failed" and reason in job["error"], job
    assert KEY not in str(job)


def test_the_answer_streams_into_the_job(client: TestClient, token: str, llm: FakeLLM) -> None:
    llm.ok("Word " * 40 + "done [1].", delay=0.1)
    # About the brochure, so that the context has a passage [1] to cite.
    job_id = process(client, token, marketing_text="Stream this: we stop ransomware.")
    partials: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/rag/results/{job_id}", headers=auth(token)).json()
        if body["status"] == "running" and body["partial_text"]:
            partials.append(body["partial_text"])
        if body["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.1)
    assert body["status"] == "succeeded" and body["refined_text"].endswith("done [1].")
    assert partials and len(partials[0]) < len(body["refined_text"])
    assert body["partial_text"] is None


# ---- kill -9 ------------------------------------------------------------------------------


def _api(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def _wait_status(c: httpx.Client, token: str, job_id: str, wanted: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        body: dict[str, Any] = c.get(f"/api/v1/rag/results/{job_id}", headers=auth(token)).json()
        if body["status"] in wanted:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.2)


def test_a_queued_job_survives_kill_9(
    server_env: dict[str, str], start_server: Callable[[dict[str, str]], ServerProcess]
) -> None:
    server = start_server({**server_env, "WORKER_IN_PROCESS": "false"})
    with _api(server) as c:
        token = register(c, "queued@example.com")
        job_id = process(c, token, marketing_text="Queued before the crash.")
    server.stop(signal.SIGKILL)
    server = start_server(server_env)
    with _api(server) as c:
        job = _wait_status(c, token, job_id, {"succeeded", "failed"})
    assert job["status"] == "succeeded" and job["mode"] == "evidence"
    assert "Queued before the crash." in job["prompt"]


def test_a_running_job_survives_kill_9(
    server_env: dict[str, str],
    start_server: Callable[[dict[str, str]], ServerProcess],
) -> None:
    with FakeLLM(model="fake-model") as fake:
        env = {**server_env, **fake.env(), "LLM_TIMEOUT_S": "60", "JOB_LEASE_SECONDS": "10"}
        fake.timeout(30)  # the first call hangs until the server is killed
        server = start_server(env)
        with _api(server) as c:
            token = register(c, "running@example.com")
            job_id = process(c, token, marketing_text="Running when the server died.")
            _wait_status(c, token, job_id, {"running"})
            deadline = time.monotonic() + 180
            while not fake.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            assert fake.requests, "the model call started"
        server.stop(signal.SIGKILL)
        server = start_server(env)
        with _api(server) as c:
            job = _wait_status(c, token, job_id, {"succeeded", "failed"})
        assert job["status"] == "succeeded", job
        assert job["mode"] == "llm" and job["refined_text"].startswith("Refined:")
        assert "resuming 1 interrupted job" in server.log()
