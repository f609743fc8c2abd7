"""Word rarity in a user's collection (vectors/rarity.py) and the share of the query's
words weighted by it (search/relevance.py)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pitchcraft.embedding.sparse import Bm25Encoder
from pitchcraft.search.relevance import lexical, prefix_partners, query_words
from pitchcraft.vectors.base import IndexPoint, VectorIndex
from pitchcraft.vectors.qdrant_edge import EdgeIndex
from pitchcraft.vectors.rarity import SMOOTHING, rarity_of
from tests.conftest import vector_index

BM25 = Bm25Encoder()
DIM = 4


def test_weighted_share_is_the_old_share_when_every_word_is_rare() -> None:
    groups = query_words("red wine stains on a carpet")
    passage = "A red wine stain on the old map."
    assert lexical(groups, passage) == pytest.approx(3 / 5)  # "stains" ~ "stain"
    assert lexical(groups, passage, {}) == lexical(groups, passage)
    # A common word is weak evidence: it counts for its rarity, above and below the line.
    weighted = lexical(groups, passage, {"red": 0.2})
    assert weighted == pytest.approx((0.2 + 1 + 1) / (0.2 + 3 + 1))


def test_a_word_matched_by_its_start_counts_with_the_passage_word() -> None:
    groups = query_words("colorless ideas")
    passages = ["the colors of the banners"]
    assert prefix_partners(groups, passages) == {"colors"}
    # "colorless" is in no passage (rarity 1), but "colors" is everywhere.
    rarity = {"colorless": 1.0, "ideas": 1.0, "colors": 0.1}
    assert lexical(groups, passages[0], rarity) == pytest.approx(0.1 / 3)


def test_rarity_from_scores_and_smoothing() -> None:
    # A term in no passage, and a term whose top hit scores idf * weight.
    points = 100_000
    idf_common = 0.5  # in ~60% of the passages
    out = rarity_of([1, 2], points, [None, (idf_common * 1.5, {"bm25": _Sparse([2], [1.5])})])
    assert out[1] == 1.0
    assert 0 < out[2] < 0.1
    # In a small collection, a word in half of its passages is still fairly rare.
    small = rarity_of([3], 10, [(0.69 * 1.2, {"bm25": _Sparse([3], [1.2])})])
    assert small[3] > 0.75
    assert SMOOTHING > 0


class _Sparse:
    def __init__(self, indices: list[int], values: list[float]) -> None:
        self.indices, self.values = indices, values


@pytest.fixture(params=["edge", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    with vector_index(request.param, tmp_path, DIM) as made:
        yield made


def test_the_index_reports_term_rarity(index: VectorIndex) -> None:
    texts = ["red wine and dark bread"] + [f"the red door number {i}" for i in range(30)]
    index.upsert(
        3,
        [
            IndexPoint(
                str(uuid.uuid4()), [1.0, 0, 0, 0], BM25.encode_document(t), "d", "f", 1, None, i, t
            )
            for i, t in enumerate(texts)
        ],
    )
    ids = {w: BM25.encode_query(w).indices[0] for w in ("red", "wine", "zebra")}
    rarity = index.term_rarity(3, list(ids.values()))
    assert rarity[ids["wine"]] == pytest.approx(1.0)  # in one passage
    assert rarity[ids["zebra"]] == 1.0  # in none
    assert rarity[ids["red"]] < rarity[ids["wine"]]
    assert index.term_rarity(99, list(ids.values())) == {}  # no collection
    assert index.term_rarity(3, []) == {}


def test_rarity_follows_every_write(index: VectorIndex) -> None:
    """The collection size the rarity is computed with is that after the latest write
    (Qdrant Edge reads it once per write, not once per search)."""
    wine = BM25.encode_query("wine").indices[0]
    wines = [f"red wine number {i}" for i in range(10)] + [f"red door {i}" for i in range(30)]
    index.upsert(3, points("wines", wines))
    assert index.term_rarity(3, [wine])[wine] == pytest.approx(expected(10, 40), abs=1e-4)
    assert index.term_rarity(3, [wine])[wine] == pytest.approx(expected(10, 40), abs=1e-4)
    index.upsert(3, points("houses", [f"the blue house {i}" for i in range(200)]))
    assert index.term_rarity(3, [wine])[wine] == pytest.approx(expected(10, 240), abs=1e-4)
    index.delete_user(3)
    assert index.term_rarity(3, [wine]) == {}
    index.upsert(3, points("wines", wines[:20]))
    assert index.term_rarity(3, [wine])[wine] == pytest.approx(expected(10, 20), abs=1e-4)


def test_rarity_after_a_delete_counts_the_passages_left(tmp_path: Path) -> None:
    """A delete changes the collection size the rarity is computed with, as an upsert
    does. Qdrant Edge's IDF counts deleted passages until an optimisation vacuums them
    (from 1,000 points and a fifth deleted), so the delete is a large one."""
    wine = BM25.encode_query("wine").indices[0]
    index = EdgeIndex(tmp_path / "q", DIM)
    try:
        index.upsert(3, points("wines", [f"red wine {i}" for i in range(10)]))
        index.upsert(3, points("houses", [f"red house {i}" for i in range(1200)]))
        index.optimize(3)
        assert index.term_rarity(3, [wine])[wine] == pytest.approx(expected(10, 1210), abs=1e-4)
        index.delete_document(3, "houses")
        index.optimize(3)
        assert index.term_rarity(3, [wine])[wine] == pytest.approx(expected(10, 10), abs=1e-4)
    finally:
        index.close()


def expected(having: int, total: int) -> float:
    """vectors/rarity.py's formula for a term in `having` of `total` passages."""
    smoothed = total + SMOOTHING + 1
    return math.log(smoothed / (having + 0.5)) / math.log(smoothed / 1.5)


def points(document: str, texts: list[str]) -> list[IndexPoint]:
    return [
        IndexPoint(
            str(uuid.uuid4()),
            [1.0, 0, 0, 0],
            BM25.encode_document(t),
            document,
            "f",
            1,
            None,
            i,
            t,
        )
        for i, t in enumerate(texts)
    ]
