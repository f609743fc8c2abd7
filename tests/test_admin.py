"""Administration over the API on SQLite and PostgreSQL: roles, the model connection saved in
the app (against tests/llm_server.py, which records each request's Authorization header),
the users list, and the bad input of the issue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from pitchcraft.admin.model import KEY_UNREADABLE
from pitchcraft.settings import Settings
from pitchcraft.web.app import create_app
from tests.conftest import FAKE_LLM_KEY, auth, make_settings, register
from tests.llm_server import FakeLLM
from tests.test_refine import process, wait_job

pytestmark = pytest.mark.timeout(600)

ME = "/api/v1/auth/me"
LLM = "/api/v1/admin/llm"
TEST = "/api/v1/admin/llm/test"
USERS = "/api/v1/admin/users"


def chat_requests(fake: FakeLLM, start: int = 0) -> list[Any]:
    return [r for r in fake.requests[start:] if r.path.endswith("/chat/completions")]


def save(client: TestClient, token: str, **body: Any) -> Any:
    r = client.put(LLM, headers=auth(token), json=body)
    assert r.status_code == 200, r.text
    return r.json()


# -- roles ---------------------------------------------------------------------------------


def test_the_first_account_administers_and_members_get_403(client: TestClient) -> None:
    admin = register(client, "first@example.com")
    member = register(client, "second@example.com")
    assert client.get(ME, headers=auth(admin)).json()["is_admin"] is True
    assert client.get(ME, headers=auth(member)).json()["is_admin"] is False

    calls = [
        ("GET", LLM, None),
        ("PUT", LLM, {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "k"}),
        ("DELETE", LLM, None),
        ("POST", TEST, {"base_url": "http://127.0.0.1:9/v1"}),
        ("GET", f"{LLM}/presets", None),
        ("GET", USERS, None),
        ("PATCH", f"{USERS}/1", {"is_admin": False}),
    ]
    for method, path, body in calls:
        r = client.request(method, path, headers=auth(member), json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["code"] == "admin_only"
    assert client.get(LLM, headers=auth(admin)).json()["source"] == "environment"
    # Nothing the member tried was saved, and the admin is still the admin.
    rows = client.get(USERS, headers=auth(admin)).json()
    assert [(u["email"], u["is_admin"]) for u in rows] == [
        ("first@example.com", True),
        ("second@example.com", False),
    ]


def test_promote_demote_disable_and_the_last_administrator(client: TestClient) -> None:
    admin = register(client, "boss@example.com")
    member = register(client, "dana@example.com")
    rows = client.get(USERS, headers=auth(admin)).json()
    boss_id, dana_id = rows[0]["id"], rows[1]["id"]

    last = client.patch(f"{USERS}/{boss_id}", headers=auth(admin), json={"is_admin": False})
    assert last.status_code == 409 and last.json()["code"] == "last_admin", last.text
    self_disable = client.patch(f"{USERS}/{boss_id}", headers=auth(admin), json={"disabled": True})
    assert self_disable.status_code == 409, self_disable.text
    assert client.get(ME, headers=auth(admin)).json()["is_admin"] is True

    up = client.patch(f"{USERS}/{dana_id}", headers=auth(admin), json={"is_admin": True})
    assert up.status_code == 200 and up.json()["is_admin"] is True
    assert client.get(LLM, headers=auth(member)).status_code == 200  # now an administrator
    # Two administrators: one may step down, then the other is the last.
    down = client.patch(f"{USERS}/{boss_id}", headers=auth(member), json={"is_admin": False})
    assert down.status_code == 200, down.text
    again = client.patch(f"{USERS}/{dana_id}", headers=auth(member), json={"is_admin": False})
    assert again.status_code == 409

    # Disabling: the account's token stops working at once and it cannot sign in.
    sub = client.patch(
        f"{USERS}/{boss_id}", headers=auth(member), json={"is_subscribed": True, "disabled": True}
    )
    assert sub.status_code == 200 and sub.json()["disabled"] and sub.json()["is_subscribed"]
    assert client.get(ME, headers=auth(admin)).status_code == 401
    login = {"email": "boss@example.com", "password": "test-pass-123"}
    assert client.post("/api/v1/auth/login", json=login).status_code == 401
    on = client.patch(f"{USERS}/{boss_id}", headers=auth(member), json={"disabled": False})
    assert on.status_code == 200 and on.json()["disabled"] is False
    assert client.get(ME, headers=auth(admin)).status_code == 401  # old sessions stay ended
    assert client.post("/api/v1/auth/login", json=login).status_code == 200

    missing = client.patch(f"{USERS}/999999", headers=auth(member), json={"is_admin": True})
    assert missing.status_code == 404
    bad = client.patch(f"{USERS}/{boss_id}", headers=auth(member), json={"is_admin": "maybe"})
    assert bad.status_code == 422


def test_the_users_list_counts_documents_jobs_and_storage(client: TestClient) -> None:
    admin = register(client, "admin@example.com")
    writer = register(client, "writer@example.com")
    login = {"email": "writer@example.com", "password": "test-pass-123"}
    assert client.post("/api/v1/auth/login", json=login).status_code == 200  # a sign-in
    body = b"Acme Shield blocks ransomware on 10,000 laptops.\n"
    r = client.post(
        "/api/v1/documents/upload",
        headers=auth(writer),
        files=[
            ("files", ("a.txt", body, "text/plain")),
            ("files", ("b.txt", body * 2, "text/plain")),
        ],
    )
    assert r.status_code == 202, r.text
    process(client, writer, marketing_text="We stop ransomware.", backgrounds=[])

    r = client.get(USERS, headers=auth(admin), params={"limit": 1, "offset": 1})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "2"
    (row,) = r.json()
    assert row["email"] == "writer@example.com"
    assert (row["documents"], row["jobs"], row["storage_bytes"]) == (2, 1, len(body) * 3)
    assert row["last_login_at"] is not None and row["created_at"]
    assert set(row) == {
        "id", "email", "is_admin", "is_subscribed", "disabled", "created_at",
        "last_login_at", "documents", "jobs", "storage_bytes",
    }  # fmt: skip


# -- the model connection ------------------------------------------------------------------


def test_a_saved_model_runs_the_next_job_with_its_key_and_never_shows_it(
    client: TestClient, settings: Settings, fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = register(client, "admin@example.com")
    before = client.get(LLM, headers=auth(admin)).json()
    assert before == {
        "base_url": None, "model": settings.llm_model, "api_key_set": False,
        "source": "environment", "key_unreadable": False, "error": None,
    }  # fmt: skip
    evidence = wait_job(client, admin, process(client, admin, marketing_text="We stop ransomware."))
    assert evidence["mode"] == "evidence"

    saved = save(
        client, admin, base_url=fake_llm.base_url, model="fake-model", api_key=FAKE_LLM_KEY
    )
    assert saved == {
        "base_url": fake_llm.base_url, "model": "fake-model", "api_key_set": True,
        "source": "app", "key_unreadable": False, "error": None,
    }  # fmt: skip
    job = wait_job(client, admin, process(client, admin, marketing_text="We stop ransomware."))
    assert job["status"] == "succeeded" and job["mode"] == "llm", job
    (request,) = chat_requests(fake_llm)
    assert request.headers["authorization"] == f"Bearer {FAKE_LLM_KEY}"

    # Saved without a key: the key is kept. With "": cleared.
    kept = save(client, admin, base_url=fake_llm.base_url, model="fake-model")
    assert kept["api_key_set"] is True
    with client.app.state.container.db.engine.connect() as conn:  # type: ignore[attr-defined]
        row = conn.execute(text("SELECT * FROM llm_settings")).mappings().one()
    assert FAKE_LLM_KEY not in repr(dict(row)) and row["api_key_sealed"]

    # The key is nowhere to be read: answers, /health, pages, the job record, the log.
    seen = [
        client.get(LLM, headers=auth(admin)).text,
        client.get("/health").text,
        client.get("/api/v1/jobs", headers=auth(admin)).text,
        client.get(f"/api/v1/rag/results/{job['job_id']}", headers=auth(admin)).text,
        client.get("/openapi.json").text,
    ]
    client.cookies.set("pitchcraft_session", admin)
    for page in ("/", "/admin/model", "/admin/users", "/compose", "/history", "/documents"):
        r = client.get(page)
        assert r.status_code == 200, page
        seen.append(r.text)
    client.cookies.clear()
    assert all(FAKE_LLM_KEY not in s for s in seen)
    assert FAKE_LLM_KEY not in caplog.text
    assert "fake-model" in client.get("/health").json()["llm"]

    cleared = save(client, admin, base_url=fake_llm.base_url, model="fake-model", api_key="")
    assert cleared["api_key_set"] is False
    failed = wait_job(client, admin, process(client, admin, marketing_text="We stop ransomware."))
    assert failed["status"] == "failed" and "API key" in failed["error"], failed
    assert chat_requests(fake_llm)[-1].headers.get("authorization") is None

    back = client.delete(LLM, headers=auth(admin))
    assert back.status_code == 200 and back.json()["source"] == "environment"
    again = wait_job(client, admin, process(client, admin, marketing_text="We stop ransomware."))
    assert again["mode"] == "evidence"


def test_the_test_call_lists_models_and_reports_failures_plainly(
    client: TestClient, fake_llm: FakeLLM
) -> None:
    admin = register(client, "admin@example.com")
    fake_llm.models = ["fake-model", "other-model"]
    start = len(fake_llm.requests)
    r = client.post(
        TEST,
        headers=auth(admin),
        json={"base_url": fake_llm.base_url, "api_key": FAKE_LLM_KEY, "model": "fake-model"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["error"] is None and body["latency_ms"] > 0
    assert body["models"] == ["fake-model", "other-model"]
    listed, chat = fake_llm.requests[start:]
    assert listed.path == "/v1/models" and chat.path == "/v1/chat/completions"
    assert {listed.headers["authorization"], chat.headers["authorization"]} == {
        f"Bearer {FAKE_LLM_KEY}"
    }
    assert chat.body["model"] == "fake-model" and chat.body["max_tokens"] <= 16

    wrong_key = "sk-wrong-key-9876543210"
    wrong = client.post(
        TEST, headers=auth(admin), json={"base_url": fake_llm.base_url, "api_key": wrong_key}
    )
    assert wrong.status_code == 200
    assert wrong.json()["ok"] is False and "refused the API key" in wrong.json()["error"]
    assert wrong_key not in wrong.text and wrong_key[-4:] not in wrong.json()["error"]

    fake_llm.status(404, message="The model `nope` does not exist.")
    unknown = client.post(
        TEST,
        headers=auth(admin),
        json={"base_url": fake_llm.base_url, "api_key": FAKE_LLM_KEY, "model": "nope"},
    ).json()
    assert unknown["ok"] is False and "nope" in unknown["error"]

    dead = client.post(TEST, headers=auth(admin), json={"base_url": "http://127.0.0.1:9/v1"}).json()
    assert dead["ok"] is False and "Could not connect to 127.0.0.1:9" in dead["error"]

    # Without a key, the saved key is used only for the saved address.
    save(client, admin, base_url=fake_llm.base_url, model="fake-model", api_key=FAKE_LLM_KEY)
    start = len(fake_llm.requests)
    same = client.post(TEST, headers=auth(admin), json={"base_url": fake_llm.base_url}).json()
    assert same["ok"] is True
    assert fake_llm.requests[start].headers["authorization"] == f"Bearer {FAKE_LLM_KEY}"
    other_url = fake_llm.base_url.replace("/v1", "/v2")
    start = len(fake_llm.requests)
    other = client.post(TEST, headers=auth(admin), json={"base_url": other_url}).json()
    assert other["ok"] is False and "needs an API key" in other["error"]
    assert "authorization" not in fake_llm.requests[start].headers


class _Stub(BaseHTTPRequestHandler):
    """Answers every GET as the server's `mode` says: html, redirect (to `target`), slow."""

    mode = "html"
    target = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.mode == "slow":
            threading.Event().wait(3)
        if self.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", self.target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<html><body>Welcome to nginx!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def stub() -> Iterator[Any]:
    def make(mode: str, target: str = "") -> str:
        handler = type("Handler", (_Stub,), {"mode": mode, "target": target})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    servers: list[ThreadingHTTPServer] = []
    yield make
    for s in servers:
        s.shutdown()
        s.server_close()


def test_the_test_call_on_odd_endpoints(
    client: TestClient, fake_llm: FakeLLM, stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = register(client, "admin@example.com")

    def test(url: str) -> dict[str, Any]:
        r = client.post(TEST, headers=auth(admin), json={"base_url": url, "api_key": FAKE_LLM_KEY})
        assert r.status_code == 200, r.text
        assert FAKE_LLM_KEY not in r.text
        out: dict[str, Any] = r.json()
        return out

    html = test(stub("html"))
    assert html["ok"] is False and "not JSON" in html["error"]

    # Another host (localhost is not 127.0.0.1): refused, the key never sent there.
    elsewhere = fake_llm.base_url.replace("127.0.0.1", "localhost")
    start = len(fake_llm.requests)
    moved = test(stub("redirect", f"{elsewhere}/models"))
    assert moved["ok"] is False and "redirects to localhost" in moved["error"]
    assert len(fake_llm.requests) == start
    # The same host and port: followed.
    same_host = stub("redirect", "/v1/models")
    assert test(same_host)["ok"] is False  # loops on itself: too many redirects
    import pitchcraft.llm.probe as probe_module

    monkeypatch.setattr(probe_module, "TEST_TIMEOUT_S", 1.0)
    slow = test(stub("slow"))
    assert slow["ok"] is False and "did not answer within 1 s" in slow["error"]


def test_ollama_is_detected_on_its_address(tmp_path: Path, database_url: str | None) -> None:
    with FakeLLM() as ollama:
        ollama.models = ["llama3.1:8b", "qwen2.5:7b"]
        settings = make_settings(tmp_path / "data", database_url, ollama_base_url=ollama.base_url)
        with TestClient(create_app(settings)) as client:
            admin = register(client, "admin@example.com")
            presets = client.get(f"{LLM}/presets", headers=auth(admin)).json()
            by_id = {p["id"]: p for p in presets}
            assert set(by_id) == {"ollama", "openai", "vllm", "llamacpp", "lmstudio", "other"}
            assert by_id["ollama"]["detected"] is True
            assert by_id["ollama"]["models"] == ["llama3.1:8b", "qwen2.5:7b"]
            assert by_id["ollama"]["base_url"] == ollama.base_url
            assert by_id["openai"]["needs_key"] is True
            client.cookies.set("pitchcraft_session", admin)
            page = client.get("/admin/model").text
            assert "llama3.1:8b" in page and 'data-testid="detected-ollama"' in page
    none_here = make_settings(tmp_path / "data2", None, ollama_base_url="http://127.0.0.1:9/v1")
    with TestClient(create_app(none_here)) as client:
        admin = register(client, "admin@example.com")
        presets = client.get(f"{LLM}/presets", headers=auth(admin)).json()
        assert presets[0]["id"] == "ollama" and presets[0]["detected"] is False


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"base_url": "not a url", "model": "m"}, 422, "http://"),
        ({"base_url": "file:///etc/passwd", "model": "m"}, 422, "http://"),
        ({"base_url": "javascript:alert(1)", "model": "m"}, 422, "http://"),
        ({"base_url": "http://", "model": "m"}, 422, "URL"),
        ({"base_url": "http://host:port/v1", "model": "m"}, 422, "port"),
        ({"base_url": "http://127.0.0.1:9/v1", "model": "   "}, 422, "model"),
        ({"base_url": "http://127.0.0.1:9/v1", "model": "a\nb"}, 422, "model"),
        ({"base_url": "http://127.0.0.1:9/v1", "model": "m" * 201}, 422, "model"),
        ({"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "é"}, 422, "key"),
        ({"base_url": "http://127.0.0.1:9/v1", "model": "m", "extra": 1}, 422, "extra"),
        ({"base_url": "http://127.0.0.1:9/v1", "model": "m" * 10_000_000}, 413, ""),
    ],
)
def test_bad_model_settings_are_refused_and_nothing_is_saved(
    client: TestClient, body: dict[str, Any], status: int, says: str
) -> None:
    admin = register(client, "admin@example.com")
    good = save(client, admin, base_url="http://127.0.0.1:9/v1", model="kept", api_key="sk-kept")
    r = client.put(LLM, headers=auth(admin), json=body)
    assert r.status_code == status, r.text
    assert says.lower() in r.json()["detail"].lower()
    assert client.get(LLM, headers=auth(admin)).json() == good
    if status == 422 and "model" in body and len(body["model"]) < 1000:
        t = client.post(TEST, headers=auth(admin), json={k: body[k] for k in ("base_url", "model")})
        assert t.status_code in (200, 422) and (t.status_code == 422 or not t.json()["ok"])


def test_concurrent_saves_never_mix_one_url_with_another_key(
    client: TestClient,
) -> None:
    admin = register(client, "admin@example.com")
    container = client.app.state.container  # type: ignore[attr-defined]
    errors: list[BaseException] = []

    def saver(n: int) -> None:
        try:
            for _ in range(5):
                container.model.save(
                    base_url=f"http://127.0.0.1:{9000 + n}/v1",
                    model=f"model-{n}",
                    api_key=f"key-{n}",
                )
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=saver, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    config = container.model.effective()
    n = int(config.model.removeprefix("model-"))
    assert (config.base_url, config.api_key) == (f"http://127.0.0.1:{9000 + n}/v1", f"key-{n}")
    assert client.get(LLM, headers=auth(admin)).json()["model"] == config.model


# -- restarts and the server's secret ------------------------------------------------------


def test_the_setting_survives_a_restart_and_a_new_secret_makes_it_unreadable(
    tmp_path: Path, database_url: str | None, fake_llm: FakeLLM
) -> None:
    data = tmp_path / "data"
    first = make_settings(data, database_url, jwt_secret="tZ3q-first-secret-9fKw2LmQx7RvB4nHs8dJ")
    with TestClient(create_app(first)) as client:
        admin = register(client, "admin@example.com")
        save(client, admin, base_url=fake_llm.base_url, model="fake-model", api_key=FAKE_LLM_KEY)

    with TestClient(create_app(first)) as client:  # restarted, same secret
        token = client.post(
            "/api/v1/auth/login", json={"email": "admin@example.com", "password": "test-pass-123"}
        ).json()["access_token"]
        assert client.get(LLM, headers=auth(token)).json()["source"] == "app"
        job = wait_job(client, token, process(client, token, marketing_text="We stop ransomware."))
        assert job["mode"] == "llm" and job["status"] == "succeeded", job
        assert chat_requests(fake_llm)[-1].headers["authorization"] == f"Bearer {FAKE_LLM_KEY}"

    calls = len(fake_llm.requests)
    changed = make_settings(data, database_url, jwt_secret="Yp6e-second-secret-2WcXo5TgUa1kZr7NfE")
    with TestClient(create_app(changed)) as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": "admin@example.com", "password": "test-pass-123"}
        ).json()["access_token"]
        view = client.get(LLM, headers=auth(token)).json()
        assert view["key_unreadable"] is True and view["error"] == KEY_UNREADABLE
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["llm"] == KEY_UNREADABLE
        client.cookies.set("pitchcraft_session", token)
        page = client.get("/admin/model")
        assert page.status_code == 200 and KEY_UNREADABLE in page.text
        assert client.get("/compose").status_code == 200
        client.cookies.clear()
        job = wait_job(client, token, process(client, token, marketing_text="We stop ransomware."))
        assert job["status"] == "failed" and job["error"] == KEY_UNREADABLE
        assert len(fake_llm.requests) == calls  # nothing was sent with a wrong key

        fixed = save(
            client, token, base_url=fake_llm.base_url, model="fake-model", api_key=FAKE_LLM_KEY
        )
        assert fixed["key_unreadable"] is False
        job = wait_job(client, token, process(client, token, marketing_text="We stop ransomware."))
        assert job["status"] == "succeeded" and job["mode"] == "llm"


def test_a_backup_keeps_the_saved_model_sealed_and_a_restore_can_read_it(
    tmp_path: Path, fake_llm: FakeLLM
) -> None:
    """SQLite: the archive's database holds the key only sealed; restored with the database's
    own secret, the setting works as before."""
    from pitchcraft.ops.backup import create_backup, restore_backup

    source = make_settings(tmp_path / "data", None)
    with TestClient(create_app(source)) as client:
        admin = register(client, "admin@example.com")
        save(client, admin, base_url=fake_llm.base_url, model="fake-model", api_key=FAKE_LLM_KEY)
    archive = tmp_path / "backup.tar"
    create_backup(source, archive)
    assert FAKE_LLM_KEY.encode() not in archive.read_bytes()

    restored = make_settings(tmp_path / "restored", None)
    restore_backup(restored, archive)
    with TestClient(create_app(restored)) as client:
        token = client.post(
            "/api/v1/auth/login", json={"email": "admin@example.com", "password": "test-pass-123"}
        ).json()["access_token"]
        view = client.get(LLM, headers=auth(token)).json()
        assert view["source"] == "app" and view["key_unreadable"] is False
        job = wait_job(client, token, process(client, token, marketing_text="We stop ransomware."))
        assert job["status"] == "succeeded" and job["mode"] == "llm", job
        assert chat_requests(fake_llm)[-1].headers["authorization"] == f"Bearer {FAKE_LLM_KEY}"
