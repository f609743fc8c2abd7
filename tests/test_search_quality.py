"""What search quality rests on, without the model: the fusion of the two candidate lists
(against qdrant-client's reference implementation of weighted RRF), collapsing copies,
and passages that fit whole into the snippet the API returns."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import replace

import pytest
from qdrant_client import models
from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.types import Block, ParsedDocument
from pitchcraft.search.schemas import SNIPPET_CHARS
from pitchcraft.settings import Settings
from pitchcraft.vectors.base import Hit, SparseVec
from pitchcraft.vectors.fusion import (
    DENSE_WEIGHT,
    NEAR_DUPLICATE_MIN_WORDS,
    RRF_K,
    SPARSE_WEIGHT,
    candidates_for,
    fuse,
    fuse_lists,
    hybrid_search,
    rrf_score,
)


def hit(doc: str, index: int, text: str | None = None, score: float = 0.0) -> Hit:
    return Hit(
        document_id=doc,
        filename=f"{doc}.pdf",
        page=1,
        section=None,
        chunk_index=index,
        text=text if text is not None else f"passage {index} of {doc}",
        score=score,
    )


def _scored(hits: list[Hit]) -> list[models.ScoredPoint]:
    return [
        models.ScoredPoint(id=i, version=0, score=1.0 - n / 100)
        for n, i in enumerate(h.chunk_index for h in hits)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_fusion_ranks_and_scores_like_qdrant_weighted_rrf(seed: int) -> None:
    rng = random.Random(seed)
    pool = [hit("d", i) for i in range(80)]
    dense = rng.sample(pool, 50)
    sparse = rng.sample(pool, rng.randint(0, 50))
    ours = fuse(dense, sparse, 20, near_duplicate=2.0)  # no near-duplicate collapsing
    reference = reciprocal_rank_fusion(
        [_scored(dense), _scored(sparse)],
        limit=20,
        ranking_constant_k=RRF_K,
        weights=[DENSE_WEIGHT, SPARSE_WEIGHT],
    )
    assert [h.score for h in ours] == pytest.approx([p.score for p in reference])
    # Same order up to ties (equal scores may come in either order).
    by_score: dict[float, set[int]] = {}
    for p in reference:
        by_score.setdefault(round(p.score, 12), set()).add(int(p.id))
    for h in ours:
        assert h.chunk_index in by_score[round(h.score, 12)]


def test_fusion_edge_cases() -> None:
    dense = [hit("d", i) for i in range(10)]
    assert fuse(dense, [], 0) == []
    assert fuse([], [], 5) == []
    only_dense = fuse(dense, [], 5)
    assert [h.chunk_index for h in only_dense] == [0, 1, 2, 3, 4]
    assert all(a.score > b.score for a, b in itertools.pairwise(only_dense))
    assert [h.chunk_index for h in fuse([], dense, 3)] == [0, 1, 2]
    assert len(fuse(dense, dense, 50)) == 10
    assert candidates_for(5) >= 4 * 5 and candidates_for(50) >= 4 * 50


def test_hybrid_search_asks_the_adapter_for_both_lists_in_one_batch() -> None:
    """What both adapters share: one request per vector for `candidates_for(limit)`
    candidates, sent in one batch; the dense list alone for a query without BM25 terms;
    nothing at all for a limit below 1 or a user without a collection."""
    batches: list[list[tuple[str, int]]] = []
    dense_hits = [hit("d", i, score=0.9 - i / 10) for i in range(5)]
    sparse_hits = [hit("s", i) for i in range(5)]
    # A dense candidate's score is its cosine: fused, it is the hit's similarity.
    with_similarity = [replace(h, similarity=h.score) for h in dense_hits]

    def request(
        using: str, vector: Sequence[float] | SparseVec, candidates: int
    ) -> tuple[str, int]:
        assert isinstance(vector, SparseVec) == (using == "bm25")
        return ("sparse" if using == "bm25" else using, candidates)

    def run_batch(requests: list[tuple[str, int]]) -> list[list[Hit]]:
        batches.append(requests)
        return [dense_hits if name == "dense" else sparse_hits for name, _ in requests]

    sparse = SparseVec([3], [1.0])
    fused = hybrid_search(run_batch, request, [1.0], sparse, 4)
    assert batches == [[("dense", candidates_for(4)), ("sparse", candidates_for(4))]]
    assert fused == fuse(with_similarity, sparse_hits, 4)
    assert {h.similarity for h in fused if h.document_id == "d"} <= {0.9, 0.8, 0.7, 0.6, 0.5}
    alone = hybrid_search(run_batch, request, [1.0], SparseVec([], []), 3)
    assert alone == fuse(with_similarity, [], 3)
    assert batches[-1] == [("dense", candidates_for(3))]
    assert hybrid_search(run_batch, request, [1.0], sparse, 0) == []
    assert len(batches) == 2  # a limit below 1 sends nothing
    assert hybrid_search(lambda requests: [], request, [1.0], sparse, 5) == []


def test_three_lists_fuse_with_the_multilingual_weight() -> None:
    """With a query's e5 vector, a third request (under dense_multi) joins the batch; its
    hits score at weight 1 beside MiniLM's 1 and BM25's 1.5, keep their e5 cosine, and the
    MiniLM cosine stays the hits' `similarity` (the relevance floor reads it)."""
    dense_hits = [hit("d", i, score=0.9 - i / 10) for i in range(3)]
    sparse_hits = [hit("s", i) for i in range(3)]
    multi_hits = [hit("m", i, score=0.85 - i / 100) for i in range(3)]
    sent: list[str] = []

    def request(using: str, vector: Sequence[float] | SparseVec, candidates: int) -> str:
        sent.append(using)
        return using

    def run_batch(requests: list[str]) -> list[list[Hit]]:
        lists = {"dense": dense_hits, "bm25": sparse_hits, "dense_multi": multi_hits}
        return [lists[name] for name in requests]

    fused = hybrid_search(run_batch, request, [1.0], SparseVec([3], [1.0]), 9, multi=[0.5])
    assert sent == ["dense", "bm25", "dense_multi"]
    by_doc = {(h.document_id, h.chunk_index): h for h in fused}
    assert len(by_doc) == 9
    # Rank 0 of weight 1.5 beats rank 0 of weight 1; e5's rank 0 ties MiniLM's rank 0.
    assert fused[0].document_id == "s"
    assert by_doc[("m", 0)].score == by_doc[("d", 0)].score
    assert by_doc[("m", 0)].multi_similarity == 0.85
    assert by_doc[("m", 0)].similarity is None
    assert by_doc[("d", 1)].similarity == 0.8
    # A passage in two lists adds both contributions; the two-list fuse is the same.
    both = fuse_lists([(dense_hits, 1.0), (dense_hits[:1], 1.0)], 3)
    assert both[0].score == 2 * rrf_score(0, 1.0)
    assert fuse(dense_hits, sparse_hits, 4) == fuse_lists(
        [(dense_hits, 1.0), (sparse_hits, 1.5)], 4
    )


def test_copies_count_once_and_do_not_push_others_down() -> None:
    """Three copies of one passage lead the BM25 list: fused, they are one result, and the
    passage right after them in that list ranks as if it were second there."""
    text = "the same paragraph in three files"
    copies = [hit(f"copy{i}", 0, text) for i in range(3)]
    second = hit("second", 0, "a different paragraph")
    dense = [hit("dense", 0, "what the embedding found")]
    fused = fuse(dense, [*copies, second], 5, near_duplicate=2.0)
    assert [h.document_id for h in fused] == ["copy0", "dense", "second"]
    alone = fuse(dense, [copies[0], second], 5, near_duplicate=2.0)
    assert [h.score for h in fused] == pytest.approx([h.score for h in alone])


def test_a_copy_ranked_in_both_lists_adds_up_and_keeps_its_best_copy() -> None:
    text = "a passage that is in the handbook twice"
    first, again = hit("handbook", 3, text), hit("handbook", 90, text)
    fused = fuse([hit("x", 0), again], [first], 2, near_duplicate=2.0)
    assert fused[0].text == text
    assert fused[0].chunk_index == 3  # BM25 ranked this copy first: its best rank
    assert fused[0].score > fused[1].score


def test_near_duplicates_collapse_only_long_passages() -> None:
    words = [f"term{i}" for i in range(NEAR_DUPLICATE_MIN_WORDS * 2)]
    long_a = " ".join(words)
    long_b = " ".join([*words[:-3], "x", "y", "z"])  # an OCR'd copy: 3 words misread
    short_a, short_b = "Plan A costs 10 EUR", "Plan A costs 20 EUR"
    dense = [hit("a", 0, long_a), hit("b", 0, long_b), hit("c", 0, short_a), hit("d", 0, short_b)]
    ids = [h.document_id for h in fuse(dense, [], 10)]
    assert ids == ["a", "c", "d"]
    # Disabled: every passage is kept.
    assert len(fuse(dense, [], 10, near_duplicate=2.0)) == 4


def test_passages_fit_whole_into_the_snippet_at_the_default_settings() -> None:
    """The API's snippet is the passage text: with the default CHUNK_SIZE/CHUNK_OVERLAP no
    passage is longer than the snippet, whatever the paragraph and sentence lengths."""
    settings = Settings()
    rng = random.Random(5)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    blocks = []
    for page in range(1, 40):
        for _ in range(rng.randint(1, 4)):
            sentences = [
                " ".join(rng.choice(words) for _ in range(rng.randint(3, 40))) + "."
                for _ in range(rng.randint(1, 30))
            ]
            blocks.append(Block(text=" ".join(sentences), page=page))
    chunks = chunk(
        ParsedDocument(blocks=blocks, pages=39),
        size=settings.chunk_size,
        overlap=settings.chunk_overlap,
    )
    longest = max(len(c.text) for c in chunks)
    assert longest <= SNIPPET_CHARS
    assert longest > settings.chunk_size  # passages do stretch beyond the target
