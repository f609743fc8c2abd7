"""Evidence mode: what the product gives when no language model is configured.

It never invents a rewrite. The claim ledger says, sentence by sentence, whether the user's
documents state what the text says (with the words that show it), a corrected draft puts
the documents' values in place of contradicted ones and marks what nothing backs, and the
rendered prompt is there to paste into any assistant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pitchcraft.refine.context import Passage

VERDICTS = ("supported", "partial", "contradicted", "unsupported")
MAX_SENTENCES = 40


def counts(claims: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many claims got each verdict, every verdict present (0 when none)."""
    out = dict.fromkeys(VERDICTS, 0)
    for claim in claims:
        verdict = str(claim.get("verdict"))
        if verdict in out:
            out[verdict] += 1
    return out


def summary(by_verdict: Mapping[str, int]) -> str:
    """`7 claims: 4 supported, 1 partial, 1 contradicted, 1 unsupported`."""
    total = sum(by_verdict.values())
    if not total:
        return "No claims to check."
    noun = "claim" if total == 1 else "claims"
    parts = [f"{by_verdict[v]} {v}" for v in VERDICTS if by_verdict.get(v)]
    return f"{total} {noun}: " + ", ".join(parts)


def draft_text(pieces: Sequence[Mapping[str, Any]]) -> str:
    """The corrected draft as plain text: replacements applied, flagged sentences marked."""
    out: list[str] = []
    for piece in pieces:
        op, text = piece.get("op"), str(piece.get("text") or "")
        if op == "replace":
            out.append(str(piece.get("new") or text))
        elif op == "flag":
            out.append(f"{text} [check: nothing in your documents states this]")
        else:
            out.append(text)
    return "".join(out).strip()


def format_claims(claims: Sequence[Mapping[str, Any]], passages: Sequence[Passage]) -> list[str]:
    by_n = {p.n: p for p in passages}
    lines: list[str] = []
    for i, claim in enumerate(claims, start=1):
        lines.append(f"{i}. “{claim['text']}”")
        lines.append(f"   {str(claim['verdict']).upper()}: {claim['reason']}")
        for ev in claim.get("evidence") or []:
            p = by_n.get(int(ev["n"]))
            label = p.label if p else "source"
            lines.append(f"   [{ev['n']}] {label}: “{ev['quote']}”")
    return lines


def brief(
    *,
    claims: Sequence[Mapping[str, Any]],
    skipped_sentences: int,
    draft: Sequence[Mapping[str, Any]],
    passages: Sequence[Passage],
    prompt: str,
    has_documents: bool,
) -> str:
    """The evidence brief: the text shown in place of a rewrite."""
    out = [
        "EVIDENCE BRIEF: no language model is configured, so your text has not been "
        "rewritten. Each sentence of your text is checked against your own documents: "
        "supported, partial, contradicted or unsupported, with the words that show it. Then "
        "a corrected draft, and the complete prompt, ready to paste into any assistant.",
        "",
    ]
    if not has_documents:
        out += [
            "You have no indexed documents yet: upload some on the Documents page so your "
            "claims can be checked.",
            "",
        ]
    elif not passages:
        out += ["Nothing in your documents speaks to this text.", ""]
    out.append(f"YOUR CLAIMS ({summary(counts(claims))})")
    out += format_claims(claims, passages)
    if skipped_sentences:
        out.append(f"… and {skipped_sentences} more sentence(s), not checked.")
    out += ["", "CORRECTED DRAFT", draft_text(draft) or "(nothing to correct)"]
    out += ["", "PROMPT READY TO PASTE", prompt]
    return "\n".join(out)
