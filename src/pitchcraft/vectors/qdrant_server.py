"""The vector index on a Qdrant server (QDRANT_URL), through qdrant-client.

One collection per user (``user_{id}_documents``) with a named dense vector "dense"
(cosine), the multilingual vector "dense_multi" (e5, cosine, set after indexing on the
passages of enriched documents) and a named sparse vector "bm25" (IDF modifier, so the
server turns the BM25 term weights into BM25 scores), plus a keyword payload index on
document_id.

A collection created before "dense_multi" existed cannot get it: a Qdrant server cannot
add a named vector to a collection. Such a collection is searched without the
multilingual list, `set_multi` raises NoMultiVector (its documents show multilingual
"off"), and `pitchcraft reindex` deletes it so that re-indexing creates it anew with both
vectors (documents/reindex.py).

The tests run this adapter against qdrant-client's in-process mode
(``QdrantClient(":memory:")`` or ``path=``) as a stand-in for a server: it implements the
same API (batched queries, IDF, facets) in Python, but ignores payload indexes and is
not meant for production. Several Pitchcraft processes can share one Qdrant server, which
is the point of this adapter.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from pitchcraft.vectors.base import (
    DENSE,
    DENSE_MULTI,
    MULTI_DIM,
    SPARSE,
    Hit,
    IndexPoint,
    MissingPoints,
    NoMultiVector,
    SparseVec,
    check_sparse,
    collection_name,
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
)
from pitchcraft.vectors.rarity import rarity_of

UPSERT_BATCH = 256


def _missing_collection(exc: Exception) -> bool:
    """Whether a client error means the collection does not exist."""
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 404
    return isinstance(exc, ValueError) and "not found" in str(exc)


def _already_exists(exc: Exception) -> bool:
    if isinstance(exc, UnexpectedResponse):
        return exc.status_code == 409 or "already exists" in str(exc.content)
    return isinstance(exc, ValueError) and "already exists" in str(exc)


class ServerIndex:
    """VectorIndex on a Qdrant server. Thread-safe (qdrant-client is)."""

    name = "qdrant-server"

    def __init__(self, client: QdrantClient, dim: int, *, description: str = "Qdrant") -> None:
        if dim < 1:
            raise ValueError("dim must be positive")
        self.client = client
        self.dim = dim
        self._description = description
        self._known: set[str] = set()  # collections this process has seen or created
        # Collections known to have (True) or lack (False) the multilingual vector.
        self._multi: dict[str, bool] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(
        cls, url: str, api_key: str | None = None, *, dim: int, timeout: int = 30
    ) -> ServerIndex:
        # No version check: it would call the server (and warn) before the first use.
        client = QdrantClient(
            url=url, api_key=api_key or None, timeout=timeout, check_compatibility=False
        )
        return cls(client, dim, description=f"Qdrant server at {url}")

    # -- collections ---------------------------------------------------------------------

    def _ensure_collection(self, name: str) -> None:
        with self._lock:
            if name in self._known:
                return
        if not self.client.collection_exists(name):
            try:
                self.client.create_collection(
                    name,
                    vectors_config={
                        DENSE: models.VectorParams(size=self.dim, distance=models.Distance.COSINE),
                        DENSE_MULTI: models.VectorParams(
                            size=MULTI_DIM, distance=models.Distance.COSINE
                        ),
                    },
                    sparse_vectors_config={
                        SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                    },
                )
            except (UnexpectedResponse, ValueError) as exc:
                if not _already_exists(exc):  # another thread or process was first
                    raise
            with warnings.catch_warnings():
                # The in-process stand-in warns that it ignores payload indexes.
                warnings.filterwarnings("ignore", message="Payload indexes have no effect")
                self.client.create_payload_index(
                    name,
                    DOCUMENT_ID,
                    field_schema=models.PayloadSchemaType.KEYWORD,
                    wait=True,
                )
        else:
            self._check_dimension(name)
        with self._lock:
            self._known.add(name)

    def _check_dimension(self, name: str) -> None:
        info = self.client.get_collection(name)
        vectors = info.config.params.vectors
        size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
        with self._lock:
            self._multi[name] = isinstance(vectors, dict) and DENSE_MULTI in vectors
        if size != self.dim:
            raise RuntimeError(
                f"the Qdrant collection {name} holds {size}-dimensional vectors but "
                f"EMBEDDING_DIM is {self.dim}; re-index the documents after changing the model"
            )

    def _forget(self, name: str) -> None:
        with self._lock:
            self._known.discard(name)
            self._multi.pop(name, None)

    def has_multi(self, user_id: int) -> bool | None:
        """Whether the user's collection has the multilingual vector; None when there is
        no collection."""
        name = collection_name(user_id)
        with self._lock:
            known = self._multi.get(name)
        if known is not None:
            return known
        try:
            info = self.client.get_collection(name)
        except (UnexpectedResponse, ValueError) as exc:
            if _missing_collection(exc):
                return None
            raise
        vectors = info.config.params.vectors
        found = isinstance(vectors, dict) and DENSE_MULTI in vectors
        with self._lock:
            self._multi[name] = found
        return found

    # -- the VectorIndex port ------------------------------------------------------------

    def upsert(self, user_id: int, points: Sequence[IndexPoint]) -> None:
        if not points:
            return
        name = collection_name(user_id)
        structs = [self._point(p) for p in points]
        self._ensure_collection(name)
        if any(p.dense_multi is not None for p in points) and not self.has_multi(user_id):
            # A copy (migrate-vectors) into a collection made before the vector existed.
            structs = [self._point(replace(p, dense_multi=None)) for p in points]
        for start in range(0, len(structs), UPSERT_BATCH):
            batch = structs[start : start + UPSERT_BATCH]
            try:
                self.client.upsert(name, points=batch, wait=True)
            except (UnexpectedResponse, ValueError) as exc:
                if not _missing_collection(exc):
                    raise
                # Deleted by another process since this one cached it: create it again.
                self._forget(name)
                self._ensure_collection(name)
                self.client.upsert(name, points=batch, wait=True)

    def delete_document(self, user_id: int, document_id: str) -> None:
        name = collection_name(user_id)
        try:
            self.client.delete(
                name,
                points_selector=models.FilterSelector(filter=_document_filter(document_id)),
                wait=True,
            )
        except (UnexpectedResponse, ValueError) as exc:
            if not _missing_collection(exc):
                raise

    def delete_user(self, user_id: int) -> None:
        name = collection_name(user_id)
        self._forget(name)
        try:
            self.client.delete_collection(name)
        except (UnexpectedResponse, ValueError) as exc:
            if not _missing_collection(exc):
                raise

    def count(self, user_id: int, document_id: str | None = None) -> int:
        flt = _document_filter(document_id) if document_id is not None else None
        try:
            result = self.client.count(collection_name(user_id), count_filter=flt, exact=True)
        except (UnexpectedResponse, ValueError) as exc:
            if _missing_collection(exc):
                return 0
            raise
        return int(result.count)

    def count_multi(self, user_id: int, document_id: str | None = None) -> int:
        if not self.has_multi(user_id):
            return 0
        must: list[models.Condition] = [models.HasVectorCondition(has_vector=DENSE_MULTI)]
        if document_id is not None:
            must.append(
                models.FieldCondition(key=DOCUMENT_ID, match=models.MatchValue(value=document_id))
            )
        try:
            result = self.client.count(
                collection_name(user_id), count_filter=models.Filter(must=must), exact=True
            )
        except (UnexpectedResponse, ValueError) as exc:
            if _missing_collection(exc):
                return 0
            raise
        return int(result.count)

    def set_multi(self, user_id: int, vectors: Sequence[tuple[str, Sequence[float]]]) -> None:
        if not vectors:
            return
        present = self.has_multi(user_id)
        if present is None:
            raise MissingPoints(f"user {user_id} has no collection")
        if not present:
            raise NoMultiVector(
                f"the Qdrant collection {collection_name(user_id)} was created without the "
                "multilingual vector; run `pitchcraft reindex` to rebuild it with both"
            )
        points = [
            models.PointVectors(id=point_id, vector={DENSE_MULTI: dense_values(v, MULTI_DIM)})
            for point_id, v in vectors
        ]
        try:
            self.client.update_vectors(collection_name(user_id), points=points, wait=True)
        except KeyError as exc:  # the in-process stand-in, for a point it does not hold
            raise MissingPoints(f"no point with id {exc}") from exc
        except (UnexpectedResponse, ValueError) as exc:
            if _missing_collection(exc) or "No point with id" in str(exc):
                raise MissingPoints(str(exc)) from exc
            raise

    def document_ids(self, user_id: int) -> set[str]:
        points = self.count(user_id)
        if points == 0:
            return set()
        try:
            # A point has one document id, so there are at most as many ids as points.
            facets = self.client.facet(
                collection_name(user_id), key=DOCUMENT_ID, limit=points, exact=True
            )
        except (UnexpectedResponse, ValueError) as exc:
            if _missing_collection(exc):
                return set()
            raise
        return {str(hit.value) for hit in facets.hits if hit.count > 0}

    def passages(self, user_id: int, document_id: str, chunk_indexes: Sequence[int]) -> list[Hit]:
        wanted = wanted_chunks(chunk_indexes)
        if not wanted:
            return []
        flt = models.Filter(
            must=[
                models.FieldCondition(key=DOCUMENT_ID, match=models.MatchValue(value=document_id)),
                models.FieldCondition(key=CHUNK_INDEX, match=models.MatchAny(any=wanted)),
            ]
        )
        try:
            records, _ = self.client.scroll(
                collection_name(user_id),
                scroll_filter=flt,
                limit=len(wanted),
                with_payload=True,
                with_vectors=False,
            )
        except (UnexpectedResponse, ValueError) as exc:
            if _missing_collection(exc):
                return []
            raise
        return in_chunk_order([hit_from(r.payload or {}, 0.0) for r in records])

    def term_rarity(self, user_id: int, terms: Sequence[int]) -> dict[int, float]:
        wanted = list(dict.fromkeys(int(t) for t in terms))
        if not wanted:
            return {}
        requests = [
            models.QueryRequest(
                query=models.SparseVector(indices=[t], values=[1.0]),
                using=SPARSE,
                limit=1,
                with_vector=[SPARSE],
            )
            for t in wanted
        ]
        points = self.count(user_id)
        try:
            responses = self.client.query_batch_points(collection_name(user_id), requests=requests)
        except (UnexpectedResponse, ValueError) as exc:
            if _missing_collection(exc):
                return {}
            raise
        best = [(r.points[0].score, r.points[0].vector) if r.points else None for r in responses]
        return rarity_of(wanted, points, best)

    def optimize(self, user_id: int) -> None:
        """Nothing to do: a Qdrant server optimises its collections in the background."""

    def purge_deleted(self, user_id: int) -> None:
        """Nothing to do here: qdrant-client's in-process mode deletes the rows of its
        SQLite file at once, and a Qdrant server rewrites segments with deleted points by
        its own vacuum optimiser (SECURITY.md, "Deletion")."""

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
        if multi is not None and not self.has_multi(user_id):
            multi = None  # a collection from before the vector existed: no such list

        def run_batch(requests: list[models.QueryRequest]) -> list[list[Hit]]:
            try:
                responses = self.client.query_batch_points(
                    collection_name(user_id), requests=requests
                )
            except (UnexpectedResponse, ValueError) as exc:
                if _missing_collection(exc):
                    return []
                raise
            return [
                [hit_from(p.payload or {}, p.score, cosine_to(dense, p.vector)) for p in r.points]
                for r in responses
            ]

        return hybrid_search(run_batch, self._request, dense, sparse, limit, multi, weights)

    def healthy(self) -> str:
        self.client.get_collections()  # raises when the server is unreachable
        return self._description

    def close(self) -> None:
        self.client.close()

    # -- conversions ---------------------------------------------------------------------

    def _request(
        self, using: str, vector: Sequence[float] | SparseVec, candidates: int
    ) -> models.QueryRequest:
        """The query for the `candidates` nearest neighbours of one vector (hybrid_search)."""
        if using == DENSE_MULTI and not isinstance(vector, SparseVec):
            # Only points that have the vector are candidates; with their MiniLM vector.
            return models.QueryRequest(
                query=dense_values(vector, MULTI_DIM),
                using=DENSE_MULTI,
                limit=candidates,
                with_payload=True,
                with_vector=[DENSE],
            )
        if isinstance(vector, SparseVec):
            # With each BM25 candidate's dense vector: its similarity to the query.
            return models.QueryRequest(
                query=_sparse(vector),
                using=SPARSE,
                limit=candidates,
                with_payload=True,
                with_vector=[DENSE],
            )
        query = dense_values(vector, self.dim)
        return models.QueryRequest(query=query, using=DENSE, limit=candidates, with_payload=True)

    def _point(self, p: IndexPoint) -> models.PointStruct:
        check_sparse(p)
        vector: dict[str, list[float] | models.SparseVector] = {
            DENSE: dense_values(p.dense, self.dim),
            SPARSE: _sparse(p.sparse),
        }
        if p.dense_multi is not None:
            vector[DENSE_MULTI] = dense_values(p.dense_multi, MULTI_DIM)
        return models.PointStruct(id=p.id, vector=vector, payload=payload_of(p))


def _sparse(vector: SparseVec) -> models.SparseVector:
    return models.SparseVector(
        indices=list(vector.indices), values=[float(v) for v in vector.values]
    )


def _document_filter(document_id: str) -> models.Filter:
    return models.Filter(
        must=[models.FieldCondition(key=DOCUMENT_ID, match=models.MatchValue(value=document_id))]
    )
