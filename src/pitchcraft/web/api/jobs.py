"""/jobs: the caller's refine history, one job, re-run with edits."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response, status

from pitchcraft.exports.service import DOCX, export
from pitchcraft.refine.schemas import JobAccepted, JobSummary, RerunIn, ResultOut
from pitchcraft.web.deps import ContainerDep, CurrentUser
from pitchcraft.web.downloads import content_disposition

router = APIRouter(prefix="/jobs", tags=["refine"])


@router.get("", response_model=list[JobSummary])
def history(
    user: CurrentUser,
    container: ContainerDep,
    response: Response,
    limit: int = Query(default=20, ge=1, le=100),
    offset: int = Query(default=0, ge=0, le=1_000_000),
) -> list[JobSummary]:
    jobs, total = container.refine.history(user.id, limit=limit, offset=offset)
    response.headers["X-Total-Count"] = str(total)
    return [JobSummary.of(j) for j in jobs]


@router.get("/{job_id}", response_model=ResultOut)
def job(job_id: str, user: CurrentUser, container: ContainerDep) -> ResultOut:
    return ResultOut.of(container.refine.get(user.id, job_id))


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete one of the caller's jobs (404 for any other)",
)
def delete_job(job_id: str, user: CurrentUser, container: ContainerDep) -> Response:
    container.refine.delete(user.id, job_id)
    return Response(status_code=204)


@router.post("/{job_id}/rerun", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def rerun(
    job_id: str, user: CurrentUser, container: ContainerDep, body: RerunIn | None = None
) -> JobAccepted:
    edits = body or RerunIn()
    new = container.refine.rerun(
        user.id,
        job_id,
        marketing_text=edits.marketing_text,
        backgrounds=edits.backgrounds,
        template_override=edits.template_override,
        channel=edits.channel,
        variants=edits.variants,
    )
    return JobAccepted(job_id=new.id, status=new.status)


@router.get(
    "/{job_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {"text/markdown": {}, DOCX: {}},
            "description": "md: the copy, its sources and the claim ledger; docx: the copy "
            "as tracked changes over the original text, then the sources and the ledger.",
        }
    },
)
def export_job(
    job_id: str,
    user: CurrentUser,
    container: ContainerDep,
    format: Literal["md", "docx"] = Query(default="md"),
) -> Response:
    """A finished job as a file (409 while it runs; 404 for another user's job)."""
    out = export(ResultOut.of(container.refine.get(user.id, job_id)), format)
    return Response(
        out.content,
        media_type=out.media_type,
        headers={"Content-Disposition": content_disposition(out.filename)},
    )
