"""The VectorIndex port: one collection per user, dense + sparse vectors per chunk."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

DENSE = "dense"
SPARSE = "bm25"
# The multilingual (e5) vector: set after indexing, in the background, on the passages of
# documents that have been enriched (documents/enrich.py); absent on the others.
DENSE_MULTI = "dense_multi"
MULTI_DIM = 384


def collection_name(user_id: int) -> str:
    return f"user_{user_id}_documents"


def user_of_collection(name: str) -> int | None:
    """The user whose collection (or shard directory) this is: the inverse of
    collection_name, None for any other name."""
    digits = name.removeprefix("user_").removesuffix("_documents")
    if not (digits.isascii() and digits.isdigit()) or collection_name(int(digits)) != name:
        return None
    return int(digits)


@dataclass(frozen=True)
class SparseVec:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class IndexPoint:
    """One chunk. `id` is a UUID string derived from (document_id, chunk index), so
    re-indexing a document overwrites its points instead of duplicating them."""

    id: str
    dense: Sequence[float]
    sparse: SparseVec
    document_id: str
    filename: str
    page: int | None
    section: str | None
    chunk_index: int
    text: str
    rows: tuple[int, int] | None = None  # a spreadsheet passage's first and last row
    # The e5 vector, when the passage has one (copying points keeps it).
    dense_multi: Sequence[float] | None = None


class MissingPoints(LookupError):
    """A vector was to be set on points the index does not hold (deleted meanwhile)."""


class NoMultiVector(RuntimeError):
    """The user's collection was created without the multilingual vector and cannot get
    it in place (a Qdrant server cannot add a named vector to a collection);
    `pitchcraft reindex` rebuilds it with both vectors."""


def dense_values(vector: Sequence[float], dim: int) -> list[float]:
    """A dense vector as the adapters send it; ValueError unless it has `dim` dimensions."""
    if len(vector) != dim:
        raise ValueError(
            f"dense vector has {len(vector)} dimensions, the index expects {dim} (EMBEDDING_DIM)"
        )
    return [float(x) for x in vector]


def check_sparse(point: IndexPoint) -> None:
    """ValueError when the point's sparse vector has unequal indices and values."""
    if len(point.sparse.indices) != len(point.sparse.values):
        raise ValueError(f"sparse vector of point {point.id} has unequal indices and values")


@dataclass(frozen=True)
class Hit:
    """One search result. `score` is the fused rank score (only comparable within one
    search); `similarity` is the cosine of the query's and the passage's dense vectors, an
    absolute scale (None where the index did not report it)."""

    document_id: str
    filename: str
    page: int | None
    section: str | None
    chunk_index: int
    text: str
    score: float
    similarity: float | None = None
    rows: tuple[int, int] | None = None  # a spreadsheet passage's first and last row
    multi_similarity: float | None = None


MAX_PASSAGES = 256  # chunk indexes one `passages` call may ask for


def wanted_chunks(chunk_indexes: Sequence[int]) -> list[int]:
    """The distinct non-negative chunk indexes asked for (ValueError past MAX_PASSAGES)."""
    wanted = sorted({int(i) for i in chunk_indexes if int(i) >= 0})
    if len(wanted) > MAX_PASSAGES:
        raise ValueError(f"at most {MAX_PASSAGES} passages at a time, not {len(wanted)}")
    return wanted


class IndexClosed(RuntimeError):
    """The index was closed (the process is stopping): the job using it resumes at the next
    start instead of failing."""

    def __init__(self) -> None:
        super().__init__("the vector index is closed")


class VectorStoreLocked(RuntimeError):
    """The embedded index is held by another process (Qdrant Edge locks each shard's WAL).

    Only one process may open an embedded shard. Running several Pitchcraft processes
    (web server plus a separate worker, several replicas) needs a Qdrant server: QDRANT_URL.
    """

    def __init__(self, path: str, detail: str = "") -> None:
        self.path = path
        message = (
            f"another Pitchcraft process owns the embedded vector index at {path}; "
            "only one process can open it. Stop the other process, or run a Qdrant server "
            "and set QDRANT_URL so that several processes can share the index."
        )
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message)


class VectorIndex(Protocol):
    """Implemented by Qdrant Edge (embedded) and by a Qdrant server through qdrant-client."""

    name: str

    def upsert(self, user_id: int, points: Sequence[IndexPoint]) -> None:
        """Create the user's collection when needed, then insert or overwrite points."""

    def delete_document(self, user_id: int, document_id: str) -> None:
        """Remove every point of one document (no error when there are none)."""

    def delete_user(self, user_id: int) -> None:
        """Remove the user's whole collection (no error when there is none)."""

    def count(self, user_id: int, document_id: str | None = None) -> int:
        """Points in the user's collection, or of one document; 0 when there is none."""

    def count_multi(self, user_id: int, document_id: str | None = None) -> int:
        """Like `count`, of the points that have the multilingual vector."""

    def set_multi(self, user_id: int, vectors: Sequence[tuple[str, Sequence[float]]]) -> None:
        """Set the multilingual vector of existing points (id, vector); writing the same
        vector again changes nothing. MissingPoints when a point is not there (its document
        was deleted or re-indexed meanwhile)."""

    def document_ids(self, user_id: int) -> set[str]:
        """Every document id that has points in the user's collection."""

    def passages(self, user_id: int, document_id: str, chunk_indexes: Sequence[int]) -> list[Hit]:
        """The document's passages with these chunk indexes, in chunk order, score 0; an
        index with no passage (out of range, or no collection) is simply left out."""

    def term_rarity(self, user_id: int, terms: Sequence[int]) -> dict[int, float]:
        """How rare each BM25 term is in the user's collection: its IDF as a share of the
        largest possible (1: in no passage; near 0: in nearly every one); {} when the user
        has no collection (vectors/rarity.py)."""

    def optimize(self, user_id: int) -> None:
        """Called once a document is fully indexed: build the ANN index where the backend
        does not do it by itself (Qdrant Edge). No-op when there is nothing to do."""

    def purge_deleted(self, user_id: int) -> None:
        """Make deleted points' payloads (passage text) leave the disk: called a while after
        a batch of deletes (vectors/purge.py). No-op where the backend does it by itself."""

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
        """Hybrid search: dense, sparse and (given `multi`, the query's e5 vector) the
        multilingual candidates fused (weighted reciprocal rank fusion, vectors/fusion.py;
        `weights`: each list's weight by vector name, fusion.WEIGHTS unless given).

        Scores are the fused scores, higher is better; each hit's `similarity` is the
        cosine of `dense` and the passage's dense vector. Empty list when the user has none.
        """

    def healthy(self) -> str:
        """A short description for /health; raises when the backend is unusable."""

    def close(self) -> None:
        """Flush and release files or connections."""
