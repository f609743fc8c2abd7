"""Hardening against a started server (issue 22, items 3, 4, 9): per-user quota, upload
rate and queue limits; text that UTF-8 cannot encode refused at the edge, read paths that
survive rows already holding it, and job deletion; `Cache-Control: no-store` on whatever
holds a user's data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from pitchcraft.core.db import Database
from pitchcraft.jobs.models import Job
from tests.conftest import CORPUS, ServerProcess, auth, make_settings, register
from tests.docs_helpers import wait_final
from tests.test_refine import wait_job

SESSION_COOKIE = "pitchcraft_session"
LONE = "\ud800"  # a high surrogate with no low one after it
REPLACEMENT = "\ufffd"


def raw_json(http: httpx.Client, method: str, path: str, token: str, body: Any) -> httpx.Response:
    """The body as a client that escapes a lone surrogate sends it: `"\\ud800"`."""
    content = json.dumps(body, ensure_ascii=True).encode()
    headers = {**auth(token), "content-type": "application/json"}
    return http.request(method, path, content=content, headers=headers)


def database_of(server_env: dict[str, str]) -> Database:
    settings = make_settings(Path(server_env["DATA_DIR"]), server_env.get("DATABASE_URL"))
    return Database(settings)


def page(http: httpx.Client, path: str, token: str) -> httpx.Response:
    return http.get(path, headers={"accept": "text/html", **cookie(token)})


def cookie(token: str, csrf: str | None = None) -> dict[str, str]:
    """The browser's Cookie header: the session, and the CSRF cookie for a form."""
    value = f"{SESSION_COOKIE}={token}" + (f"; csrftoken={csrf}" if csrf else "")
    return {"cookie": value}


# --- 4: a lone surrogate -------------------------------------------------------------------


def test_unencodable_text_is_refused_naming_the_field(
    server_env: dict[str, str], start_server: Any
) -> None:
    server: ServerProcess = start_server({**server_env, "WORKER_IN_PROCESS": "false"})
    with httpx.Client(base_url=server.url, timeout=60) as http:
        token = register(http, "writer@example.com")
        good = {"marketing_text": "Our product is fast.", "backgrounds": ["SaaS"]}
        cases: list[tuple[str, str, dict[str, Any], str]] = [
            (
                "POST",
                "/api/v1/rag/process",
                {**good, "marketing_text": f"Fast{LONE}"},
                "marketing_text",
            ),
            ("POST", "/api/v1/rag/process", {**good, "backgrounds": ["ok", LONE]}, "backgrounds.1"),
            (
                "POST",
                "/api/v1/rag/process",
                {**good, "template_override": f"{{{{marketing_text}}}} {LONE}"},
                "template_override",
            ),
            (
                "POST",
                "/api/v1/rag/prompt-template",
                {"template": f"Refine {LONE}: {{{{marketing_text}}}}"},
                "template",
            ),
            ("POST", "/api/v1/search", {"query": f"ransomware {LONE}"}, "query"),
            (
                "POST",
                "/api/v1/auth/register",
                {"email": "new@example.com", "password": f"long enough {LONE} words"},
                "password",
            ),
            (
                "POST",
                "/api/v1/auth/register",
                {"email": f"new{LONE}@example.com", "password": "long enough words"},
                "email",
            ),
            (
                "POST",
                "/api/v1/auth/login",
                {"email": f"w{LONE}@example.com", "password": "x"},
                "email",
            ),
        ]
        for method, path, body, field in cases:
            r = raw_json(http, method, path, token, body)
            assert r.status_code == 422, (path, field, r.status_code, r.text)
            detail = r.json()["detail"]
            assert detail.startswith(f"{field}:") and "surrogate" in detail, (path, detail)
        # Nothing was queued; the history is empty and still readable.
        r = http.get("/api/v1/jobs", headers=auth(token))
        assert r.status_code == 200 and r.json() == []
        # The same text without the surrogate is accepted.
        assert raw_json(http, "POST", "/api/v1/rag/process", token, good).status_code == 202


def test_rows_holding_a_lone_surrogate_stay_readable_and_deletable(
    server_env: dict[str, str], start_server: Any
) -> None:
    server: ServerProcess = start_server(server_env)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        token = register(http, "owner@example.com")
        other = register(http, "other@example.com")
        r = http.post(
            "/api/v1/rag/process",
            headers=auth(token),
            json={"marketing_text": "Our product is fast.", "backgrounds": ["SaaS"]},
        )
        job_id = r.json()["job_id"]
        wait_job(http, token, job_id)

        # What the earlier releases stored: the text went in before the edge checked it.
        db = database_of(server_env)
        with db.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    payload={
                        "marketing_text": f"Our product{LONE} is fast.",
                        "backgrounds": [f"Saa{LONE}S"],
                        "template": f"Refine: {{{{marketing_text}}}} {LONE}",
                    },
                    result={
                        "mode": "evidence",
                        "refined_text": f"Brief {LONE}",
                        "prompt": f"Prompt {LONE}",
                        "sources": [{"n": 1, "filename": f"deck{LONE}.pdf", "snippet": LONE}],
                    },
                )
            )
        db.dispose()

        for path in (
            "/api/v1/jobs",
            f"/api/v1/jobs/{job_id}",
            f"/api/v1/rag/results/{job_id}",
            "/api/v1/rag/backgrounds",
        ):
            r = http.get(path, headers=auth(token))
            assert r.status_code == 200, (path, r.status_code, r.text)
            assert REPLACEMENT in r.text or path.endswith("backgrounds"), path
        assert (
            http.get(f"/api/v1/jobs/{job_id}", headers=auth(token)).json()["original_request"]
            == f"Our product{REPLACEMENT} is fast."
        )
        for path in (
            "/history",
            "/history/list",
            f"/results/{job_id}",
            f"/results/{job_id}/live",
            "/compose",
            f"/compose?from={job_id}",
        ):
            r = page(http, path, token)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            assert REPLACEMENT in r.text or path == "/compose", path

        # Only the owner deletes it; then it is gone everywhere.
        assert http.delete(f"/api/v1/jobs/{job_id}", headers=auth(other)).status_code == 404
        assert http.delete("/api/v1/jobs/no-such-job", headers=auth(token)).status_code == 404
        r = http.delete(f"/api/v1/jobs/{job_id}", headers=auth(token))
        assert r.status_code == 204 and r.content == b""
        assert http.get(f"/api/v1/jobs/{job_id}", headers=auth(token)).status_code == 404
        assert http.delete(f"/api/v1/jobs/{job_id}", headers=auth(token)).status_code == 404
        assert http.get("/api/v1/jobs", headers=auth(token)).json() == []


def test_history_has_a_delete_button(server_env: dict[str, str], start_server: Any) -> None:
    server: ServerProcess = start_server({**server_env, "WORKER_IN_PROCESS": "false"})
    with httpx.Client(base_url=server.url, timeout=60) as http:
        token = register(http, "pages@example.com")
        ids = []
        for text in ("First text to keep.", "Second text to delete."):
            r = http.post("/api/v1/rag/process", headers=auth(token), json={"marketing_text": text})
            ids.append(r.json()["job_id"])
        history = page(http, "/history", token)
        assert history.status_code == 200
        forms = re.findall(r'action="(/results/[^"/]+/delete[^"]*)"', history.text)
        assert sorted(f.split("/")[2] for f in forms) == sorted(ids)
        csrf = history.cookies.get("csrftoken") or http.cookies.get("csrftoken")
        assert csrf
        r = http.post(
            f"/results/{ids[1]}/delete?page=1",
            data={"csrftoken": csrf},
            headers=cookie(token, csrf),
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        left = [j["job_id"] for j in http.get("/api/v1/jobs", headers=auth(token)).json()]
        assert left == [ids[0]]
        # Another user's job cannot be deleted from the page either.
        stranger = register(http, "stranger@example.com")
        r = http.post(
            f"/results/{ids[0]}/delete",
            data={"csrftoken": csrf},
            headers={"accept": "text/html", **cookie(stranger, csrf)},
            follow_redirects=False,
        )
        assert r.status_code == 404
        assert [j["job_id"] for j in http.get("/api/v1/jobs", headers=auth(token)).json()] == [
            ids[0]
        ]


# --- 9: no-store ----------------------------------------------------------------------------


def test_user_data_is_never_stored_by_caches(server_env: dict[str, str], start_server: Any) -> None:
    server: ServerProcess = start_server(server_env)
    memo = CORPUS / "pdf" / "fake-memo.pdf"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        token = register(http, "cache@example.com")
        r = http.post(
            "/api/v1/documents/upload",
            headers=auth(token),
            files=[("files", (memo.name, memo.read_bytes(), "application/pdf"))],
        )
        assert r.status_code == 202, r.text
        doc = wait_final(http, token, r.json()[0]["id"])
        assert doc["status"] == "indexed", doc.get("error")
        job = http.post(
            "/api/v1/rag/process", headers=auth(token), json={"marketing_text": "A memo."}
        ).json()["job_id"]
        wait_job(http, token, job)

        answers = {
            "me": http.get("/api/v1/auth/me", headers=auth(token)),
            "documents": http.get("/api/v1/documents", headers=auth(token)),
            "jobs": http.get("/api/v1/jobs", headers=auth(token)),
            "result": http.get(f"/api/v1/rag/results/{job}", headers=auth(token)),
            "search": http.post("/api/v1/search", headers=auth(token), json={"query": "memo"}),
            "download": http.get(f"/api/v1/documents/{doc['id']}/file", headers=auth(token)),
            "preview": http.get(
                f"/api/v1/documents/{doc['id']}/pages/1/preview", headers=auth(token)
            ),
            "unauthenticated": http.get("/api/v1/documents"),
        }
        for path in ("/", "/documents", "/history", "/compose", f"/results/{job}"):
            answers[path] = page(http, path, token)
        for what, r in answers.items():
            assert r.status_code in {200, 401}, (what, r.status_code, r.text[:200])
            assert r.headers.get_list("cache-control") == ["no-store"], (what, r.headers)
        assert answers["download"].content == memo.read_bytes()
        assert answers["preview"].headers["content-type"] == "image/png"
        # Static files, the same for everyone, may be cached.
        static = http.get("/static/swagger/favicon-32x32.png")
        assert static.status_code == 200 and "no-store" not in static.headers.get(
            "cache-control", ""
        )


# --- 3: per-user limits ---------------------------------------------------------------------


def text_file(name: str, kb: int) -> tuple[str, tuple[str, bytes, str]]:
    line = b"Acme Shield isolates an infected laptop in 45 seconds.\n"
    # Each file its own content: the same content again is a duplicate, not a new upload.
    body = f"{name}\n".encode() + line * (kb * 1024 // len(line) + 1)
    return ("files", (name, body, "text/plain"))


@pytest.mark.timeout(600)
def test_per_user_quota_upload_rate_and_queue(
    server_env: dict[str, str], start_server: Any
) -> None:
    env = {
        **server_env,
        "WORKER_IN_PROCESS": "false",  # documents stay queued: the queue limit is reachable
        "USER_STORAGE_QUOTA_MB": "1",
        "USER_UPLOADS_PER_HOUR": "6",
        "USER_QUEUED_DOCUMENTS": "4",
    }
    server: ServerProcess = start_server(env)
    with httpx.Client(base_url=server.url, timeout=60) as http:

        def send(token: str, *files: tuple[str, tuple[str, bytes, str]]) -> httpx.Response:
            return http.post("/api/v1/documents/upload", headers=auth(token), files=list(files))

        def count(token: str) -> int:
            return len(http.get("/api/v1/documents", headers=auth(token)).json())

        # Storage quota: 700 KB fits in 1 MB, another 700 KB does not.
        quota = register(http, "quota@example.com")
        assert send(quota, text_file("a.txt", 700)).status_code == 202
        r = send(quota, text_file("b.txt", 700))
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "storage_quota_exceeded"
        assert "USER_STORAGE_QUOTA_MB" in r.json()["detail"] and "1.0 MB" in r.json()["detail"]
        assert count(quota) == 1, "nothing of the refused upload was kept"
        user_dir = Path(server_env["DATA_DIR"]) / "storage"
        stored = [p for p in user_dir.rglob("*") if p.is_file()]
        assert len(stored) == 1, stored
        # Another account has its own quota.
        assert send(register(http, "q2@example.com"), text_file("c.txt", 700)).status_code == 202

        # Queue: 4 documents may wait; a fifth is refused until some are indexed.
        queue = register(http, "queue@example.com")
        r = send(queue, *[text_file(f"q{i}.txt", 1) for i in range(4)])
        assert r.status_code == 202, r.text
        r = send(queue, text_file("q5.txt", 1))
        assert r.status_code == 429, r.text
        assert r.json()["code"] == "queue_limit_reached"
        assert "USER_QUEUED_DOCUMENTS" in r.json()["detail"] and "at most 4" in r.json()["detail"]
        assert int(r.headers["retry-after"]) >= 1
        assert count(queue) == 4

        # Upload rate: 6 files an hour, even when deleted in between.
        rate = register(http, "rate@example.com")
        for batch in range(2):
            r = send(rate, *[text_file(f"r{batch}{i}.txt", 1) for i in range(3)])
            assert r.status_code == 202, r.text
            for d in r.json():
                assert (
                    http.delete(f"/api/v1/documents/{d['id']}", headers=auth(rate)).status_code
                    == 204
                )
        r = send(rate, text_file("r7.txt", 1))
        assert r.status_code == 429, r.text
        assert "USER_UPLOADS_PER_HOUR" in r.json()["detail"] and "6 files" in r.json()["detail"]
        assert count(rate) == 0
