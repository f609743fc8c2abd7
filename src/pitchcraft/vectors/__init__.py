"""Vector indexes: Qdrant Edge embedded in the process, or a Qdrant server (QDRANT_URL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pitchcraft.vectors.base import VectorIndex, VectorStoreLocked

if TYPE_CHECKING:
    from pitchcraft.settings import Settings

__all__ = ["VectorIndex", "VectorStoreLocked", "build_index"]


def build_index(settings: Settings) -> VectorIndex:
    """QDRANT_URL set: a Qdrant server shared by every process. Otherwise Qdrant Edge
    under QDRANT_PATH, which only one process may open."""
    if settings.qdrant_url:
        from pitchcraft.vectors.qdrant_server import ServerIndex

        return ServerIndex.from_url(
            settings.qdrant_url, settings.qdrant_api_key, dim=settings.embedding_dim
        )
    from pitchcraft.vectors.qdrant_edge import EdgeIndex

    return EdgeIndex(settings.qdrant_dir, settings.embedding_dim)
