"""Schema migrations: one linear Alembic history for SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from pitchcraft.core.db import Database

# Any fixed number: serialises migrations when several replicas start at once on PostgreSQL.
PG_MIGRATION_LOCK = 7_461_203


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer Pitchcraft than this one."""


class SchemaOutdated(RuntimeError):
    """The database needs `pitchcraft migrate` and automatic migration is off."""


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "pitchcraft:migrations")
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _check_known(conn: Connection) -> None:
    current = current_revision(conn)
    if current is None:
        return
    scripts = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in scripts.walk_revisions()}
    if current not in known:
        raise SchemaTooNew(
            f"The database schema is at revision {current}, which this version of Pitchcraft "
            f"does not know (its newest is {head_revision()}). It was migrated by a newer "
            "release: run that release, or restore a backup taken before the upgrade."
        )


def upgrade(db: Database) -> tuple[str | None, str]:
    """Bring the schema to head; return (revision before, revision after)."""
    cfg = alembic_config()
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        _check_known(conn)
        before = current_revision(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        after = current_revision(conn)
    assert after is not None
    return before, after


def status(db: Database) -> tuple[str | None, str]:
    """(current revision, head revision) without changing anything."""
    with db.engine.connect() as conn:
        _check_known(conn)
        return current_revision(conn), head_revision()
