"""What a search takes and returns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.core.validation import CleanStr

# The snippet is the whole passage: chunking packs about CHUNK_SIZE (1,000) characters and
# lets a passage grow to 1.2x that rather than leave a short remainder, so 1,200 holds every
# passage at the default. (A cut at 1,000 hid the end of one passage in five, often the
# words the passage was found for.)
SNIPPET_CHARS = 1200


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: CleanStr = Field(min_length=1, max_length=10_000)
    backgrounds: list[CleanStr] = Field(default_factory=list, max_length=20)
    limit: int = Field(default=5, ge=1, le=50)


class SearchResult(BaseModel):
    document_id: str
    filename: str
    page: int | None
    section: str | None
    sheet: str | None = Field(default=None, description="A spreadsheet passage's sheet.")
    rows: list[int] | None = Field(
        default=None,
        description="A spreadsheet passage's first and last row, as the sheet numbers them.",
    )
    snippet: str
    score: float | None = Field(
        description="How close the passage is in meaning to the query, 0-1: the cosine "
        "similarity of their embeddings (search/score.py), comparable across searches and "
        "the same as a refine job's source `score`."
    )
    rank_score: float = Field(
        description="The fused rank score (dense and BM25 ranks, weighted RRF) the results "
        "are ordered by; only comparable within one search."
    )


class SearchOut(BaseModel):
    results: list[SearchResult] = Field(
        description="The relevant passages, best first (by `rank_score`, which also weighs "
        "shared rare words: `score` need not fall from one result to the next)."
    )
    no_match: bool = Field(
        description="True when nothing in the user's documents is relevant to the query "
        "(results is then empty): every candidate was below the relevance floor."
    )
