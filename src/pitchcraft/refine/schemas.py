"""The refine job's request and result, as the API and the pages show them: one type each,
read from the job row in one place."""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from pitchcraft.core.validation import CleanStr
from pitchcraft.jobs.models import Job
from pitchcraft.refine.failures import failure_code
from pitchcraft.refine.service import (
    MAX_BACKGROUND_CHARS,
    MAX_BACKGROUNDS,
    MAX_TEXT_CHARS,
    MAX_VARIANTS,
)
from pitchcraft.search.score import readable_score
from pitchcraft.templates.render import MAX_TEMPLATE_CHARS

EXCERPT_CHARS = 160


class ProcessIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    marketing_text: CleanStr = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    backgrounds: list[CleanStr] = Field(default_factory=list, max_length=MAX_BACKGROUNDS)
    template_override: CleanStr | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    channel: CleanStr | None = Field(
        default=None,
        max_length=64,
        description="A channel id from GET /api/v1/rag/channels: its limit and guidance go "
        "into the prompt, and the copy is measured against the limit.",
    )
    variants: int = Field(
        default=1, ge=1, le=MAX_VARIANTS, strict=True, description="Versions of the copy to write."
    )


class RerunIn(BaseModel):
    """Anything left out is taken from the job being re-run (its exact template included)."""

    model_config = ConfigDict(extra="ignore")

    marketing_text: CleanStr | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    backgrounds: list[CleanStr] | None = Field(default=None, max_length=MAX_BACKGROUNDS)
    template_override: CleanStr | None = Field(default=None, max_length=MAX_TEMPLATE_CHARS)
    channel: CleanStr | None = Field(default=None, max_length=64)
    variants: int | None = Field(default=None, ge=1, le=MAX_VARIANTS, strict=True)


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
    doc_id: str | None = Field(
        default=None, description="The same as `document_id` (the original system's name)."
    )
    filename: str
    file_type: str = Field(
        default="unknown",
        description="The kind of file, from its name: pdf, docx, pptx, ppt, image, text, "
        "markdown, html, or the extension (the original system's field).",
    )
    page: int | None
    section: str | None = None
    label: str | None = None
    snippet: str
    score: float | None = Field(
        description="How close the passage is in meaning to what was searched for, 0-1 (the "
        "cosine similarity of their embeddings), as on search results; null for sources "
        "kept before scores were on this scale."
    )
    rank_score: float | None = Field(
        default=None,
        description="The fused rank score of the search that found the passage (orders "
        "the results of one search; not on a fixed scale).",
    )
    cited: bool = True
    # The passage's place in its document; None for sources saved before it was kept.
    chunk_index: int | None = None
    # A spreadsheet passage's sheet (None for a CSV) and first and last row; else None.
    sheet: str | None = None
    rows: list[int] | None = None


class ChannelUsed(BaseModel):
    id: str
    name: str
    max_chars: int
    guidance: str = ""
    custom: bool = False


class Length(BaseModel):
    chars: int = Field(description="Characters of the text, [n] citations not counted.")
    max_chars: int | None = Field(description="The channel's limit; null without a channel.")
    over_by: int = Field(description="Characters over the limit; 0 within it.")


class DiffOp(BaseModel):
    op: Literal["equal", "insert", "delete"]
    text: str


class StyleFinding(BaseModel):
    kind: Literal["avoid", "banned"]
    term: str = Field(description="The word as the text writes it.")
    suggestion: str | None = Field(description="The glossary's word to use instead.")
    sentence: str


class Variant(BaseModel):
    """One version of the model's copy, checked like the first."""

    text: str
    chars: int
    within_limit: bool
    shortened_from: int | None = Field(
        default=None,
        description="Its length before the automatic shorten retry, when it had one.",
    )
    claims: list[ClaimOut] = Field(default_factory=list)
    style: list[StyleFinding] = Field(default_factory=list)
    diff: list[DiffOp] = Field(default_factory=list)


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
    topics: list[str] = Field(
        default_factory=list,
        description="The same as `backgrounds` (the original system's name).",
    )
    template: str | None
    prompt: str | None = None
    system_prompt: str | None = Field(
        default=None,
        description="The system message sent before `prompt`: how the model is told to read "
        "the fenced passages (data, never instructions).",
    )
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
    channel: ChannelUsed | None = None
    length: Length | None = Field(
        default=None, description="The submitted text against the channel's limit."
    )
    variants: list[Variant] = Field(
        default_factory=list, description="LLM mode: each version; the first is refined_text."
    )
    partial_variants: list[str] | None = None
    diff: list[DiffOp] = Field(
        default_factory=list,
        description="From the original text to refined_text (evidence mode: to the "
        "corrected draft); equal+delete rebuild the original, equal+insert the copy.",
    )
    style: list[StyleFinding] = Field(
        default_factory=list,
        description="Glossary findings: in the model's copy (LLM mode) or the submitted text.",
    )
    timings: Timings | None = None
    rerun_of: str | None = None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    error_code: str | None = Field(
        default=None,
        description="Why a failed job failed: model_unreachable, model_timeout, "
        "model_refused, model_failed, search_unavailable; null otherwise.",
    )

    @classmethod
    def of(cls, job: Job) -> ResultOut:
        result = job.result or {}
        payload = job.payload or {}
        backgrounds = [str(b) for b in payload.get("backgrounds", [])]
        return cls(
            job_id=job.id,
            status=job.status,
            mode=result.get("mode"),
            model=result.get("model"),
            refined_text=result.get("refined_text"),
            partial_text=result.get("partial_text"),
            sources=[Source(**_source(s)) for s in result.get("sources") or []],
            original_request=str(payload.get("marketing_text", "")),
            backgrounds=backgrounds,
            topics=backgrounds,
            template=payload.get("template"),
            prompt=result.get("prompt"),
            system_prompt=result.get("system_prompt"),
            claims=_claims(result.get("claims")) or [],
            output_claims=_claims(result.get("output_claims")),
            corrected_draft=_draft(result.get("corrected_draft")),
            evidence=result.get("evidence"),
            channel=_model(ChannelUsed, result.get("channel")),
            length=_model(Length, result.get("length")),
            variants=_models(Variant, result.get("variants")),
            partial_variants=result.get("partial_variants"),
            diff=_models(DiffOp, result.get("diff")),
            style=_models(StyleFinding, result.get("style")),
            timings=Timings(**result["timings"]) if result.get("timings") else None,
            rerun_of=payload.get("rerun_of"),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            error=job.error,
            error_code=failure_code(job),
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
    filename = str(raw.get("filename") or "")
    score, rank_score = _scores(raw)
    return {
        "n": raw.get("n"),
        "document_id": raw.get("document_id"),
        "doc_id": raw.get("document_id"),
        "filename": filename,
        "file_type": file_type_of(filename),
        "page": raw.get("page") if isinstance(raw.get("page"), int) else None,
        "section": raw.get("section"),
        "label": raw.get("label"),
        "snippet": str(raw.get("snippet") or ""),
        "score": score,
        "rank_score": rank_score,
        "cited": bool(raw.get("cited", True)),
        "chunk_index": _whole(raw.get("chunk_index")),
        "sheet": raw.get("sheet") if isinstance(raw.get("sheet"), str) else None,
        "rows": _rows(raw.get("rows")),
    }


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _scores(raw: dict[str, Any]) -> tuple[float | None, float | None]:
    """(score 0-1, rank score) of a stored source, whichever way it was stored: with both
    (`rank_score` present); from before, when `score` held the rank score (our sources are
    numbered, `n`); or imported from the original system, whose `score` was a similarity."""
    if "rank_score" in raw:
        return readable_score(_number(raw.get("score"))), _number(raw.get("rank_score"))
    if "n" in raw:
        return None, _number(raw.get("score"))
    return readable_score(_number(raw.get("score"))), None


_KINDS = {
    "pdf": "pdf",
    "docx": "docx",
    "pptx": "pptx",
    "ppt": "ppt",
    "txt": "text",
    "md": "markdown",
    "markdown": "markdown",
    "html": "html",
    "htm": "html",
    **dict.fromkeys(("png", "jpg", "jpeg", "gif", "webp", "tif", "tiff", "bmp"), "image"),
}


def file_type_of(filename: str) -> str:
    """The kind of a source's file from its name, in the documents' `file_type` words."""
    extension = PurePath(filename).suffix.lower().lstrip(".")
    if not extension:
        return "unknown"
    return _KINDS.get(extension, extension)


def _rows(value: Any) -> list[int] | None:
    if isinstance(value, list) and len(value) == 2 and all(_whole(v) is not None for v in value):
        return [int(v) for v in value]
    return None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _claims(raw: Any) -> list[ClaimOut] | None:
    """Claims as stored; jobs from before the ledger have none."""
    if not isinstance(raw, list):
        return None
    return [ClaimOut.model_validate(c) for c in raw if isinstance(c, dict)]


M = TypeVar("M", bound=BaseModel)


def _model(cls: type[M], raw: Any) -> M | None:
    return cls.model_validate(raw) if isinstance(raw, dict) else None


def _models(cls: type[M], raw: Any) -> list[M]:
    """Stored items; jobs from before a field existed have none."""
    if not isinstance(raw, list):
        return []
    return [cls.model_validate(x) for x in raw if isinstance(x, dict)]


def _draft(raw: Any) -> list[DraftPiece] | None:
    if not isinstance(raw, list):
        return None
    return [DraftPiece.model_validate(p) for p in raw if isinstance(p, dict)]
