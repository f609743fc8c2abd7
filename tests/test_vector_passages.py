"""`VectorIndex.passages`: a document's passages by chunk index, on both adapters (Qdrant Edge
on a temporary directory, qdrant-client's in-process mode standing in for a server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pitchcraft.vectors.base import MAX_PASSAGES, VectorIndex
from tests.conftest import vector_index
from tests.test_vector_index import DIM, point, random_vectors


@pytest.fixture(params=["edge", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    with vector_index(request.param, tmp_path, DIM) as made:
        yield made


def fill(index: VectorIndex, user_id: int, document_id: str, n: int, seed: int) -> None:
    vectors = random_vectors(n, seed)
    index.upsert(
        user_id,
        [
            point(document_id, i, v, f"{document_id} passage {i}", page=i + 1)
            for i, v in enumerate(vectors)
        ],
    )


def test_passages_in_chunk_order(index: VectorIndex) -> None:
    fill(index, 1, "doc-a", 12, seed=1)
    fill(index, 1, "doc-b", 12, seed=2)
    hits = index.passages(1, "doc-a", [7, 5, 6, 5, 40, -1])
    assert [h.chunk_index for h in hits] == [5, 6, 7]  # asked out of order, twice, or absent
    assert [h.text for h in hits] == [f"doc-a passage {i}" for i in (5, 6, 7)]
    assert {h.document_id for h in hits} == {"doc-a"}
    assert [h.page for h in hits] == [6, 7, 8]
    assert all(h.score == 0.0 and h.filename == "doc.pdf" for h in hits)
    every = index.passages(1, "doc-b", range(12))
    assert [h.chunk_index for h in every] == list(range(12))


def test_passages_stay_within_the_user_and_document(index: VectorIndex) -> None:
    fill(index, 1, "doc-a", 4, seed=1)
    assert index.passages(2, "doc-a", [0, 1]) == []  # another user: no collection at all
    fill(index, 2, "doc-z", 4, seed=3)
    assert index.passages(2, "doc-a", [0, 1]) == []  # another user's document id
    assert index.passages(1, "doc-missing", [0]) == []
    assert index.passages(1, "doc-a", []) == []
    index.delete_document(1, "doc-a")
    assert index.passages(1, "doc-a", [0, 1]) == []


def test_passages_refuses_an_unbounded_request(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="at most"):
        index.passages(1, "doc-a", range(MAX_PASSAGES + 1))
