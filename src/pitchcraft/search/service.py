"""Hybrid search over a user's documents: dense (MiniLM) and sparse (BM25) fused, then
only the results above the relevance floor (search/relevance.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pitchcraft.embedding.base import Embedder, SparseEncoder
from pitchcraft.search.relevance import RELEVANCE_FLOOR, above_floor, query_words
from pitchcraft.vectors.base import Hit, VectorIndex


def query_text(query: str, backgrounds: Sequence[str]) -> str:
    extra = [b.strip() for b in backgrounds if b.strip()]
    return " ".join([query.strip(), *extra]) if extra else query.strip()


@dataclass(frozen=True)
class SearchOutcome:
    """The relevant hits, in fused order; `no_match` when none is relevant (or the user has
    nothing searchable); `candidates` counts the hits before the floor."""

    hits: list[Hit]
    no_match: bool
    candidates: int


@dataclass
class Search:
    index: Callable[[], VectorIndex]
    embedder: Callable[[], Embedder]
    sparse: Callable[[], SparseEncoder]
    floor: float = RELEVANCE_FLOOR

    def search(
        self, user_id: int, query: str, backgrounds: Sequence[str] = (), limit: int = 5
    ) -> list[Hit]:
        return self.find(user_id, query, backgrounds, limit).hits

    def find(
        self, user_id: int, query: str, backgrounds: Sequence[str] = (), limit: int = 5
    ) -> SearchOutcome:
        text = query_text(query, backgrounds)
        return self._floored(user_id, query, text, self.embedder().embed_query(text), limit)

    def find_many(
        self, user_id: int, queries: Sequence[str], limit: int = 4
    ) -> list[SearchOutcome]:
        """`find` for each query (no backgrounds), their embeddings computed in one batch."""
        texts = [query_text(q, ()) for q in queries]
        vectors = self.embedder().embed_queries(texts) if texts else []
        return [
            self._floored(user_id, q, t, v, limit)
            for q, t, v in zip(queries, texts, vectors, strict=True)
        ]

    def _floored(
        self, user_id: int, query: str, text: str, dense: Sequence[float], limit: int
    ) -> SearchOutcome:
        hits = self.index().search(
            user_id, dense=dense, sparse=self.sparse().encode_query(text), limit=limit
        )
        # Lexical evidence counts the query's own words: backgrounds name a field
        # ("gaming", "legal"), rarely words of the passage.
        kept = above_floor(query_words(query), hits, self.floor)
        return SearchOutcome(hits=kept, no_match=not kept, candidates=len(hits))
