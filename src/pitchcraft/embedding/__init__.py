"""Embedders: dense vectors from a local model or an OpenAI-compatible endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitchcraft.embedding.base import (
    Embedder,
    EmbeddingConfigError,
    EmbeddingError,
    SparseEncoder,
)

if TYPE_CHECKING:
    from pitchcraft.settings import Settings

__all__ = [
    "Embedder",
    "EmbeddingConfigError",
    "EmbeddingError",
    "SparseEncoder",
    "build_embedder",
]


def build_embedder(settings: Settings) -> Embedder:
    """EMBEDDING_BACKEND=local: MiniLM through ONNX Runtime on the CPU (loaded on first
    use, once per process). EMBEDDING_BACKEND=openai: an OpenAI-compatible endpoint at
    EMBEDDING_BASE_URL."""
    if settings.embedding_backend == "openai":
        if not settings.embedding_base_url:
            raise EmbeddingConfigError(
                "EMBEDDING_BACKEND=openai needs EMBEDDING_BASE_URL, the endpoint's base URL "
                "(for example https://api.openai.com/v1)"
            )
        from pitchcraft.embedding.openai import OpenAIEmbedder

        return OpenAIEmbedder(
            base_url=settings.embedding_base_url,
            api_key=settings.embedding_api_key,
            model=settings.embedding_model,
            dim=settings.embedding_dim,
            batch_size=settings.embedding_batch_size,
        )
    from pitchcraft.embedding.local import LocalEmbedder

    embedder = LocalEmbedder(
        settings.embedding_model,
        quantize=settings.embedding_quantize,
        batch_size=settings.embedding_batch_size,
        # The compute threads start at the worker's priority: documents embedded in the
        # background yield the CPU to web requests.
        nice=settings.worker_nice,
        models_dir=settings.data_dir / "models",
    )
    if embedder.dim != settings.embedding_dim:
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL {settings.embedding_model} gives {embedder.dim}-dimensional "
            f"vectors but EMBEDDING_DIM is {settings.embedding_dim}; set EMBEDDING_DIM="
            f"{embedder.dim}"
        )
    return embedder
