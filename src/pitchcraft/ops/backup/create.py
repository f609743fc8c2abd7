"""`pitchcraft backup`: the database snapshot first, then the stored files its rows refer
to, then the vector index, and the manifest last."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pitchcraft import __version__
from pitchcraft.core.files import fsync_dir
from pitchcraft.ops.backup.archive import ArchiveWriter, Vanished, tar_writer
from pitchcraft.ops.backup.databases import (
    expanding,
    plain_engine,
    snapshot_postgres,
    snapshot_sqlite,
)
from pitchcraft.ops.backup.format import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    SECRET_ENTRY,
    STORAGE_PREFIX,
    BackupError,
    BackupReport,
    Doc,
    Snapshot,
)
from pitchcraft.ops.backup.vectors import add_vectors
from pitchcraft.settings import Settings


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
    engine = plain_engine(settings.sqlalchemy_url)
    try:
        with engine.connect() as conn:
            found: set[str] = set()
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                rows = conn.execute(
                    expanding("SELECT id FROM documents WHERE id IN :ids"), {"ids": part}
                )
                found.update(str(r) for r in rows.scalars())
            return found
    finally:
        engine.dispose()


def _add_stored_files(
    settings: Settings, snap: Snapshot, writer: ArchiveWriter
) -> tuple[int, int, list[str], list[str]]:
    """(files, bytes, missing keys, ids of documents deleted since the snapshot)."""
    root = settings.storage_dir.resolve()
    count = total = 0
    absent: list[Doc] = []
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
            snapshot_sqlite(settings, staging)
            if settings.uses_sqlite
            else snapshot_postgres(settings, staging)
        )
        if part is not None:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # holds secrets
            sink: BinaryIO = os.fdopen(fd, "wb")
        else:
            assert stream is not None
            sink = stream
        try:
            with tar_writer(sink, compress=compress, seekable=part is not None) as tar:
                writer = ArchiveWriter(tar)
                writer.add_file(snap.entry, snap.file, kind="database")
                secret = settings.token_secret_file
                if not settings.jwt_secret and secret.is_file():
                    writer.add_file(SECRET_ENTRY, secret, kind="secret")
                files, files_bytes, missing, deleted = _add_stored_files(settings, snap, writer)
                vectors, vectors_line = add_vectors(settings, snap, staging, writer, set(deleted))
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
    except Vanished as exc:
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
