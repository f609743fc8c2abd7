"""Refine jobs: submit, run (retrieve → prompt → model or evidence brief), read history."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, select, update

from pitchcraft.core.db import Database
from pitchcraft.core.errors import Invalid, NotFound
from pitchcraft.embedding.base import Embedder, EmbeddingError
from pitchcraft.jobs.models import FAILED, RUNNING, SUCCEEDED, Job
from pitchcraft.jobs.queue import enqueue
from pitchcraft.llm.base import LLM, LLMError
from pitchcraft.refine import evidence
from pitchcraft.refine.citations import clean_citations
from pitchcraft.refine.context import (
    Passage,
    format_context,
    is_duplicate,
    renumber,
    select_passages,
    words,
)
from pitchcraft.search.service import Search
from pitchcraft.templates.render import BACKGROUNDS, CONTEXT, MARKETING_TEXT, render, validate
from pitchcraft.templates.service import Templates
from pitchcraft.vectors.base import Hit, VectorStoreLocked

log = logging.getLogger(__name__)

REFINE = "refine"
LLM_MODE, EVIDENCE_MODE = "llm", "evidence"
DEFAULT_BACKGROUNDS = ("cybersecurity", "network security", "marketing", "data analytics", "SaaS")
MAX_TEXT_CHARS = 20_000
MAX_BACKGROUNDS = 20
MAX_BACKGROUND_CHARS = 100
PARTIAL_EVERY_S = 0.75
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)

HandlerResult = tuple[str, str | None, dict[str, Any] | None]


def clean_backgrounds(backgrounds: Sequence[str]) -> list[str]:
    """Trimmed, without blanks or case-insensitive repeats, in the order given."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in backgrounds:
        b = " ".join(raw.split())
        if not b:
            continue
        if len(b) > MAX_BACKGROUND_CHARS:
            raise Invalid(
                f"A background is at most {MAX_BACKGROUND_CHARS} characters.",
                code="invalid_background",
            )
        if b.casefold() not in seen:
            seen.add(b.casefold())
            out.append(b)
    if len(out) > MAX_BACKGROUNDS:
        raise Invalid(f"Choose at most {MAX_BACKGROUNDS} backgrounds.", code="invalid_background")
    return out


def check_text(text: str) -> str:
    if not text.strip():
        raise Invalid("Paste the marketing text to refine.", code="empty_text")
    if len(text) > MAX_TEXT_CHARS:
        raise Invalid(
            f"The marketing text is longer than {MAX_TEXT_CHARS:,} characters; refine it in parts.",
            code="text_too_long",
        )
    return text


@dataclass
class Refine:
    db: Database
    templates: Templates
    search: Search
    embedder: Callable[[], Embedder]
    llm: LLM | None
    context_passages: int = 8
    context_budget_chars: int = 6000
    notify: Callable[[], None] | None = None

    # ---- requests -------------------------------------------------------------------

    def submit(
        self,
        user_id: int,
        *,
        marketing_text: str,
        backgrounds: Sequence[str],
        template_override: str | None = None,
        rerun_of: str | None = None,
    ) -> Job:
        text = check_text(marketing_text)
        chosen = clean_backgrounds(backgrounds)
        if template_override is not None and template_override.strip():
            template = validate(template_override)
        else:
            template = self.templates.get(user_id).template
        payload: dict[str, Any] = {
            "marketing_text": text,
            "backgrounds": chosen,
            "template": template,
            "template_override": template_override is not None and bool(template_override.strip()),
        }
        if rerun_of:
            payload["rerun_of"] = rerun_of
        with self.db.session() as s:
            job = enqueue(s, kind=REFINE, user_id=user_id, payload=payload)
            s.flush()
            s.expunge(job)
        if self.notify:
            self.notify()
        return job

    def rerun(
        self,
        user_id: int,
        job_id: str,
        *,
        marketing_text: str | None = None,
        backgrounds: Sequence[str] | None = None,
        template_override: str | None = None,
    ) -> Job:
        old = self.get(user_id, job_id)
        return self.submit(
            user_id,
            marketing_text=old.payload.get("marketing_text", "")
            if marketing_text is None
            else marketing_text,
            backgrounds=old.payload.get("backgrounds", []) if backgrounds is None else backgrounds,
            template_override=old.payload.get("template")
            if template_override is None
            else template_override,
            rerun_of=old.id,
        )

    def get(self, user_id: int, job_id: str) -> Job:
        with self.db.session() as s:
            # No id has a NUL (which PostgreSQL cannot even compare): not found, not a 500.
            job = s.get(Job, job_id) if len(job_id) <= 64 and "\x00" not in job_id else None
            if job is None or job.user_id != user_id or job.kind != REFINE:
                raise NotFound("No such job.", code="job_not_found")
            s.expunge(job)
            return job

    def history(self, user_id: int, *, limit: int, offset: int) -> tuple[list[Job], int]:
        where = (Job.user_id == user_id, Job.kind == REFINE)
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(Job).where(*where)) or 0
            jobs = list(
                s.scalars(
                    select(Job)
                    .where(*where)
                    .order_by(Job.created_at.desc(), Job.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            for job in jobs:
                s.expunge(job)
            return jobs, total

    def recent_backgrounds(self, user_id: int, limit: int = 20) -> list[str]:
        """Backgrounds the user typed in earlier jobs, newest first (not the defaults)."""
        jobs, _ = self.history(user_id, limit=100, offset=0)
        defaults = {b.casefold() for b in DEFAULT_BACKGROUNDS}
        seen: set[str] = set()
        out: list[str] = []
        for job in jobs:
            for b in job.payload.get("backgrounds", []):
                if isinstance(b, str) and b.casefold() not in defaults | seen:
                    seen.add(b.casefold())
                    out.append(b)
        return out[:limit]

    # ---- the job --------------------------------------------------------------------

    def run(self, job: Job, beat: Callable[[float], bool]) -> HandlerResult:
        started = time.perf_counter()
        text = str(job.payload.get("marketing_text", ""))
        backgrounds = [str(b) for b in job.payload.get("backgrounds", [])]
        template = str(job.payload.get("template", ""))
        timings: dict[str, float] = {}
        try:
            hits = self.search.search(
                job.user_id, text, backgrounds, limit=self.context_passages * 3
            )
        except (EmbeddingError, VectorStoreLocked) as exc:
            return FAILED, f"could not search your documents: {exc}", None
        passages = select_passages(
            hits, max_passages=self.context_passages, budget_chars=self.context_budget_chars
        )
        prompt = render(
            template,
            {
                BACKGROUNDS: ", ".join(backgrounds) or "(no background chosen)",
                MARKETING_TEXT: text,
                CONTEXT: format_context(passages),
            },
        )
        timings["retrieval_ms"] = _ms(started)
        if not beat(0.3):
            return "lost", None, None
        base: dict[str, Any] = {"prompt": prompt, "timings": timings}
        if self.llm is None:
            return self._evidence(job, text, backgrounds, passages, prompt, hits, base, started)
        return self._with_model(job, passages, prompt, base, started, beat)

    def _with_model(
        self,
        job: Job,
        passages: list[Passage],
        prompt: str,
        base: dict[str, Any],
        started: float,
        beat: Callable[[float], bool],
    ) -> HandlerResult:
        assert self.llm is not None
        model_started = time.perf_counter()
        messages = [{"role": "user", "content": prompt}]
        answer: list[str] = []
        last_saved = time.perf_counter()
        try:
            with closing(self.llm.stream(messages)) as deltas:  # type: ignore[type-var]
                for delta in deltas:
                    answer.append(delta)
                    if time.perf_counter() - last_saved >= PARTIAL_EVERY_S:
                        last_saved = time.perf_counter()
                        if not self._save_partial(job, visible_answer("".join(answer))):
                            return "lost", None, None
        except LLMError as exc:
            base["timings"]["model_ms"] = _ms(model_started)
            result = {
                **base,
                "mode": LLM_MODE,
                "model": self.llm.model,
                "refined_text": None,
                "sources": [p.source(cited=False) for p in passages],
            }
            return FAILED, str(exc), result
        refined, order = clean_citations(visible_answer("".join(answer)), len(passages))
        base["timings"]["model_ms"] = _ms(model_started)
        base["timings"]["total_ms"] = _ms(started)
        if not refined.strip():
            return FAILED, "the language model returned an empty answer", None
        numbered = renumber(passages, order)
        cited = set(range(1, len(order) + 1))
        return (
            SUCCEEDED,
            None,
            {
                **base,
                "mode": LLM_MODE,
                "model": self.llm.model,
                "refined_text": refined,
                "sources": [p.source(cited=p.n in cited) for p in numbered],
            },
        )

    def _save_partial(self, job: Job, text: str) -> bool:
        """Show the answer as it streams in; False when the job is no longer ours."""
        with self.db.session() as s:
            done = s.execute(
                update(Job)
                .where(Job.id == job.id, Job.locked_by == job.locked_by, Job.status == RUNNING)
                .values(result={"mode": LLM_MODE, "partial_text": text})
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def _evidence(
        self,
        job: Job,
        text: str,
        backgrounds: list[str],
        passages: list[Passage],
        prompt: str,
        hits: list[Hit],
        base: dict[str, Any],
        started: float,
    ) -> HandlerResult:
        evidence_started = time.perf_counter()
        sentences_all = evidence.split_sentences(text)
        sentences = sentences_all[: evidence.MAX_SENTENCES]
        queries = [*sentences, *backgrounds]
        has_documents = bool(hits)
        pool: list[Passage] = list(passages)
        found: list[list[Passage]] = []
        for query in queries if has_documents else []:
            candidates: list[Passage] = []
            for hit in self.search.search(job.user_id, query, (), limit=4):
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
        support: list[list[evidence.Support]] = [[] for _ in queries]
        if found:
            needed = list({p.n: p for candidates in found for p in candidates}.values())
            vectors = self.embedder().embed_queries([*queries, *(p.text for p in needed)])
            query_vectors, passage_vectors = vectors[: len(queries)], vectors[len(queries) :]
            by_n = {p.n: v for p, v in zip(needed, passage_vectors, strict=True)}
            for i, candidates in enumerate(found):
                scored = [
                    evidence.Support(p.n, _cosine(query_vectors[i], by_n[p.n])) for p in candidates
                ]
                scored = [x for x in scored if evidence.strength(x.similarity)]
                support[i] = sorted(scored, key=lambda x: x.similarity, reverse=True)[:2]
        per_sentence = [
            evidence.SentenceEvidence(sentence, support[i]) for i, sentence in enumerate(sentences)
        ]
        per_background = [
            evidence.BackgroundEvidence(b, support[len(sentences) + i])
            for i, b in enumerate(backgrounds)
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
        listed = sorted(
            (_with_n(p, renamed[p.n]) for p in pool if p.n in renamed), key=lambda p: p.n
        )
        brief = evidence.brief(
            sentences=per_sentence,
            skipped_sentences=len(sentences_all) - len(sentences),
            backgrounds=per_background,
            passages=listed,
            prompt=prompt,
            has_documents=has_documents,
        )
        base["timings"]["evidence_ms"] = _ms(evidence_started)
        base["timings"]["total_ms"] = _ms(started)
        return (
            SUCCEEDED,
            None,
            {
                **base,
                "mode": EVIDENCE_MODE,
                "model": None,
                "refined_text": brief,
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
        )


def visible_answer(text: str) -> str:
    """The answer without the reasoning some models (DeepSeek-R1, Qwen3 on Ollama or vLLM)
    put in <think> tags, including an unfinished one while the answer streams in."""
    return _THINK.sub("", text).strip()


def _with_n(p: Passage, n: int) -> Passage:
    return replace(p, n=n)


def _same_chunk(p: Passage, hit: Hit) -> bool:
    return (
        p.document_id == hit.document_id
        and p.page == hit.page
        and p.text[:120] == hit.text.strip()[:120]
    )


def _support(s: evidence.Support) -> dict[str, Any]:
    return {"n": s.n, "similarity": round(s.similarity, 4), "strength": s.strength}


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
