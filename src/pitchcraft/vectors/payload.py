"""The payload stored with each point, shared by both Qdrant adapters."""

from __future__ import annotations

from typing import Any

from pitchcraft.vectors.base import Hit, IndexPoint

DOCUMENT_ID = "document_id"


def payload_of(point: IndexPoint) -> dict[str, Any]:
    return {
        DOCUMENT_ID: point.document_id,
        "filename": point.filename,
        "page": point.page,
        "section": point.section,
        "chunk_index": point.chunk_index,
        "text": point.text,
    }


def hit_from(payload: dict[str, Any], score: float) -> Hit:
    page = payload.get("page")
    section = payload.get("section")
    return Hit(
        document_id=str(payload.get(DOCUMENT_ID, "")),
        filename=str(payload.get("filename", "")),
        page=int(page) if page is not None else None,
        section=str(section) if section is not None else None,
        chunk_index=int(payload.get("chunk_index", 0)),
        text=str(payload.get("text", "")),
        score=float(score),
    )
