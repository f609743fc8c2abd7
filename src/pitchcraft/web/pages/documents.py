"""The Documents page: upload (drag and drop), live status, delete, try a search."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import AppError
from pitchcraft.documents.enrich import multilingual_active, shown_progress, shown_state
from pitchcraft.documents.models import (
    INDEXED,
    ML_PENDING,
    ML_RUNNING,
    PROCESSING,
    QUEUED,
    Document,
)
from pitchcraft.documents.sample_library import add_samples
from pitchcraft.web.deps import ContainerDep
from pitchcraft.web.pages.format import human_size, kind_label
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import PageUser
from pitchcraft.web.uploads import upload_for

router = APIRouter(include_in_schema=False)


# Upload failures come back to the page as a code in the address; only these texts are
# ever shown, so the address cannot put words of its own on the page.
UPLOAD_ERRORS = {
    "no_files": "No files were received. Choose one or more files and try again.",
    "bad_multipart": "The upload was cut short. Please try again.",
    "multipart_required": "The upload was not sent as a file upload. Please try again.",
    "storage_quota_exceeded": "Your documents have reached your account's storage quota. "
    "Delete documents you no longer need, then upload again.",
    "queue_limit_reached": "Too many of your documents are still waiting to be indexed. "
    "Upload more once some are done.",
    "rate_limited": "You have uploaded as many files as an account may in an hour. "
    "Try again later.",
}
UPLOAD_ERROR_DEFAULT = "The upload did not go through. Please try again."
MAX_DUPLICATES_SHOWN = 20


def _table(request: Request, container: Container, user: User) -> HTMLResponse:
    return render(request, "_documents_table.html", user=user, **_table_context(container, user))


def _table_context(container: Container, user: User) -> dict[str, Any]:
    docs = container.documents.list(user.id)
    active = multilingual_active(container.settings)

    def enriching(d: Document) -> int | None:
        """The percentage of an indexed document's multilingual enrichment, while it runs
        or waits its turn; None otherwise."""
        if d.status != INDEXED or shown_state(d, active) not in (ML_PENDING, ML_RUNNING):
            return None
        return round(shown_progress(d, active) * 100)

    busy = any(d.status in (QUEUED, PROCESSING) or enriching(d) is not None for d in docs)
    return {
        "docs": docs,
        "busy": busy,
        "human_size": human_size,
        "kind_label": kind_label,
        "enriching": enriching,
    }


def _duplicates(request: Request, container: Container, user: User) -> list[str]:
    """Names of the caller's own documents that an upload duplicated (ids in the address:
    only names of the caller's documents can show, never words of the address's own)."""
    raw = request.query_params.get("dup", "")
    names = []
    for doc_id in raw.split(",")[:MAX_DUPLICATES_SHOWN]:
        with contextlib.suppress(AppError):
            names.append(container.documents.get(user.id, doc_id).filename)
    return names


def _page(request: Request, container: Container, user: User, **ctx: Any) -> HTMLResponse:
    uploaded = request.query_params.get("uploaded", "")
    samples = request.query_params.get("samples", "")
    error = request.query_params.get("error")
    session_id = getattr(request.state, "session_id", None)
    # Said once: the next visit of the page does not repeat it.
    cleared = container.accounts.sessions.take_cleared(session_id) if session_id else 0
    return render(
        request,
        "documents.html",
        user=user,
        active="documents",
        settings=container.settings,
        uploaded=int(uploaded)
        if uploaded.isascii() and uploaded.isdigit() and len(uploaded) < 6
        else None,
        upload_error=UPLOAD_ERRORS.get(error, UPLOAD_ERROR_DEFAULT) if error else None,
        samples_added=samples in ("1", "2", "3", "4", "5", "6", "7", "8", "9"),
        duplicates=_duplicates(request, container, user),
        cleared=cleared,
        **_table_context(container, user),
        **ctx,
    )


@router.get("/documents", response_class=HTMLResponse)
def documents_page(request: Request, container: ContainerDep, user: PageUser) -> Response:
    return _page(request, container, user)


@router.get("/documents/table", response_class=HTMLResponse)
def documents_table(request: Request, container: ContainerDep, user: PageUser) -> Response:
    return _table(request, container, user)


@router.post("/documents/upload", response_class=HTMLResponse)
async def documents_upload(request: Request, container: ContainerDep, user: PageUser) -> Response:
    try:
        uploaded = await upload_for(request, container, user.id)
    except AppError as exc:
        return RedirectResponse(f"/documents?error={exc.code}", status_code=303)
    added = sum(1 for u in uploaded if u.duplicate_of is None)
    target = f"/documents?uploaded={added}"
    duplicates = list(dict.fromkeys(u.duplicate_of for u in uploaded if u.duplicate_of))
    if duplicates:
        target += "&dup=" + ",".join(duplicates[:MAX_DUPLICATES_SHOWN])
    return RedirectResponse(target, status_code=303)


@router.post("/documents/samples", response_class=HTMLResponse)
def documents_samples(container: ContainerDep, user: PageUser) -> Response:
    docs = add_samples(container.documents, user.id)
    return RedirectResponse(f"/documents?samples={len(docs)}", status_code=303)


@router.post("/documents/{document_id}/delete", response_class=HTMLResponse)
def documents_delete(
    request: Request, document_id: str, container: ContainerDep, user: PageUser
) -> Response:
    # Already gone is fine: the list rendered below shows the truth.
    with contextlib.suppress(AppError):
        container.documents.delete(user.id, document_id)
    if request.headers.get("hx-request"):
        return _table(request, container, user)
    return RedirectResponse("/documents", status_code=303)


@router.post("/documents/search", response_class=HTMLResponse)
def documents_search(
    request: Request,
    container: ContainerDep,
    user: PageUser,
    query: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    query = query.strip()
    # Only results above the relevance floor: an empty list shows "nothing speaks to this".
    searchable = query and "\x00" not in query
    hits = container.search.find(user.id, query, (), 5).hits if searchable else []
    if not request.headers.get("hx-request"):
        # Without JavaScript the form posts normally: answer with the whole page.
        return _page(request, container, user, query=query, hits=hits, searched=True)
    return render(request, "_search_results.html", user=user, query=query, hits=hits)
