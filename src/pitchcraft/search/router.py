"""POST /api/v1/search."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.auth.deps import ContainerDep, CurrentUser
from pitchcraft.core.validation import CleanStr
from pitchcraft.errors_http import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["search"], responses=ERROR_RESPONSES)

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
    snippet: str
    score: float


class SearchOut(BaseModel):
    results: list[SearchResult]


@router.post("/search", response_model=SearchOut)
def search(body: SearchIn, user: CurrentUser, container: ContainerDep) -> SearchOut:
    hits = container.search.search(
        user.id, body.query, [b[:100] for b in body.backgrounds], body.limit
    )
    return SearchOut(
        results=[
            SearchResult(
                document_id=h.document_id,
                filename=h.filename,
                page=h.page,
                section=h.section,
                snippet=h.text[:SNIPPET_CHARS],
                score=round(h.score, 6),
            )
            for h in hits
        ]
    )
