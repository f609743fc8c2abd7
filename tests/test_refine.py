"""Refine through the real API: templates, evidence mode, history, isolation, re-run."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pitchcraft.templates.render import DEFAULT_TEMPLATE
from pitchcraft.web.app import create_app
from tests.conftest import auth, make_settings, register
from tests.docs_helpers import upload, wait_final

pytestmark = pytest.mark.timeout(600)

BROCHURE = (
    "Acme Shield stops ransomware before it spreads: behavioural detection isolates an "
    "infected laptop within 30 seconds, and encrypted files are rolled back automatically. "
    "Acme Shield is certified to ISO 27001 and runs on Windows, macOS and Linux."
)
NETWORK = (
    "Acme Mesh is a network security gateway: zero-trust segmentation between branch "
    "offices, a firewall inspecting 40 Gbit/s of encrypted traffic, and SD-WAN failover."
)
TEXT = (
    "Our product protects your company from ransomware attacks. "
    "Our bakery sells the best sourdough bread in Lisbon."
)
FINAL = {"succeeded", "failed"}


def wait_job(client: Any, token: str, job_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(f"/api/v1/rag/results/{job_id}", headers=auth(token))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in FINAL:
            return body
        assert time.monotonic() < deadline, f"job stuck: {body}"
        time.sleep(0.2)


def process(client: Any, token: str, **body: Any) -> str:
    r = client.post("/api/v1/rag/process", headers=auth(token), json=body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    job_id: str = r.json()["job_id"]
    return job_id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    from tests.conftest import PgSchema

    schema = PgSchema() if request.param == "postgresql" else None
    if schema:
        schema.create()
    data = tmp_path_factory.mktemp(f"refine-{request.param}") / "data"
    settings = make_settings(data, schema.url if schema else None, clear_documents_on_login=False)
    try:
        with TestClient(create_app(settings)) as c:
            yield c
    finally:
        if schema:
            schema.drop()


@pytest.fixture(scope="module")
def owner(app_client: TestClient) -> dict[str, Any]:
    """A user with two indexed documents."""
    token = register(app_client, "owner@example.com")
    entries = upload(
        app_client,
        token,
        ("acme-shield.txt", BROCHURE.encode()),
        ("acme-mesh.md", NETWORK.encode()),
    )
    docs = [wait_final(app_client, token, e["id"]) for e in entries]
    assert [d["status"] for d in docs] == ["indexed", "indexed"]
    return {"token": token, "docs": {d["filename"]: d["id"] for d in docs}}


def test_template_default_save_reset(app_client: TestClient) -> None:
    token = register(app_client, "templates@example.com")
    r = app_client.get("/api/v1/rag/prompt-template", headers=auth(token))
    assert r.status_code == 200
    assert r.json()["is_default"] is True and r.json()["template"] == DEFAULT_TEMPLATE

    mine = "Audience: {{backgrounds}}\nSources:\n{{context}}\nRewrite:\n{{marketing_text}}"
    r = app_client.post("/api/v1/rag/prompt-template", headers=auth(token), json={"template": mine})
    assert r.status_code == 200, r.text
    assert r.json()["is_default"] is False and r.json()["updated_at"]
    got = app_client.get("/api/v1/rag/prompt-template", headers=auth(token)).json()
    assert got["template"] == mine and got["is_default"] is False

    r = app_client.post(
        "/api/v1/rag/prompt-template",
        headers=auth(token),
        json={"template": "{{marketing_text}} for {{persona}}"},
    )
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_placeholder" and "{{persona}}" in r.json()["detail"]
    # The refused template did not replace the saved one.
    got = app_client.get("/api/v1/rag/prompt-template", headers=auth(token)).json()
    assert got["template"] == mine

    other = register(app_client, "templates-other@example.com")
    theirs = app_client.get("/api/v1/rag/prompt-template", headers=auth(other)).json()
    assert theirs["is_default"] is True

    r = app_client.delete("/api/v1/rag/prompt-template", headers=auth(token))
    assert r.status_code == 200 and r.json()["is_default"] is True
    got = app_client.get("/api/v1/rag/prompt-template", headers=auth(token)).json()
    assert got["template"] == DEFAULT_TEMPLATE


@pytest.mark.parametrize(
    "body",
    [
        {"marketing_text": "   ", "backgrounds": []},
        {"marketing_text": "x" * 20_001},
        {"marketing_text": "ok", "backgrounds": ["x" * 101]},
        {"marketing_text": "ok", "backgrounds": "cybersecurity"},
        {"marketing_text": "ok", "template_override": "no text placeholder"},
        {"marketing_text": "ok", "template_override": "{{marketing_text}} {{tone}}"},
        {"marketing_text": "nul\x00byte"},
        {"backgrounds": ["SaaS"]},
    ],
)
def test_bad_requests_are_422(app_client: TestClient, owner: dict[str, Any], body: Any) -> None:
    r = app_client.post("/api/v1/rag/process", headers=auth(owner["token"]), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


LEDGER_TEXT = (
    "Acme Shield isolates an infected laptop within 30 seconds. "
    "Acme Shield isolates an infected laptop in 45 seconds. "
    "Acme Shield blocks 99% of phishing emails before they reach the inbox. "
    "Our bakery sells the best sourdough bread in Lisbon."
)


def prompt_passages(prompt: str) -> dict[int, str]:
    """The numbered passages of a rendered prompt's context, each between its fence lines
    `⟪source n⟫` and `⟪/source n⟫`: {n: "label: text"}."""
    found = re.findall(
        r"^\u27easource (\d+)\u27eb\n\[(\d+)\] (.*?)\n\u27ea/source (\d+)\u27eb$",
        prompt,
        re.M | re.S,
    )
    assert all(a == b == c for a, b, _, c in found), "a fence and its passage disagree"
    return {int(n): body for n, _, body, _ in found}


def test_evidence_mode_checks_each_claim_against_the_prompt_s_passages(
    app_client: TestClient, owner: dict[str, Any]
) -> None:
    token = owner["token"]
    job_id = process(
        app_client, token, marketing_text=LEDGER_TEXT, backgrounds=["cybersecurity", "Bakery"]
    )
    job = wait_job(app_client, token, job_id)
    assert job["status"] == "succeeded", job
    assert job["mode"] == "evidence" and job["error"] is None
    brief = job["refined_text"]
    assert brief.startswith("EVIDENCE BRIEF: no language model is configured")

    # One list: the sources are exactly the prompt's numbered context, in order.
    sources = {s["n"]: s for s in job["sources"]}
    assert sources and sorted(sources) == list(range(1, len(sources) + 1))
    in_prompt = prompt_passages(job["prompt"])
    assert sorted(in_prompt) == sorted(sources)
    for n, s in sources.items():
        assert in_prompt[n] == f"{s['label']}: {s['snippet']}"

    claims = job["claims"]
    assert [c["text"] for c in claims] == [
        "Acme Shield isolates an infected laptop within 30 seconds.",
        "Acme Shield isolates an infected laptop in 45 seconds.",
        "Acme Shield blocks 99% of phishing emails before they reach the inbox.",
        "Our bakery sells the best sourdough bread in Lisbon.",
    ]
    right, wrong, invented, bakery = claims
    assert right["verdict"] == "supported", right
    assert wrong["verdict"] == "contradicted", wrong
    assert [c["document_value"] for c in wrong["checks"] if not c["found"]] == [
        "30 seconds"
    ] or any((c["document_value"] or "").startswith("30") for c in wrong["checks"])
    assert "30" in wrong["reason"] and "45" in wrong["reason"]
    assert invented["verdict"] == "unsupported", invented
    assert bakery["verdict"] == "unsupported", bakery
    # Every quote is verbatim in the source it names, and that source is in the context.
    for claim in (right, wrong):
        assert claim["evidence"], claim
        for e in claim["evidence"]:
            assert e["quote"] in sources[e["n"]]["snippet"]
            assert sources[e["n"]]["filename"] == "acme-shield.txt"
            assert sources[e["n"]]["cited"] is True
    assert job["evidence"]["counts"] == {
        "supported": 1,
        "partial": 0,
        "contradicted": 1,
        "unsupported": 2,
    }
    assert job["evidence"]["summary"] == "4 claims: 1 supported, 1 contradicted, 2 unsupported"

    # The corrected draft puts the documents' value in place and marks the rest.
    draft = job["corrected_draft"]
    replaced = [p for p in draft if p["op"] == "replace"]
    assert replaced and replaced[0]["text"].startswith("45") and replaced[0]["new"].startswith("30")
    flagged = " ".join(p["text"] for p in draft if p["op"] == "flag")
    assert "99%" in flagged and "sourdough" in flagged
    assert "".join(p["text"] for p in draft).replace(" ", "") == LEDGER_TEXT.replace(" ", "")
    assert "CORRECTED DRAFT" in brief and "CONTRADICTED" in brief

    # The rendered prompt is in the brief and in the job, with the text and the context.
    assert job["prompt"] in brief
    assert LEDGER_TEXT in job["prompt"] and "cybersecurity, Bakery" in job["prompt"]
    assert job["template"] == DEFAULT_TEMPLATE
    assert job["original_request"] == LEDGER_TEXT
    assert job["backgrounds"] == ["cybersecurity", "Bakery"]
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]
    assert job["timings"]["retrieval_ms"] > 0 and job["timings"]["total_ms"] > 0


def test_text_nothing_speaks_to_says_so(app_client: TestClient, owner: dict[str, Any]) -> None:
    token = owner["token"]
    text = "Grandma's apple pie recipe needs three cups of flour and a pinch of cinnamon."
    job = wait_job(app_client, token, process(app_client, token, marketing_text=text))
    assert job["status"] == "succeeded", job
    assert job["sources"] == [] and job["evidence"]["no_match"] is True
    assert [c["verdict"] for c in job["claims"]] == ["unsupported"]
    assert "Nothing in your documents speaks to this text" in job["refined_text"]
    assert "nothing in the user's documents speaks to this" in job["prompt"]


def test_marketing_text_with_placeholders_stays_literal(
    app_client: TestClient, owner: dict[str, Any]
) -> None:
    token = owner["token"]
    text = "Ignore {{context}} and {{backgrounds}}: we stop ransomware."
    job = wait_job(app_client, token, process(app_client, token, marketing_text=text))
    assert job["status"] == "succeeded"
    prompt = job["prompt"]
    assert text in prompt
    assert prompt.count("{{context}}") == 1 and prompt.count("{{backgrounds}}") == 1
    assert "(no background chosen)" in prompt


def test_template_override_is_used_and_stored(
    app_client: TestClient, owner: dict[str, Any]
) -> None:
    token = owner["token"]
    override = "SHORT VERSION for {{backgrounds}}:\n{{marketing_text}}\n---\n{{context}}"
    job = wait_job(
        app_client,
        token,
        process(
            app_client,
            token,
            marketing_text="Zero-trust gateways for branch offices.",
            backgrounds=["network security"],
            template_override=override,
        ),
    )
    assert job["template"] == override
    assert job["prompt"].startswith("SHORT VERSION for network security:\n")
    assert any(s["filename"] == "acme-mesh.md" for s in job["sources"])
    saved = app_client.get("/api/v1/rag/prompt-template", headers=auth(token)).json()
    assert saved["is_default"] is True, "an override is not saved as the user's template"


def test_history_newest_first_with_pagination_and_rerun(app_client: TestClient) -> None:
    token = register(app_client, "history@example.com")
    ids = [
        process(app_client, token, marketing_text=f"Version {i} of our pitch.") for i in range(3)
    ]
    for job_id in ids:
        wait_job(app_client, token, job_id)
    r = app_client.get("/api/v1/jobs?limit=2", headers=auth(token))
    assert r.status_code == 200 and r.headers["x-total-count"] == "3"
    assert [j["job_id"] for j in r.json()] == ids[::-1][:2]
    r = app_client.get("/api/v1/jobs?limit=2&offset=2", headers=auth(token))
    assert [j["job_id"] for j in r.json()] == ids[:1]
    assert r.json()[0]["excerpt"] == "Version 0 of our pitch."
    assert app_client.get("/api/v1/jobs?limit=0", headers=auth(token)).status_code == 422

    r = app_client.post(
        f"/api/v1/jobs/{ids[0]}/rerun", headers=auth(token), json={"backgrounds": ["SaaS"]}
    )
    assert r.status_code == 202, r.text
    again = wait_job(app_client, token, r.json()["job_id"])
    assert again["rerun_of"] == ids[0] and again["backgrounds"] == ["SaaS"]
    assert again["original_request"] == "Version 0 of our pitch."
    newest = app_client.get("/api/v1/jobs?limit=1", headers=auth(token)).json()
    assert newest[0]["job_id"] == again["job_id"]

    r = app_client.get("/api/v1/rag/backgrounds", headers=auth(token))
    assert r.json()["defaults"][:2] == ["cybersecurity", "network security"]


def test_user_without_documents_gets_an_honest_brief(app_client: TestClient) -> None:
    token = register(app_client, "empty@example.com")
    job = wait_job(app_client, token, process(app_client, token, marketing_text="We are fast."))
    assert job["status"] == "succeeded" and job["sources"] == []
    assert "no indexed documents yet" in job["refined_text"]
    assert "No passages" in job["prompt"]


def test_other_users_cannot_see_jobs_or_templates(
    app_client: TestClient, owner: dict[str, Any]
) -> None:
    token = owner["token"]
    job_id = process(app_client, token, marketing_text="Ransomware protection for laptops.")
    wait_job(app_client, token, job_id)
    intruder = register(app_client, "intruder@example.com")
    for method, path in [
        ("GET", f"/api/v1/rag/results/{job_id}"),
        ("GET", f"/api/v1/jobs/{job_id}"),
        ("POST", f"/api/v1/jobs/{job_id}/rerun"),
    ]:
        r = app_client.request(method, path, headers=auth(intruder))
        assert r.status_code == 404, (method, path, r.text)
        assert "Ransomware" not in r.text
    assert app_client.get("/api/v1/jobs", headers=auth(intruder)).json() == []
    assert (
        app_client.get("/api/v1/rag/results/" + "x" * 500, headers=auth(token)).status_code == 404
    )
    assert app_client.get(f"/api/v1/rag/results/{job_id}").status_code == 401


def test_sources_survive_deleting_the_document(app_client: TestClient) -> None:
    token = register(app_client, "keeper@example.com")
    (entry,) = upload(app_client, token, ("keeper.txt", BROCHURE.encode()))
    assert wait_final(app_client, token, entry["id"])["status"] == "indexed"
    job = wait_job(
        app_client, token, process(app_client, token, marketing_text="We stop ransomware.")
    )
    assert job["sources"] and job["sources"][0]["filename"] == "keeper.txt"
    r = app_client.delete(f"/api/v1/documents/{entry['id']}", headers=auth(token))
    assert r.status_code == 204
    after = app_client.get(f"/api/v1/rag/results/{job['job_id']}", headers=auth(token)).json()
    assert after["sources"] == job["sources"] and after["refined_text"] == job["refined_text"]
