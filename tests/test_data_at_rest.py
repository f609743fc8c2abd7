"""Data at rest is private to the account that runs the app (SECURITY.md, "Data at rest"):
folders 0700 and files 0600 from the first start, an older install repaired at start-up,
`pitchcraft doctor` naming what others can read, and the generated token secret kept out
of the database (moved out of an older install's), carried by backups."""

from __future__ import annotations

import logging
import os
import stat
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import text

from pitchcraft.core.db import Database
from pitchcraft.ops.backup import create_backup, restore_backup
from pitchcraft.ops.backup.format import SECRET_ENTRY
from pitchcraft.ops.doctor import run_checks
from pitchcraft.settings import Settings
from tests.conftest import PgSchema, app_on, auth, make_settings, register
from tests.docs_helpers import upload, wait_final

pytestmark = pytest.mark.timeout(600)


def shared(root: Path) -> list[str]:
    """Folders and files under root that another local account could read or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{oct(mode)} {path.relative_to(root)}")
    return found


@pytest.fixture
def loose_umask() -> object:
    """The umask of a typical login (022), as before the app starts; restored after."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_new_install_writes_nothing_others_can_read(
    database: str, tmp_path: Path, loose_umask: object
) -> None:
    data = tmp_path / "data"
    with app_on(database, data) as client:
        token = register(client)
        (doc,) = upload(client, token, ("plan.txt", b"The launch plan: ship the console in May."))
        assert wait_final(client, token, doc["id"])["status"] == "indexed"
        names = {p.name for p in data.rglob("*")}
        if database == "sqlite":
            assert {"pitchcraft.db", "pitchcraft.db-wal", "jwt-secret"} <= names
        else:
            assert "jwt-secret" in names and "pitchcraft.db" not in names
        assert any(p.suffix == ".txt" for p in (data / "storage").rglob("*"))
        assert (data / "qdrant" / "user_1_documents").is_dir()
        assert shared(data) == []


def test_start_up_repairs_an_older_install_and_says_so(
    tmp_path: Path, loose_umask: object, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    with app_on("sqlite", data) as client:
        token = register(client)
        (doc,) = upload(client, token, ("plan.txt", b"The launch plan: ship the console in May."))
        assert wait_final(client, token, doc["id"])["status"] == "indexed"
    # What an older release left: folders 0755, files 0644.
    for path in [data, *data.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert shared(data)

    settings = make_settings(data)
    doctor = {c.name: c for c in run_checks(settings)}
    assert not doctor["permissions"].ok
    assert "pitchcraft.db" in doctor["permissions"].detail

    with caplog.at_level(logging.WARNING), app_on("sqlite", data) as client:
        assert client.get("/api/v1/auth/me", headers=auth(token)).status_code == 200
    assert shared(data) == []
    assert any("made" in r.getMessage() and "private" in r.getMessage() for r in caplog.records)
    assert {c.name: c for c in run_checks(settings)}["permissions"].ok


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_token_secret_leaves_the_database(database: str, tmp_path: Path) -> None:
    """An install that kept the generated secret in the database: at start it moves to its
    own 0600 file, the row goes, and tokens signed before still work."""
    data = tmp_path / "data"
    schema = PgSchema() if database == "postgresql" else None
    if schema:
        schema.create()
    try:
        settings = make_settings(data, schema and schema.url)
        # The app never touches the schema between the two starts below: app_on with a
        # schema of its own would drop it, so the database is reached through `settings`.
        with _app(settings) as client:
            token = register(client)
        secret_file = settings.token_secret_file
        secret = secret_file.read_text().strip()
        assert len(secret) >= 32
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        _db_value(settings, secret)  # as an older release kept it
        secret_file.unlink()

        with _app(settings) as client:
            assert client.get("/api/v1/auth/me", headers=auth(token)).status_code == 200
        assert secret_file.read_text().strip() == secret
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert _db_value(settings) is None
        if database == "sqlite":  # the database file itself no longer holds it
            db_bytes = b"".join(p.read_bytes() for p in (data / "db").glob("pitchcraft.db*"))
            assert secret.encode() not in db_bytes
    finally:
        if schema:
            schema.drop()


def test_backups_carry_the_secret_and_stay_private(tmp_path: Path) -> None:
    source = make_settings(tmp_path / "source")
    with _app(source) as client:
        token = register(client)
    archive = tmp_path / "backup.tar"
    create_backup(source, archive)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    with tarfile.open(archive) as tar:
        member = tar.getmember(SECRET_ENTRY)
        assert member.mode == 0o600
        fh = tar.extractfile(member)
        assert fh is not None
        assert fh.read().decode().strip() == source.token_secret_file.read_text().strip()

    target = make_settings(tmp_path / "target")
    restore_backup(target, archive)
    assert target.token_secret_file.read_text() == source.token_secret_file.read_text()
    assert stat.S_IMODE(target.token_secret_file.stat().st_mode) == 0o600
    with _app(target) as client:  # a token from the old install still signs in
        assert client.get("/api/v1/auth/me", headers=auth(token)).status_code == 200


# -- helpers ---------------------------------------------------------------------------------


def _app(settings: Settings):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from pitchcraft.web.app import create_app

    return TestClient(create_app(settings))


def _db_value(settings: Settings, value: str | None = None) -> str | None:
    """Write (when given) and read the `jwt_secret` row of app_settings."""
    db = Database(settings)
    try:
        with db.engine.begin() as conn:
            if value is not None:
                conn.execute(
                    text("INSERT INTO app_settings (key, value) VALUES ('jwt_secret', :v)"),
                    {"v": value},
                )
            row = conn.execute(
                text("SELECT value FROM app_settings WHERE key = 'jwt_secret'")
            ).first()
            return None if row is None else str(row[0])
    finally:
        db.dispose()
