"""Multilingual enrichment: a document's passages get their e5 vector after it is indexed.

A document is `indexed`, and searchable, once MiniLM and BM25 have indexed it (ingest.py).
e5 embeds ~6x slower than MiniLM int8, so it runs afterwards as a job of its own kind
(`enrich`), in a lane that only claims work while no ingestion or refine job is queued or
running, pauses between batches while one is, and computes at a lower CPU priority than
the ingestion worker. Meanwhile search fuses the e5 list over the passages that already
have the vector (vectors/fusion.py).

Durable and resumable: passages are enriched in chunk order, one batch at a time, and the
document row records how many are done in the same transaction that follows each batch's
vector write. A kill -9 loses at most the batch in flight; the resumed job embeds it again
and writes the same vectors (an idempotent overwrite), so nothing is lost or duplicated.
Each batch is written holding the document's row lock, as ingestion writes its points: a
delete (or a clear) either waits for the batch and then removes the points, or has removed
the row already and the job stops. Deleting a document deletes its job with it (foreign key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from pitchcraft.core.db import Database, utcnow
from pitchcraft.documents.models import (
    FAILED,
    INDEXED,
    ML_DONE,
    ML_OFF,
    ML_PENDING,
    ML_RUNNING,
    Document,
)
from pitchcraft.embedding.base import EmbeddingError
from pitchcraft.embedding.multilingual import MultilingualEmbedder, multilingual_failure
from pitchcraft.jobs.models import QUEUED, RUNNING, Job
from pitchcraft.jobs.queue import enqueue
from pitchcraft.jobs.worker import Beat, Outcome
from pitchcraft.settings import Settings
from pitchcraft.vectors.base import (
    MAX_PASSAGES,
    IndexClosed,
    MissingPoints,
    NoMultiVector,
    VectorIndex,
)

log = logging.getLogger(__name__)

ENRICH = "enrich"
# Passages per batch: ~1 s of e5 on 2 cores, so a job that arrives waits at most that long
# for the CPU, and a kill -9 loses at most that much work.
BATCH = 16
# How often a paused enrichment looks again whether the ingestion and refine lanes are idle.
PAUSE_S = 0.5
# Extra niceness of the enrichment lane over WORKER_NICE: it yields to ingestion too.
EXTRA_NICE = 5


class _Stop(Exception):
    """The document went away, or is no longer indexed (being re-indexed): stop."""


def multilingual_active(settings: Settings) -> bool:
    """MULTILINGUAL_SEARCH is on and the engine did not fail to load in this process."""
    return settings.multilingual_search and multilingual_failure() is None


def shown_state(doc: Document, active: bool) -> str:
    """The document's multilingual state as the API shows it."""
    if not active or doc.status == FAILED:
        return ML_OFF
    return doc.multilingual


def shown_progress(doc: Document, active: bool) -> float:
    if shown_state(doc, active) == ML_DONE:
        return 1.0
    if not doc.chunks:
        return 0.0
    return round(min(1.0, doc.multilingual_chunks / doc.chunks), 4)


def others_waiting(db: Database, kinds: tuple[str, ...]) -> bool:
    """Whether a job of these kinds is queued, or running under a live lease (enrichment
    gives way to it; a job whose worker died does not hold enrichment up for ever)."""
    now = utcnow()
    with db.session() as s:
        found = s.scalar(
            select(Job.id)
            .where(
                Job.kind.in_(kinds),
                or_(Job.status == QUEUED, (Job.status == RUNNING) & (Job.lease_until >= now)),
            )
            .limit(1)
        )
        return found is not None


def queue_enrichment(s: Session, doc: Document) -> None:
    """In the session that marks `doc` indexed: reset its enrichment and queue it (an
    older enrichment job of the document, now out of date, is dropped)."""
    s.execute(
        delete(Job).where(Job.document_id == doc.id, Job.kind == ENRICH, Job.status == QUEUED)
    )
    doc.multilingual, doc.multilingual_chunks = ML_PENDING, 0
    enqueue(s, kind=ENRICH, user_id=doc.user_id, document_id=doc.id)


def queue_missing(db: Database) -> int:
    """Queue enrichment for every indexed document that lacks it and has no enrichment job
    waiting: at start-up, so that turning MULTILINGUAL_SEARCH on (or a new release)
    enriches what was indexed before, and a document whose job ended early gets another."""
    with db.session() as s:
        waiting = select(Job.document_id).where(
            Job.kind == ENRICH, Job.status.in_((QUEUED, RUNNING)), Job.document_id.is_not(None)
        )
        docs = list(
            s.scalars(
                select(Document).where(
                    Document.status == INDEXED,
                    Document.multilingual != ML_DONE,
                    Document.id.not_in(waiting),
                )
            )
        )
        for doc in docs:
            enqueue(s, kind=ENRICH, user_id=doc.user_id, document_id=doc.id)
            doc.multilingual = ML_PENDING
        return len(docs)


@dataclass
class Enricher:
    db: Database
    index: Callable[[], VectorIndex]
    engine: Callable[[], MultilingualEmbedder | None]
    # True while work that goes first (ingestion, refine jobs) is queued or running.
    busy: Callable[[], bool] = lambda: False
    batch: int = BATCH

    def run(self, job: Job, heartbeat: Beat) -> Outcome:
        """The handler of `enrich` jobs."""
        assert job.document_id is not None
        doc_id = job.document_id
        engine = self.engine()
        if engine is None:
            self._set_state(doc_id, ML_OFF)
            return Outcome.succeeded({"skipped": "the multilingual model is not available"})
        try:
            return self._run(job.user_id, doc_id, engine, heartbeat)
        except _Stop:
            return Outcome.cancelled()
        except IndexClosed:  # the process is stopping: the next start carries on from here
            return Outcome.lost()
        except NoMultiVector as exc:
            log.warning("document %s cannot be enriched: %s", doc_id, exc)
            self._set_state(doc_id, ML_OFF)
            return Outcome.succeeded({"skipped": str(exc)})

    def gave_up(self, job: Job) -> None:
        if job.document_id:
            self._set_state(job.document_id, ML_PENDING)

    def _run(
        self, user_id: int, doc_id: str, engine: MultilingualEmbedder, heartbeat: Beat
    ) -> Outcome:
        # Not at the top: ingest.py queues enrichment, so it imports this module.
        from pitchcraft.documents.ingest import point_id

        with self.db.session() as s:
            doc = s.get(Document, doc_id, with_for_update=True)
            if doc is None or doc.status != INDEXED:
                raise _Stop
            total, done = doc.chunks, doc.multilingual_chunks
            doc.multilingual = ML_RUNNING
        index = self.index()
        started, enriched = time.monotonic(), 0
        step = max(1, min(self.batch, MAX_PASSAGES))
        while done < total:
            self._wait_turn(doc_id)
            end = min(done + step, total)
            passages = index.passages(user_id, doc_id, range(done, end))
            texts = [f"{p.section}\n{p.text}" if p.section else p.text for p in passages]
            try:
                vectors = engine.embed_passages(texts)
            except EmbeddingError as exc:
                self._set_state(doc_id, ML_PENDING)  # queued again at the next start
                return Outcome.failed(str(exc))
            with self.db.session() as s:
                row = s.get(Document, doc_id, with_for_update=True)
                if row is None or row.status != INDEXED:
                    raise _Stop
                try:
                    index.set_multi(
                        user_id,
                        [
                            (point_id(doc_id, p.chunk_index), v)
                            for p, v in zip(passages, vectors, strict=True)
                        ],
                    )
                except MissingPoints as exc:
                    raise _Stop from exc
                row.multilingual_chunks = end
            done, enriched = end, enriched + len(passages)
            if not heartbeat(done / total):
                return Outcome.lost()
        with self.db.session() as s:
            row = s.get(Document, doc_id, with_for_update=True)
            if row is None or row.status != INDEXED:
                raise _Stop
            row.multilingual = ML_DONE
        index.optimize(user_id)
        seconds = time.monotonic() - started
        log.info(
            "enriched document %s: %d passages with multilingual vectors in %.1fs",
            doc_id,
            enriched,
            seconds,
        )
        return Outcome.succeeded({"passages": enriched})

    def _wait_turn(self, doc_id: str) -> None:
        """Wait while ingestion or refine work is queued or running (the worker keeps the
        job's lease meanwhile); _Stop when the document went away or is being re-indexed."""
        while self.busy():
            with self.db.session() as s:
                if s.scalar(select(Document.status).where(Document.id == doc_id)) != INDEXED:
                    raise _Stop
            time.sleep(PAUSE_S)

    def _set_state(self, doc_id: str, state: str) -> None:
        with self.db.session() as s:
            doc = s.get(Document, doc_id, with_for_update=True)
            if doc is not None:
                doc.multilingual = state
