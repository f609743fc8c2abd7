"""Evidence mode: what the product gives when no language model is configured.

It never invents a rewrite. For each sentence of the marketing text it shows the passages
of the user's documents that support it (or says that none do), the passages that speak to
each chosen background, and the fully rendered prompt to paste into any assistant.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from pitchcraft.refine.context import Passage, trim

MAX_SENTENCES = 20
STRONG, RELATED = 0.5, 0.3  # cosine similarity of MiniLM vectors (sentence vs passage)
QUOTE_CHARS = 220

# A sentence ends at . ! ? … (optionally followed by a closing quote or bracket) before
# whitespace and a capital, digit or opening quote; a line break always ends one.
_CLOSING = "\"'\u201d\u2019)\\]"  # straight and typographic closing quotes, brackets
_OPENING = "\"'\u201c\u2018(\\["
_SENTENCE_END = re.compile(rf"(?<=[.!?…])[{_CLOSING}]*\s+(?=[{_OPENING}]?[A-ZÀ-ÖØ-Þ0-9])")
_BULLET = re.compile(r"^\s*(?:[-*•\u2013]|\d+[.)])\s+")


def split_sentences(text: str) -> list[str]:
    sentences: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        sentences.extend(s.strip() for s in _SENTENCE_END.split(line) if s.strip())
    return sentences


def strength(similarity: float) -> str | None:
    if similarity >= STRONG:
        return "strong"
    if similarity >= RELATED:
        return "related"
    return None


@dataclass
class Support:
    n: int
    similarity: float

    @property
    def strength(self) -> str:
        return strength(self.similarity) or "weak"


@dataclass
class SentenceEvidence:
    text: str
    support: list[Support] = field(default_factory=list)


@dataclass
class BackgroundEvidence:
    background: str
    support: list[Support] = field(default_factory=list)


def brief(
    *,
    sentences: Sequence[SentenceEvidence],
    skipped_sentences: int,
    backgrounds: Sequence[BackgroundEvidence],
    passages: Sequence[Passage],
    prompt: str,
    has_documents: bool,
) -> str:
    by_n = {p.n: p for p in passages}
    out = [
        "EVIDENCE BRIEF: no language model is configured, so your text has not been "
        "rewritten. Each sentence of your text is listed with the passages of your own "
        "documents that support it; then the passages that speak to each background; then "
        "the complete prompt, ready to paste into any assistant.",
        "",
    ]
    if not has_documents:
        out += [
            "You have no indexed documents yet: upload some on the Documents page so the "
            "brief can cite them.",
            "",
        ]
    out.append("YOUR TEXT, SENTENCE BY SENTENCE")
    for i, sentence in enumerate(sentences, start=1):
        out.append(f"{i}. “{sentence.text}”")
        if not sentence.support:
            out.append(
                "   No supporting passage found in your documents: check this claim, or soften it."
            )
        for s in sentence.support:
            p = by_n[s.n]
            out.append(
                f"   [{s.n}] {p.label} ({s.strength} match, {s.similarity:.2f}): "
                f"“{trim(p.text, QUOTE_CHARS)}”"
            )
    if skipped_sentences:
        out.append(f"… and {skipped_sentences} more sentence(s), not analysed.")
    if backgrounds:
        out += ["", "PASSAGES BY BACKGROUND"]
        for b in backgrounds:
            if b.support:
                cited = "; ".join(f"[{s.n}] {by_n[s.n].label}" for s in b.support)
                out.append(f"• {b.background}: {cited}")
            else:
                out.append(f"• {b.background}: nothing in your documents speaks to it.")
    out += ["", "PROMPT READY TO PASTE", prompt]
    return "\n".join(out)
