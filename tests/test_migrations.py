"""Schema migrations on SQLite and PostgreSQL, and the refusal of a newer schema."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from pitchcraft.container import build
from pitchcraft.core import migrate
from pitchcraft.core.db import Database
from pitchcraft.migrations.schema import Base
from pitchcraft.settings import Settings

TABLES = {"users", "documents", "jobs", "prompt_templates", "app_settings", "alembic_version"}


def test_upgrade_creates_schema_and_is_idempotent(settings: Settings) -> None:
    db = Database(settings)
    before, after = migrate.upgrade(db)
    assert before is None
    assert after == migrate.head_revision()
    assert set(inspect(db.engine).get_table_names()) >= TABLES
    assert migrate.upgrade(db) == (after, after)
    db.dispose()


def test_models_match_migrations(settings: Settings) -> None:
    """No drift: the migrated schema is exactly what the models declare."""
    db = Database(settings)
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    db.dispose()
    assert diff == []


def test_newer_schema_is_refused(settings: Settings) -> None:
    db = Database(settings)
    migrate.upgrade(db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    db.dispose()
    with pytest.raises(migrate.SchemaTooNew, match="9999_from_the_future"):
        build(settings)


def test_serve_refuses_newer_schema_with_clear_message(
    settings: Settings, tmp_path: Path, database_url: str | None
) -> None:
    db = Database(settings)
    migrate.upgrade(db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'abc123newer'"))
    db.dispose()
    env = {**os.environ, "DATA_DIR": str(settings.data_dir), "CONTAINER_MODE": "no"}
    if database_url:
        env["DATABASE_URL"] = database_url
    proc = subprocess.run(
        [sys.executable, "-m", "pitchcraft", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "abc123newer" in proc.stderr
    assert "newer" in proc.stderr


def test_concurrent_starts_migrate_once(settings: Settings) -> None:
    """Replicas starting together: both come up, the schema is migrated exactly once."""
    results: list[object] = []

    def start() -> None:
        try:
            results.append(build(settings))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, Exception) for r in results), results
    db = Database(settings)
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    db.dispose()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    db = Database(settings)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    assert settings.sqlite_file.exists()
    assert settings.sqlite_file.parent == tmp_path / "data" / "db"
    db.dispose()
