"""/glossary: the caller's brand glossary, and names from their documents to add to it."""

from __future__ import annotations

from fastapi import APIRouter

from pitchcraft.container import Container
from pitchcraft.glossary.mining import Suggestion, document_texts, suggest
from pitchcraft.glossary.schemas import GlossaryIn, GlossaryOut, SuggestionOut
from pitchcraft.web.deps import ContainerDep, CurrentUser

router = APIRouter(prefix="/glossary", tags=["glossary"])


@router.get("", response_model=GlossaryOut)
def get_glossary(user: CurrentUser, container: ContainerDep) -> GlossaryOut:
    return GlossaryOut.of(container.glossaries.get(user.id))


@router.put("", response_model=GlossaryOut)
def put_glossary(body: GlossaryIn, user: CurrentUser, container: ContainerDep) -> GlossaryOut:
    """Replace the glossary; 422 names the first problem and keeps the saved one."""
    terms = [t.model_dump() for t in body.terms]
    return GlossaryOut.of(container.glossaries.put(user.id, terms, body.banned))


@router.get("/suggestions", response_model=list[SuggestionOut])
def suggestions(user: CurrentUser, container: ContainerDep) -> list[SuggestionOut]:
    """Product and feature names the caller's documents write consistently, not yet in
    the glossary."""
    found = suggested_names(container, user.id)
    return [SuggestionOut(use=s.use, avoid=list(s.avoid), count=s.count) for s in found]


def suggested_names(container: Container, user_id: int) -> list[Suggestion]:
    g = container.glossaries.get(user_id)
    known = [t.use for t in g.terms] + [a for t in g.terms for a in t.avoid] + list(g.banned)
    texts = document_texts(container.documents, container.index(), user_id)
    return suggest(texts, known)
