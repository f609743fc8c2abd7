"""The Markdown export: the copy, its variants, its sources and the claim ledger."""

from __future__ import annotations

from pitchcraft.exports.common import (
    copy_text,
    copy_title,
    job_time,
    length_line,
    page_of,
    quotes_by_source,
    source_label,
    source_quote,
)
from pitchcraft.refine.schemas import ClaimOut, ResultOut


def _cell(text: str) -> str:
    """Text safe in a Markdown table cell."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|")


def _ledger(title: str, claims: list[ClaimOut]) -> list[str]:
    lines = [f"### {title}", "", "| Sentence | Verdict | Why | Evidence |", "|---|---|---|---|"]
    for c in claims:
        quotes = "; ".join(f"[{e.n}] “{e.quote}”" for e in c.evidence) or "—"
        lines.append(f"| {_cell(c.text)} | {c.verdict} | {_cell(c.reason)} | {_cell(quotes)} |")
    return [*lines, ""]


def render(r: ResultOut) -> str:
    out = [f"# {copy_title(r)}", "", f"Job {r.job_id}, {job_time(r):%Y-%m-%d %H:%M} UTC."]
    if line := length_line(r):
        out.append(line)
    out += ["", copy_text(r), ""]
    if len(r.variants) > 1:
        out += ["## Variants", ""]
        for i, v in enumerate(r.variants, start=1):
            state = "within the limit" if v.within_limit else "over the limit"
            out += [f"### Variant {i} ({v.chars:,} characters, {state})", "", v.text, ""]
    out += ["## Original text", "", r.original_request, ""]
    if r.style:
        out += ["## Glossary findings", ""]
        for f in r.style:
            fix = f" → “{f.suggestion}”" if f.suggestion else ""
            out.append(f"- {f.kind}: “{f.term}”{fix} in “{' '.join(f.sentence.split())}”")
        out.append("")
    out += ["## Sources", ""]
    if r.sources:
        quotes = quotes_by_source(r)
        out += ["| n | Source | Page | Quote |", "|---|---|---|---|"]
        for s in r.sources:
            n = "" if s.n is None else str(s.n)
            out.append(
                f"| {n} | {_cell(source_label(s))} | {page_of(s)} | "
                f"{_cell(source_quote(s, quotes))} |"
            )
    else:
        out.append("No passage of your documents was used.")
    out += ["", "## Claim ledger", ""]
    out += _ledger("Your text", r.claims)
    if r.output_claims:
        out += _ledger("The refined copy", r.output_claims)
    return "\n".join(out).rstrip() + "\n"
