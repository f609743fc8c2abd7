"""How rare a BM25 term is in one user's collection, read off the index.

The "bm25" sparse vector is created with Qdrant's IDF modifier, idf = ln((N - n + 0.5) /
(n + 0.5) + 1) for a term in n of the collection's N passages, so a query of one term
scores a passage idf * the passage's stored weight for it: one request per term (limit
1, with the hit's sparse vector) gives each term's n.

A term's rarity is then ln((N + S + 1) / (n + 0.5)) / ln((N + S + 1) / 1.5), in [0, 1]:
1 for a term in at most one passage (or none), near 0 for one in nearly every passage.
The `SMOOTHING` passages S are counted as not having the term: a collection of a few
dozen passages cannot tell a common word from a topic word (in two passages, every word
of one topic is in half of them), while in thousands S changes a rarity by ~0.02.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pitchcraft.vectors.base import SPARSE

SMOOTHING = 1000


def rarity_of(
    terms: Sequence[int], points: int, best: Sequence[tuple[float, Any] | None]
) -> dict[int, float]:
    """Each term's rarity among `points` passages; `best[i]` is the score and the named
    vectors of the top hit of the one-term query for `terms[i]` (None: no passage has it).
    A term whose stored weight is missing (never expected) is left out."""
    total = points + SMOOTHING + 1
    out: dict[int, float] = {}
    for term, hit in zip(terms, best, strict=True):
        if hit is None:
            out[term] = 1.0
            continue
        score, vectors = hit
        weight = _weight(vectors, term)
        if not weight or points <= 0:
            continue
        idf = float(score) / weight
        having = max(1.0, (points + 1) / math.exp(idf) - 0.5)  # n, from Qdrant's idf
        out[term] = min(1.0, max(0.0, math.log(total / (having + 0.5)) / math.log(total / 1.5)))
    return out


def _weight(vectors: Any, term: int) -> float | None:
    sparse = vectors.get(SPARSE) if isinstance(vectors, dict) else None
    if sparse is None:
        return None
    for index, value in zip(sparse.indices, sparse.values, strict=True):
        if index == term:
            return float(value) or None
    return None
