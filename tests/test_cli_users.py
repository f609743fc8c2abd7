"""`pitchcraft user ...` as real subprocesses, against the same data an in-process app uses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pitchcraft.settings import Settings
from pitchcraft.web.app import create_app

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pitchcraft", *args],
        env=full_env,
        cwd=cwd,  # away from any .env in the repository
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def env_for(settings: Settings) -> dict[str, str]:
    """The environment that points the CLI at the same database as `settings`."""
    env = {"DATA_DIR": str(settings.data_dir), "CONTAINER_MODE": "no"}
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    return env


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"DATA_DIR": str(tmp_path / "data"), "CONTAINER_MODE": "no"}


def login(client: TestClient, email: str, password: str) -> int:
    return client.post(LOGIN, json={"email": email, "password": password}).status_code


# On SQLite and PostgreSQL (the `settings` fixture is parametrised over both).


def test_create_then_list(settings: Settings, tmp_path: Path) -> None:
    env = env_for(settings)
    created = run_cli(
        env, tmp_path, "user", "create", "New.Admin@Example.com", "--password", "cli-pass-123456"
    )
    assert created.returncode == 0, created.stderr
    assert "<new.admin@example.com>" in created.stdout

    listed = run_cli(env, tmp_path, "user", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines() if "@" in line]
    assert len(rows) == 1, listed.stdout
    assert rows[0][1:4] == ["new.admin@example.com", "admin", "active"]  # the first is admin
    assert "No accounts yet." not in listed.stdout

    # The account is real: the web app signs it in.
    with TestClient(create_app(settings)) as client:
        assert login(client, "new.admin@example.com", "cli-pass-123456") == 200
        assert login(client, "new.admin@example.com", "wrong-password") == 401


def test_set_password_revokes_earlier_tokens(
    client: TestClient, settings: Settings, tmp_path: Path
) -> None:
    env = env_for(settings)
    email, old, new = "ops@example.com", "old-password-1", "new-password-2"
    created = run_cli(env, tmp_path, "user", "create", email, "--password", old)
    assert created.returncode == 0, created.stderr

    r = client.post(LOGIN, json={"email": email, "password": old})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get(ME, headers=headers).status_code == 200

    changed = run_cli(env, tmp_path, "user", "set-password", email.upper(), "--password", new)
    assert changed.returncode == 0, changed.stderr
    assert email in changed.stdout

    after = client.get(ME, headers=headers)
    assert after.status_code == 401, after.text
    assert after.json()["code"] == "invalid_token"
    assert login(client, email, new) == 200
    assert login(client, email, old) == 401


# SQLite only.


def test_empty_list(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    listed = run_cli(sqlite_env, tmp_path, "user", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip() == "No accounts yet."


def test_duplicate_create_fails(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    first = run_cli(
        sqlite_env, tmp_path, "user", "create", "dup@example.com", "--password", "cli-pass-111111"
    )
    assert first.returncode == 0, first.stderr
    again = run_cli(
        sqlite_env, tmp_path, "user", "create", "DUP@example.com", "--password", "cli-pass-222222"
    )
    assert again.returncode == 2, (again.stdout, again.stderr)
    assert "An account with this email already exists." in again.stderr
    assert "Traceback" not in again.stderr

    listed = run_cli(sqlite_env, tmp_path, "user", "list")
    assert sum("dup@example.com" in line for line in listed.stdout.splitlines()) == 1


def test_too_short_password_fails(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    short = run_cli(
        sqlite_env, tmp_path, "user", "create", "short@example.com", "--password", "abc"
    )
    assert short.returncode == 2, (short.stdout, short.stderr)
    assert "at least 8 characters" in short.stderr
    assert "Traceback" not in short.stderr
    listed = run_cli(sqlite_env, tmp_path, "user", "list")
    assert "short@example.com" not in listed.stdout


def test_minimum_length_follows_settings(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    env = {**sqlite_env, "PASSWORD_MIN_LENGTH": "12"}
    short = run_cli(env, tmp_path, "user", "create", "a@example.com", "--password", "elevenchars")
    assert short.returncode == 2, (short.stdout, short.stderr)
    assert "at least 12 characters" in short.stderr
    ok = run_cli(env, tmp_path, "user", "create", "a@example.com", "--password", "twelve-chars")
    assert ok.returncode == 0, ok.stderr


def test_set_password_rules_and_unknown_user(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    unknown = run_cli(
        sqlite_env,
        tmp_path,
        "user",
        "set-password",
        "ghost@example.com",
        "--password",
        "cli-pass-123456",
    )
    assert unknown.returncode == 2, (unknown.stdout, unknown.stderr)
    assert "No account with the email 'ghost@example.com'" in unknown.stderr

    created = run_cli(
        sqlite_env, tmp_path, "user", "create", "s@example.com", "--password", "cli-pass-123456"
    )
    assert created.returncode == 0, created.stderr
    short = run_cli(
        sqlite_env, tmp_path, "user", "set-password", "s@example.com", "--password", "abc"
    )
    assert short.returncode == 2, (short.stdout, short.stderr)
    assert "at least 8 characters" in short.stderr


def test_invalid_email_fails(sqlite_env: dict[str, str], tmp_path: Path) -> None:
    bad = run_cli(
        sqlite_env, tmp_path, "user", "create", "not-an-email", "--password", "cli-pass-123456"
    )
    assert bad.returncode == 2, (bad.stdout, bad.stderr)
    assert "'not-an-email' is not a valid email address." in bad.stderr
    listed = run_cli(sqlite_env, tmp_path, "user", "list")
    assert listed.stdout.strip() == "No accounts yet."
