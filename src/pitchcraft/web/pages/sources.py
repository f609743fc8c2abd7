"""The source viewer: source n of a result, opened where it stands (its page with the passage
highlighted, or the passage among its neighbours), and the original file to download."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from markupsafe import Markup, escape

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import NotFound
from pitchcraft.documents.models import Document
from pitchcraft.documents.preview import PAGED_KINDS
from pitchcraft.documents.sources import (
    MAX_HIGHLIGHT_CHARS,
    SPREADSHEET_KINDS,
    InContext,
    PreviewFailed,
    RowsTable,
)
from pitchcraft.refine.schemas import ResultOut, Source
from pitchcraft.web.deps import ContainerDep
from pitchcraft.web.downloads import file_response, png_response
from pitchcraft.web.pages.format import kind_label, mark, where
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import PageUser

router = APIRouter(include_in_schema=False)

Quote = Annotated[str | None, Query(max_length=MAX_HIGHLIGHT_CHARS)]


def _source(container: Container, user: User, job_id: str, n: int) -> Source:
    try:
        job = container.refine.get(user.id, job_id)
    except NotFound as exc:
        # The same page whether the job never existed or belongs to someone else.
        raise NotFound(
            "There is no result at this address in your account.", code="job_not_found"
        ) from exc
    for source in ResultOut.of(job).sources:
        if source.n == n:
            return source
    raise NotFound(f"This result has no source [{n}].", code="source_not_found")


def _document(container: Container, user: User, source: Source) -> Document | None:
    """The source's document, or None once it has been deleted (the job keeps its text)."""
    if not source.document_id:
        return None
    try:
        return container.sources.document(user.id, source.document_id)
    except NotFound:
        return None


def _context(container: Container, user: User, doc: Document, source: Source) -> InContext | None:
    """The passage among its neighbours; older sources do not name their chunk, so it is
    looked for by its text."""
    chunk_index = source.chunk_index
    if chunk_index is None:
        chunk_index = container.sources.find_chunk(user.id, doc.id, source.snippet)
    if chunk_index is None:
        return None
    try:
        return container.sources.in_context(user.id, doc.id, chunk_index)
    except NotFound:  # re-indexed differently since: the snippet alone
        return None


def _rows_table(
    container: Container, user: User, doc: Document | None, source: Source
) -> RowsTable | None:
    """A spreadsheet source's rows as a table; None for other sources, or when the stored
    file cannot be read (the passage is shown instead)."""
    if doc is None or doc.file_type not in SPREADSHEET_KINDS or not source.rows:
        return None
    try:
        return container.sources.rows_table(
            user.id, doc.id, source.sheet, source.rows[0], source.rows[1]
        )
    except (NotFound, PreviewFailed):
        return None


def _focus(text: str, quote: str | None) -> Markup:
    """The passage asked for: the quote marked when there is one, else all of it."""
    marked, found = mark(text, quote)
    return marked if found else Markup(f"<mark>{escape(text)}</mark>")  # noqa: S704 (escaped)


def _viewer_context(
    container: Container, user: User, job_id: str, n: int, quote: str | None
) -> dict[str, Any]:
    source = _source(container, user, job_id, n)
    doc = _document(container, user, source)
    paged = doc is not None and doc.file_type in PAGED_KINDS and source.page is not None
    table = _rows_table(container, user, doc, source)
    context = (
        None
        if paged or doc is None or table is not None
        else _context(container, user, doc, source)
    )
    quote = (quote or "").strip() or None
    passage, quote_found = mark(source.snippet, quote)
    image_url = f"/results/{job_id}/sources/{n}/page.png"
    if quote:
        image_url += "?" + urlencode({"quote": quote})
    return {
        "job_id": job_id,
        "n": n,
        "source": source,
        "label": where(source),
        "doc": doc,
        "kind": kind_label(doc.file_type, doc.filename) if doc else None,
        "unit": "slide" if doc is not None and doc.file_type in ("pptx", "ppt") else "page",
        "paged": paged,
        "image_url": image_url,
        "quote": quote,
        "quote_found": quote_found,
        "passage": passage,
        "context": context,
        "table": table,
        "focus": _focus,
    }


@router.get("/results/{job_id}/sources/{n}", response_class=HTMLResponse)
def source_viewer(
    request: Request,
    job_id: str,
    n: int,
    container: ContainerDep,
    user: PageUser,
    quote: Quote = None,
) -> Response:
    ctx = _viewer_context(container, user, job_id, n, quote)
    return render(request, "source.html", user=user, active="history", **ctx)


@router.get("/results/{job_id}/sources/{n}/page.png", response_class=Response)
def source_page_image(
    job_id: str, n: int, container: ContainerDep, user: PageUser, quote: Quote = None
) -> Response:
    source = _source(container, user, job_id, n)
    if not source.document_id or source.page is None:
        raise NotFound("This source has no page to show.", code="page_not_found")
    highlight = (quote or "").strip() or source.snippet
    return png_response(
        container.sources.page_image(user.id, source.document_id, source.page, highlight)
    )


@router.get("/documents/{document_id}/file", response_class=FileResponse)
def document_file(document_id: str, container: ContainerDep, user: PageUser) -> Response:
    return file_response(container.sources.original(user.id, document_id))
