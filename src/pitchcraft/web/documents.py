"""The Documents page: upload (drag and drop), live status, delete, try a search."""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pitchcraft.auth.deps import ContainerDep
from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import AppError
from pitchcraft.documents.models import PROCESSING, QUEUED
from pitchcraft.documents.router import upload_for
from pitchcraft.web.routes import render
from pitchcraft.web.session import session_user

router = APIRouter(include_in_schema=False)


# Upload failures come back to the page as a code in the address; only these texts are
# ever shown, so the address cannot put words of its own on the page.
UPLOAD_ERRORS = {
    "no_files": "No files were received. Choose one or more files and try again.",
    "bad_multipart": "The upload was cut short. Please try again.",
    "multipart_required": "The upload was not sent as a file upload. Please try again.",
}
UPLOAD_ERROR_DEFAULT = "The upload did not go through. Please try again."

KIND_LABELS = {
    "pdf": "PDF",
    "docx": "Word",
    "pptx": "PowerPoint",
    "ppt": "PowerPoint (.ppt)",
    "image": "Image",
    "text": "Text",
    "markdown": "Markdown",
    "html": "HTML",
}


def kind_label(kind: str, filename: str = "") -> str:
    """What a file is, for people; a file refused before it was read goes by its extension."""
    if kind in KIND_LABELS:
        return KIND_LABELS[kind]
    _, dot, ext = filename.rpartition(".")
    return ext.upper() if dot and 0 < len(ext) <= 5 and ext.isalnum() else "Unknown type"


def human_size(n: int) -> str:
    """1 byte, 169 bytes, 13.1 KB, 245 KB, 1.8 MB, 42 MB."""
    if n < 1024:
        return f"{n} byte" + ("" if n == 1 else "s")
    for unit, scale in (("KB", 1024), ("MB", 1024**2), ("GB", 1024**3)):
        value = n / scale
        if value < 1024 or unit == "GB":
            text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def _signed_in(request: Request, container: Container) -> User | None:
    return session_user(request, container)


def _to_login(request: Request, path: str = "/documents") -> Response:
    target = f"/login?next={path}"
    if request.headers.get("hx-request"):
        # An htmx request would follow a redirect and swap the sign-in page into a
        # fragment of this one; ask htmx to move the whole page instead.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _table(request: Request, container: Container, user: User) -> HTMLResponse:
    return render(request, "_documents_table.html", user=user, **_table_context(container, user))


def _table_context(container: Container, user: User) -> dict[str, Any]:
    docs = container.documents.list(user.id)
    busy = any(d.status in (QUEUED, PROCESSING) for d in docs)
    return {"docs": docs, "busy": busy, "human_size": human_size, "kind_label": kind_label}


def _page(request: Request, container: Container, user: User, **ctx: Any) -> HTMLResponse:
    uploaded = request.query_params.get("uploaded", "")
    error = request.query_params.get("error")
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
        **_table_context(container, user),
        **ctx,
    )


@router.get("/documents", response_class=HTMLResponse)
def documents_page(request: Request, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request)
    return _page(request, container, user)


@router.get("/documents/table", response_class=HTMLResponse)
def documents_table(request: Request, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request)
    return _table(request, container, user)


@router.post("/documents/upload", response_class=HTMLResponse)
async def documents_upload(request: Request, container: ContainerDep) -> Response:
    user = await run_in_threadpool(_signed_in, request, container)
    if user is None:
        return _to_login(request)
    try:
        docs = await upload_for(request, container, user.id)
    except AppError as exc:
        return RedirectResponse(f"/documents?error={exc.code}", status_code=303)
    return RedirectResponse(f"/documents?uploaded={len(docs)}", status_code=303)


@router.post("/documents/{document_id}/delete", response_class=HTMLResponse)
def documents_delete(request: Request, document_id: str, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request)
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
    query: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request)
    query = query.strip()
    hits = container.search.search(user.id, query, (), 5) if query and "\x00" not in query else []
    if not request.headers.get("hx-request"):
        # Without JavaScript the form posts normally: answer with the whole page.
        return _page(request, container, user, query=query, hits=hits, searched=True)
    return render(request, "_search_results.html", user=user, query=query, hits=hits)
