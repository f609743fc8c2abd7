"""The payload stored with each point, shared by both Qdrant adapters: the passage fields
of an `IndexPoint` or a `Hit` (the vectors and the score are stored apart). `rows` is
written only for spreadsheet passages, so other points keep the six fields they had."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from pitchcraft.vectors.base import DENSE, Hit, IndexPoint, SparseVec

DOCUMENT_ID = "document_id"
CHUNK_INDEX = "chunk_index"


class _Passage(TypedDict):
    document_id: str
    filename: str
    page: int | None
    section: str | None
    chunk_index: int
    text: str
    rows: tuple[int, int] | None


def payload_of(point: IndexPoint) -> dict[str, Any]:
    payload: dict[str, Any] = {
        DOCUMENT_ID: point.document_id,
        "filename": point.filename,
        "page": point.page,
        "section": point.section,
        CHUNK_INDEX: point.chunk_index,
        "text": point.text,
    }
    if point.rows is not None:
        payload["rows"] = [point.rows[0], point.rows[1]]
    return payload


def hit_from(payload: dict[str, Any], score: float, similarity: float | None = None) -> Hit:
    return Hit(**_passage(payload), score=float(score), similarity=similarity)


def cosine_to(query: Sequence[float] | NDArray[np.float32], vector: Any) -> float | None:
    """The cosine of a unit-length query and a point's stored dense vector (both Qdrant
    backends store Cosine vectors normalised, so it is their dot product); None when the
    point came without its dense vector."""
    if isinstance(vector, dict):
        vector = vector.get(DENSE)
    if not isinstance(vector, list) or len(vector) != len(query):
        return None
    return float(np.dot(np.asarray(query, dtype=np.float32), np.asarray(vector, dtype=np.float32)))


def in_chunk_order(hits: Sequence[Hit]) -> list[Hit]:
    """Hits by chunk index, each index once (a re-indexed document never has two)."""
    by_index = {h.chunk_index: h for h in hits}
    return [by_index[i] for i in sorted(by_index)]


def point_from(
    payload: dict[str, Any],
    *,
    id: str,
    dense: Sequence[float],
    sparse: SparseVec,
    dense_multi: Sequence[float] | None = None,
) -> IndexPoint:
    return IndexPoint(
        id=id, dense=dense, sparse=sparse, dense_multi=dense_multi, **_passage(payload)
    )


def _passage(payload: dict[str, Any]) -> _Passage:
    page = payload.get("page")
    section = payload.get("section")
    return _Passage(
        document_id=str(payload.get(DOCUMENT_ID, "")),
        filename=str(payload.get("filename", "")),
        page=int(page) if page is not None else None,
        section=str(section) if section is not None else None,
        chunk_index=int(payload.get(CHUNK_INDEX, 0)),
        text=str(payload.get("text", "")),
        rows=_rows(payload.get("rows")),
    )


def _rows(value: Any) -> tuple[int, int] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        try:
            return (int(value[0]), int(value[1]))
        except (TypeError, ValueError):
            return None
    return None
