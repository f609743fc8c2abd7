"""Engine, sessions and the declarative base shared by every model."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_random

from pitchcraft.settings import Settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 10_000


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


@retry(
    retry=retry_if_exception_type(sqlite3.OperationalError),
    stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_MS / 1000),
    wait=wait_random(0.01, 0.1),
    reraise=True,
)
def _switch_to_wal(cur: sqlite3.Cursor) -> None:
    # Switching the journal mode ignores the busy timeout: when two processes open a
    # brand-new file together, one of them gets "database is locked" at once.
    cur.execute("PRAGMA journal_mode=WAL")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cur)
        cur.execute("PRAGMA foreign_keys=ON")
        # FULL: a commit we acknowledged survives power loss, not only a process crash.
        cur.execute("PRAGMA synchronous=FULL")
        # Deleted rows are overwritten with zeros, not left in free pages (a deleted
        # document's name and notes must leave the file; SECURITY.md, "Deletion").
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write transaction waits
        # on busy_timeout instead of failing with "database is locked" half-way.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            pool_pre_ping=False,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


class Database:
    """One engine and its session factory, built from Settings once per process."""

    def __init__(self, settings: Settings) -> None:
        if settings.uses_sqlite and not settings.database_url:
            settings.db_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.url = settings.sqlalchemy_url
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessions() as session, session.begin():
            yield session

    def compact_after_delete(self) -> None:
        """SQLite: copy the WAL into the database and truncate it, so the pages that held
        deleted rows before `secure_delete` zeroed them leave the WAL file too. (PostgreSQL
        reclaims dead rows with its own autovacuum.)"""
        if self.backend != "sqlite":
            return
        raw = self.engine.raw_connection()  # outside any transaction, as a checkpoint must be
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            raw.close()

    def dispose(self) -> None:
        self.engine.dispose()
