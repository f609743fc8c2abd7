"""The database in a backup: a consistent snapshot (SQLite's online backup API, or pg_dump
in the snapshot of a REPEATABLE READ transaction) and loading it into an empty target (the
SQLite file as is; for PostgreSQL the migrations, then each table's rows through COPY)."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any

from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    TextClause,
    bindparam,
    create_engine,
    func,
    inspect,
    select,
    table,
)
from sqlalchemy import text as sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from pitchcraft.ops.backup.archive import Undo, write_member
from pitchcraft.ops.backup.format import (
    ALEMBIC_TABLE,
    COUNTED,
    PG_ENTRY,
    SQLITE_ENTRY,
    BackupError,
    Doc,
    Snapshot,
)
from pitchcraft.settings import SQLITE_FILENAME, Settings


def count(conn: Connection, name: str) -> int:
    return int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())


def _read_snapshot(conn: Connection) -> tuple[str, dict[str, int], list[Doc], list[int]]:
    """Revision, counts, documents and user ids, through raw SQL: the snapshot may be at an
    older revision than this code's models."""
    tables = set(inspect(conn).get_table_names())
    if ALEMBIC_TABLE not in tables or "users" not in tables:
        raise BackupError(
            "The database has no Pitchcraft schema yet (start the server or run `pitchcraft "
            "migrate` first): there is nothing to back up."
        )
    revision = conn.execute(sql("SELECT version_num FROM alembic_version")).scalar()
    counts: dict[str, int] = {name: count(conn, name) for name in COUNTED if name in tables}
    docs = [
        Doc(str(r[0]), int(r[1]), str(r[2] or ""), str(r[3]), int(r[4] or 0))
        for r in conn.execute(
            sql("SELECT id, user_id, storage_key, status, chunks FROM documents ORDER BY id")
        )
    ]
    users = [int(u) for u in conn.execute(sql("SELECT id FROM users ORDER BY id")).scalars()]
    return str(revision), counts, docs, users


def expanding(statement: str) -> TextClause:
    return sql(statement).bindparams(bindparam("ids", expanding=True))


def plain_engine(url: str) -> Engine:
    """An engine without the app's SQLite hooks (which take the write lock on every begin)."""
    return create_engine(url, poolclass=NullPool)


def sqlite_path(settings: Settings) -> Path:
    if settings.database_url:
        database = make_url(settings.database_url).database
        if not database or database == ":memory:":
            raise BackupError("DATABASE_URL points at an in-memory SQLite database.")
        return Path(database).resolve()
    return settings.sqlite_file.resolve()


def snapshot_sqlite(settings: Settings, staging: Path) -> Snapshot:
    source = sqlite_path(settings)
    if not source.is_file():
        raise BackupError(
            f"There is no database at {source}: nothing to back up. "
            "Check DATA_DIR / DB_PATH (or DATABASE_URL)."
        )
    dest = staging / SQLITE_FILENAME
    try:
        # mode=rw: never create an empty database where the real one was expected.
        src = sqlite3.connect(source.as_uri() + "?mode=rw", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                # One step (pages=-1): a single read transaction, consistent while the
                # server keeps writing (WAL mode lets it).
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
                check = dst.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"Could not read the database at {source}: {exc}") from exc
    if check != "ok":
        raise BackupError(f"The database at {source} is damaged (quick_check: {check}).")
    engine = plain_engine(f"sqlite:///{dest}")
    try:
        with engine.connect() as conn:
            revision, counts, docs, users = _read_snapshot(conn)
    finally:
        engine.dispose()
    return Snapshot("sqlite", dest, SQLITE_ENTRY, revision, counts, docs, users)


def _pg_conninfo(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment carrying it (not on argv)."""
    url = make_url(settings.sqlalchemy_url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _tool(name: str, action: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise BackupError(
            f"`{name}` is needed to {action} a PostgreSQL database and is not on PATH. Install "
            "the PostgreSQL client tools of the server's major version or newer (Debian/Ubuntu: "
            "`apt-get install postgresql-client`)."
        )
    return exe


def _pg_pattern(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def snapshot_postgres(settings: Settings, staging: Path) -> Snapshot:
    pg_dump = _tool("pg_dump", "back up")
    dest = staging / "pitchcraft.pgdump"
    uri, env = _pg_conninfo(settings)
    engine = plain_engine(settings.sqlalchemy_url)
    try:
        with engine.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        ) as conn:
            # The snapshot of this transaction is the one pg_dump dumps: the manifest's
            # counts and document list are read in exactly the same state.
            snapshot_id = conn.execute(sql("SELECT pg_export_snapshot()")).scalar_one()
            schema = conn.execute(sql("SELECT current_schema()")).scalar()
            if schema is None:
                raise BackupError(
                    "The database's search_path names no existing schema: nothing to back up."
                )
            server_version = str(conn.execute(sql("SHOW server_version")).scalar())
            revision, counts, docs, users = _read_snapshot(conn)
            result = subprocess.run(
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    "--no-password",
                    f"--schema={_pg_pattern(str(schema))}",
                    f"--snapshot={snapshot_id}",
                    f"--file={dest}",
                    f"--dbname={uri}",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                hint = (
                    f" Use pg_dump {server_version.split('.')[0]} or newer."
                    if "version mismatch" in result.stderr
                    else ""
                )
                raise BackupError(
                    f"pg_dump failed (exit {result.returncode}): "
                    f"{result.stderr.strip()[-2000:]}{hint}"
                )
    except OperationalError as exc:
        raise BackupError(f"Cannot reach the database: {exc.orig}") from exc
    finally:
        engine.dispose()
    return Snapshot(
        "postgresql",
        dest,
        PG_ENTRY,
        revision,
        counts,
        docs,
        users,
        schema=str(schema),
        server_version=server_version,
    )


def restore_sqlite(
    settings: Settings, fh: IO[bytes], entry: dict[str, Any], undo: Undo, touched: set[Path]
) -> None:
    target = sqlite_path(settings)
    # The target holds no data (checked): drop what an empty start may have created.
    for suffix in ("-wal", "-shm", ""):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    write_member(fh, target, entry, undo, touched)
    for suffix in ("-wal", "-shm"):
        undo.files.append(target.with_name(target.name + suffix))


def apply_deletions(conn: Connection, ids: list[str]) -> None:
    """Documents deleted while the backup ran: remove their rows (and ingestion jobs)."""
    for start in range(0, len(ids), 500):
        part = {"ids": ids[start : start + 500]}
        conn.execute(expanding("DELETE FROM jobs WHERE document_id IN :ids"), part)
        conn.execute(expanding("DELETE FROM documents WHERE id IN :ids"), part)


def _drop_known_tables(conn: Connection) -> None:
    from pitchcraft.migrations.schema import Base

    known = set(Base.metadata.tables) | {ALEMBIC_TABLE}
    md = MetaData()
    md.reflect(conn, only=lambda name, _md: name in known)
    md.drop_all(conn)


_COPY_LINE = re.compile(rb"^COPY (.+?) \((.*)\) FROM stdin;\n?$")


def _copy_table(
    pg_restore: str, dump: Path, schema: str, name: str, raw: Any, quoted: str, env: dict[str, str]
) -> None:
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [
                pg_restore,
                "--data-only",
                "--no-owner",
                "--no-privileges",
                f"--schema={schema}",
                f"--table={name}",
                "--file=-",
                str(dump),
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
        assert proc.stdout is not None
        try:
            with raw.cursor() as cur:
                lines = iter(proc.stdout)
                for line in lines:
                    if line.startswith(b"SET client_encoding"):
                        cur.execute(line.decode().strip())
                        continue
                    match = _COPY_LINE.match(line)
                    if match is None:
                        continue
                    columns = match.group(2).decode()
                    with cur.copy(f"COPY {quoted} ({columns}) FROM STDIN") as copy:
                        for data in lines:
                            if data in (b"\\.\n", b"\\."):
                                break
                            copy.write(data)
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip()[-2000:]
            raise BackupError(f"pg_restore failed on table {name} (exit {code}): {detail}")


def _reset_sequences(conn: Connection, md: MetaData) -> None:
    prep = conn.dialect.identifier_preparer
    for tbl in md.sorted_tables:
        for col in tbl.primary_key.columns:
            seq = conn.execute(
                sql("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": prep.quote(tbl.name), "c": col.name},
            ).scalar()
            if seq:
                conn.execute(
                    sql(
                        f"SELECT setval(:s, COALESCE((SELECT MAX({prep.quote(col.name)}) "  # noqa: S608 - quoted identifiers
                        f"FROM {prep.quote(tbl.name)}), 0) + 1, false)"
                    ),
                    {"s": seq},
                )


def restore_postgres(settings: Settings, dump: Path, manifest: dict[str, Any], undo: Undo) -> None:
    import psycopg
    from alembic import command

    from pitchcraft.core import migrate

    pg_restore = _tool("pg_restore", "restore")
    schema = str(manifest["database"].get("schema") or "public")
    revision = str(manifest["alembic_revision"])
    _, env = _pg_conninfo(settings)
    engine = plain_engine(settings.sqlalchemy_url)
    try:
        # One transaction: a failure leaves the target schema exactly as it was.
        with engine.begin() as conn:
            _drop_known_tables(conn)  # empty (checked): e.g. created by a first start
            cfg = migrate.alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            md = MetaData()
            md.reflect(conn)
            raw = conn.connection.driver_connection
            prep = conn.dialect.identifier_preparer
            for tbl in md.sorted_tables:
                if tbl.name == ALEMBIC_TABLE:
                    continue  # set by the migrations above
                _copy_table(pg_restore, dump, schema, tbl.name, raw, prep.quote(tbl.name), env)
            _reset_sequences(conn, md)
            apply_deletions(conn, list(manifest.get("documents_deleted_during_backup") or []))
    except OperationalError as exc:
        raise BackupError(f"Cannot reach the database: {exc.orig}") from exc
    except (SQLAlchemyError, psycopg.Error) as exc:
        raise BackupError(f"Loading the database failed: {exc}") from exc
    finally:
        engine.dispose()

    def drop() -> None:
        e = plain_engine(settings.sqlalchemy_url)
        try:
            with e.begin() as c:
                _drop_known_tables(c)
        finally:
            e.dispose()

    undo.actions.append(drop)
