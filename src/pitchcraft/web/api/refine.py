"""/rag: prompt template, backgrounds, process, results (the original system's paths)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from pitchcraft.channels.schemas import ChannelIn, ChannelOut
from pitchcraft.refine.schemas import BackgroundsOut, JobAccepted, ProcessIn, ResultOut
from pitchcraft.refine.service import DEFAULT_BACKGROUNDS
from pitchcraft.templates.schemas import TemplateIn, TemplateOut
from pitchcraft.web.deps import ContainerDep, CurrentUser

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


@router.post("/process", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def process(body: ProcessIn, user: CurrentUser, container: ContainerDep) -> JobAccepted:
    job = container.refine.submit(
        user.id,
        marketing_text=body.marketing_text,
        backgrounds=body.backgrounds,
        template_override=body.template_override,
        channel=body.channel,
        variants=body.variants,
    )
    return JobAccepted(job_id=job.id, status=job.status)


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
