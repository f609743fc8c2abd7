"""Evidence mode: what the product gives when no language model is configured.

It never invents a rewrite. For each sentence of the marketing text it shows the passages
of the user's documents that support it (or says that none do), the passages that speak to
each chosen background, and the fully rendered prompt to paste into any assistant.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pitchcraft.embedding.base import Embedder
from pitchcraft.refine.context import Passage, is_duplicate, trim, words
from pitchcraft.search.service import Search
from pitchcraft.vectors.base import Hit

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


@dataclass(frozen=True)
class Gathered:
    result: dict[str, Any]  # refined_text (the brief), sources, evidence
    ms: float


def gather(
    search: Search,
    embedder: Embedder,
    *,
    user_id: int,
    text: str,
    backgrounds: list[str],
    passages: list[Passage],
    has_documents: bool,
    prompt: str,
) -> Gathered:
    """The brief for `text`: each sentence's and each background's best passages."""
    evidence_started = time.perf_counter()
    sentences_all = split_sentences(text)
    sentences = sentences_all[:MAX_SENTENCES]
    queries = [*sentences, *backgrounds]
    pool: list[Passage] = list(passages)
    found: list[list[Passage]] = []
    for query in queries if has_documents else []:
        candidates: list[Passage] = []
        for hit in search.search(user_id, query, (), limit=4):
            match = next((p for p in pool if _same_chunk(p, hit)), None)
            if match is None:
                if is_duplicate(hit.text, [words(p.text) for p in pool]):
                    continue
                match = Passage.of(hit, n=1000 + len(pool))
                pool.append(match)
            candidates.append(match)
        found.append(candidates)
    # One batch for every query and passage: how closely each passage says what the
    # sentence (or background) says, on an absolute scale that fused ranks lack.
    support: list[list[Support]] = [[] for _ in queries]
    if found:
        needed = list({p.n: p for candidates in found for p in candidates}.values())
        vectors = embedder.embed_queries([*queries, *(p.text for p in needed)])
        query_vectors, passage_vectors = vectors[: len(queries)], vectors[len(queries) :]
        by_n = {p.n: v for p, v in zip(needed, passage_vectors, strict=True)}
        for i, candidates in enumerate(found):
            scored = [Support(p.n, _cosine(query_vectors[i], by_n[p.n])) for p in candidates]
            scored = [x for x in scored if strength(x.similarity)]
            support[i] = sorted(scored, key=lambda x: x.similarity, reverse=True)[:2]
    per_sentence = [SentenceEvidence(sentence, support[i]) for i, sentence in enumerate(sentences)]
    per_background = [
        BackgroundEvidence(b, support[len(sentences) + i]) for i, b in enumerate(backgrounds)
    ]
    # Passages found beyond the prompt's context get numbers after it, in first-use order.
    renamed: dict[int, int] = {p.n: p.n for p in passages}
    supports = [s for e in per_sentence for s in e.support] + [
        s for b in per_background for s in b.support
    ]
    for s in supports:
        if s.n not in renamed:
            renamed[s.n] = len(renamed) + 1
        s.n = renamed[s.n]
    cited = {s.n for s in supports}
    listed = sorted((_with_n(p, renamed[p.n]) for p in pool if p.n in renamed), key=lambda p: p.n)
    text_out = brief(
        sentences=per_sentence,
        skipped_sentences=len(sentences_all) - len(sentences),
        backgrounds=per_background,
        passages=listed,
        prompt=prompt,
        has_documents=has_documents,
    )
    return Gathered(
        result={
            "refined_text": text_out,
            "sources": [p.source(cited=p.n in cited) for p in listed],
            "evidence": {
                "sentences": [
                    {"text": e.text, "support": [_support(s) for s in e.support]}
                    for e in per_sentence
                ],
                "backgrounds": [
                    {"background": e.background, "support": [_support(s) for s in e.support]}
                    for e in per_background
                ],
            },
        },
        ms=round((time.perf_counter() - evidence_started) * 1000, 1),
    )


def _with_n(p: Passage, n: int) -> Passage:
    return replace(p, n=n)


def _same_chunk(p: Passage, hit: Hit) -> bool:
    return (
        p.document_id == hit.document_id
        and p.page == hit.page
        and p.text[:120] == hit.text.strip()[:120]
    )


def _support(s: Support) -> dict[str, Any]:
    return {"n": s.n, "similarity": round(s.similarity, 4), "strength": s.strength}


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
