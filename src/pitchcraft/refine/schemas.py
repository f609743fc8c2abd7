"""The refine job's request and result, as the API and the pages show them: one type each,
read from the job row in one place."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.core.validation import CleanStr
from pitchcraft.jobs.models import Job
from pitchcraft.refine.service import MAX_BACKGROUND_CHARS, MAX_BACKGROUNDS, MAX_TEXT_CHARS
from pitchcraft.templates.render import MAX_TEMPLATE_CHARS

EXCERPT_CHARS = 160


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


class Quote(BaseModel):
    n: int = Field(description="The number of the source the quote is taken from.")
    quote: str = Field(description="Words copied verbatim from that source's snippet.")


class Check(BaseModel):
    kind: Literal["number", "date", "name", "term"]
    text: str = Field(description="The value or words as the sentence states them.")
    found: bool
    document_value: str | None = Field(
        default=None, description="What the documents state instead, when they differ."
    )


class ClaimOut(BaseModel):
    """One sentence of a text, checked against the job's sources."""

    text: str
    verdict: Literal["supported", "partial", "contradicted", "unsupported"]
    reason: str
    evidence: list[Quote] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)


class DraftPiece(BaseModel):
    """A stretch of the corrected draft: kept as written, replaced by the documents' value,
    or flagged because nothing in the documents states it."""

    op: Literal["equal", "replace", "flag"]
    text: str
    new: str | None = None
    reason: str | None = None


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
    # The passage's place in its document; None for sources saved before it was kept.
    chunk_index: int | None = None


class Timings(BaseModel):
    model_config = ConfigDict(extra="allow")

    # From the request to a worker taking it up (the rest are the run's own steps).
    queued_ms: float | None = None
    retrieval_ms: float | None = None
    claims_ms: float | None = None
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
    claims: list[ClaimOut] = Field(
        default_factory=list, description="The submitted text, sentence by sentence, checked."
    )
    output_claims: list[ClaimOut] | None = Field(
        default=None, description="LLM mode: the refined text, sentence by sentence, checked."
    )
    corrected_draft: list[DraftPiece] | None = Field(
        default=None, description="Evidence mode: the text with the documents' values in place."
    )
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
            claims=_claims(result.get("claims")) or [],
            output_claims=_claims(result.get("output_claims")),
            corrected_draft=_draft(result.get("corrected_draft")),
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
        "chunk_index": _whole(raw.get("chunk_index")),
    }


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _claims(raw: Any) -> list[ClaimOut] | None:
    """Claims as stored; jobs from before the ledger have none."""
    if not isinstance(raw, list):
        return None
    return [ClaimOut.model_validate(c) for c in raw if isinstance(c, dict)]


def _draft(raw: Any) -> list[DraftPiece] | None:
    if not isinstance(raw, list):
        return None
    return [DraftPiece.model_validate(p) for p in raw if isinstance(p, dict)]
