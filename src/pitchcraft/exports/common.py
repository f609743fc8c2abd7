"""What both exports take from a job: the copy, its title, its sources' quotes."""

from __future__ import annotations

from datetime import UTC, datetime

from pitchcraft.core.errors import Conflict
from pitchcraft.refine.schemas import ResultOut, Source

AUTHOR = "Pitchcraft"
QUOTE_CHARS = 300


def finished(r: ResultOut) -> ResultOut:
    if r.status != "succeeded":
        raise Conflict(
            "Only a finished result can be exported; this one is "
            f"{r.status}. Wait for it, or run it again.",
            code="job_not_finished",
        )
    return r


def job_time(r: ResultOut) -> datetime:
    at = r.finished_at or r.created_at
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def filename(r: ResultOut, ext: str) -> str:
    """`refined-2026-12-06-1420.docx`: what it is and when the job ran (UTC)."""
    return f"refined-{job_time(r).astimezone(UTC):%Y-%m-%d-%H%M}.{ext}"


def copy_text(r: ResultOut) -> str:
    """The copy: the model's first version, or (evidence mode) the corrected draft."""
    if r.mode == "llm" and r.refined_text:
        return r.refined_text
    return "".join(d.text for d in r.diff if d.op != "delete") or r.original_request


def copy_title(r: ResultOut) -> str:
    return "Refined copy" if r.mode == "llm" else "Corrected draft (evidence mode, not a rewrite)"


def quotes_by_source(r: ResultOut) -> dict[int, list[str]]:
    """The words the ledger quotes from each source, in order, once each."""
    out: dict[int, list[str]] = {}
    for claim in [*r.claims, *(r.output_claims or [])]:
        for e in claim.evidence:
            seen = out.setdefault(e.n, [])
            if e.quote not in seen:
                seen.append(e.quote)
    return out


def source_quote(s: Source, quotes: dict[int, list[str]]) -> str:
    quoted = quotes.get(s.n or -1)
    if quoted:
        return " … ".join(quoted)
    text = " ".join(s.snippet.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def source_label(s: Source) -> str:
    return s.label or s.filename


def page_of(s: Source) -> str:
    return "" if s.page is None else str(s.page)


def length_line(r: ResultOut) -> str | None:
    if r.channel is None:
        return None
    return f"Channel: {r.channel.name}, at most {r.channel.max_chars:,} characters."
