"""`pitchcraft backup` and `pitchcraft restore`: one archive holding a consistent copy of a
Pitchcraft data location, taken while the server runs.

The archive is a tar file (gzip-compressed when its name ends in .tar.gz or .tgz):

    database/pitchcraft.db          SQLite: the online backup API's copy (one consistent read)
    database/pitchcraft.pgdump      PostgreSQL: `pg_dump --format=custom` of the app's schema
    storage/{user_id}/{file}        every stored upload the database snapshot refers to
    qdrant/user_{id}_documents/...  the embedded vector index (Qdrant Edge shards), sparse
    manifest.json                   last: versions, counts, and size + sha256 of every entry

Consistency. The database snapshot comes first and is the truth; files are copied after it,
only those its rows refer to (an upload is written before its row, and never changed after, so
every row of the snapshot has its file on disk unless it was deleted since). A file missing
because its document was deleted while the backup ran (a sign-in clears documents by default)
is listed in the manifest, and restore deletes that row too: the result is the state just after
that deletion. A file missing for any other reason is reported.

Vectors are derived data (`pitchcraft reindex` rebuilds them from the database and files),
and the running server owns the embedded shards: another process cannot open them. So backup
copies each user's shard directory as files (skipping the holes of its sparse, preallocated
files), then opens the *copy* in a child process and counts points per document against the
snapshot's `chunks`. A copy that does not match (written to mid-copy) is copied again; one that
never matches is left out. Restore runs the same check against the restored database and
deletes and re-queues (through the ingestion queue, see documents/reindex.py) every user whose
index is missing, damaged or different. With QDRANT_URL the archive holds no vectors (snapshot
the Qdrant server with its own tools); restore checks what the server has and re-queues the rest.

PostgreSQL: pg_dump runs in the snapshot exported by a REPEATABLE READ transaction, in which
the counts and document list of the manifest are read too. Restore creates the schema with the
migrations at the archive's revision, loads each table's rows from the dump (`pg_restore
--data-only`, streamed into COPY), resets the sequences, then migrates to the current head.
This fills any empty schema, whatever its name, which a plain pg_restore (schema-qualified)
cannot; the dump itself stays a standard file an operator can pg_restore by hand.

Restore refuses a target that holds data, verifies every checksum before writing anything,
and undoes what it wrote if it fails half-way: it only ever fills an empty location.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Protocol

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

from pitchcraft import __version__
from pitchcraft.core.files import fsync_dir
from pitchcraft.settings import SQLITE_FILENAME, Settings
from pitchcraft.vectors.base import collection_name, user_of_collection

FORMAT = "pitchcraft-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_ENTRY = f"database/{SQLITE_FILENAME}"
PG_ENTRY = "database/pitchcraft.pgdump"
STORAGE_PREFIX = "storage/"
QDRANT_PREFIX = "qdrant/"
ALEMBIC_TABLE = "alembic_version"
# Tables that may hold something in an otherwise empty target: the generated token secret.
NOT_DATA = {"app_settings", ALEMBIC_TABLE}
COUNTED = ("users", "documents", "jobs", "prompt_templates")

BLOCK = 1 << 16
_ZERO = bytes(BLOCK)
COPY_ATTEMPTS = 3
PROBE_TIMEOUT_S = 600
MAX_MANIFEST_BYTES = 256 << 20

# Opens each shard directory given on stdin (a JSON list) with its own persisted config and
# prints one JSON line per shard: points per document, or the error. Run in a child process:
# a copy taken while the server wrote to it may be damaged, and must not crash the caller.
_PROBE_CHILD = r"""
import json, sys
import qdrant_edge as qe
for path in json.loads(sys.stdin.read()):
    try:
        shard = qe.EdgeShard.load(path)
        try:
            total = shard.count(qe.CountRequest(exact=True))
            docs = {}
            if total:
                facets = shard.facet(qe.FacetRequest(key="document_id", limit=total, exact=True))
                docs = {str(h.value): int(h.count) for h in facets.hits if h.count}
        finally:
            shard.close()
        out = {"path": path, "ok": True, "points": total, "documents": docs}
    except BaseException as exc:
        out = {"path": path, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
"""


class BackupError(RuntimeError):
    """An expected problem, with a message for the operator (no traceback)."""


# -- reports ---------------------------------------------------------------------------------


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _counts_line(counts: dict[str, int]) -> str:
    names = [
        ("users", "user"),
        ("documents", "document"),
        ("jobs", "job"),
        ("prompt_templates", "prompt template"),
    ]
    return ", ".join(
        f"{counts.get(key, 0)} {label}{'' if counts.get(key, 0) == 1 else 's'}"
        for key, label in names
    )


@dataclass
class BackupReport:
    path: Path | None  # None: written to a stream
    size: int
    seconds: float
    database: str
    revision: str
    counts: dict[str, int]
    files: int
    files_bytes: int
    vectors: str
    missing: list[str] = field(default_factory=list)
    deleted: int = 0

    def lines(self) -> list[str]:
        where = str(self.path) if self.path else "standard output"
        out = [
            f"Backup written to {where} ({_size(self.size)}) in {self.seconds:.1f}s.",
            f"  database: {self.database} at revision {self.revision}: {_counts_line(self.counts)}",
            f"  files: {self.files} ({_size(self.files_bytes)})",
            f"  vectors: {self.vectors}",
        ]
        if self.deleted:
            out.append(
                f"  {self.deleted} document(s) deleted while the backup ran are left out "
                "(restore removes their rows)."
            )
        for key in self.missing:
            out.append(f"  WARNING: stored file {key} is missing from STORAGE_PATH.")
        return out


@dataclass
class RestoreReport:
    archive: str
    seconds: float
    created_at: str
    app_version: str
    database: str
    revision_before: str
    revision_after: str
    counts: dict[str, int]
    files: int
    files_bytes: int
    vectors: str
    queued: int
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        revision = (
            self.revision_after
            if self.revision_before == self.revision_after
            else f"{self.revision_before}, migrated to {self.revision_after}"
        )
        out = [
            f"Restored {self.archive} (made {self.created_at} by Pitchcraft "
            f"{self.app_version}) in {self.seconds:.1f}s.",
            f"  database: {self.database} at revision {revision}: {_counts_line(self.counts)}",
            f"  files: {self.files} ({_size(self.files_bytes)})",
            f"  vectors: {self.vectors}",
        ]
        out += [f"  WARNING: {w}" for w in self.warnings]
        if self.queued:
            out.append(
                f"{self.queued} document(s) are queued for re-indexing: start the server "
                "(`pitchcraft serve`), which does it in the background."
            )
        else:
            out.append("Start the server: `pitchcraft serve`.")
        return out


# -- what a database snapshot holds ----------------------------------------------------------


@dataclass(frozen=True)
class _Doc:
    id: str
    user_id: int
    storage_key: str
    status: str
    chunks: int


@dataclass
class _Snapshot:
    kind: str  # "sqlite" | "postgresql"
    file: Path
    entry: str
    revision: str
    counts: dict[str, int]
    documents: list[_Doc]
    users: list[int]
    schema: str | None = None
    server_version: str | None = None


def _count(conn: Connection, name: str) -> int:
    return int(conn.execute(select(func.count()).select_from(table(name))).scalar_one())


def _read_snapshot(conn: Connection) -> tuple[str, dict[str, int], list[_Doc], list[int]]:
    """Revision, counts, documents and user ids, through raw SQL: the snapshot may be at an
    older revision than this code's models."""
    tables = set(inspect(conn).get_table_names())
    if ALEMBIC_TABLE not in tables or "users" not in tables:
        raise BackupError(
            "The database has no Pitchcraft schema yet (start the server or run `pitchcraft "
            "migrate` first): there is nothing to back up."
        )
    revision = conn.execute(sql("SELECT version_num FROM alembic_version")).scalar()
    counts: dict[str, int] = {name: _count(conn, name) for name in COUNTED if name in tables}
    docs = [
        _Doc(str(r[0]), int(r[1]), str(r[2] or ""), str(r[3]), int(r[4] or 0))
        for r in conn.execute(
            sql("SELECT id, user_id, storage_key, status, chunks FROM documents ORDER BY id")
        )
    ]
    users = [int(u) for u in conn.execute(sql("SELECT id FROM users ORDER BY id")).scalars()]
    return str(revision), counts, docs, users


def _expanding(statement: str) -> TextClause:
    return sql(statement).bindparams(bindparam("ids", expanding=True))


def _plain_engine(url: str) -> Engine:
    """An engine without the app's SQLite hooks (which take the write lock on every begin)."""
    return create_engine(url, poolclass=NullPool)


def sqlite_path(settings: Settings) -> Path:
    if settings.database_url:
        database = make_url(settings.database_url).database
        if not database or database == ":memory:":
            raise BackupError("DATABASE_URL points at an in-memory SQLite database.")
        return Path(database).resolve()
    return settings.sqlite_file.resolve()


def _snapshot_sqlite(settings: Settings, staging: Path) -> _Snapshot:
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
    engine = _plain_engine(f"sqlite:///{dest}")
    try:
        with engine.connect() as conn:
            revision, counts, docs, users = _read_snapshot(conn)
    finally:
        engine.dispose()
    return _Snapshot("sqlite", dest, SQLITE_ENTRY, revision, counts, docs, users)


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


def _snapshot_postgres(settings: Settings, staging: Path) -> _Snapshot:
    pg_dump = _tool("pg_dump", "back up")
    dest = staging / "pitchcraft.pgdump"
    uri, env = _pg_conninfo(settings)
    engine = _plain_engine(settings.sqlalchemy_url)
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
    return _Snapshot(
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


# -- sparse files: Qdrant Edge preallocates 32 MB files that hold a few KB ------------------


def _extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """Regions that may hold data: everything but the holes the filesystem reports."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole from here on
                return
            yield pos, size - pos  # the filesystem cannot tell: read everything
            return
        if start >= size:
            return
        try:
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:
            end = size
        if end <= start:
            end = size
        yield start, end - start
        pos = end


def _data_runs(fd: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) of the non-zero blocks of a file, adjacent ones merged."""
    runs: list[tuple[int, int]] = []
    for start, length in _extents(fd, size):
        offset, end = start, start + length
        while offset < end:
            n = min(BLOCK, end - offset)
            data = os.pread(fd, n, offset)
            if not data:
                break
            if data != _ZERO[: len(data)]:
                if runs and runs[-1][0] + runs[-1][1] == offset:
                    runs[-1] = (runs[-1][0], runs[-1][1] + len(data))
                else:
                    runs.append((offset, len(data)))
            offset += len(data)
    return runs


class _Vanished(Exception):
    """A file or directory disappeared while it was being copied."""


def _copy_sparse(src: Path, dst: Path) -> None:
    """Copy one file, leaving holes where the source has zeros."""
    try:
        fd = os.open(src, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise _Vanished(str(src)) from exc
    try:
        size = os.fstat(fd).st_size
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for offset, length in _extents(fd, size):
                pos, end = offset, offset + length
                while pos < end:
                    data = os.pread(fd, min(BLOCK, end - pos), pos)
                    if not data:
                        break
                    if data != _ZERO[: len(data)]:
                        _pwrite_all(out, data, pos)
                    pos += len(data)
            os.ftruncate(out, size)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def _copy_tree_sparse(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise _Vanished(str(src))
    for folder, dirs, files in os.walk(src):
        rel = Path(folder).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            _copy_sparse(Path(folder) / name, dst / rel / name)
        dirs.sort()
    if not src.is_dir():
        raise _Vanished(str(src))


@dataclass
class _ShardProbe:
    ok: bool
    documents: dict[str, int] = field(default_factory=dict)
    error: str = ""

    @property
    def locked(self) -> bool:
        return "WouldBlock" in self.error or "os error 11" in self.error


def probe_shards(paths: list[Path]) -> dict[Path, _ShardProbe]:
    """Open each Qdrant Edge shard in a child process; points per document, or the error."""
    results: dict[Path, _ShardProbe] = {}
    remaining = list(paths)
    while remaining:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _PROBE_CHILD],
                input=json.dumps([str(p) for p in remaining]),
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_S,
                check=False,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
            stdout, detail = proc.stdout, f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout or b""
            stdout = out.decode() if isinstance(out, bytes) else out
            detail = f"no answer within {PROBE_TIMEOUT_S}s"
        by_name = {str(p): p for p in remaining}
        for line in stdout.splitlines():
            try:
                row = json.loads(line)
                path = by_name[row["path"]]
            except (ValueError, KeyError, TypeError):
                continue
            results[path] = _ShardProbe(
                ok=bool(row.get("ok")),
                documents={str(k): int(v) for k, v in (row.get("documents") or {}).items()},
                error=str(row.get("error") or ""),
            )
        remaining = [p for p in remaining if p not in results]
        if remaining:  # the child died on this one: it is damaged; carry on with the rest
            results[remaining[0]] = _ShardProbe(ok=False, error=f"the check crashed ({detail})")
            remaining = remaining[1:]
    return results


def _expected_points(
    docs: list[_Doc], skip: Collection[str] = frozenset()
) -> dict[int, dict[str, int]]:
    expected: dict[int, dict[str, int]] = {}
    for d in docs:
        if d.status == "indexed" and d.id not in skip:
            expected.setdefault(d.user_id, {})[d.id] = d.chunks
    return expected


def _matches(probe: _ShardProbe | None, expected: dict[str, int]) -> bool:
    """Every indexed document has exactly its chunks. Points of documents that are not
    (yet) indexed, or no longer exist, do no harm: ingestion replaces a document's points
    and the server sweeps those of deleted documents at start."""
    if probe is None or not probe.ok:
        return False
    return all(probe.documents.get(doc) == n for doc, n in expected.items())


# -- writing the archive ---------------------------------------------------------------------


class _HashingReader:
    def __init__(self, raw: _Readable) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _RunsReader:
    """The non-zero runs of a file, back to back."""

    def __init__(self, fd: int, runs: list[tuple[int, int]]) -> None:
        self.fd = fd
        self.runs = list(runs)
        self.pos = 0  # within the current run

    def read(self, n: int = -1) -> bytes:
        while self.runs:
            offset, length = self.runs[0]
            if self.pos >= length:
                self.runs.pop(0)
                self.pos = 0
                continue
            want = length - self.pos if n < 0 else min(n, length - self.pos)
            data = os.pread(self.fd, want, offset + self.pos)
            if not data:
                raise _Vanished("file shrank while it was archived")
            self.pos += len(data)
            return data
        return b""


class _ArchiveWriter:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.entries: list[dict[str, Any]] = []
        self.mtime = int(time.time())

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o600, self.mtime
        return info

    def add_open(self, name: str, fh: _Readable, size: int, **extra: Any) -> int:
        reader = _HashingReader(fh)
        self.tar.addfile(self._info(name, size), reader)
        self.entries.append({"path": name, "size": size, "sha256": reader.sha.hexdigest(), **extra})
        return size

    def add_file(self, name: str, path: Path, **extra: Any) -> int:
        with path.open("rb") as fh:
            return self.add_open(name, fh, os.fstat(fh.fileno()).st_size, **extra)

    def add_sparse(self, name: str, path: Path) -> int:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            runs = _data_runs(fd, size)
            stored = sum(length for _, length in runs)
            self.add_open(
                name,
                _RunsReader(fd, runs),
                stored,
                sparse={"size": size, "runs": [list(r) for r in runs]},
            )
            return stored
        finally:
            os.close(fd)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))


def _archive_target(out: Path) -> Path:
    if out.is_dir():
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return out / f"pitchcraft-backup-{stamp}.tar"
    if out.exists() or out.is_symlink():
        raise BackupError(f"{out} already exists; a backup never overwrites a file.")
    if not out.parent.is_dir():
        raise BackupError(f"The directory {out.parent} does not exist.")
    return out


def _live_document_ids(settings: Settings, ids: list[str]) -> set[str]:
    """Which of these documents still exist in the live database."""
    engine = _plain_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            found: set[str] = set()
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                rows = conn.execute(
                    _expanding("SELECT id FROM documents WHERE id IN :ids"), {"ids": part}
                )
                found.update(str(r) for r in rows.scalars())
            return found
    finally:
        engine.dispose()


def _add_stored_files(
    settings: Settings, snap: _Snapshot, writer: _ArchiveWriter
) -> tuple[int, int, list[str], list[str]]:
    """(files, bytes, missing keys, ids of documents deleted since the snapshot)."""
    root = settings.storage_dir.resolve()
    count = total = 0
    absent: list[_Doc] = []
    for doc in snap.documents:
        if not doc.storage_key:
            continue
        path = (root / doc.storage_key).resolve()
        if root not in path.parents:
            absent.append(doc)
            continue
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            absent.append(doc)
            continue
        with fh:
            total += writer.add_open(
                STORAGE_PREFIX + doc.storage_key,
                fh,
                os.fstat(fh.fileno()).st_size,
                document_id=doc.id,
            )
            count += 1
    if not absent:
        return count, total, [], []
    still_there = _live_document_ids(settings, [d.id for d in absent])
    missing = [d.storage_key for d in absent if d.id in still_there]
    deleted = [d.id for d in absent if d.id not in still_there]
    return count, total, missing, deleted


def _add_vectors(
    settings: Settings, snap: _Snapshot, staging: Path, writer: _ArchiveWriter, deleted: set[str]
) -> tuple[dict[str, Any], str]:
    if settings.qdrant_url:
        return (
            {"backend": "qdrant-server", "included": False},
            "not included (QDRANT_URL: snapshot the Qdrant server with its own tools; "
            "restore re-indexes whatever it does not find there)",
        )
    root = settings.qdrant_dir
    expected = _expected_points(snap.documents, deleted)
    todo = [u for u in snap.users if (root / collection_name(u)).is_dir()]
    copies = staging / "qdrant"
    verified: dict[int, int] = {}
    left_out: dict[int, str] = {}
    for attempt in range(1, COPY_ATTEMPTS + 1):
        copied: dict[int, Path] = {}
        for user in todo:
            dst = copies / collection_name(user)
            shutil.rmtree(dst, ignore_errors=True)
            try:
                _copy_tree_sparse(root / collection_name(user), dst)
                copied[user] = dst
            except _Vanished:
                shutil.rmtree(dst, ignore_errors=True)
                if not (root / collection_name(user)).is_dir():
                    left_out[user] = "deleted while the backup ran"
                # else: a segment was replaced mid-copy; try again
        probes = probe_shards(list(copied.values())) if copied else {}
        retry: list[int] = []
        for user in todo:
            if user in left_out:
                continue
            probe = probes.get(copied[user]) if user in copied else None
            if _matches(probe, expected.get(user, {})):
                verified[user] = sum(probe.documents.values()) if probe else 0
            elif attempt < COPY_ATTEMPTS:
                retry.append(user)
            else:
                shutil.rmtree(copies / collection_name(user), ignore_errors=True)
                left_out[user] = (
                    probe.error if probe is not None and not probe.ok else "changed during the copy"
                )
        todo = retry
        if not todo:
            break
        time.sleep(0.5 * attempt)  # let the write in progress finish
    for user in sorted(verified):
        base = copies / collection_name(user)
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            rel = path.relative_to(copies).as_posix()
            writer.add_sparse(QDRANT_PREFIX + rel, path)
    users_without = sorted(u for u in expected if u not in verified)
    summary = f"{len(verified)} user index(es) copied and checked"
    if users_without:
        summary += (
            f"; {len(users_without)} user(s) without a usable copy "
            f"(ids {', '.join(map(str, users_without))}) will be re-indexed at restore"
        )
    manifest = {
        "backend": "qdrant-edge",
        "included": True,
        "users": {str(u): {"points": n} for u, n in sorted(verified.items())},
        "left_out": {str(u): why for u, why in sorted(left_out.items())},
    }
    return manifest, summary


def _tar_writer(sink: BinaryIO, *, compress: bool, seekable: bool) -> tarfile.TarFile:
    if compress:
        return tarfile.open(fileobj=sink, mode="w:gz", compresslevel=6)
    return tarfile.open(fileobj=sink, mode="w" if seekable else "w|")


def create_backup(
    settings: Settings, out: Path | None = None, *, stream: BinaryIO | None = None
) -> BackupReport:
    """Write an archive to `out` (a file, or a directory for a dated name) or to `stream`."""
    started = time.monotonic()
    if (out is None) == (stream is None):
        raise ValueError("give exactly one of out and stream")
    target = _archive_target(out) if out is not None else None
    compress = target is not None and target.name.endswith((".tar.gz", ".tgz"))
    staging = Path(
        tempfile.mkdtemp(
            prefix=".pitchcraft-backup-", dir=target.parent if target is not None else None
        )
    )
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part") if target else None
    try:
        snap = (
            _snapshot_sqlite(settings, staging)
            if settings.uses_sqlite
            else _snapshot_postgres(settings, staging)
        )
        if part is not None:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds secrets
            sink: BinaryIO = os.fdopen(fd, "wb")
        else:
            assert stream is not None
            sink = stream
        try:
            with _tar_writer(sink, compress=compress, seekable=part is not None) as tar:
                writer = _ArchiveWriter(tar)
                writer.add_file(snap.entry, snap.file, kind="database")
                files, files_bytes, missing, deleted = _add_stored_files(settings, snap, writer)
                vectors, vectors_line = _add_vectors(settings, snap, staging, writer, set(deleted))
                manifest = {
                    "format": FORMAT,
                    "format_version": FORMAT_VERSION,
                    "app_version": __version__,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "alembic_revision": snap.revision,
                    "database": {
                        "kind": snap.kind,
                        "entry": snap.entry,
                        "schema": snap.schema,
                        "server_version": snap.server_version,
                    },
                    "counts": snap.counts,
                    "documents_deleted_during_backup": deleted,
                    "missing_files": missing,
                    "vectors": vectors,
                    "entries": writer.entries,
                }
                writer.add_bytes(MANIFEST, json.dumps(manifest, indent=1).encode())
            sink.flush()
            if part is not None:
                os.fsync(sink.fileno())
        finally:
            if part is not None:
                sink.close()
        size = 0
        if part is not None and target is not None:
            size = part.stat().st_size
            os.replace(part, target)
            fsync_dir(target.parent)
        else:
            size = sum(int(e["size"]) for e in writer.entries)
    except _Vanished as exc:
        raise BackupError(f"A file changed while it was archived, try again: {exc}") from exc
    except OSError as exc:
        raise BackupError(f"Could not write the backup: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if part is not None:
            part.unlink(missing_ok=True)
    return BackupReport(
        path=target,
        size=size,
        seconds=time.monotonic() - started,
        database=snap.kind if snap.kind == "sqlite" else f"postgresql (schema {snap.schema})",
        revision=snap.revision,
        counts=snap.counts,
        files=files,
        files_bytes=files_bytes,
        vectors=vectors_line,
        missing=missing,
        deleted=len(deleted),
    )


# -- reading and checking an archive ---------------------------------------------------------


def _safe_name(member: tarfile.TarInfo) -> str:
    name = member.name
    pure = PurePosixPath(name)
    if (
        pure.is_absolute()
        or ".." in pure.parts
        or name != pure.as_posix()
        or not (member.isfile() or member.isdir())
    ):
        raise BackupError(f"The archive holds an unexpected entry {name!r}; refusing it.")
    return name


def _hash_stream(fh: IO[bytes]) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    while chunk := fh.read(1 << 20):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def _open_archive(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path} is not a readable backup archive: {exc}") from exc


def verify_archive(path: Path) -> dict[str, Any]:
    """Read the whole archive and check every entry against the manifest; return it."""
    found: dict[str, tuple[int, str]] = {}
    raw_manifest: bytes | None = None
    try:
        with _open_archive(path) as tar:
            for member in tar:
                name = _safe_name(member)
                if member.isdir():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                if name == MANIFEST:
                    raw_manifest = fh.read(MAX_MANIFEST_BYTES + 1)
                    if len(raw_manifest) > MAX_MANIFEST_BYTES:
                        raise BackupError(f"The manifest of {path} is implausibly large.")
                else:
                    found[name] = _hash_stream(fh)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path} is damaged or incomplete: {exc}") from exc
    if raw_manifest is None:
        raise BackupError(
            f"{path} has no {MANIFEST}: it is incomplete (the backup was interrupted) or not a "
            "Pitchcraft backup."
        )
    try:
        manifest = json.loads(raw_manifest)
        entries = {str(e["path"]): (int(e["size"]), str(e["sha256"])) for e in manifest["entries"]}
        kind = manifest["database"]["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"The manifest of {path} is damaged: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Pitchcraft backup.")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise BackupError(
            f"{path} was written by a newer Pitchcraft (archive format "
            f"{manifest.get('format_version')}); restore it with that release."
        )
    if kind not in ("sqlite", "postgresql"):
        raise BackupError(f"The manifest of {path} names an unknown database kind {kind!r}.")
    for name, (size, digest) in entries.items():
        got = found.get(name)
        if got is None:
            raise BackupError(f"{path} is incomplete: {name} is missing.")
        if got != (size, digest):
            raise BackupError(
                f"{path} is damaged: {name} does not match its checksum in the manifest. "
                "Nothing was restored."
            )
    extra = sorted(set(found) - set(entries))
    if extra:
        raise BackupError(f"{path} holds entries its manifest does not list: {extra[0]}")
    return dict(manifest)


# -- restoring -------------------------------------------------------------------------------


def _data_tables() -> set[str]:
    from pitchcraft.migrations.schema import Base

    return set(Base.metadata.tables) - NOT_DATA


def _nonempty_tables(conn: Connection) -> dict[str, int]:
    present = _data_tables() & set(inspect(conn).get_table_names())
    order = [t for t in COUNTED if t in present] + sorted(present - set(COUNTED))
    return {t: n for t in order if (n := _count(conn, t))}


def _files_in(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    return [p for p in path.rglob("*") if not p.is_dir()]


def _check_target_empty(settings: Settings) -> None:
    problems: list[str] = []
    if settings.uses_sqlite:
        db_file = sqlite_path(settings)
        if db_file.exists():
            engine = _plain_engine(f"sqlite:///{db_file}")
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
        engine = _plain_engine(settings.sqlalchemy_url)
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
        files = _files_in(path)
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


class _Undo:
    """What restore wrote, so that a failure leaves the target as empty as it found it."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.dirs: list[Path] = []
        self.actions: list[Any] = []

    def mkdir(self, path: Path) -> None:
        missing = []
        probe = path
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        path.mkdir(parents=True, exist_ok=True)
        self.dirs.extend(reversed(missing))

    def run(self) -> None:
        for action in reversed(self.actions):
            with contextlib.suppress(Exception):
                action()
        for f in reversed(self.files):
            with contextlib.suppress(OSError):
                f.unlink(missing_ok=True)
        for d in sorted(self.dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def _write_member(
    fh: IO[bytes], dest: Path, entry: dict[str, Any], undo: _Undo, touched: set[Path]
) -> None:
    """Write one entry to dest through a temp name, checking its checksum again."""
    undo.mkdir(dest.parent)
    temp = dest.with_name(f".{dest.name}.restore-{uuid.uuid4().hex[:8]}")
    undo.files.append(temp)
    sha, written = hashlib.sha256(), 0
    sparse = entry.get("sparse")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if sparse:
            for offset, length in sparse["runs"]:
                left = int(length)
                pos = int(offset)
                while left:
                    data = fh.read(min(left, 1 << 20))
                    if not data:
                        raise BackupError(f"{entry['path']} ended early in the archive.")
                    sha.update(data)
                    _pwrite_all(fd, data, pos)
                    pos += len(data)
                    left -= len(data)
                    written += len(data)
            os.ftruncate(fd, int(sparse["size"]))
        else:
            while data := fh.read(1 << 20):
                sha.update(data)
                _pwrite_all(fd, data, written)
                written += len(data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if (written, sha.hexdigest()) != (int(entry["size"]), entry["sha256"]):
        raise BackupError(f"{entry['path']} changed since it was checked; nothing was restored.")
    os.replace(temp, dest)
    undo.files.append(dest)
    touched.add(dest.parent)


def _restore_sqlite(
    settings: Settings, fh: IO[bytes], entry: dict[str, Any], undo: _Undo, touched: set[Path]
) -> None:
    target = sqlite_path(settings)
    # The target holds no data (checked): drop what an empty start may have created.
    for suffix in ("-wal", "-shm", ""):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    _write_member(fh, target, entry, undo, touched)
    for suffix in ("-wal", "-shm"):
        undo.files.append(target.with_name(target.name + suffix))


def _apply_deletions(conn: Connection, ids: list[str]) -> None:
    """Documents deleted while the backup ran: remove their rows (and ingestion jobs)."""
    for start in range(0, len(ids), 500):
        part = {"ids": ids[start : start + 500]}
        conn.execute(_expanding("DELETE FROM jobs WHERE document_id IN :ids"), part)
        conn.execute(_expanding("DELETE FROM documents WHERE id IN :ids"), part)


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


def _restore_postgres(
    settings: Settings, dump: Path, manifest: dict[str, Any], undo: _Undo
) -> None:
    import psycopg
    from alembic import command

    from pitchcraft.core import migrate

    pg_restore = _tool("pg_restore", "restore")
    schema = str(manifest["database"].get("schema") or "public")
    revision = str(manifest["alembic_revision"])
    _, env = _pg_conninfo(settings)
    engine = _plain_engine(settings.sqlalchemy_url)
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
            _apply_deletions(conn, list(manifest.get("documents_deleted_during_backup") or []))
    except OperationalError as exc:
        raise BackupError(f"Cannot reach the database: {exc.orig}") from exc
    except (SQLAlchemyError, psycopg.Error) as exc:
        raise BackupError(f"Loading the database failed: {exc}") from exc
    finally:
        engine.dispose()

    def drop() -> None:
        e = _plain_engine(settings.sqlalchemy_url)
        try:
            with e.begin() as c:
                _drop_known_tables(c)
        finally:
            e.dispose()

    undo.actions.append(drop)


def _known_revision(revision: str) -> bool:
    from alembic.script import ScriptDirectory

    from pitchcraft.core import migrate

    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    return revision in {r.revision for r in scripts.walk_revisions()}


def _check_vectors(settings: Settings, db: Any) -> tuple[str, int, list[str]]:
    """Compare the vector index with the restored database; delete and re-queue every user
    whose index does not hold exactly the indexed documents' chunks.
    Returns (summary, documents queued, warnings)."""
    from pitchcraft.auth.models import User
    from pitchcraft.documents.models import Document
    from pitchcraft.documents.reindex import queue_reindex

    with db.session() as s:
        docs = [
            _Doc(r.id, r.user_id, r.storage_key, r.status, r.chunks)
            for r in s.execute(
                select(
                    Document.id,
                    Document.user_id,
                    Document.storage_key,
                    Document.status,
                    Document.chunks,
                )
            )
        ]
        emails = {int(r.id): str(r.email) for r in s.execute(select(User.id, User.email))}
    expected = _expected_points(docs)
    warnings: list[str] = []
    rebuild: list[int] = []
    ok = 0
    if settings.qdrant_url:
        from pitchcraft.vectors import build_index

        try:
            index = build_index(settings)
            try:
                for user, wanted in sorted(expected.items()):
                    counts = {d: index.count(user, d) for d in wanted}
                    if all(counts[d] == n for d, n in wanted.items()):
                        ok += 1
                        continue
                    index.delete_user(user)
                    rebuild.append(user)
            finally:
                index.close()
        except Exception as exc:  # the server may be down; the data is restored regardless
            warnings.append(
                f"could not check the vectors on QDRANT_URL ({exc}); run `pitchcraft reindex` "
                "once the Qdrant server is reachable."
            )
            return "not checked", 0, warnings
    else:
        root = settings.qdrant_dir
        shards = {
            user_id: p
            for p in (root.iterdir() if root.is_dir() else [])
            if p.is_dir() and (user_id := user_of_collection(p.name)) is not None
        }
        probes = probe_shards(list(shards.values())) if shards else {}
        for user, path in sorted(shards.items()):
            probe = probes.get(path)
            if probe is not None and probe.locked:
                raise BackupError(
                    f"Another process has the vector index at {path} open: stop the server "
                    "while restoring, then run `pitchcraft reindex`."
                )
            if user not in emails:
                shutil.rmtree(path)  # a user the database does not have
            elif _matches(probe, expected.get(user, {})) and _dimension(path) in (
                None,
                settings.embedding_dim,
            ):
                ok += 1
            else:
                shutil.rmtree(path)
                rebuild.append(user)
        rebuild += [u for u in expected if u not in shards]
    queued = 0
    for user in sorted(set(rebuild)):
        if user in emails:
            queued += queue_reindex(db, email=emails[user])
    summary = f"{ok} user index(es) restored and checked"
    if rebuild:
        summary += f"; {len(set(rebuild))} user(s) re-queued for indexing"
    return summary, queued, warnings


def _dimension(shard: Path) -> int | None:
    try:
        config = json.loads((shard / "edge_config.json").read_text())
        return int(config["vectors"]["dense"]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    undo = _Undo()
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
            with _open_archive(archive) as tar:
                for member in tar:
                    name = _safe_name(member)
                    if member.isdir() or name == MANIFEST:
                        continue
                    entry = entries.get(name)
                    if entry is None:
                        raise BackupError(f"{name} is not in the manifest; nothing was restored.")
                    fh = tar.extractfile(member)
                    assert fh is not None
                    if name == SQLITE_ENTRY:
                        _restore_sqlite(settings, fh, entry, undo, touched)
                        if deleted:
                            engine = _plain_engine(f"sqlite:///{sqlite_path(settings)}")
                            try:
                                with engine.begin() as conn:
                                    _apply_deletions(conn, deleted)
                            finally:
                                engine.dispose()
                    elif name == PG_ENTRY:
                        dump = staging / "pitchcraft.pgdump"
                        _write_member(fh, dump, entry, _Undo(), set())
                        _restore_postgres(settings, dump, manifest, undo)
                        dump.unlink()
                    elif name.startswith(STORAGE_PREFIX):
                        _write_member(
                            fh, storage / name[len(STORAGE_PREFIX) :], entry, undo, touched
                        )
                        files += 1
                        files_bytes += int(entry["size"])
                    elif name.startswith(QDRANT_PREFIX) and not settings.qdrant_url:
                        _write_member(fh, qdrant / name[len(QDRANT_PREFIX) :], entry, undo, touched)
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
        vectors, queued, warnings = _check_vectors(settings, db)
        with db.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            counts: dict[str, int] = {t: _count(conn, t) for t in COUNTED if t in tables}
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
