"""Hybrid search over a user's documents: dense (MiniLM), sparse (BM25) and, with
MULTILINGUAL_SEARCH on, multilingual (e5) candidates fused, then only the results above
the relevance floor (search/relevance.py)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pitchcraft.embedding.base import Embedder, EmbeddingError, SparseEncoder
from pitchcraft.embedding.multilingual import MultilingualEmbedder
from pitchcraft.search.relevance import (
    RELEVANCE_FLOOR,
    above_floor,
    e5_at_floor,
    foreign_query,
    prefix_partners,
    query_words,
)
from pitchcraft.vectors.base import Hit, VectorIndex
from pitchcraft.vectors.fusion import FOREIGN_QUERY_WEIGHTS

log = logging.getLogger(__name__)


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
    # The e5 engine, or None (MULTILINGUAL_SEARCH off, or it cannot load): English-only.
    multilingual: Callable[[], MultilingualEmbedder | None] = lambda: None

    def search(
        self, user_id: int, query: str, backgrounds: Sequence[str] = (), limit: int = 5
    ) -> list[Hit]:
        return self.find(user_id, query, backgrounds, limit).hits

    def find(
        self, user_id: int, query: str, backgrounds: Sequence[str] = (), limit: int = 5
    ) -> SearchOutcome:
        text = query_text(query, backgrounds)
        dense = self.embedder().embed_query(text)
        return self._floored(user_id, query, text, dense, limit, self._multi([text])[0])

    def find_many(
        self, user_id: int, queries: Sequence[str], limit: int = 4
    ) -> list[SearchOutcome]:
        """`find` for each query (no backgrounds), their embeddings computed in one batch.

        These are a claim ledger's sentences, checked word by word against what they find, so
        only a sentence in another language than English is searched with e5 as well: an
        English sentence's evidence is in English, which MiniLM and BM25 find, and e5 would
        cost most of the ledger's time (about 35 ms a sentence on two cores)."""
        texts = [query_text(q, ()) for q in queries]
        vectors = self.embedder().embed_queries(texts) if texts else []
        foreign = [i for i, q in enumerate(queries) if foreign_query(q)]
        multi: list[Sequence[float] | None] = [None] * len(texts)
        for i, vector in zip(foreign, self._multi([texts[i] for i in foreign]), strict=True):
            multi[i] = vector
        return [
            self._floored(user_id, q, t, v, limit, m)
            for q, t, v, m in zip(queries, texts, vectors, multi, strict=True)
        ]

    def _multi(self, texts: Sequence[str]) -> Sequence[Sequence[float] | None]:
        """The texts' e5 query vectors, or Nones (English-only search)."""
        engine = self.multilingual() if texts else None
        if engine is not None:
            try:
                return engine.embed_queries(texts)
            except EmbeddingError:
                log.warning("the multilingual model failed; searching without it", exc_info=True)
        return [None] * len(texts)

    def _floored(
        self,
        user_id: int,
        query: str,
        text: str,
        dense: Sequence[float],
        limit: int,
        multi: Sequence[float] | None = None,
    ) -> SearchOutcome:
        index = self.index()
        sparse = self.sparse().encode_query(text)
        if multi is None:
            hits = index.search(user_id, dense=dense, sparse=sparse, limit=limit)
        else:
            # A question in another language leans on e5, the one list across languages.
            weights = FOREIGN_QUERY_WEIGHTS if foreign_query(query) else None
            hits = index.search(
                user_id, dense=dense, sparse=sparse, limit=limit, multi=multi, weights=weights
            )
        # Lexical evidence counts the query's own words: backgrounds name a field
        # ("gaming", "legal"), rarely words of the passage.
        groups = query_words(query)
        # With no floor (-inf) nothing is judged: no need to ask the index.
        judged = hits and self.floor > -math.inf
        rarity = self.rarity(user_id, groups, hits) if judged else {}
        kept = above_floor(groups, hits, self.floor, rarity, e5_at_floor(query))
        return SearchOutcome(hits=kept, no_match=not kept, candidates=len(hits))

    def rarity(
        self, user_id: int, groups: Sequence[list[str]], hits: Sequence[Hit]
    ) -> dict[str, float]:
        """How rare each query word (and each passage word it matches by its start) is in
        the user's collection (vectors/rarity.py): a word in many passages ("red",
        "north" in a novel) is weak evidence that a passage is about the query."""
        words = {w for g in groups for w in g} | prefix_partners(groups, (h.text for h in hits))
        encoder = self.sparse()
        terms = {w: encoder.encode_query(w).indices for w in words}
        found = self.index().term_rarity(user_id, [t for ts in terms.values() for t in ts])
        return {w: min((found.get(t, 1.0) for t in ts), default=1.0) for w, ts in terms.items()}
