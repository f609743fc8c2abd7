"""The embedded vector index (Qdrant Edge shards) in a backup: each user's shard directory
copied as files and the copy checked in a child process against the snapshot; at restore,
what was restored (or what a Qdrant server holds) checked against the database, and every
user it does not match re-queued for indexing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pitchcraft.ops.backup.archive import ArchiveWriter, Vanished, copy_tree_sparse
from pitchcraft.ops.backup.format import QDRANT_PREFIX, BackupError, Doc, Snapshot
from pitchcraft.settings import Settings
from pitchcraft.vectors.base import collection_name, user_of_collection

COPY_ATTEMPTS = 3
PROBE_TIMEOUT_S = 600

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
    docs: list[Doc], skip: Collection[str] = frozenset()
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


def add_vectors(
    settings: Settings, snap: Snapshot, staging: Path, writer: ArchiveWriter, deleted: set[str]
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
                copy_tree_sparse(root / collection_name(user), dst)
                copied[user] = dst
            except Vanished:
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


def check_vectors(settings: Settings, db: Any) -> tuple[str, int, list[str]]:
    """Compare the vector index with the restored database; delete and re-queue every user
    whose index does not hold exactly the indexed documents' chunks.
    Returns (summary, documents queued, warnings)."""
    from pitchcraft.auth.models import User
    from pitchcraft.documents.models import Document
    from pitchcraft.documents.reindex import queue_reindex

    with db.session() as s:
        docs = [
            Doc(r.id, r.user_id, r.storage_key, r.status, r.chunks)
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
