"""Hybrid search over a user's documents: dense (MiniLM) and sparse (BM25) fused."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pitchcraft.embedding.base import Embedder, SparseEncoder
from pitchcraft.vectors.base import Hit, VectorIndex


def query_text(query: str, backgrounds: Sequence[str]) -> str:
    extra = [b.strip() for b in backgrounds if b.strip()]
    return " ".join([query.strip(), *extra]) if extra else query.strip()


@dataclass
class Search:
    index: Callable[[], VectorIndex]
    embedder: Callable[[], Embedder]
    sparse: Callable[[], SparseEncoder]

    def search(
        self, user_id: int, query: str, backgrounds: Sequence[str] = (), limit: int = 5
    ) -> list[Hit]:
        text = query_text(query, backgrounds)
        return self.index().search(
            user_id,
            dense=self.embedder().embed_query(text),
            sparse=self.sparse().encode_query(text),
            limit=limit,
        )
