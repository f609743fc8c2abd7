"""/api/v1/rag (prompt template, process, results) and /api/v1/jobs (history, re-run)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.auth.deps import ContainerDep, CurrentUser
from pitchcraft.core.validation import CleanStr
from pitchcraft.errors_http import ERROR_RESPONSES
from pitchcraft.jobs.models import Job
from pitchcraft.refine.service import (
    DEFAULT_BACKGROUNDS,
    MAX_BACKGROUND_CHARS,
    MAX_BACKGROUNDS,
    MAX_TEXT_CHARS,
)
from pitchcraft.templates.render import MAX_TEMPLATE_CHARS, PLACEHOLDERS
from pitchcraft.templates.service import TemplateView

router = APIRouter(prefix="/api/v1", tags=["refine"], responses=ERROR_RESPONSES)

EXCERPT_CHARS = 160


class TemplateIn(BaseModel):
    template: CleanStr = Field(max_length=MAX_TEMPLATE_CHARS)


class TemplateOut(BaseModel):
    template: str
    is_default: bool
    updated_at: datetime | None
    placeholders: list[str] = Field(default_factory=lambda: list(PLACEHOLDERS))

    @classmethod
    def of(cls, view: TemplateView) -> TemplateOut:
        return cls(template=view.template, is_default=view.is_default, updated_at=view.updated_at)


class ProcessIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    marketing_text: CleanStr = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    backgrounds: list[CleanStr] = Field(default_factory=list, max_length=MAX_BACKGROUNDS)
    template_override: CleanStr | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)


class RerunIn(BaseModel):
    """Anything left out is taken from the job being re-run (its exact template included)."""

    model_config = ConfigDict(extra="ignore")

    marketing_text: CleanStr | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    backgrounds: list[CleanStr] | None = Field(default=None, max_length=MAX_BACKGROUNDS)
    template_override: CleanStr | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)


class JobAccepted(BaseModel):
    job_id: str
    status: str


class Source(BaseModel):
    n: int | None = None
    document_id: str | None
    filename: str
    page: int | None
    section: str | None = None
    label: str | None = None
    snippet: str
    score: float | None
    cited: bool = True


class Timings(BaseModel):
    model_config = ConfigDict(extra="allow")

    retrieval_ms: float | None = None
    model_ms: float | None = None
    evidence_ms: float | None = None
    total_ms: float | None = None


class ResultOut(BaseModel):
    job_id: str
    status: str
    mode: str | None
    model: str | None = None
    refined_text: str | None
    partial_text: str | None = None
    sources: list[Source]
    original_request: str
    backgrounds: list[str]
    template: str | None
    prompt: str | None = None
    evidence: dict[str, Any] | None = None
    timings: Timings | None = None
    rerun_of: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> ResultOut:
        result = job.result or {}
        payload = job.payload or {}
        return cls(
            job_id=job.id,
            status=job.status,
            mode=result.get("mode"),
            model=result.get("model"),
            refined_text=result.get("refined_text"),
            partial_text=result.get("partial_text"),
            sources=[Source(**_source(s)) for s in result.get("sources") or []],
            original_request=str(payload.get("marketing_text", "")),
            backgrounds=[str(b) for b in payload.get("backgrounds", [])],
            template=payload.get("template"),
            prompt=result.get("prompt"),
            evidence=result.get("evidence"),
            timings=Timings(**result["timings"]) if result.get("timings") else None,
            rerun_of=payload.get("rerun_of"),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            error=job.error,
        )


class JobSummary(BaseModel):
    job_id: str
    status: str
    mode: str | None
    backgrounds: list[str]
    excerpt: str
    sources: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None

    @classmethod
    def of(cls, job: Job) -> JobSummary:
        result = job.result or {}
        text = " ".join(str((job.payload or {}).get("marketing_text", "")).split())
        return cls(
            job_id=job.id,
            status=job.status,
            mode=result.get("mode"),
            backgrounds=[str(b) for b in (job.payload or {}).get("backgrounds", [])],
            excerpt=text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…",
            sources=len(result.get("sources") or []),
            created_at=job.created_at,
            finished_at=job.finished_at,
            error=job.error,
        )


class BackgroundsOut(BaseModel):
    defaults: list[str]
    recent: list[str]
    max_length: int = MAX_BACKGROUND_CHARS


def _source(raw: Any) -> dict[str, Any]:
    """Sources as stored (also those imported from the original system, with fewer keys)."""
    raw = raw if isinstance(raw, dict) else {}
    return {
        "n": raw.get("n"),
        "document_id": raw.get("document_id"),
        "filename": str(raw.get("filename") or ""),
        "page": raw.get("page") if isinstance(raw.get("page"), int) else None,
        "section": raw.get("section"),
        "label": raw.get("label"),
        "snippet": str(raw.get("snippet") or ""),
        "score": raw.get("score") if isinstance(raw.get("score"), int | float) else None,
        "cited": bool(raw.get("cited", True)),
    }


@router.get("/rag/prompt-template", response_model=TemplateOut)
def get_template(user: CurrentUser, container: ContainerDep) -> TemplateOut:
    return TemplateOut.of(container.templates.get(user.id))


@router.post("/rag/prompt-template", response_model=TemplateOut)
def save_template(body: TemplateIn, user: CurrentUser, container: ContainerDep) -> TemplateOut:
    return TemplateOut.of(container.templates.save(user.id, body.template))


@router.delete("/rag/prompt-template", response_model=TemplateOut)
def reset_template(user: CurrentUser, container: ContainerDep) -> TemplateOut:
    return TemplateOut.of(container.templates.reset(user.id))


@router.get("/rag/backgrounds", response_model=BackgroundsOut)
def backgrounds(user: CurrentUser, container: ContainerDep) -> BackgroundsOut:
    return BackgroundsOut(
        defaults=list(DEFAULT_BACKGROUNDS), recent=container.refine.recent_backgrounds(user.id)
    )


@router.post("/rag/process", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def process(body: ProcessIn, user: CurrentUser, container: ContainerDep) -> JobAccepted:
    job = container.refine.submit(
        user.id,
        marketing_text=body.marketing_text,
        backgrounds=body.backgrounds,
        template_override=body.template_override,
    )
    return JobAccepted(job_id=job.id, status=job.status)


@router.get("/rag/results/{job_id}", response_model=ResultOut)
def result(job_id: str, user: CurrentUser, container: ContainerDep) -> ResultOut:
    return ResultOut.of(container.refine.get(user.id, job_id))


@router.get("/jobs", response_model=list[JobSummary])
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


@router.get("/jobs/{job_id}", response_model=ResultOut)
def job(job_id: str, user: CurrentUser, container: ContainerDep) -> ResultOut:
    return ResultOut.of(container.refine.get(user.id, job_id))


@router.post(
    "/jobs/{job_id}/rerun", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted
)
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
    )
    return JobAccepted(job_id=new.id, status=new.status)
