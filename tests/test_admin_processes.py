"""Administration across processes and upgrades: a running server picks up a model saved by
another process without a restart, the upgrade names an administrator on an install that
has accounts, and `pitchcraft user ...` for operators. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import text

from pitchcraft.container import build
from pitchcraft.core import migrate
from pitchcraft.core.db import Database
from pitchcraft.settings import Settings
from tests.conftest import FAKE_LLM_KEY, auth, make_settings, register
from tests.llm_server import FakeLLM
from tests.test_cli_users import env_for, run_cli
from tests.test_refine import process, wait_job

pytestmark = pytest.mark.timeout(600)


def test_a_running_server_uses_a_model_saved_by_another_process_without_restart(
    start_server: Any,
    server_env: dict[str, str],
    tmp_path: Path,
    database_url: str | None,
    fake_llm: FakeLLM,
) -> None:
    server = start_server(server_env)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        token = register(client, "admin@example.com")
        first = wait_job(
            client, token, process(client, token, marketing_text="We stop ransomware.")
        )
        assert first["mode"] == "evidence"

        # Another process (this one) saves the setting straight into the shared database.
        other = build(make_settings(Path(server_env["DATA_DIR"]), database_url))
        try:
            other.model.save(base_url=fake_llm.base_url, model="fake-model", api_key=FAKE_LLM_KEY)
        finally:
            other.close()
        job = wait_job(client, token, process(client, token, marketing_text="We stop ransomware."))
        assert job["status"] == "succeeded" and job["mode"] == "llm", job
        chats = [r for r in fake_llm.requests if r.path.endswith("/chat/completions")]
        assert [r.headers["authorization"] for r in chats] == [f"Bearer {FAKE_LLM_KEY}"]

        # And through its own API: back to the environment (no model), at the next job.
        assert client.delete("/api/v1/admin/llm", headers=auth(token)).status_code == 200
        last = wait_job(client, token, process(client, token, marketing_text="We stop ransomware."))
        assert last["mode"] == "evidence"
        assert FAKE_LLM_KEY not in client.get("/health").text
    server.stop()
    assert FAKE_LLM_KEY not in server.log()


def test_the_upgrade_makes_the_oldest_account_administrator(settings: Settings) -> None:
    db = Database(settings)
    cfg = migrate.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        now = datetime.now(UTC)
        for n, email in ((7, "oldest@example.com"), (9, "newer@example.com")):
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, is_active, is_subscribed, "
                    "token_version, created_at, updated_at) "
                    "VALUES (:id, :email, 'x', true, false, 0, :now, :now)"
                ),
                {"id": n, "email": email, "now": now},
            )
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT email, is_admin FROM users ORDER BY id")).all()
    db.dispose()
    assert [(e, bool(a)) for e, a in rows] == [
        ("oldest@example.com", True),
        ("newer@example.com", False),
    ]


def test_operators_manage_roles_and_accounts_from_the_command_line(
    settings: Settings, tmp_path: Path
) -> None:
    env = env_for(settings)
    for email in ("ops@example.com", "dana@example.com"):
        made = run_cli(
            env, tmp_path, "user", "create", email, "--password", "cobalt-harbor-lantern-9"
        )
        assert made.returncode == 0, made.stderr

    def cli(*args: str) -> Any:
        return run_cli(env, tmp_path, "user", *args)

    last = cli("demote", "ops@example.com")
    assert last.returncode != 0 and "last administrator" in last.stderr
    assert cli("promote", "DANA@example.com").returncode == 0
    assert cli("demote", "ops@example.com").returncode == 0
    assert cli("set-subscribed", "ops@example.com", "true").returncode == 0
    bad = cli("set-subscribed", "ops@example.com", "perhaps")
    assert bad.returncode != 0 and "true or false" in bad.stderr
    assert cli("disable", "ops@example.com").returncode == 0
    unknown = cli("enable", "nobody@example.com")
    assert unknown.returncode != 0 and "nobody@example.com" in unknown.stderr

    listed = cli("list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[1]: line.split() for line in listed.stdout.splitlines() if "@" in line}
    assert rows["ops@example.com"][2:5] == ["member", "disabled", "yes"]
    assert rows["dana@example.com"][2:5] == ["admin", "active", "no"]
    assert "last sign-in" in listed.stdout and "storage" in listed.stdout

    container = build(settings)
    try:
        users = {u.email: u for u in container.users.list()[0]}
        assert users["ops@example.com"].disabled and not users["ops@example.com"].is_admin
        assert users["dana@example.com"].is_admin
    finally:
        container.close()
    assert cli("enable", "ops@example.com").returncode == 0
