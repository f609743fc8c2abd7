"""The archive's vocabulary: entry names and limits, the error and the reports the operator
sees, and what a database snapshot holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pitchcraft.settings import SQLITE_FILENAME

FORMAT = "pitchcraft-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_ENTRY = f"database/{SQLITE_FILENAME}"
PG_ENTRY = "database/pitchcraft.pgdump"
STORAGE_PREFIX = "storage/"
QDRANT_PREFIX = "qdrant/"
# A generated token secret (JWT_SECRET_FILE): kept out of the database, so carried apart.
SECRET_ENTRY = "secrets/jwt-secret"  # noqa: S105 - an entry name, not a secret
ALEMBIC_TABLE = "alembic_version"
# Tables that may hold something in an otherwise empty target: the generated token secret.
NOT_DATA = {"app_settings", ALEMBIC_TABLE}
COUNTED = ("users", "documents", "jobs", "prompt_templates")
MAX_MANIFEST_BYTES = 256 << 20


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
class Doc:
    id: str
    user_id: int
    storage_key: str
    status: str
    chunks: int


@dataclass
class Snapshot:
    kind: str  # "sqlite" | "postgresql"
    file: Path
    entry: str
    revision: str
    counts: dict[str, int]
    documents: list[Doc]
    users: list[int]
    schema: str | None = None
    server_version: str | None = None
