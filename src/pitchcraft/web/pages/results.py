"""The Result page (live while the job runs) and the History page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import NotFound
from pitchcraft.exports.service import FORMATS, export
from pitchcraft.jobs.models import QUEUED, RUNNING, Job
from pitchcraft.refine.schemas import JobSummary, ResultOut
from pitchcraft.web.deps import ContainerDep
from pitchcraft.web.downloads import content_disposition
from pitchcraft.web.pages.format import cite, iso, took, when, where
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import PageUser

router = APIRouter(include_in_schema=False)

PER_PAGE = 20
SNIPPET_CHARS = 420
STATUS_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def _job(container: Container, user: User, job_id: str) -> Job:
    try:
        return container.refine.get(user.id, job_id)
    except NotFound as exc:
        # The same page whether the job never existed or belongs to someone else.
        raise NotFound(
            "There is no result at this address in your account.", code="job_not_found"
        ) from exc


def _result_context(job: Job) -> dict[str, Any]:
    r = ResultOut.of(job)
    numbers = [s.n for s in r.sources if s.n is not None]
    by_n = {s.n: s for s in r.sources if s.n is not None}
    return {
        "r": r,
        "busy": r.status in (QUEUED, RUNNING),
        "status_label": STATUS_LABELS.get(r.status, r.status.capitalize()),
        "cited_sources": [s for s in r.sources if s.cited],
        "context_sources": [s for s in r.sources if not s.cited],
        "by_n": by_n,
        "numbers": numbers,
        "cite": cite,
        "where": where,
        "when": when,
        "iso": iso,
        "took": took,
        "snippet_chars": SNIPPET_CHARS,
        "evidence_note": _evidence_note(r),
    }


def _evidence_note(r: ResultOut) -> str | None:
    """Said when the user has documents but none of them speaks to the text."""
    raw = r.evidence if isinstance(r.evidence, dict) else {}
    if raw.get("no_match"):
        return (
            "Nothing in your documents speaks to this text, so no claim could be checked: "
            "add documents that back it up, then run it again."
        )
    return None


@router.get("/results/{job_id}", response_class=HTMLResponse)
def result_page(request: Request, job_id: str, container: ContainerDep, user: PageUser) -> Response:
    job = _job(container, user, job_id)
    return render(
        request,
        "result.html",
        user=user,
        **_result_context(job),
    )


@router.get("/results/{job_id}/live", response_class=HTMLResponse)
def result_live(request: Request, job_id: str, container: ContainerDep, user: PageUser) -> Response:
    job = _job(container, user, job_id)
    return render(request, "_result_live.html", user=user, **_result_context(job))


@router.get("/results/{job_id}/export")
def result_export(
    request: Request, job_id: str, container: ContainerDep, user: PageUser
) -> Response:
    """The export buttons (the API's export, with the page's session)."""
    fmt = request.query_params.get("format", "md")
    out = export(ResultOut.of(_job(container, user, job_id)), fmt if fmt in FORMATS else "md")
    return Response(
        out.content,
        media_type=out.media_type,
        headers={"Content-Disposition": content_disposition(out.filename)},
    )


@router.post("/results/{job_id}/rerun", response_class=HTMLResponse)
def result_rerun(
    request: Request, job_id: str, container: ContainerDep, user: PageUser
) -> Response:
    _job(container, user, job_id)
    new = container.refine.rerun(user.id, job_id)
    return RedirectResponse(f"/results/{new.id}", status_code=303)


@router.post("/results/{job_id}/delete", response_class=HTMLResponse)
def result_delete(
    request: Request, job_id: str, container: ContainerDep, user: PageUser
) -> Response:
    _job(container, user, job_id)
    container.refine.delete(user.id, job_id)
    if request.headers.get("hx-request"):
        ctx = _history_context(container, user, _page_number(request))
        return render(request, "_history_list.html", user=user, **ctx)
    return RedirectResponse(f"/history?page={_page_number(request)}", status_code=303)


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 6 and int(raw) else 1


def _history_context(container: Container, user: User, page: int) -> dict[str, Any]:
    jobs, total = container.refine.history(user.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    items = [JobSummary.of(j) for j in jobs]
    return {
        "items": items,
        "total": total,
        "page_no": page,
        "pages": pages,
        "busy": any(i.status in (QUEUED, RUNNING) for i in items),
        "status_labels": STATUS_LABELS,
        "when": when,
        "iso": iso,
        "first": (page - 1) * PER_PAGE + 1,
    }


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request, container: ContainerDep, user: PageUser) -> Response:
    page = _page_number(request)
    ctx = _history_context(container, user, page)
    if page > ctx["pages"]:
        return RedirectResponse(f"/history?page={ctx['pages']}", status_code=303)
    return render(request, "history.html", user=user, active="history", **ctx)


@router.get("/history/list", response_class=HTMLResponse)
def history_list(request: Request, container: ContainerDep, user: PageUser) -> Response:
    ctx = _history_context(container, user, _page_number(request))
    return render(request, "_history_list.html", user=user, **ctx)
