"""`pitchcraft restore`: refuse a target that holds data, verify the whole archive, write the
database, files and vectors (undone on failure), migrate to this release, then check the
vectors and re-queue the users they do not match."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Connection, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from pitchcraft.core.files import fsync_dir
from pitchcraft.ops.backup.archive import (
    Undo,
    open_archive,
    safe_name,
    verify_archive,
    write_member,
)
from pitchcraft.ops.backup.databases import (
    apply_deletions,
    count,
    plain_engine,
    restore_postgres,
    restore_sqlite,
    sqlite_path,
)
from pitchcraft.ops.backup.format import (
    COUNTED,
    MANIFEST,
    NOT_DATA,
    PG_ENTRY,
    QDRANT_PREFIX,
    SECRET_ENTRY,
    SQLITE_ENTRY,
    STORAGE_PREFIX,
    BackupError,
    RestoreReport,
)
from pitchcraft.ops.backup.vectors import check_vectors
from pitchcraft.settings import Settings


def _data_tables() -> set[str]:
    from pitchcraft.migrations.schema import Base

    return set(Base.metadata.tables) - NOT_DATA


def _nonempty_tables(conn: Connection) -> dict[str, int]:
    present = _data_tables() & set(inspect(conn).get_table_names())
    order = [t for t in COUNTED if t in present] + sorted(present - set(COUNTED))
    return {t: n for t in order if (n := count(conn, t))}


def _files_in(path: Path, settings: Settings) -> list[Path]:
    if not path.is_dir():
        return []
    secret = settings.token_secret_file.resolve()  # a started, empty install has one
    return [p for p in path.rglob("*") if not p.is_dir() and p.resolve() != secret]


def _check_target_empty(settings: Settings) -> None:
    problems: list[str] = []
    if settings.uses_sqlite:
        db_file = sqlite_path(settings)
        if db_file.exists():
            engine = plain_engine(f"sqlite:///{db_file}")
            try:
                with engine.connect() as conn:
                    rows = _nonempty_tables(conn)
            except SQLAlchemyError as exc:
                raise BackupError(f"Cannot read the existing database {db_file}: {exc}") from exc
            finally:
                engine.dispose()
            if rows:
                problems.append(f"the database {db_file} holds data ({_rows(rows)})")
    else:
        engine = plain_engine(settings.sqlalchemy_url)
        try:
            with engine.connect() as conn:
                rows = _nonempty_tables(conn)
        except OperationalError as exc:
            raise BackupError(f"Cannot reach the database: {exc.orig}") from exc
        finally:
            engine.dispose()
        if rows:
            where = make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)
            problems.append(f"the database {where} holds data ({_rows(rows)})")
    for setting, path in (("STORAGE_PATH", settings.storage_dir),) + (
        () if settings.qdrant_url else (("QDRANT_PATH", settings.qdrant_dir),)
    ):
        files = _files_in(path, settings)
        if files:
            problems.append(f"{setting}={path} is not empty ({len(files)} files)")
    if problems:
        raise BackupError(
            "Refusing to restore: the target data location is not empty, and a restore never "
            "merges into existing data:\n  - "
            + "\n  - ".join(problems)
            + "\nPoint DATA_DIR (or DB_PATH / DATABASE_URL, STORAGE_PATH, QDRANT_PATH) at an "
            "empty location, or move the existing data aside first."
        )


def _rows(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {t}" for t, n in counts.items())


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from pitchcraft.core import migrate

    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    return revision in {r.revision for r in scripts.walk_revisions()}


def _migrate(settings: Settings) -> tuple[str | None, str]:
    from pitchcraft.core import migrate
    from pitchcraft.core.db import Database

    db = Database(settings)
    try:
        return migrate.upgrade(db)
    except SQLAlchemyError as exc:
        raise BackupError(f"Migrating the restored database failed: {exc}") from exc
    finally:
        db.dispose()


def restore_backup(
    settings: Settings, archive: Path | None = None, *, stream: BinaryIO | None = None
) -> RestoreReport:
    """Fill an empty data location from an archive (a file, or a stream that is spooled)."""
    from pitchcraft.core.db import Database
    from pitchcraft.core.persistence import DataNotPersistent, ensure_persistent

    started = time.monotonic()
    if (archive is None) == (stream is None):
        raise ValueError("give exactly one of archive and stream")
    if archive is not None and not archive.is_file():
        raise BackupError(f"There is no archive at {archive}.")
    try:
        ensure_persistent(settings)
    except DataNotPersistent as exc:
        raise BackupError(str(exc)) from exc
    _check_target_empty(settings)

    staging = Path(
        tempfile.mkdtemp(prefix=".pitchcraft-restore-", dir=settings.storage_dir.resolve())
    )
    undo = Undo()
    try:
        if stream is not None:
            archive = staging / "archive.tar"
            with archive.open("wb") as spool:
                shutil.copyfileobj(stream, spool, 1 << 20)
        assert archive is not None
        manifest = verify_archive(archive)
        kind = manifest["database"]["kind"]
        target_kind = "sqlite" if settings.uses_sqlite else "postgresql"
        if kind != target_kind:
            raise BackupError(
                f"The archive holds a {kind} database but the target is {target_kind} "
                "(DATABASE_URL); restore it into the same kind of database."
            )
        revision = str(manifest["alembic_revision"])
        if not _known_revision(revision):
            raise BackupError(
                f"The archive's database is at revision {revision}, which this version of "
                "Pitchcraft does not know: it was made by a newer release. Restore it with that "
                "release."
            )
        entries = {str(e["path"]): e for e in manifest["entries"]}
        deleted = [str(d) for d in manifest.get("documents_deleted_during_backup") or []]
        storage = settings.storage_dir.resolve()
        qdrant = settings.qdrant_dir.resolve()
        files = files_bytes = 0
        touched: set[Path] = set()
        try:
            with open_archive(archive) as tar:
                for member in tar:
                    name = safe_name(member)
                    if member.isdir() or name == MANIFEST:
                        continue
                    entry = entries.get(name)
                    if entry is None:
                        raise BackupError(f"{name} is not in the manifest; nothing was restored.")
                    fh = tar.extractfile(member)
                    assert fh is not None
                    if name == SQLITE_ENTRY:
                        restore_sqlite(settings, fh, entry, undo, touched)
                        if deleted:
                            engine = plain_engine(f"sqlite:///{sqlite_path(settings)}")
                            try:
                                with engine.begin() as conn:
                                    apply_deletions(conn, deleted)
                            finally:
                                engine.dispose()
                    elif name == PG_ENTRY:
                        dump = staging / "pitchcraft.pgdump"
                        write_member(fh, dump, entry, Undo(), set())
                        restore_postgres(settings, dump, manifest, undo)
                        dump.unlink()
                    elif name == SECRET_ENTRY:
                        # The archive's secret signed its tokens and keys; it replaces one a
                        # started, empty target may have generated. JWT_SECRET overrides it.
                        if not settings.jwt_secret:
                            write_member(
                                fh, settings.token_secret_file.resolve(), entry, undo, touched
                            )
                    elif name.startswith(STORAGE_PREFIX):
                        write_member(
                            fh, storage / name[len(STORAGE_PREFIX) :], entry, undo, touched
                        )
                        files += 1
                        files_bytes += int(entry["size"])
                    elif name.startswith(QDRANT_PREFIX) and not settings.qdrant_url:
                        write_member(fh, qdrant / name[len(QDRANT_PREFIX) :], entry, undo, touched)
            for folder in touched:
                fsync_dir(folder)
            # From an older release: bring the schema to this one's (undone on failure too).
            before, after = _migrate(settings)
        except BaseException:
            undo.run()
            raise
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise BackupError(f"Reading the archive failed: {exc}") from exc
    except OSError as exc:
        raise BackupError(f"Restoring failed: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    db = Database(settings)
    try:
        vectors, queued, warnings = check_vectors(settings, db)
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            counts: dict[str, int] = {t: count(conn, t) for t in COUNTED if t in tables}
    finally:
        db.dispose()
    warnings += [
        f"stored file {key} was already missing when the backup was made."
        for key in manifest.get("missing_files") or []
    ]
    return RestoreReport(
        archive=str(archive) if stream is None else "standard input",
        seconds=time.monotonic() - started,
        created_at=str(manifest.get("created_at")),
        app_version=str(manifest.get("app_version")),
        database=kind,
        revision_before=before or revision,
        revision_after=after,
        counts=counts,
        files=files,
        files_bytes=files_bytes,
        vectors=vectors,
        queued=queued,
        warnings=warnings,
    )
