"""The `score` a person reads beside a passage, the same on search results and on a refine
job's sources: how close the passage is in meaning to what was searched for, the cosine
similarity of their MiniLM vectors (`Hit.similarity`), shown from 0 (unrelated) to 1 (the
same meaning); the rare negative cosine shows as 0. It is on one scale for every search,
as the original system's scores were (its Qdrant cosine similarities).

The order of results is not by this score but by the fused rank (`Hit.score`, kept as
`rank_score`): the hybrid search also weighs shared rare words, so a passage with the exact
terms may come before one a little closer in meaning. Neither the relevance floor nor the
claim ledger reads this value; both keep using `Hit.similarity` and `Hit.score`.
"""

from __future__ import annotations

import math


def readable_score(similarity: float | None) -> float | None:
    """The cosine as a 0-1 score (4 decimals); None when it is unknown."""
    if similarity is None or not math.isfinite(similarity):
        return None
    return round(min(1.0, max(0.0, similarity)), 4)
