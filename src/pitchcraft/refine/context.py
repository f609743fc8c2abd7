"""From search hits to the numbered context passages a prompt carries.

Passages are taken best first, near-duplicates dropped (the same text indexed twice, a page
repeated in two files), at most a few per document before any document gets more, so the
context shows the breadth of the user's material, and within a character budget.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath
from typing import Any

from pitchcraft.vectors.base import Hit

_WORD = re.compile(r"\w+", re.UNICODE)
SLIDE_TYPES = {".pptx", ".ppt", ".odp", ".key"}
DUPLICATE_JACCARD = 0.8
MIN_TRIMMED_CHARS = 200


@dataclass(frozen=True)
class Passage:
    n: int
    document_id: str
    filename: str
    page: int | None
    section: str | None
    text: str
    score: float

    @property
    def label(self) -> str:
        """The source label a reader can check: `deck.pptx, slide 4`, `brief.pdf, page 3`."""
        if self.page is not None:
            unit = "slide" if PurePath(self.filename).suffix.lower() in SLIDE_TYPES else "page"
            return f"{self.filename}, {unit} {self.page}"
        if self.section:
            return f'{self.filename}, section "{self.section}"'
        return self.filename

    def source(self, *, cited: bool = True) -> dict[str, Any]:
        return {
            "n": self.n,
            "document_id": self.document_id,
            "filename": self.filename,
            "page": self.page,
            "section": self.section,
            "label": self.label,
            "snippet": self.text,
            "score": round(self.score, 6),
            "cited": cited,
        }

    @classmethod
    def of(cls, hit: Hit, n: int = 0, text: str | None = None) -> Passage:
        return cls(
            n=n,
            document_id=hit.document_id,
            filename=hit.filename,
            page=hit.page,
            section=hit.section,
            text=(hit.text if text is None else text).strip(),
            score=hit.score,
        )


def words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def is_duplicate(text: str, chosen: Sequence[set[str]]) -> bool:
    mine = words(text)
    if not mine:
        return True
    for other in chosen:
        overlap = len(mine & other) / len(mine | other)
        if overlap >= DUPLICATE_JACCARD:
            return True
    return False


def trim(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a sentence or word boundary, marked with `…`."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 1)]
    sentence_end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("\n"))
    if sentence_end >= limit * 0.6:
        return cut[: sentence_end + 1].rstrip() + " …"
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut).rstrip() + " …"


def select_passages(
    hits: Sequence[Hit], *, max_passages: int, budget_chars: int, first_n: int = 1
) -> list[Passage]:
    """The passages for the prompt, numbered from `first_n`, in relevance order."""
    candidates: list[Hit] = []
    seen: list[set[str]] = []
    for hit in hits:
        if not is_duplicate(hit.text, seen):
            candidates.append(hit)
            seen.append(words(hit.text))

    documents = {h.document_id for h in candidates}
    per_document = max(2, math.ceil(max_passages / max(1, len(documents))))
    picked: list[Hit] = []
    taken: dict[str, int] = {}
    # First pass spreads the context over documents; the second fills what is left.
    for spread in (True, False):
        for hit in candidates:
            if len(picked) >= max_passages:
                break
            if hit in picked or (spread and taken.get(hit.document_id, 0) >= per_document):
                continue
            picked.append(hit)
            taken[hit.document_id] = taken.get(hit.document_id, 0) + 1
    picked.sort(key=lambda h: h.score, reverse=True)

    passages: list[Passage] = []
    used = 0
    for hit in picked:
        text = hit.text.strip()
        room = budget_chars - used
        if len(text) > room:
            if room < MIN_TRIMMED_CHARS:
                break
            text = trim(text, room)
        passages.append(Passage.of(hit, first_n + len(passages), text))
        used += len(text)
    return passages


def format_context(passages: Sequence[Passage]) -> str:
    if not passages:
        # The search's relevance floor left nothing: say so rather than pass on noise.
        return "(No passages: nothing in the user's documents speaks to this text.)"
    return "\n\n".join(f"[{p.n}] {p.label}: {p.text}" for p in passages)


def renumber(passages: Sequence[Passage], order: Sequence[int]) -> list[Passage]:
    """The passages whose old numbers are in `order`, renumbered 1.. in that order,
    then the rest in their old order."""
    by_n = {p.n: p for p in passages}
    first = [by_n[n] for n in order if n in by_n]
    rest = [p for p in passages if p.n not in set(order)]
    return [replace(p, n=i) for i, p in enumerate([*first, *rest], start=1)]
