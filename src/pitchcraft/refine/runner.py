"""The refine job: retrieve → check each claim → prompt → the model's answer, streamed, or the
evidence brief. The passages the ledger quotes, the prompt's context and the job's sources are
one numbered list."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from pitchcraft.core.db import Database
from pitchcraft.embedding.base import EmbeddingError
from pitchcraft.glossary.rules import Glossary, from_stored
from pitchcraft.glossary.rules import prompt_text as glossary_text
from pitchcraft.glossary.style import findings
from pitchcraft.grounding import Claim, check_claims, corrected_draft, split_sentences
from pitchcraft.grounding import Passage as Evidence
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import Job
from pitchcraft.jobs.worker import Beat, Outcome
from pitchcraft.llm.base import LLM, LLMError
from pitchcraft.refine import evidence, variants
from pitchcraft.refine.citations import citations_in, clean_citations
from pitchcraft.refine.context import (
    SYSTEM_PROMPT,
    Passage,
    format_context,
    messages_for,
    select_for_claims,
)
from pitchcraft.refine.copy import chars, length
from pitchcraft.refine.diff import word_diff
from pitchcraft.refine.failures import FAILURE, MODEL_FAILED, SEARCH_UNAVAILABLE, model_failure
from pitchcraft.refine.service import REFINE
from pitchcraft.search.service import Search
from pitchcraft.templates.render import (
    BACKGROUNDS,
    CHANNEL,
    CONTEXT,
    GLOSSARY,
    MARKETING_TEXT,
    render,
)
from pitchcraft.vectors.base import VectorStoreLocked

__all__ = ["EVIDENCE_MODE", "LLM_MODE", "REFINE", "Ledger", "Runner", "visible_answer"]

LLM_MODE, EVIDENCE_MODE = "llm", "evidence"
PARTIAL_EVERY_S = 0.75
SENTENCE_HITS = 4  # candidates searched per sentence; the context keeps each one's best two
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Ledger:
    """The marketing text checked claim by claim against the passages the prompt carries."""

    passages: list[Passage]
    claims: list[Claim]
    skipped_sentences: int
    has_documents: bool  # the user's index held anything at all to compare with
    search_ms: float = 0.0
    check_ms: float = 0.0

    def claim_dicts(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.claims]

    def quoted(self) -> set[int]:
        return {e.n for c in self.claims for e in c.evidence}


def queued_ms(job: Job) -> float:
    """How long the job waited in the queue before a worker first took it."""
    if job.started_at is None or job.created_at is None:
        return 0.0
    return round(max(0.0, (job.started_at - job.created_at).total_seconds()) * 1000, 1)


@dataclass
class Runner:
    db: Database
    search: Search
    # The model for the next job (None: evidence mode), asked at each job so a change an
    # administrator saves applies without a restart. Raises LLMError when it cannot work.
    llm: Callable[[], LLM | None]
    context_passages: int = 8
    context_budget_chars: int = 6000

    def ledger(self, user_id: int, text: str, backgrounds: Sequence[str]) -> Ledger:
        """Search for each sentence and for the whole text, choose the context, check the
        claims against exactly that context."""
        started = time.perf_counter()
        sentences = split_sentences(text)
        checked = sentences[: evidence.MAX_SENTENCES]
        # The whole text's search runs beside the sentences': its e5 vector (a long query,
        # one thread) takes about as long as all the sentences' searches.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger") as pool:
            searching = pool.submit(
                self.search.find, user_id, text, backgrounds, self.context_passages * 3
            )
            per_sentence = self.search.find_many(user_id, checked, limit=SENTENCE_HITS)
            whole = searching.result()
        passages = select_for_claims(
            [o.hits for o in per_sentence],
            whole.hits,
            max_passages=self.context_passages,
            budget_chars=self.context_budget_chars,
        )
        searched = time.perf_counter()
        claims = check_claims(checked, _evidence(passages))
        return Ledger(
            passages=passages,
            claims=claims,
            skipped_sentences=len(sentences) - len(checked),
            has_documents=bool(whole.candidates or any(o.candidates for o in per_sentence)),
            search_ms=round((searched - started) * 1000, 1),
            check_ms=ms_since(searched),
        )

    def run(self, job: Job, beat: Beat) -> Outcome:
        """The handler of `refine` jobs."""
        started = time.perf_counter()
        text = str(job.payload.get("marketing_text", ""))
        backgrounds = [str(b) for b in job.payload.get("backgrounds", [])]
        template = str(job.payload.get("template", ""))
        raw_channel = job.payload.get("channel")
        channel = raw_channel if isinstance(raw_channel, dict) else None
        glossary = from_stored(job.payload.get("glossary"))
        timings: dict[str, float] = {"queued_ms": queued_ms(job)}
        try:
            ledger = self.ledger(job.user_id, text, backgrounds)
        except (EmbeddingError, VectorStoreLocked) as exc:
            return Outcome.failed(
                f"could not search your documents: {exc}", {FAILURE: SEARCH_UNAVAILABLE}
            )
        passages = ledger.passages
        prompt = render(
            template,
            {
                BACKGROUNDS: ", ".join(backgrounds) or "(no background chosen)",
                MARKETING_TEXT: text,
                CONTEXT: format_context(passages),
                CHANNEL: channel_text(channel),
                GLOSSARY: glossary_text(glossary),
            },
        )
        timings["retrieval_ms"] = ledger.search_ms
        timings["claims_ms"] = ledger.check_ms
        if not beat(0.3):
            return Outcome.lost()
        try:
            llm = self.llm()
        except LLMError as exc:
            return Outcome.failed(str(exc))
        claims = ledger.claim_dicts()
        by_verdict = evidence.counts(claims)
        max_chars = _limit(channel)
        base: dict[str, Any] = {
            "prompt": prompt,
            "system_prompt": SYSTEM_PROMPT,
            "timings": timings,
            "channel": channel,
            "length": length(text, max_chars),
            "claims": claims,
            "evidence": {
                "counts": by_verdict,
                "summary": evidence.summary(by_verdict),
                "no_match": ledger.has_documents and not passages,
            },
        }
        if llm is None:
            draft = [asdict(piece) for piece in corrected_draft(ledger.claims)]
            brief = evidence.brief(
                claims=claims,
                skipped_sentences=ledger.skipped_sentences,
                draft=draft,
                passages=passages,
                prompt=f"{SYSTEM_PROMPT}\n\n{prompt}",
                has_documents=ledger.has_documents,
            )
            timings["total_ms"] = ms_since(started)
            quoted = ledger.quoted()
            return Outcome.succeeded(
                {
                    **base,
                    "mode": EVIDENCE_MODE,
                    "model": None,
                    "refined_text": brief,
                    "corrected_draft": draft,
                    "variants": [],
                    # Evidence mode rewrites nothing: the diff is to the corrected draft,
                    # and the style findings are about the submitted text.
                    "diff": word_diff(text, _corrected(draft)),
                    "style": [f.as_dict() for f in findings(text, glossary)],
                    "sources": [p.source(cited=p.n in quoted) for p in passages],
                }
            )
        return self._with_model(llm, job, passages, prompt, base, started, glossary)

    def _with_model(
        self,
        llm: LLM,
        job: Job,
        passages: list[Passage],
        prompt: str,
        base: dict[str, Any],
        started: float,
        glossary: Glossary,
    ) -> Outcome:
        model_started = time.perf_counter()
        channel = base["channel"]
        max_chars = _limit(channel)
        text = str(job.payload.get("marketing_text", ""))
        count = max(1, min(int(job.payload.get("variants") or 1), 5))

        def progress(texts: list[str]) -> bool:
            return self._save_partial(job, texts, base["claims"])

        try:
            drafts = variants.write(
                llm,
                messages_for(prompt),
                count=count,
                max_chars=max_chars,
                channel=str(channel["name"]) if channel else "the channel",
                visible=visible_answer,
                progress=progress,
                every_s=PARTIAL_EVERY_S,
            )
        except variants.Stopped:
            return Outcome.lost()
        except LLMError as exc:
            base["timings"]["model_ms"] = ms_since(model_started)
            result = {
                **base,
                "mode": LLM_MODE,
                "model": llm.model,
                "refined_text": None,
                "sources": [p.source(cited=False) for p in passages],
                FAILURE: model_failure(exc),
            }
            return Outcome.failed(str(exc), result)
        base["timings"]["model_ms"] = ms_since(model_started)
        checked_started = time.perf_counter()
        out: list[dict[str, Any]] = []
        cited: set[int] = set()
        for i, draft in enumerate(drafts, start=1):
            refined, order = clean_citations(visible_answer(draft.raw), len(passages))
            if not refined.strip():
                which = "" if count == 1 else f" for variant {i}"
                empty = {
                    **base,
                    "mode": LLM_MODE,
                    "model": llm.model,
                    "refined_text": None,
                    "sources": [p.source(cited=False) for p in passages],
                    FAILURE: MODEL_FAILED,
                }
                return Outcome.failed(f"the language model returned an empty answer{which}", empty)
            cited.update(order)
            n = chars(refined)
            out.append(
                {
                    "text": refined,
                    "chars": n,
                    "within_limit": max_chars is None or n <= max_chars,
                    "shortened_from": draft.first_chars,
                    "calls": draft.calls,
                    "model_ms": draft.ms,
                    "claims": [c.as_dict() for c in check_output(refined, passages)],
                    "style": [f.as_dict() for f in findings(refined, glossary)],
                    "diff": word_diff(text, refined),
                }
            )
        base["timings"]["output_check_ms"] = ms_since(checked_started)
        base["timings"]["total_ms"] = ms_since(started)
        first = out[0]
        return Outcome.succeeded(
            {
                **base,
                "mode": LLM_MODE,
                "model": llm.model,
                "refined_text": first["text"],
                "output_claims": first["claims"],
                "variants": out,
                "diff": first["diff"],
                "style": first["style"],
                "sources": [p.source(cited=p.n in cited) for p in passages],
            }
        )

    def _save_partial(self, job: Job, texts: list[str], claims: list[dict[str, Any]]) -> bool:
        """Show the answers as they stream in (the ledger is ready before the model
        starts); False when the job is no longer ours."""
        assert job.locked_by is not None
        partial = {
            "mode": LLM_MODE,
            "partial_text": texts[0],
            "partial_variants": texts,
            "claims": claims,
        }
        return queue.save_partial(self.db, job.id, worker_id=job.locked_by, result=partial)


def channel_text(channel: dict[str, Any] | None) -> str:
    """The `{{channel}}` placeholder's value."""
    if not channel:
        return "No particular channel: keep about the original's length (within about 20%)."
    guidance = str(channel.get("guidance") or "").strip()
    limit = f"{int(channel['max_chars']):,}"
    return (
        f"{channel.get('name')}: at most {limit} characters (the [n] citations are not "
        f"counted); never go over it.{' ' + guidance if guidance else ''}"
    )


def _corrected(draft: Sequence[dict[str, Any]]) -> str:
    """The corrected draft's text: the documents' values in place, nothing else changed."""
    return "".join(
        str(p.get("new") or p.get("text") or "") if p.get("op") == "replace" else str(p["text"])
        for p in draft
    )


def _limit(channel: dict[str, Any] | None) -> int | None:
    raw = (channel or {}).get("max_chars")
    return raw if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0 else None


def check_output(refined: str, passages: Sequence[Passage]) -> list[Claim]:
    """The model's own sentences, each checked first against the passages it cites."""
    sentences: list[str] = []
    cited: list[list[int]] = []
    for sentence in split_sentences(refined)[: evidence.MAX_SENTENCES]:
        bare, numbers = citations_in(sentence)
        if bare:
            sentences.append(bare)
            cited.append(numbers)
    return check_claims(sentences, _evidence(passages), cited=cited)


def _evidence(passages: Sequence[Passage]) -> list[Evidence]:
    return [Evidence(n=p.n, text=p.text, label=p.label) for p in passages]


def visible_answer(text: str) -> str:
    """The answer without the reasoning some models (DeepSeek-R1, Qwen3 on Ollama or vLLM)
    put in <think> tags, including an unfinished one while the answer streams in."""
    return _THINK.sub("", text).strip()


def ms_since(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
