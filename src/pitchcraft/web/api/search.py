"""/search: the hybrid search the refine step uses, on its own."""

from __future__ import annotations

from fastapi import APIRouter

from pitchcraft.search.schemas import SNIPPET_CHARS, SearchIn, SearchOut, SearchResult
from pitchcraft.search.score import readable_score
from pitchcraft.web.deps import ContainerDep, CurrentUser

router = APIRouter(tags=["search"])


@router.post("/search", response_model=SearchOut)
def search(body: SearchIn, user: CurrentUser, container: ContainerDep) -> SearchOut:
    found = container.search.find(
        user.id, body.query, [b[:100] for b in body.backgrounds], body.limit
    )
    return SearchOut(
        no_match=found.no_match,
        results=[
            SearchResult(
                document_id=h.document_id,
                filename=h.filename,
                page=h.page,
                section=h.section,
                sheet=h.section if h.rows is not None else None,
                rows=list(h.rows) if h.rows is not None else None,
                snippet=h.text[:SNIPPET_CHARS],
                score=readable_score(h.similarity),
                rank_score=round(h.score, 6),
            )
            for h in found.hits
        ],
    )
