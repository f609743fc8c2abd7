"""Hardening: security headers on every answer, CORS from ALLOWED_ORIGINS, request size
limits, and no secret or user text in the logs of a real server."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from pitchcraft.settings import Settings
from pitchcraft.web.app import create_app
from tests.conftest import ServerProcess, auth, make_settings, register
from tests.llm_server import FakeLLM

JSON = {"content-type": "application/json"}
BOUNDARY = "hardening"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*files: tuple[str, bytes]) -> bytes:
    body = b""
    for name, data in files:
        body += (
            (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


# --- security headers -----------------------------------------------------------------------

EXPECTED_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def assert_security_headers(r: httpx.Response, what: str) -> None:
    for name, value in EXPECTED_HEADERS.items():
        assert r.headers.get(name) == value, (what, r.status_code, name, dict(r.headers))
    csp = r.headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, (what, csp)
    assert "default-src 'self'" in csp, (what, csp)
    if "/docs" not in what:
        assert "unsafe-inline" not in csp, (what, csp)
    # Each header once: a layer that sets its own is not doubled.
    for name in (*EXPECTED_HEADERS, "content-security-policy"):
        assert len(r.headers.get_list(name)) == 1, (what, name)


@pytest.fixture
def small_app(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path / "data", max_request_kb=16, max_upload_mb=1, max_files_per_upload=2
    )
    app = create_app(settings)

    def boom() -> None:
        raise RuntimeError("a bug, for the test")

    app.add_api_route("/api/v1/test-boom", boom)
    app.add_api_route("/test-boom", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_security_headers_on_every_kind_of_answer(small_app: TestClient) -> None:
    c = small_app
    token = register(c, "headers@example.com")
    html = {"accept": "text/html"}

    def too_big_stream() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 1024

    answers: list[tuple[str, int, Callable[[], httpx.Response]]] = [
        ("health", 200, lambda: c.get("/health")),
        ("openapi", 200, lambda: c.get("/openapi.json")),
        ("/docs", 200, lambda: c.get("/docs")),
        ("static css", 200, lambda: c.get("/static/css/app.css")),
        ("static js", 200, lambda: c.get("/static/js/htmx.min.js")),
        ("static missing", 404, lambda: c.get("/static/nope.css")),
        ("login page", 200, lambda: c.get("/login")),
        ("redirect", 303, lambda: c.get("/", follow_redirects=False)),
        ("api ok", 200, lambda: c.get("/api/v1/auth/me", headers=auth(token))),
        ("api 401", 401, lambda: c.get("/api/v1/auth/me")),
        ("api 404", 404, lambda: c.get("/api/v1/nope")),
        ("page 404", 404, lambda: c.get("/nope", headers=html)),
        ("api 405", 405, lambda: c.delete("/api/v1/auth/login")),
        ("api 422", 422, lambda: c.post("/api/v1/auth/login", json={})),
        (
            "declared 413",
            413,
            lambda: c.post(
                "/api/v1/search", content=b"{}", headers={**JSON, "content-length": str(10**10)}
            ),
        ),
        ("streamed 413", 413, lambda: c.post("/api/v1/search", content=too_big_stream())),
        (
            "bad content-length",
            400,
            lambda: c.post("/api/v1/search", content=b"{}", headers={"content-length": "many"}),
        ),
        ("csrf 403", 403, lambda: c.post("/login", data={"email": "a@b.c", "password": "x"})),
        (
            "csrf 403 page",
            403,
            lambda: c.post("/login", data={"email": "a@b.c", "password": "x"}, headers=html),
        ),
        (
            "multipart csrf 403",
            403,
            lambda: c.post(
                "/documents/upload",
                content=multipart(("a.txt", b"x")),
                headers={"content-type": MULTIPART, "cookie": "pitchcraft_session=x"},
            ),
        ),
        ("api 500", 500, lambda: c.get("/api/v1/test-boom")),
        ("page 500", 500, lambda: c.get("/test-boom", headers=html)),
    ]
    for what, status, call in answers:
        r = call()
        assert r.status_code == status, (what, r.status_code, r.text[:300])
        assert_security_headers(r, what)
    assert "unsafe-inline" in c.get("/docs").headers["content-security-policy"]


def test_405_names_every_method_of_the_resource(small_app: TestClient) -> None:
    """Starlette names only the methods of the first route matching the path."""
    token = register(small_app, "allow@example.com")
    for path, methods in [
        ("/api/v1/documents/some-id", {"GET", "DELETE"}),
        ("/api/v1/rag/prompt-template", {"GET", "POST", "DELETE"}),
        ("/api/v1/auth/login", {"POST"}),
    ]:
        r = small_app.request("PUT", path, headers=auth(token))
        assert r.status_code == 405, (path, r.text)
        assert r.json()["code"] == "method_not_allowed"
        allowed = {m.strip() for m in r.headers["allow"].split(",")}
        assert allowed - {"HEAD"} == methods, (path, allowed)


# --- CORS -----------------------------------------------------------------------------------

APP_ORIGIN = "https://app.example.com"
EVIL_ORIGIN = "https://evil.example"


def preflight(c: TestClient, origin: str, path: str = "/api/v1/search") -> httpx.Response:
    return c.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )


def cors_headers(r: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in r.headers.items() if k.startswith("access-control-")}


def test_no_cors_by_default(client: TestClient) -> None:
    token = register(client, "nocors@example.com")
    r = client.get("/api/v1/auth/me", headers={**auth(token), "origin": APP_ORIGIN})
    assert r.status_code == 200 and cors_headers(r) == {}
    r = preflight(client, APP_ORIGIN)
    assert r.status_code == 405 and cors_headers(r) == {}
    assert_security_headers(r, "preflight without CORS")


def test_cors_for_the_allowed_origins_only(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        allowed_origins=f" {APP_ORIGIN} , HTTPS://Admin.Example.com:8443",
        max_request_kb=4,
    )
    assert settings.cors_origins == [APP_ORIGIN, "https://admin.example.com:8443"]
    with TestClient(create_app(settings)) as c:
        token = register(c, "cors@example.com")
        for origin in (APP_ORIGIN, "https://admin.example.com:8443"):
            r = preflight(c, origin)
            assert r.status_code == 200, r.text
            got = cors_headers(r)
            assert got["access-control-allow-origin"] == origin
            assert got["access-control-allow-credentials"] == "true"
            assert "POST" in got["access-control-allow-methods"]
            assert "authorization" in got["access-control-allow-headers"].lower()
            assert_security_headers(r, "preflight")

        for origin in (EVIL_ORIGIN, APP_ORIGIN + ".evil.example", "null", "http://app.example.com"):
            r = preflight(c, origin)
            assert r.status_code == 400, (origin, r.status_code)
            assert "access-control-allow-origin" not in r.headers, origin
            r = c.get("/api/v1/auth/me", headers={**auth(token), "origin": origin})
            assert "access-control-allow-origin" not in r.headers, origin

        r = c.get("/api/v1/auth/me", headers={**auth(token), "origin": APP_ORIGIN})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == APP_ORIGIN
        assert "vary" in r.headers and "origin" in r.headers["vary"].lower()
        # The answers of the outer layers carry them too, so the page's script can read a 413.
        r = c.post(
            "/api/v1/search",
            content=b"{}",
            headers={**auth(token), **JSON, "origin": APP_ORIGIN, "content-length": "99999"},
        )
        assert r.status_code == 413
        assert r.headers["access-control-allow-origin"] == APP_ORIGIN
        r = c.get(
            "/api/v1/jobs", headers={**auth(token), "origin": APP_ORIGIN}, params={"limit": 1}
        )
        assert "x-total-count" in r.headers["access-control-expose-headers"].lower()
        # Pages are not for other sites' scripts, allowed or not.
        c.cookies.set("pitchcraft_session", token)
        for path in ("/", "/login", "/documents", "/static/css/app.css"):
            r = c.get(path, headers={"origin": APP_ORIGIN}, follow_redirects=False)
            assert cors_headers(r) == {}, path
            r = preflight(c, APP_ORIGIN, path)
            assert cors_headers(r) == {}, path


def test_cors_any_origin_never_with_credentials(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", allowed_origins="*")
    with TestClient(create_app(settings)) as c:
        r = preflight(c, EVIL_ORIGIN)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
        r = c.get("/health", headers={"origin": EVIL_ORIGIN, "cookie": "pitchcraft_session=x"})
        assert r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize(
    "value",
    ["https://app.example.com/", "app.example.com", "https://app.example.com/path", "ftp://x.y"],
)
def test_allowed_origins_must_be_origins(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValidationError, match="ALLOWED_ORIGINS"):
        make_settings(tmp_path / "data", allowed_origins=value)


def test_allowed_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://a.example,https://b.example:444")
    assert Settings(_env_file=None).cors_origins == [  # type: ignore[call-arg]
        "https://a.example",
        "https://b.example:444",
    ]
    monkeypatch.setenv("ALLOWED_ORIGINS", "")
    assert Settings(_env_file=None).cors_origins == []  # type: ignore[call-arg]


# --- request size limits --------------------------------------------------------------------


def test_size_limits_of_json_forms_and_uploads(small_app: TestClient) -> None:
    """MAX_REQUEST_KB=16 for JSON and forms, MAX_UPLOAD_MB=1 per file, two files per upload."""
    c = small_app
    token = register(c, "limits@example.com")
    big = "x" * 20_000
    for path, body in [
        ("/api/v1/search", {"query": big}),
        ("/api/v1/rag/process", {"marketing_text": big}),
        ("/api/v1/rag/prompt-template", {"template": big}),
        ("/api/v1/auth/login", {"email": "a@example.com", "password": big}),
    ]:
        r = c.post(path, json=body, headers=auth(token))
        assert r.status_code == 413, (path, r.text)
        assert r.json()["code"] == "too_large" and "16 KB" in r.json()["detail"]
    # Just under the limit is judged on its content, not its size.
    r = c.post("/api/v1/search", json={"query": "y" * 15_000}, headers=auth(token))
    assert r.status_code == 422, r.text

    # Forms: sign-in (before any CSRF check) and Compose (signed in).
    r = c.post("/login", data={"email": "a@example.com", "password": big})
    assert r.status_code == 413
    c.cookies.set("pitchcraft_session", token)
    assert c.get("/compose").status_code == 200
    csrf = c.cookies.get("csrftoken")
    r = c.post("/compose", data={"csrftoken": csrf or "", "marketing_text": big})
    assert r.status_code == 413
    c.cookies.clear()

    # Uploads: a file over MAX_UPLOAD_MB is refused with the limit named, the other kept.
    mb = 1024 * 1024
    r = c.post(
        "/api/v1/documents/upload",
        content=multipart(("big.txt", b"b" * (mb + 10)), ("small.txt", b"a small note")),
        headers={**auth(token), "content-type": MULTIPART},
    )
    assert r.status_code == 202, r.text
    big_entry, small_entry = r.json()
    assert big_entry["status"] == "failed" and "1 MB" in big_entry["error"]
    assert small_entry["status"] != "failed"
    # A body over files x MAX_UPLOAD_MB + MAX_REQUEST_KB is refused before it is read.
    r = c.post(
        "/api/v1/documents/upload",
        content=multipart(*[(f"f{i}.txt", b"c" * (mb - 100)) for i in range(3)]),
        headers={**auth(token), "content-type": MULTIPART},
    )
    assert r.status_code == 413
    listed = c.get("/api/v1/documents", headers=auth(token)).json()
    assert sorted(d["filename"] for d in listed) == ["big.txt", "small.txt"]


# --- nothing secret, and no user text at INFO, in a real server's log -----------------------

LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# pitchcraft's own records ("2026-01-02 03:04:05,678 INFO name: ...") and uvicorn's ("INFO: ...").
RECORD_START = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<a>[A-Z]+) |(?P<b>[A-Z]+):\s)", re.MULTILINE
)


def records(log: str) -> list[tuple[str, str]]:
    """(level, text) of each record; lines that start no record (tracebacks, multi-line
    messages, a library's own prints) belong to the record before them."""
    out: list[tuple[str, str]] = []
    for line in log.splitlines():
        m = RECORD_START.match(line)
        level = (m.group("a") or m.group("b")) if m else None
        if level in LEVELS:
            out.append((level, line))
        elif out:
            out[-1] = (out[-1][0], out[-1][1] + "\n" + line)
        else:
            out.append(("UNKNOWN", line))
    return out


def found_in(texts: dict[str, str], needles: dict[str, str]) -> list[str]:
    return [
        f"{what} in {where}" for what, n in needles.items() for where, t in texts.items() if n in t
    ]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_log_holds_no_secret_and_no_user_text_at_info(
    tmp_path: Path,
    start_server: Callable[[dict[str, str]], ServerProcess],
    fake_llm: FakeLLM,
) -> None:
    """A whole session against `pitchcraft serve` at LOG_LEVEL=DEBUG: sign-up, sign-in, a
    wrong password, upload, search, template, a refine with a model, a password change by
    the CLI. Secrets appear at no level; user text at no level from INFO up."""
    jwt_secret = "jwt-" + secrets.token_urlsafe(36)  # a guessable one is refused at start
    password, wrong, new_password = "first-Pa55word", "wrong-Pa55word", "second-Pa55word"
    email = "leaks@example.com"
    document = "Quokka Shield inspects every quantum handshake in the zebra datacenter."
    query = "quantum handshake inspection for zebras"
    template = "LEAKCHECK template for {{backgrounds}}:\n{{marketing_text}}\n{{context}}"
    marketing = "Marmalade rockets protect the quantum handshake of every zebra."
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "CONTAINER_MODE": "no",
        "LOG_LEVEL": "DEBUG",
        "JWT_SECRET": jwt_secret,
        "CLEAR_DOCUMENTS_ON_LOGIN": "false",
        **fake_llm.env(),
    }
    server = start_server(env)
    base = server.url
    with httpx.Client(base_url=base, timeout=60) as http:
        r = http.post("/api/v1/auth/register", json={"email": email, "password": password})
        assert r.status_code == 201, r.text
        tokens = [r.json()["access_token"]]
        r = http.post("/api/v1/auth/login", json={"email": email, "password": password})
        tokens.append(r.json()["access_token"])
        r = http.post("/api/v1/auth/login", json={"email": email, "password": wrong})
        assert r.status_code == 401
        headers = auth(tokens[-1])
        # The browser's way in too: the session cookie carries the same kind of token.
        page = http.post("/login", data={"email": email, "password": password})
        assert page.status_code == 403  # no CSRF token: refused, and the password not logged

        r = http.post(
            "/api/v1/documents/upload",
            headers=headers,
            files=[("files", ("quokka.txt", document.encode(), "text/plain"))],
        )
        assert r.status_code == 202, r.text
        doc_id = r.json()[0]["id"]
        wait_for(
            lambda: (
                http.get(f"/api/v1/documents/{doc_id}", headers=headers).json()["status"]
                == "indexed"
            ),
            "the document to be indexed",
        )
        r = http.post("/api/v1/search", headers=headers, json={"query": query})
        assert r.status_code == 200 and r.json()["results"], r.text
        r = http.post("/api/v1/rag/prompt-template", headers=headers, json={"template": template})
        assert r.status_code == 200, r.text
        r = http.post(
            "/api/v1/rag/process",
            headers=headers,
            json={"marketing_text": marketing, "backgrounds": ["zoology"]},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        job = wait_for(
            lambda: (
                j
                if (j := http.get(f"/api/v1/rag/results/{job_id}", headers=headers).json())[
                    "status"
                ]
                in {"succeeded", "failed"}
                else None
            ),
            "the refine job",
        )
        assert job["status"] == "succeeded" and job["mode"] == "llm", job
        prompt = job["prompt"]
        assert marketing in prompt and "LEAKCHECK" in prompt
        refined = job["refined_text"]

        cli = subprocess.run(
            [sys.executable, "-m", "pitchcraft", "user", "set-password", email],
            input=f"{new_password}\n{new_password}\n",
            env={**os.environ, **env},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        assert http.get("/api/v1/auth/me", headers=headers).status_code == 401
        r = http.post("/api/v1/auth/login", json={"email": email, "password": new_password})
        assert r.status_code == 200
        tokens.append(r.json()["access_token"])
        assert http.get("/api/v1/auth/me", headers=auth(tokens[-1])).status_code == 200
    server.stop()
    log = server.log()
    assert "Application shutdown complete" in log  # the whole log, flushed

    secrets_ = {
        "JWT_SECRET": jwt_secret,
        "LLM_API_KEY": fake_llm.api_key or "",
        "the password": password,
        "the wrong password": wrong,
        "the new password": new_password,
        **{f"token {i}": t for i, t in enumerate(tokens)},
        # Nor a token cut into parts: its signature is what makes it a credential.
        **{f"token {i} signature": t.rsplit(".", 1)[1] for i, t in enumerate(tokens)},
    }
    everything = {"server log": log, "CLI output": cli.stdout + cli.stderr}
    assert found_in(everything, secrets_) == []

    user_text = {
        "the marketing text": marketing,
        "the prompt": prompt[:60],
        "the template": "LEAKCHECK",
        "the document's text": document,
        "the search query": query,
        "the refined text": refined[:60],
    }
    logged = records(log)
    assert any(level == "DEBUG" for level, _ in logged), "LOG_LEVEL=DEBUG had no effect"
    info = "\n".join(text for level, text in logged if level not in {"TRACE", "DEBUG"})
    assert found_in({"INFO and above": info}, user_text) == []
