"""The refine job: retrieve → prompt → the model's answer, streamed, or the evidence brief."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from pitchcraft.core.db import Database
from pitchcraft.embedding.base import Embedder, EmbeddingError
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import Job
from pitchcraft.jobs.worker import Beat, Outcome
from pitchcraft.llm.base import LLM, LLMError
from pitchcraft.refine import evidence
from pitchcraft.refine.citations import clean_citations
from pitchcraft.refine.context import Passage, format_context, renumber, select_passages
from pitchcraft.refine.service import REFINE
from pitchcraft.search.service import Search
from pitchcraft.templates.render import BACKGROUNDS, CONTEXT, MARKETING_TEXT, render
from pitchcraft.vectors.base import Hit, VectorStoreLocked

__all__ = ["EVIDENCE_MODE", "LLM_MODE", "REFINE", "Runner", "visible_answer"]

LLM_MODE, EVIDENCE_MODE = "llm", "evidence"
PARTIAL_EVERY_S = 0.75
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)


@dataclass
class Runner:
    db: Database
    search: Search
    embedder: Callable[[], Embedder]
    llm: LLM | None
    context_passages: int = 8
    context_budget_chars: int = 6000

    def run(self, job: Job, beat: Beat) -> Outcome:
        """The handler of `refine` jobs."""
        started = time.perf_counter()
        text = str(job.payload.get("marketing_text", ""))
        backgrounds = [str(b) for b in job.payload.get("backgrounds", [])]
        template = str(job.payload.get("template", ""))
        timings: dict[str, float] = {}
        try:
            hits, candidates = self._context_hits(job.user_id, text, backgrounds)
        except (EmbeddingError, VectorStoreLocked) as exc:
            return Outcome.failed(f"could not search your documents: {exc}")
        passages = select_passages(
            hits,
            max_passages=self.context_passages,
            budget_chars=self.context_budget_chars,
        )
        prompt = render(
            template,
            {
                BACKGROUNDS: ", ".join(backgrounds) or "(no background chosen)",
                MARKETING_TEXT: text,
                CONTEXT: format_context(passages),
            },
        )
        timings["retrieval_ms"] = ms_since(started)
        if not beat(0.3):
            return Outcome.lost()
        base: dict[str, Any] = {"prompt": prompt, "timings": timings}
        if self.llm is None:
            found = evidence.gather(
                self.search,
                self.embedder(),
                user_id=job.user_id,
                text=text,
                backgrounds=backgrounds,
                passages=passages,
                # Documents with nothing relevant to the whole text still get searched
                # sentence by sentence.
                has_documents=candidates > 0,
                prompt=prompt,
            )
            timings["evidence_ms"] = found.ms
            timings["total_ms"] = ms_since(started)
            return Outcome.succeeded({**base, "mode": EVIDENCE_MODE, "model": None, **found.result})
        return self._with_model(job, passages, prompt, base, started)

    def _context_hits(
        self, user_id: int, text: str, backgrounds: list[str]
    ) -> tuple[list[Hit], int]:
        """The passages above the relevance floor for the whole text, then for each of its
        sentences (one embedding batch): a passage that speaks to one claim of a text of
        several is context for it, though its similarity to the whole text is diluted.
        Also the number of candidates before the floor (0: nothing searchable)."""
        whole = self.search.find(user_id, text, backgrounds, limit=self.context_passages * 3)
        hits = list(whole.hits)
        sentences = evidence.split_sentences(text)[: evidence.MAX_SENTENCES]
        if len(sentences) > 1:
            # Copies of a passage found twice are dropped by select_passages.
            for outcome in self.search.find_many(user_id, sentences, limit=4):
                hits.extend(outcome.hits)
        return hits, whole.candidates

    def _with_model(
        self,
        job: Job,
        passages: list[Passage],
        prompt: str,
        base: dict[str, Any],
        started: float,
    ) -> Outcome:
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
                            return Outcome.lost()
        except LLMError as exc:
            base["timings"]["model_ms"] = ms_since(model_started)
            result = {
                **base,
                "mode": LLM_MODE,
                "model": self.llm.model,
                "refined_text": None,
                "sources": [p.source(cited=False) for p in passages],
            }
            return Outcome.failed(str(exc), result)
        refined, order = clean_citations(visible_answer("".join(answer)), len(passages))
        base["timings"]["model_ms"] = ms_since(model_started)
        base["timings"]["total_ms"] = ms_since(started)
        if not refined.strip():
            return Outcome.failed("the language model returned an empty answer")
        numbered = renumber(passages, order)
        cited = set(range(1, len(order) + 1))
        return Outcome.succeeded(
            {
                **base,
                "mode": LLM_MODE,
                "model": self.llm.model,
                "refined_text": refined,
                "sources": [p.source(cited=p.n in cited) for p in numbered],
            }
        )

    def _save_partial(self, job: Job, text: str) -> bool:
        """Show the answer as it streams in; False when the job is no longer ours."""
        assert job.locked_by is not None
        partial = {"mode": LLM_MODE, "partial_text": text}
        return queue.save_partial(self.db, job.id, worker_id=job.locked_by, result=partial)


def visible_answer(text: str) -> str:
    """The answer without the reasoning some models (DeepSeek-R1, Qwen3 on Ollama or vLLM)
    put in <think> tags, including an unfinished one while the answer streams in."""
    return _THINK.sub("", text).strip()


def ms_since(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
