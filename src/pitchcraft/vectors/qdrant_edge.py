"""The embedded vector index: Qdrant Edge (Qdrant's engine in-process), one shard per user.

The shards themselves (layout, opening once per process, the WAL lock, closing idle ones)
are `EdgeShards` in qdrant_edge_shards.py; this module reads and writes them.

Things about qdrant-edge-py 0.9.0 this module works around:

* `update` appends to the WAL before it returns, so a kill -9 right after a call loses
  nothing: the next open replays the WAL. The WAL is memory-mapped and only fsynced by
  `flush()`, which this module calls after every write (a few ms) so that a power loss
  or kernel crash cannot lose an acknowledged write either (``durable=False`` skips it).
* The bindings hold the GIL while they run. Queries take milliseconds, but `optimize()`
  (building HNSW) takes tens of seconds on large shards and would freeze every thread of
  the web server. Shards from `offload_min_points` points up are therefore optimised in a
  short-lived child process: the shard is closed, the child opens, optimises and closes
  it, and the shard is reopened; operations on that one user wait meanwhile.
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from pitchcraft.vectors.base import (
    DENSE,
    DENSE_MULTI,
    MULTI_DIM,
    SPARSE,
    Hit,
    IndexPoint,
    MissingPoints,
    SparseVec,
    check_sparse,
    dense_values,
    wanted_chunks,
)
from pitchcraft.vectors.fusion import hybrid_search
from pitchcraft.vectors.payload import (
    CHUNK_INDEX,
    DOCUMENT_ID,
    cosine_to,
    hit_from,
    in_chunk_order,
    payload_of,
    point_from,
)
from pitchcraft.vectors.qdrant_edge_shards import EdgeShards
from pitchcraft.vectors.rarity import rarity_of

log = logging.getLogger(__name__)

UPSERT_BATCH = 256

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
        self._durable = durable
        self._offload_min_points = offload_min_points
        self._shards = EdgeShards(
            self.root,
            dim,
            search_threads=search_threads,
            indexing_threads=indexing_threads,
            indexing_threshold_kb=indexing_threshold_kb,
            max_open_shards=max_open_shards,
        )
        self._optimized: set[int] = set()  # users not written to since their last optimize
        # Each user's last write, as a stamp unique in this process (next(_stamps)), and
        # the exact point count that term_rarity read at a stamp: (shard, stamp, points).
        # An exact count takes ~13 ms at 100k points, most of a search; the count only
        # changes by writes, and every write to a shard goes through this instance (the
        # WAL lock keeps other processes out while it is open; a reopened shard is a new
        # object, so a count read before it was closed is not reused).
        self._stamps = itertools.count(1)
        self._written: dict[int, int] = {}
        self._counted: dict[int, tuple[qe.EdgeShard, int, int]] = {}
        self._max_counted = 4 * max(1, max_open_shards)

    # -- the VectorIndex port ------------------------------------------------------------

    def upsert(self, user_id: int, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        converted = [self._point(p) for p in points]
        self._optimized.discard(user_id)
        with self._shards.borrow(user_id, create=True) as shard:
            assert shard is not None
            try:
                for start in range(0, len(converted), UPSERT_BATCH):
                    batch = converted[start : start + UPSERT_BATCH]
                    shard.update(qe.UpdateOperation.upsert_points(batch))
            finally:
                self._wrote(user_id)
            if self._durable:
                shard.flush()

    def delete_document(self, user_id: int, document_id: str) -> None:
        with self._shards.borrow(user_id) as shard:
            if shard is None:
                return
            self._optimized.discard(user_id)
            try:
                shard.update(
                    qe.UpdateOperation.delete_points_by_filter(_document_filter(document_id))
                )
            finally:
                self._wrote(user_id)
            if self._durable:
                shard.flush()

    def delete_user(self, user_id: int) -> None:
        self._optimized.discard(user_id)
        try:
            self._shards.delete(user_id)
        finally:
            self._wrote(user_id)
            self._counted.pop(user_id, None)

    def count(self, user_id: int, document_id: str | None = None) -> int:
        with self._shards.borrow(user_id) as shard:
            if shard is None:
                return 0
            flt = _document_filter(document_id) if document_id is not None else None
            return shard.count(qe.CountRequest(exact=True, filter=flt))

    def count_multi(self, user_id: int, document_id: str | None = None) -> int:
        with self._shards.borrow(user_id) as shard:
            if shard is None:
                return 0
            must: list[Any] = [qe.HasVectorCondition(DENSE_MULTI)]
            if document_id is not None:
                must.append(qe.FieldCondition(key=DOCUMENT_ID, match=qe.MatchValue(document_id)))
            return shard.count(qe.CountRequest(exact=True, filter=qe.Filter(must=must)))

    def set_multi(self, user_id: int, vectors: Sequence[tuple[str, Sequence[float]]]) -> None:
        if not vectors:
            return
        points = [
            qe.PointVectors(point_id, {DENSE_MULTI: dense_values(vector, MULTI_DIM)})
            for point_id, vector in vectors
        ]
        with self._shards.borrow(user_id) as shard:
            if shard is None:
                raise MissingPoints(f"user {user_id} has no vector index")
            self._optimized.discard(user_id)
            try:
                shard.update(qe.UpdateOperation.update_vectors(points))
            except Exception as exc:
                if "No point with id" in str(exc):
                    raise MissingPoints(str(exc)) from exc
                raise
            if self._durable:
                shard.flush()

    def document_ids(self, user_id: int) -> set[str]:
        with self._shards.borrow(user_id) as shard:
            if shard is None:
                return set()
            # A point has one document id, so there are at most as many ids as points.
            points = shard.count(qe.CountRequest(exact=True))
            if points == 0:
                return set()
            facets = shard.facet(qe.FacetRequest(key=DOCUMENT_ID, limit=points, exact=True))
            return {str(hit.value) for hit in facets.hits if hit.count > 0}

    def passages(self, user_id: int, document_id: str, chunk_indexes: Sequence[int]) -> list[Hit]:
        wanted = wanted_chunks(chunk_indexes)
        if not wanted:
            return []
        flt = qe.Filter(
            must=[
                qe.FieldCondition(key=DOCUMENT_ID, match=qe.MatchValue(document_id)),
                qe.FieldCondition(key=CHUNK_INDEX, match=qe.MatchAny(wanted)),
            ]
        )
        with self._shards.borrow(user_id) as shard:
            if shard is None:
                return []
            records, _ = shard.scroll(
                qe.ScrollRequest(limit=len(wanted), filter=flt, with_payload=True)
            )
        return in_chunk_order([hit_from(r.payload or {}, 0.0) for r in records])

    def term_rarity(self, user_id: int, terms: Sequence[int]) -> dict[int, float]:
        wanted = list(dict.fromkeys(int(t) for t in terms))
        if not wanted:
            return {}
        requests = [
            qe.QueryRequest(
                limit=1,
                query=qe.Query.Nearest(qe.SparseVector([t], [1.0]), using=SPARSE),
                with_vector=[SPARSE],
            )
            for t in wanted
        ]
        with self._shards.borrow(user_id) as shard:
            if shard is None:
                return {}
            points = self._points(user_id, shard)
            results = shard.query_batch(qe.QueryBatchRequest(requests))
        best = [(r[0].score, r[0].vector) if r else None for r in results]
        return rarity_of(wanted, points, best)

    def optimize(self, user_id: int) -> None:
        if user_id in self._optimized:
            return  # nothing written since the last time
        with self._shards.borrow(user_id) as shard:
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
        with self._shards.closed(user_id) as path:
            if path is None:
                return  # deleted meanwhile
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

    def purge_deleted(self, user_id: int) -> None:
        """Rebuild the user's shard from its live points: deleted passages otherwise stay
        in the segments' payload pages and in the WAL."""

        def copy(old: qe.EdgeShard, new: qe.EdgeShard) -> None:
            offset: qe.PointId | None = None
            while True:
                records, offset = old.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=UPSERT_BATCH, with_payload=True, with_vector=True
                    )
                )
                if records:
                    points = [self._point(_index_point(r)) for r in records]
                    new.update(qe.UpdateOperation.upsert_points(points))
                if offset is None:
                    break
            new.flush()

        try:
            rewritten = self._shards.rewrite(user_id, copy)
        finally:
            self._wrote(user_id)
        if rewritten:
            self._optimized.discard(user_id)

    # -- reading every point back (`pitchcraft migrate-vectors`) --------------------------

    def user_ids(self) -> list[int]:
        """The users that have a shard under the root, ascending. Opens nothing."""
        return self._shards.user_ids()

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
            with self._shards.borrow(user_id) as shard:
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
        multi: Sequence[float] | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> list[Hit]:
        def run_batch(requests: list[qe.QueryRequest]) -> list[list[Hit]]:
            with self._shards.borrow(user_id) as shard:
                if shard is None:
                    return []
                results = shard.query_batch(qe.QueryBatchRequest(requests))
            # Converted once, not for each of the ~40 candidates (cosine_to's float32).
            query = np.asarray(dense, dtype=np.float32)
            return [
                [hit_from(p.payload or {}, p.score, cosine_to(query, p.vector)) for p in scored]
                for scored in results
            ]

        return hybrid_search(run_batch, self._request, dense, sparse, limit, multi, weights)

    def healthy(self) -> str:
        open_shards = self._shards.open_count()  # raises once closed
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise RuntimeError(f"the vector index directory {self.root} is not writable")
        return f"embedded (Qdrant Edge, {open_shards} shards open)"

    def close(self) -> None:
        self._shards.close()

    # -- the point count term_rarity reads -----------------------------------------------

    def _wrote(self, user_id: int) -> None:
        """Called after every write to the user's shard (also a failed one): a count read
        before it is not reused. A stamp set after the write has landed means a count that
        may have missed it was either never stored or is stored under an older stamp."""
        self._written[user_id] = next(self._stamps)

    def _points(self, user_id: int, shard: qe.EdgeShard) -> int:
        """The shard's exact point count, read once per write."""
        stamp = self._written.get(user_id, 0)
        counted = self._counted.get(user_id)
        if counted is not None and counted[0] is shard and counted[1] == stamp:
            return counted[2]
        points = shard.count(qe.CountRequest(exact=True))
        if self._written.get(user_id, 0) == stamp:  # no write landed meanwhile
            if len(self._counted) >= self._max_counted:
                self._counted.clear()  # users whose shards were closed long ago
            self._counted[user_id] = (shard, stamp, points)
        return points

    # -- conversions ---------------------------------------------------------------------

    def _request(
        self, using: str, vector: Sequence[float] | SparseVec, candidates: int
    ) -> qe.QueryRequest:
        """The query for the `candidates` nearest neighbours of one vector (hybrid_search)."""
        if isinstance(vector, SparseVec):
            # With each BM25 candidate's dense vector: its similarity to the query.
            query = qe.Query.Nearest(_sparse(vector), using=SPARSE)
            return qe.QueryRequest(
                limit=candidates, query=query, with_payload=True, with_vector=[DENSE]
            )
        if using == DENSE_MULTI:
            # Only points that have the vector are candidates; with their MiniLM vector.
            query = qe.Query.Nearest(dense_values(vector, MULTI_DIM), using=DENSE_MULTI)
            return qe.QueryRequest(
                limit=candidates, query=query, with_payload=True, with_vector=[DENSE]
            )
        query = qe.Query.Nearest(dense_values(vector, self.dim), using=DENSE)
        return qe.QueryRequest(limit=candidates, query=query, with_payload=True)

    def _point(self, p: IndexPoint) -> qe.Point:
        check_sparse(p)
        vectors: dict[str, Any] = {
            DENSE: dense_values(p.dense, self.dim),
            SPARSE: _sparse(p.sparse),
        }
        if p.dense_multi is not None:
            vectors[DENSE_MULTI] = dense_values(p.dense_multi, MULTI_DIM)
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
    stored_multi = vectors.get(DENSE_MULTI)
    multi: list[float] | None = None
    if stored_multi is not None:
        if not isinstance(stored_multi, list):
            raise ValueError(f"point {record.id} has a {DENSE_MULTI!r} vector of another shape")
        multi = []
        for x in stored_multi:
            if not isinstance(x, float | int):
                raise ValueError(f"point {record.id} has a {DENSE_MULTI!r} vector of another shape")
            multi.append(float(x))
    payload = record.payload or {}
    point = point_from(payload, id=str(record.id), dense=dense, sparse=sparse, dense_multi=multi)
    if payload_of(point) != payload:
        # Copying it through IndexPoint would change or drop payload fields.
        raise ValueError(
            f"point {record.id} has a payload this version does not write "
            f"(fields {sorted(payload)}); it cannot be copied unchanged"
        )
    return point


def _document_filter(document_id: str) -> qe.Filter:
    return qe.Filter(must=[qe.FieldCondition(key=DOCUMENT_ID, match=qe.MatchValue(document_id))])
