"""`pitchcraft migrate-vectors`: copy the embedded index into a Qdrant server.

A single-machine install keeps its vectors in Qdrant Edge shards under QDRANT_PATH
(``user_{id}_documents``, one per user). Scaling out needs them on a Qdrant server
(QDRANT_URL), in the collections of the same names. This copies every shard's points as they
are: the same point ids, dense and sparse vectors and payloads, so nothing is embedded again
(`pitchcraft reindex` would rebuild the same vectors from the stored files, much more slowly).

- Every shard is opened (which takes its WAL lock) and counted before anything is written:
  a shard held by a running `pitchcraft serve` stops the command with a clear message and
  nothing copied. The server must stay stopped while this runs; otherwise it cannot open the
  shards, and uploads it accepted would not be in the copy.
- Idempotent: points keep their ids, so a second run overwrites what the first one wrote.
  `replace=True` deletes each user's server collection first, which also drops points the
  server has and the embedded shard does not (from an earlier copy of older data).
- Verified per collection: the server must then hold exactly the shard's number of points
  and the same document ids; any difference is reported and makes the run fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pitchcraft.settings import Settings
from pitchcraft.vectors.base import VectorIndex, VectorStoreLocked, collection_name
from pitchcraft.vectors.qdrant_edge import UPSERT_BATCH, EdgeIndex

# Shards open at once while copying: a one-off job has no use for a large cache.
OPEN_SHARDS = 4
# A progress line within a large collection every this many points.
PROGRESS_EVERY = 10_000


class MigrationError(RuntimeError):
    """The copy could not start or stopped half-way; the message says what to do."""


@dataclass(frozen=True)
class CollectionResult:
    user_id: int
    source_points: int
    copied: int
    target_points: int
    missing_documents: frozenset[str] = frozenset()
    extra_documents: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return (
            self.copied == self.source_points == self.target_points
            and not self.missing_documents
            and not self.extra_documents
        )

    def line(self) -> str:
        name = collection_name(self.user_id)
        if self.ok:
            return f"{name}: {self.copied} points copied, {self.target_points} on the server (ok)"
        problems = [
            f"the shard has {self.source_points} points, {self.copied} were copied, "
            f"the server has {self.target_points}"
        ]
        if self.missing_documents:
            problems.append(f"documents missing on the server: {sorted(self.missing_documents)}")
        if self.extra_documents:
            problems.append(
                f"documents only on the server: {sorted(self.extra_documents)} "
                "(left from an earlier copy? --replace deletes them)"
            )
        return f"{name}: MISMATCH: " + "; ".join(problems)


@dataclass
class MigrationReport:
    source: str
    target: str
    collections: list[CollectionResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.collections)

    @property
    def points(self) -> int:
        return sum(c.copied for c in self.collections)

    def summary(self) -> list[str]:
        if not self.collections:
            return [f"No embedded vector shards under {self.source}: nothing to copy."]
        bad = [c for c in self.collections if not c.ok]
        lines = [
            f"Copied {self.points} points in {len(self.collections)} collection(s) "
            f"from {self.source} to {self.target}."
        ]
        if bad:
            lines.append(
                f"{len(bad)} collection(s) do not match: "
                + ", ".join(collection_name(c.user_id) for c in bad)
                + ". Fix the cause and run the command again (copying again is safe)."
            )
        else:
            lines.append("Every collection verified: same point count and document ids.")
        return lines


def migrate_vectors(
    source: EdgeIndex,
    target: VectorIndex,
    *,
    replace: bool = False,
    batch: int = UPSERT_BATCH,
    progress: Callable[[str], None] = lambda _line: None,
    target_name: str = "the Qdrant server",
) -> MigrationReport:
    """Copy every shard of `source` into `target`, verify, and report (see module doc)."""
    report = MigrationReport(source=str(source.root), target=target_name)
    users = source.user_ids()
    if not users:
        return report

    # 1. Open and count every shard before writing anything.
    counts: dict[int, int] = {}
    documents: dict[int, set[str]] = {}
    for user_id in users:
        try:
            counts[user_id] = source.count(user_id)
            documents[user_id] = source.document_ids(user_id)
        except VectorStoreLocked as exc:
            raise MigrationError(_locked(source, user_id, copied=0)) from exc
    total = sum(counts.values())
    progress(f"Found {len(users)} shard(s) with {total} points under {source.root}.")

    # 2. The server answers.
    try:
        target.healthy()
    except Exception as exc:
        raise MigrationError(f"Cannot reach {target_name}: {exc}") from exc

    # 3. Copy and verify, one collection at a time.
    for n, user_id in enumerate(users, start=1):
        copied = 0
        try:
            if replace:
                target.delete_user(user_id)
            for points in source.iter_points(user_id, batch):
                target.upsert(user_id, points)
                before, copied = copied, copied + len(points)
                if copied // PROGRESS_EVERY > before // PROGRESS_EVERY:
                    progress(f"  {collection_name(user_id)}: {copied}/{counts[user_id]} points")
            target_points = target.count(user_id)
            target_documents = target.document_ids(user_id) if target_points else set()
        except VectorStoreLocked as exc:
            raise MigrationError(_locked(source, user_id, copied=n - 1)) from exc
        except ValueError as exc:
            raise MigrationError(
                f"{collection_name(user_id)} cannot be copied: {exc}. Nothing of it was "
                "changed in the embedded index; `pitchcraft reindex` (with QDRANT_URL set) "
                "rebuilds that user's vectors from the stored files instead."
            ) from exc
        except Exception as exc:
            raise MigrationError(
                f"Copying {collection_name(user_id)} failed after {copied} points: {exc}. "
                f"{n - 1} collection(s) were copied before it. Run the command again: points "
                "keep their ids, so copying again overwrites them instead of duplicating."
            ) from exc
        result = CollectionResult(
            user_id=user_id,
            source_points=counts[user_id],
            copied=copied,
            target_points=target_points,
            missing_documents=frozenset(documents[user_id] - target_documents),
            extra_documents=frozenset(target_documents - documents[user_id]),
        )
        report.collections.append(result)
        progress(f"[{n}/{len(users)}] {result.line()}")
    return report


def _locked(source: EdgeIndex, user_id: int, *, copied: int) -> str:
    done = (
        "Nothing was copied."
        if copied == 0
        else f"{copied} collection(s) were copied before; running again copies them again "
        "(same ids, nothing duplicated)."
    )
    return (
        f"The embedded vector index at {source.root} is in use by another process "
        f"({collection_name(user_id)} is locked), most likely a running `pitchcraft serve`. "
        "Stop it first (with Docker Compose: `docker compose stop backend`), then run "
        f"`pitchcraft migrate-vectors` again. {done}"
    )


def migrate_from_settings(
    settings: Settings,
    *,
    replace: bool = False,
    batch: int = UPSERT_BATCH,
    progress: Callable[[str], None] = lambda _line: None,
) -> MigrationReport:
    """QDRANT_PATH's shards into the server at QDRANT_URL (both from Settings)."""
    from pitchcraft.vectors.qdrant_server import ServerIndex

    if not settings.qdrant_url:
        raise MigrationError(
            "Set QDRANT_URL to the Qdrant server to copy into (QDRANT_PATH names the "
            "embedded index to copy from)."
        )
    root = settings.qdrant_dir
    if not root.is_dir():
        raise MigrationError(
            f"QDRANT_PATH={root} does not exist: point it at the embedded index to copy "
            "(in the image, mount the qdrant_storage volume at /app/qdrant)."
        )
    source = EdgeIndex(root, settings.embedding_dim, max_open_shards=OPEN_SHARDS)
    target = ServerIndex.from_url(
        settings.qdrant_url, settings.qdrant_api_key, dim=settings.embedding_dim
    )
    try:
        return migrate_vectors(
            source,
            target,
            replace=replace,
            batch=batch,
            progress=progress,
            target_name=f"the Qdrant server at {settings.qdrant_url}",
        )
    except RuntimeError as exc:
        if isinstance(exc, MigrationError):
            raise
        # Opening a shard built with other vectors than EMBEDDING_MODEL/EMBEDDING_DIM.
        raise MigrationError(str(exc)) from exc
    finally:
        source.close()
        target.close()
