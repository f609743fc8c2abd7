"""/rag: prompt template, backgrounds, process, results (the original system's paths)."""

from __future__ import annotations

from fastapi import APIRouter, status

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
    )
    return JobAccepted(job_id=job.id, status=job.status)


@router.get("/results/{job_id}", response_model=ResultOut)
def result(job_id: str, user: CurrentUser, container: ContainerDep) -> ResultOut:
    return ResultOut.of(container.refine.get(user.id, job_id))
