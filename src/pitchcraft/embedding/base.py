"""The Embedder port: text to dense vectors, and the sparse (BM25-style) encoder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pitchcraft.vectors.base import SparseVec


class EmbeddingError(RuntimeError):
    """The embedding backend failed; the message says why and never contains a secret."""


class EmbeddingConfigError(EmbeddingError):
    """The embedding settings cannot work; the message names the setting to change."""


class Embedder(Protocol):
    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text, computed in batches."""

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """What embedding each text costs, in the model's tokens (after truncation) or an
        estimate where the model is remote. Callers embedding many texts group texts of
        similar length, since a batch costs as much as its longest text."""

    def embed_query(self, text: str) -> list[float]:
        """A unit-length vector for a search query."""

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several short texts at once, on the query path (never waits behind ingestion)."""


class SparseEncoder(Protocol):
    def encode_document(self, text: str) -> SparseVec: ...

    def encode_query(self, text: str) -> SparseVec: ...
