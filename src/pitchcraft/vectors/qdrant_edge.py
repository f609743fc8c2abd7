"""The embedded vector index: Qdrant Edge (Qdrant's engine in-process), one shard per user.

Layout: ``root / user_{id}_documents`` is one `EdgeShard` (its own WAL, segments and
config), created on the user's first upsert and opened lazily afterwards.

Things about qdrant-edge-py 0.9.0 this module works around:

* Each shard's WAL is locked with an OS file lock. A second *process* opening the same
  shard fails ("Can't init WAL: WouldBlock"), which becomes `VectorStoreLocked`; a second
  open in the *same* process fails the same way, so every shard is opened once per process
  and shared by all threads (a process-wide registry refuses a second `EdgeIndex` on the
  same shard with a clear error instead).
* `update` appends to the WAL before it returns, so a kill -9 right after a call loses
  nothing: the next open replays the WAL. The WAL is memory-mapped and only fsynced by
  `flush()`, which this module calls after every write (a few ms) so that a power loss
  or kernel crash cannot lose an acknowledged write either (``durable=False`` skips it).
* The bindings hold the GIL while they run. Queries take milliseconds, but `optimize()`
  (building HNSW) takes tens of seconds on large shards and would freeze every thread of
  the web server. Shards from `offload_min_points` points up are therefore optimised in a
  short-lived child process: the shard is closed, the child opens, optimises and closes
  it, and the shard is reopened; operations on that one user wait meanwhile.
* Every shard gets its own search thread pool (8 threads by default on 2 cores), so
  `search_threads` defaults to 1, and at most `max_open_shards` idle shards stay open.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from pitchcraft.vectors.base import (
    DENSE,
    SPARSE,
    Hit,
    IndexPoint,
    SparseVec,
    VectorStoreLocked,
    collection_name,
)
from pitchcraft.vectors.fusion import hybrid_search
from pitchcraft.vectors.payload import DOCUMENT_ID, hit_from, payload_of, point_from

log = logging.getLogger(__name__)

CONFIG_FILE = "edge_config.json"
UPSERT_BATCH = 256
# A shard directory under the root: collection_name(user_id).
_SHARD_DIR = re.compile(r"user_(\d+)_documents")

# Run in a child process by `optimize`: open the shard (its persisted config applies),
# optimise, flush and close. Niced, so HNSW building yields the CPU to the web server.
_OPTIMIZE_CHILD = """
import os, sys
try:
    os.nice(10)
except OSError:
    pass
import qdrant_edge
shard = qdrant_edge.EdgeShard.load(sys.argv[1])
try:
    print("optimized" if shard.optimize() else "unchanged")
finally:
    shard.close()
"""

# Shard directories open in this process, whichever EdgeIndex opened them.
_OPEN_PATHS: set[Path] = set()
_OPEN_PATHS_LOCK = threading.Lock()


def _is_lock_error(message: str) -> bool:
    return (
        "WouldBlock" in message or "os error 11" in message or "temporarily unavailable" in message
    )


@dataclass
class _Slot:
    user_id: int
    shard: qe.EdgeShard
    path: Path
    users: int = 0  # operations in flight


class EdgeIndex:
    """VectorIndex on Qdrant Edge. Thread-safe; one instance per process and root."""

    name = "qdrant-edge"

    def __init__(
        self,
        root: Path,
        dim: int,
        *,
        search_threads: int = 1,
        indexing_threads: int = 0,
        max_open_shards: int = 64,
        durable: bool = True,
        offload_min_points: int = 5_000,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self.root = Path(root)
        self.dim = dim
        self._search_threads = search_threads
        self._indexing_threads = indexing_threads
        self._max_open = max(1, max_open_shards)
        self._durable = durable
        self._offload_min_points = offload_min_points
        self._indexing_threshold_kb = indexing_threshold_kb
        self._cond = threading.Condition()
        self._slots: OrderedDict[int, _Slot] = OrderedDict()  # least recently used first
        self._busy: set[int] = set()  # users whose shard is being opened, closed or deleted
        self._optimized: set[int] = set()  # users not written to since their last optimize
        self._closed = False

    # -- configuration -------------------------------------------------------------------

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(
                m=16,
                ef_construct=100,
                full_scan_threshold=10_000,
                max_indexing_threads=self._indexing_threads,
            ),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb),
            max_search_threads=self._search_threads,
            wal_enabled=True,
        )

    def shard_path(self, user_id: int) -> Path:
        return self.root / collection_name(user_id)

    # -- opening and closing shards ------------------------------------------------------

    def _open(self, path: Path, *, create: bool) -> qe.EdgeShard:
        key = path.resolve()
        with _OPEN_PATHS_LOCK:
            if key in _OPEN_PATHS:
                raise RuntimeError(
                    f"the embedded vector index at {path} is already open in this process; "
                    "use one EdgeIndex per QDRANT_PATH and share it between threads"
                )
            _OPEN_PATHS.add(key)
        try:
            exists = (path / CONFIG_FILE).exists()
            try:
                if exists:
                    shard = qe.EdgeShard.load(str(path), self._config())
                elif create:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shard = qe.EdgeShard.create(str(path), self._config())
                else:
                    raise FileNotFoundError(path)
            except Exception as exc:
                message = str(exc)
                if _is_lock_error(message):
                    raise VectorStoreLocked(str(path), message) from exc
                if "incompatible" in message.lower():
                    raise RuntimeError(
                        f"the embedded vector index at {path} was built with other vectors "
                        f"than EMBEDDING_MODEL/EMBEDDING_DIM now give ({self.dim} dimensions): "
                        f"{message}. Re-index the documents (delete that directory first)."
                    ) from exc
                raise
            try:
                if DOCUMENT_ID not in shard.info().payload_schema:
                    shard.update(
                        qe.UpdateOperation.create_field_index(
                            DOCUMENT_ID, qe.PayloadSchemaType.Keyword
                        )
                    )
                    shard.flush()
            except BaseException:
                shard.close()
                raise
            return shard
        except BaseException:
            with _OPEN_PATHS_LOCK:
                _OPEN_PATHS.discard(key)
            raise

    @staticmethod
    def _close_shard(slot: _Slot) -> None:
        try:
            slot.shard.close()  # flushes
        finally:
            with _OPEN_PATHS_LOCK:
                _OPEN_PATHS.discard(slot.path.resolve())

    def _checkout(self, user_id: int, *, create: bool) -> _Slot | None:
        """The user's shard with one more operation in flight, or None when there is none."""
        path = self.shard_path(user_id)
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("the vector index is closed")
                if user_id not in self._busy:
                    break
                self._cond.wait()
            slot = self._slots.get(user_id)
            if slot is not None:
                slot.users += 1
                self._slots.move_to_end(user_id)
                return slot
            if not create and not (path / CONFIG_FILE).exists():
                return None
            self._busy.add(user_id)
        victims: list[_Slot] = []
        try:
            shard = self._open(path, create=create)
        except BaseException:
            with self._cond:
                self._busy.discard(user_id)
                self._cond.notify_all()
            raise
        with self._cond:
            slot = _Slot(user_id=user_id, shard=shard, path=path, users=1)
            self._slots[user_id] = slot
            self._busy.discard(user_id)
            victims = self._evict_idle()
            self._cond.notify_all()
        self._finish_eviction(victims)
        return slot

    def _evict_idle(self) -> list[_Slot]:
        """Take the least recently used idle shards beyond max_open_shards (lock held)."""
        victims: list[_Slot] = []
        excess = len(self._slots) - self._max_open
        for user_id in list(self._slots):
            if excess <= 0:
                break
            slot = self._slots[user_id]
            if slot.users == 0:
                del self._slots[user_id]
                self._busy.add(user_id)
                victims.append(slot)
                excess -= 1
        return victims

    def _finish_eviction(self, victims: list[_Slot]) -> None:
        for slot in victims:
            try:
                self._close_shard(slot)
            except Exception:
                log.warning("closing the idle shard %s failed", slot.path, exc_info=True)
            finally:
                with self._cond:
                    self._busy.discard(slot.user_id)
                    self._cond.notify_all()

    def _checkin(self, slot: _Slot) -> None:
        with self._cond:
            slot.users -= 1
            self._cond.notify_all()

    @contextmanager
    def _shard(self, user_id: int, *, create: bool = False) -> Iterator[qe.EdgeShard | None]:
        slot = self._checkout(user_id, create=create)
        if slot is None:
            yield None
            return
        try:
            yield slot.shard
        finally:
            self._checkin(slot)

    def _take_exclusive(self, user_id: int) -> _Slot | None:
        """Mark the user busy and wait until nothing else uses the shard; the caller must
        call `_release_exclusive`. Returns the open slot (removed from the cache) if any."""
        with self._cond:
            while user_id in self._busy:
                self._cond.wait()
            if self._closed:
                raise RuntimeError("the vector index is closed")
            self._busy.add(user_id)
            slot = self._slots.pop(user_id, None)
            while slot is not None and slot.users > 0:
                self._cond.wait()
            return slot

    def _release_exclusive(self, user_id: int, slot: _Slot | None = None) -> None:
        with self._cond:
            if slot is not None:
                self._slots[user_id] = slot
            self._busy.discard(user_id)
            self._cond.notify_all()

    # -- the VectorIndex port ------------------------------------------------------------

    def upsert(self, user_id: int, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        converted = [self._point(p) for p in points]
        self._optimized.discard(user_id)
        with self._shard(user_id, create=True) as shard:
            assert shard is not None
            for start in range(0, len(converted), UPSERT_BATCH):
                batch = converted[start : start + UPSERT_BATCH]
                shard.update(qe.UpdateOperation.upsert_points(batch))
            if self._durable:
                shard.flush()

    def delete_document(self, user_id: int, document_id: str) -> None:
        with self._shard(user_id) as shard:
            if shard is None:
                return
            self._optimized.discard(user_id)
            shard.update(qe.UpdateOperation.delete_points_by_filter(_document_filter(document_id)))
            if self._durable:
                shard.flush()

    def delete_user(self, user_id: int) -> None:
        slot = self._take_exclusive(user_id)
        self._optimized.discard(user_id)
        try:
            path = self.shard_path(user_id)
            if slot is None and (path / CONFIG_FILE).exists():
                # Not open here: take the WAL lock first, so that files another process
                # has open are never deleted under it (that raises VectorStoreLocked).
                slot = _Slot(user_id, self._open(path, create=False), path)
            if slot is not None:
                self._close_shard(slot)
            if path.exists():
                shutil.rmtree(path)
        finally:
            self._release_exclusive(user_id)

    def count(self, user_id: int, document_id: str | None = None) -> int:
        with self._shard(user_id) as shard:
            if shard is None:
                return 0
            flt = _document_filter(document_id) if document_id is not None else None
            return shard.count(qe.CountRequest(exact=True, filter=flt))

    def document_ids(self, user_id: int) -> set[str]:
        with self._shard(user_id) as shard:
            if shard is None:
                return set()
            # A point has one document id, so there are at most as many ids as points.
            points = shard.count(qe.CountRequest(exact=True))
            if points == 0:
                return set()
            facets = shard.facet(qe.FacetRequest(key=DOCUMENT_ID, limit=points, exact=True))
            return {str(hit.value) for hit in facets.hits if hit.count > 0}

    def optimize(self, user_id: int) -> None:
        if user_id in self._optimized:
            return  # nothing written since the last time
        with self._shard(user_id) as shard:
            if shard is None:
                return
            self._optimized.add(user_id)  # a write from now on discards it again
            points = shard.info().points_count
            if points < self._offload_min_points:
                # Small shards optimise in well under a second (no HNSW below ~6.5k
                # points of 384 dimensions); the GIL is held meanwhile.
                try:
                    shard.optimize()
                    if self._durable:
                        shard.flush()
                except BaseException:
                    self._optimized.discard(user_id)
                    raise
                return
        self._optimize_in_child(user_id)

    def _optimize_in_child(self, user_id: int) -> None:
        slot = self._take_exclusive(user_id)
        reopened: _Slot | None = None
        try:
            if slot is None and not (self.shard_path(user_id) / CONFIG_FILE).exists():
                return  # deleted meanwhile
            path = self.shard_path(user_id)
            if slot is not None:
                self._close_shard(slot)
            started = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-c", _OPTIMIZE_CHILD, str(path)],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            )
            if result.returncode != 0:
                self._optimized.discard(user_id)
                log.warning(
                    "optimising the vector index of user %s failed (exit %s): %s",
                    user_id,
                    result.returncode,
                    result.stderr.strip()[-2000:],
                )
            else:
                log.info(
                    "vector index of user %s %s in %.1fs",
                    user_id,
                    result.stdout.strip(),
                    time.monotonic() - started,
                )
            if slot is not None:
                reopened = _Slot(user_id, self._open(path, create=False), path)
        finally:
            self._release_exclusive(user_id, reopened)

    # -- reading every point back (`pitchcraft migrate-vectors`) --------------------------

    def user_ids(self) -> list[int]:
        """The users that have a shard under the root, ascending. Opens nothing."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _SHARD_DIR.fullmatch(entry.name)
            user_id = int(match[1]) if match else None
            # Exactly the name shard_path gives (not "user_07_…"), with a shard in it.
            if (
                user_id is not None
                and entry == self.shard_path(user_id)
                and (entry / CONFIG_FILE).is_file()
            ):
                found.append(user_id)
        return sorted(found)

    def iter_points(self, user_id: int, batch: int = UPSERT_BATCH) -> Iterator[list[IndexPoint]]:
        """Every point of the user's shard, ids, dense and sparse vectors and payload, in
        pages of at most `batch` (scrolled in point-id order). Nothing when there is no shard.

        The shard is checked out per page, so other operations on the user are not held up
        between pages; a page sees the writes made before it. A caller that needs one
        consistent copy keeps writers away meanwhile (migrate-vectors runs with the server
        stopped). Raises ValueError for a point this version could not write back unchanged.
        """
        if batch < 1:
            raise ValueError("batch must be positive")
        offset: qe.PointId | None = None
        while True:
            with self._shard(user_id) as shard:
                if shard is None:
                    return
                records, offset = shard.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=batch, with_payload=True, with_vector=True
                    )
                )
            if records:
                yield [_index_point(record) for record in records]
            if offset is None:
                return

    def search(
        self,
        user_id: int,
        *,
        dense: Sequence[float],
        sparse: SparseVec,
        limit: int,
    ) -> list[Hit]:
        def run_batch(requests: list[qe.QueryRequest]) -> list[list[Hit]]:
            with self._shard(user_id) as shard:
                if shard is None:
                    return []
                results = shard.query_batch(qe.QueryBatchRequest(requests))
            return [[hit_from(p.payload or {}, p.score) for p in scored] for scored in results]

        return hybrid_search(run_batch, self._request, dense, sparse, limit)

    def healthy(self) -> str:
        with self._cond:
            if self._closed:
                raise RuntimeError("the vector index is closed")
            open_shards = len(self._slots)
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise RuntimeError(f"the vector index directory {self.root} is not writable")
        return f"embedded (Qdrant Edge, {open_shards} shards open)"

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._busy or any(s.users for s in self._slots.values()):
                self._cond.wait(timeout=1.0)
            slots = list(self._slots.values())
            self._slots.clear()
            self._cond.notify_all()
        for slot in slots:
            try:
                self._close_shard(slot)
            except Exception:
                log.warning("closing the shard %s failed", slot.path, exc_info=True)

    # -- conversions ---------------------------------------------------------------------

    def _dense(self, vector: Sequence[float]) -> list[float]:
        if len(vector) != self.dim:
            raise ValueError(
                f"dense vector has {len(vector)} dimensions, the index expects {self.dim} "
                "(EMBEDDING_DIM)"
            )
        return [float(x) for x in vector]

    def _request(self, vector: Sequence[float] | SparseVec, candidates: int) -> qe.QueryRequest:
        """The query for the `candidates` nearest neighbours of one vector (hybrid_search)."""
        if isinstance(vector, SparseVec):
            query = qe.Query.Nearest(_sparse(vector), using=SPARSE)
        else:
            query = qe.Query.Nearest(self._dense(vector), using=DENSE)
        return qe.QueryRequest(limit=candidates, query=query, with_payload=True)

    def _point(self, p: IndexPoint) -> qe.Point:
        if len(p.sparse.indices) != len(p.sparse.values):
            raise ValueError(f"sparse vector of point {p.id} has unequal indices and values")
        vectors: dict[str, Any] = {DENSE: self._dense(p.dense), SPARSE: _sparse(p.sparse)}
        return qe.Point(p.id, vectors, payload_of(p))


def _sparse(vector: SparseVec) -> qe.SparseVector:
    return qe.SparseVector(list(vector.indices), [float(v) for v in vector.values])


def _index_point(record: qe.Record) -> IndexPoint:
    """A stored point as the port's IndexPoint; refuses one that would not round-trip."""
    vectors = record.vector
    if not isinstance(vectors, dict):
        raise ValueError(f"point {record.id} has no named vectors")
    stored_dense = vectors.get(DENSE)
    if not isinstance(stored_dense, list):
        raise ValueError(f"point {record.id} has no {DENSE!r} vector")
    dense: list[float] = []
    for x in stored_dense:
        if not isinstance(x, float | int):  # a multivector: not something this app writes
            raise ValueError(f"point {record.id} has a {DENSE!r} vector of another shape")
        dense.append(float(x))
    stored_sparse = vectors.get(SPARSE)
    if stored_sparse is None:  # an empty sparse vector is not stored at all
        sparse = SparseVec([], [])
    elif isinstance(stored_sparse, qe.SparseVector):
        sparse = SparseVec(list(stored_sparse.indices), [float(v) for v in stored_sparse.values])
    else:
        raise ValueError(f"point {record.id} has a {SPARSE!r} vector that is not sparse")
    payload = record.payload or {}
    point = point_from(payload, id=str(record.id), dense=dense, sparse=sparse)
    if payload_of(point) != payload:
        # Copying it through IndexPoint would change or drop payload fields.
        raise ValueError(
            f"point {record.id} has a payload this version does not write "
            f"(fields {sorted(payload)}); it cannot be copied unchanged"
        )
    return point


def _document_filter(document_id: str) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key=DOCUMENT_ID, match=qe.MatchValue(document_id))])
