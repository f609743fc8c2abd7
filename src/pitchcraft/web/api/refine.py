"""/rag: prompt template, backgrounds, process, results (the original system's paths)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from pitchcraft.channels.schemas import ChannelIn, ChannelOut
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import FINISHED, SUCCEEDED
from pitchcraft.jobs.watch import wait_finished
from pitchcraft.refine.failures import job_error, missing_job
from pitchcraft.refine.schemas import BackgroundsOut, JobAccepted, ProcessIn, ResultOut
from pitchcraft.refine.service import DEFAULT_BACKGROUNDS
from pitchcraft.templates.schemas import TemplateIn, TemplateOut
from pitchcraft.web.deps import ContainerDep, CurrentUser
from pitchcraft.web.errors import ErrorOut

router = APIRouter(prefix="/rag", tags=["refine"])


@router.get("/prompt-template", response_model=TemplateOut)
def get_template(user: CurrentUser, container: ContainerDep) -> TemplateOut:
    return TemplateOut.of(container.templates.get(user.id))


@router.post("/prompt-template", response_model=TemplateOut)
def save_template(body: TemplateIn, user: CurrentUser, container: ContainerDep) -> TemplateOut:
    return TemplateOut.of(container.templates.save(user.id, body.template))


@router.delete("/prompt-template", response_model=TemplateOut)
def reset_template(user: CurrentUser, container: ContainerDep) -> TemplateOut:
    return TemplateOut.of(container.templates.reset(user.id))


@router.get("/backgrounds", response_model=BackgroundsOut)
def backgrounds(user: CurrentUser, container: ContainerDep) -> BackgroundsOut:
    return BackgroundsOut(
        defaults=list(DEFAULT_BACKGROUNDS), recent=container.refine.recent_backgrounds(user.id)
    )


WAIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": JobAccepted,
        "description": "The job succeeded within the wait (PROCESS_WAIT_S or ?wait=).",
    },
    202: {"model": JobAccepted, "description": "Queued; still queued or running after any wait."},
    502: {
        "model": ErrorOut,
        "description": "Waited: the job failed at the language model (unreachable, refused, "
        "kept failing); `detail` is the job's error.",
    },
    503: {"model": ErrorOut, "description": "Waited: the job could not search the documents."},
    504: {"model": ErrorOut, "description": "Waited: the language model did not answer in time."},
    500: {
        "model": ErrorOut,
        "description": "Waited: the job failed for a reason of the server's own (logged).",
    },
}


@router.post(
    "/process",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses=WAIT_RESPONSES,
)
async def process(
    body: ProcessIn,
    request: Request,
    user: CurrentUser,
    container: ContainerDep,
    wait: float | None = Query(
        default=None,
        ge=0,
        le=3600,
        description="Seconds to wait for the job before answering 202 (default: the "
        "server's PROCESS_WAIT_S; at most its PROCESS_WAIT_MAX_S).",
    ),
) -> Any:
    job = await run_in_threadpool(
        container.refine.submit,
        user.id,
        marketing_text=body.marketing_text,
        backgrounds=body.backgrounds,
        template_override=body.template_override,
        channel=body.channel,
        variants=body.variants,
    )
    settings = container.settings
    seconds = min(settings.process_wait_s if wait is None else wait, settings.process_wait_max_s)
    if seconds <= 0:
        return JobAccepted(job_id=job.id, status=job.status)
    # A coroutine waits: no worker thread and no database connection between reads, and a
    # client that goes away stops the waiting, never the job.
    now = await wait_finished(
        job.id,
        status_of=lambda job_id: queue.status_of(container.db, job_id),
        finished=container.finished,
        timeout=seconds,
        gone=request.is_disconnected,
    )
    if now is None:
        raise missing_job()
    if now == SUCCEEDED:
        return JSONResponse(JobAccepted(job_id=job.id, status=now).model_dump(), status_code=200)
    if now in FINISHED:
        raise job_error(await run_in_threadpool(container.refine.get, user.id, job.id))
    return JobAccepted(job_id=job.id, status=now)


@router.get("/results/{job_id}", response_model=ResultOut)
def result(job_id: str, user: CurrentUser, container: ContainerDep) -> ResultOut:
    return ResultOut.of(container.refine.get(user.id, job_id))


@router.get("/channels", response_model=list[ChannelOut])
def channels(user: CurrentUser, container: ContainerDep) -> list[ChannelOut]:
    """The preset channels, then the caller's own."""
    return [ChannelOut.of(c) for c in container.channels.list(user.id)]


@router.post("/channels", status_code=status.HTTP_201_CREATED, response_model=ChannelOut)
def add_channel(body: ChannelIn, user: CurrentUser, container: ContainerDep) -> ChannelOut:
    return ChannelOut.of(
        container.channels.add(
            user.id, name=body.name, max_chars=body.max_chars, guidance=body.guidance
        )
    )


@router.delete("/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_channel(channel_id: str, user: CurrentUser, container: ContainerDep) -> Response:
    container.channels.delete(user.id, channel_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
