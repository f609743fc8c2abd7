"""Hybrid search: fusing the dense, sparse and multilingual candidates into one ranking.

Both vector adapters (Qdrant Edge and a Qdrant server) search through `hybrid_search`:
it asks the adapter for the candidate lists (dense MiniLM nearest neighbours, BM25
matches, and, when the query has one, the e5 nearest neighbours among the passages that
have their multilingual vector) in one call and fuses them with `fuse_lists`, so they
rank and score alike by construction; each adapter only builds and runs its own requests.

1. Identical passages count once per list. The same text often sits in several places (a
   copy of a file, a section a handbook repeats, the same slide in two decks). Left in, each
   copy takes a rank of its own and pushes every other candidate of that list down; here a
   passage's copies are merged, keep the best rank the passage reached, and are returned
   as the copy that reached it.
2. Weighted reciprocal rank fusion, with the formula a Qdrant server uses for
   ``Rrf(k, weights)``: a candidate at (0-based) rank r of a list of weight w scores
   1 / ((r + 1) / w + k - 1); the scores of the lists are added. BM25 gets the larger
   weight: on the retrieval dev set (bench/README.md) it finds more answers on its own
   than the small English embedding model, which still adds paraphrases and synonyms.
   MiniLM : e5 : BM25 = 1 : 1 : 1.5 fixed every German and cross-lingual miss of the dev
   and held-out sets without losing an English question (1 : 0.5 : 1.5 and 1 : 1 : 2 gave
   the same hits); e5 alone in MiniLM's place lost an English one, so both stay.
3. Near-duplicates are collapsed: a result whose words overlap a better-ranked result's
   by at least `NEAR_DUPLICATE` (Jaccard over lower-cased word sets; both passages of at
   least `NEAR_DUPLICATE_MIN_WORDS` different words) is dropped, so that
   the first results are different passages — not an OCR'd scan and the text layer of the
   same page, or one passage repeated with slightly different chunk boundaries.
   Consecutive overlapping chunks of a page share only their overlap and are kept: the
   answer is often in the neighbour of the best-scoring chunk.

Every fused hit keeps its cosine similarity to the query (`Hit.similarity`): a dense
candidate's score is that cosine; the adapters ask for the dense vector of each BM25
candidate and compute it (search/relevance.py judges relevance on that absolute scale).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from pitchcraft.vectors.base import DENSE, DENSE_MULTI, SPARSE, Hit, SparseVec

# Candidates fetched from each list: at least this many, and 4x the results asked for
# (50 or 100 gave the same dev-set results and cost ~1 ms more per search, in payloads).
CANDIDATES = 20
# Reciprocal rank fusion constant (2, as a Qdrant server's RRF uses by default).
RRF_K = 2
DENSE_WEIGHT = 1.0
SPARSE_WEIGHT = 1.5
MULTI_WEIGHT = 1.0
WEIGHTS = {DENSE: DENSE_WEIGHT, SPARSE: SPARSE_WEIGHT, DENSE_MULTI: MULTI_WEIGHT}
# For a question in German, French or Spanish (search/relevance.py `foreign_query`):
# English-trained MiniLM's neighbours of such a question are mostly noise, and e5 is the
# one list that reaches passages in another language. Measured with
# `bench.floor_multilingual` (bench/README.md): the multilingual set's answers in the fused
# top 5 went from 22 to 25 of 32, off-topic questions in those languages answered from
# 5 to 2 of 30 (6 to 4 of the 15 held out), the dev and extra sets unchanged.
FOREIGN_QUERY_WEIGHTS = {DENSE: 0.5, SPARSE: SPARSE_WEIGHT, DENSE_MULTI: 2.0}
# Word-set Jaccard from which a result counts as a near-duplicate of a better one, for
# passages of at least NEAR_DUPLICATE_MIN_WORDS distinct words each: short ones (a table
# row, a price line, a slide title) differ in a word or a number and are still different.
NEAR_DUPLICATE = 0.7
NEAR_DUPLICATE_MIN_WORDS = 20

_WORD = re.compile(r"[^\W_]+")

Request = TypeVar("Request")


def hybrid_search(
    run_batch: Callable[[list[Request]], Sequence[Sequence[Hit]]],
    request: Callable[[str, Sequence[float] | SparseVec, int], Request],
    dense: Sequence[float],
    sparse: SparseVec,
    limit: int,
    multi: Sequence[float] | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[Hit]:
    """The fused top `limit` for a query's dense, sparse and (optional) e5 vectors.

    `request(using, vector, candidates)` builds the adapter's request for the `candidates`
    nearest neighbours of one vector under the vector name `using` (DENSE, SPARSE or
    DENSE_MULTI; a sparse or multilingual request also returns each point's dense vector,
    for the hits' `similarity`); `run_batch(requests)` runs them in one call and returns
    one list of hits per request, best first, or no list at all when the user has no
    collection. A query without BM25 terms (an empty sparse vector) fetches no BM25 list;
    one without `multi` no multilingual list. `weights`: each list's RRF weight by vector
    name (WEIGHTS unless given).
    """
    if limit < 1:
        return []
    candidates = candidates_for(limit)
    wanted: list[tuple[str, Sequence[float] | SparseVec]] = [(DENSE, dense)]
    if sparse.indices:
        wanted.append((SPARSE, sparse))
    if multi is not None:
        wanted.append((DENSE_MULTI, multi))
    lists = run_batch([request(using, vector, candidates) for using, vector in wanted])
    if not lists:
        return []
    ranked: list[tuple[Sequence[Hit], float]] = []
    for (using, _vector), hits in zip(wanted, lists, strict=True):
        # Dense scores are cosine similarities (unit vectors, Cosine distance).
        if using == DENSE:
            hits = [replace(h, similarity=h.score) for h in hits]
        elif using == DENSE_MULTI:
            hits = [replace(h, multi_similarity=h.score) for h in hits]
        ranked.append((hits, (weights or WEIGHTS)[using]))
    return fuse_lists(ranked, limit)


def candidates_for(limit: int) -> int:
    """How many candidates each list should deliver for `limit` fused results."""
    return max(CANDIDATES, 4 * limit)


def rrf_score(rank: int, weight: float, k: int = RRF_K) -> float:
    """Weighted RRF contribution of a 0-based `rank` (Qdrant's formula; 1/(k + rank) at
    weight 1)."""
    if weight <= 0:
        return 0.0
    return 1.0 / ((rank + 1) / weight + k - 1)


@dataclass
class _Passage:
    hit: Hit  # the copy that reached the best rank
    best: float  # its best single-list contribution (which copy represents the passage)
    score: float
    order: int  # first appearance, for a stable tie-break
    similarity: float | None = None  # to the query, from whichever list reported it
    multi_similarity: float | None = None  # e5 cosine, when the multilingual list had it
    words: frozenset[str] | None = None  # computed only for the passages compared

    def word_set(self) -> frozenset[str]:
        if self.words is None:
            self.words = frozenset(_WORD.findall(self.hit.text.casefold()))
        return self.words


def fuse(
    dense: Sequence[Hit],
    sparse: Sequence[Hit],
    limit: int,
    *,
    weights: tuple[float, float] = (DENSE_WEIGHT, SPARSE_WEIGHT),
    k: int = RRF_K,
    near_duplicate: float = NEAR_DUPLICATE,
) -> list[Hit]:
    """The fused top `limit` of two candidate lists (each best first), scored by RRF."""
    return fuse_lists(
        [(dense, weights[0]), (sparse, weights[1])], limit, k=k, near_duplicate=near_duplicate
    )


def fuse_lists(
    lists: Sequence[tuple[Sequence[Hit], float]],
    limit: int,
    *,
    k: int = RRF_K,
    near_duplicate: float = NEAR_DUPLICATE,
) -> list[Hit]:
    """The fused top `limit` of candidate lists (each best first, with its weight), scored
    by weighted RRF."""
    if limit < 1:
        return []
    passages: dict[str, _Passage] = {}
    for hits, weight in lists:
        seen: set[str] = set()
        rank = 0
        for hit in hits:
            # Chunking normalises whitespace, so copies of a passage have the same text.
            key = hit.text or f"\0{hit.document_id}:{hit.chunk_index}"
            if key in seen:
                continue  # another copy of a passage already ranked in this list
            seen.add(key)
            contribution = rrf_score(rank, weight, k)
            rank += 1
            passage = passages.get(key)
            if passage is None:
                passages[key] = _Passage(
                    hit,
                    contribution,
                    contribution,
                    len(passages),
                    hit.similarity,
                    hit.multi_similarity,
                )
                continue
            passage.score += contribution
            if passage.similarity is None:
                passage.similarity = hit.similarity
            if passage.multi_similarity is None:
                passage.multi_similarity = hit.multi_similarity
            if contribution > passage.best:
                passage.hit, passage.best = hit, contribution
    ranked = sorted(passages.values(), key=lambda p: (-p.score, p.order))
    kept: list[_Passage] = []
    for passage in ranked:
        if near_duplicate <= 1 and any(
            _jaccard(passage.word_set(), other.word_set()) >= near_duplicate for other in kept
        ):
            continue
        kept.append(passage)
        if len(kept) == limit:
            break
    return [
        replace(p.hit, score=p.score, similarity=p.similarity, multi_similarity=p.multi_similarity)
        for p in kept
    ]


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if len(a) < NEAR_DUPLICATE_MIN_WORDS or len(b) < NEAR_DUPLICATE_MIN_WORDS:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)
