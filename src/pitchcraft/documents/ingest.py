"""Ingest one document: parse (sandboxed), chunk, embed, index — resumable and cancellable.

The document's lifecycle after upload (processing → indexed | failed) is written here and
nowhere else; `ingestion/` is the text-extraction library it calls."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pitchcraft.core.db import Database, utcnow
from pitchcraft.documents.enrich import queue_enrichment
from pitchcraft.documents.models import (
    FAILED,
    INDEXED,
    ML_OFF,
    ML_PENDING,
    PROCESSING,
    Document,
)
from pitchcraft.documents.storage import FileStore
from pitchcraft.embedding.base import Embedder, SparseEncoder
from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.sandbox import parse_sandboxed
from pitchcraft.ingestion.types import Chunk, ParseFailure
from pitchcraft.jobs.models import Job
from pitchcraft.jobs.worker import Beat, Outcome
from pitchcraft.settings import Settings
from pitchcraft.vectors.base import IndexClosed, IndexPoint, VectorIndex

log = logging.getLogger(__name__)

BATCH = 64
POINT_NAMESPACE = uuid.UUID("6f1c8a52-3d0e-4b8e-9a57-2f1d0c4b7e11")


def point_id(document_id: str, index: int) -> str:
    """Stable per (document, chunk): a re-run overwrites instead of duplicating."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{document_id}:{index}"))


def embedding_text(filename: str, c: Chunk) -> str:
    # The heading a passage sits under is part of what it is about.
    return f"{c.section}\n{c.text}" if c.section else c.text


def longest_first(costs: list[int]) -> list[int]:
    """Indices of passages in the order to embed them: longest first, so each batch holds
    passages of about one length (a batch costs what its longest passage costs)."""
    return sorted(range(len(costs)), key=lambda i: -costs[i])


class Cancelled(Exception):
    """The document was deleted (or its user's documents cleared) while ingesting."""


class LeaseLost(Exception):
    """Another worker took the job over (this one stalled past its lease): stop quietly."""


@dataclass
class Ingestor:
    settings: Settings
    db: Database
    store: FileStore
    index: Callable[[], VectorIndex]
    embedder: Callable[[], Embedder]
    sparse: Callable[[], SparseEncoder]
    # Called with the user's id when points of a document deleted meanwhile were removed
    # again, so that their text is purged from disk (vectors/purge.py).
    deleted: Callable[[int], None] = lambda _user_id: None

    def run(self, job: Job, heartbeat: Beat) -> Outcome:
        """The handler of `ingest` jobs."""
        assert job.document_id is not None
        doc_id = job.document_id
        try:
            return self._run(doc_id, heartbeat)
        except Cancelled:  # the row went away between two steps
            return _cancelled()
        except IndexClosed:  # the process is stopping: the next start resumes the document
            return Outcome.lost()
        except Exception as exc:
            # The worker fails the job (and logs it); the document must not stay
            # "processing" for ever, nor keep the passages of a half-done run.
            with contextlib.suppress(Exception):
                self._finish(
                    doc_id,
                    status=FAILED,
                    error=f"could not be processed: unexpected error ({type(exc).__name__})",
                )
            with contextlib.suppress(Exception):
                self.index().delete_document(job.user_id, doc_id)
            raise

    def gave_up(self, job: Job) -> None:
        """The job stopped its worker every time it ran: the document fails, and what an
        interrupted run wrote must not show up in searches."""
        if not job.document_id:
            return
        with self.db.session() as s:
            doc = s.get(Document, job.document_id)
            if doc is not None:
                doc.status = FAILED
                doc.error = "could not be processed: the worker stopped every time it tried"
        self.index().delete_document(job.user_id, job.document_id)

    def _run(self, doc_id: str, heartbeat: Beat) -> Outcome:
        doc = self._start(doc_id)
        if doc is None:
            return _cancelled()
        started = time.monotonic()
        try:
            parsed = parse_sandboxed(
                self.store.path(doc.storage_key),
                doc.file_type,
                ocr=self.settings.ocr_enabled,
                soffice=self.settings.soffice_path,
                timeout_s=self.settings.parse_timeout_s,
                memory_mb=self.settings.parse_memory_mb,
                max_rows=self.settings.spreadsheet_max_rows,
                ocr_max_pages=self.settings.ocr_max_pages,
                ocr_max_seconds=self.settings.ocr_max_seconds,
            )
            chunks = chunk(
                parsed, size=self.settings.chunk_size, overlap=self.settings.chunk_overlap
            )
            if not chunks:
                raise ParseFailure("no extractable text")
        except ParseFailure as exc:
            self._finish(doc_id, status=FAILED, error=str(exc))
            return Outcome.failed(str(exc), {"chunks": 0})
        except (EOFError, OSError) as exc:
            # No parser process could be started or reached (its forkserver was stopped
            # with the server, or killed): not the document's fault. Leave the job to be
            # claimed again (after its lease, or at the next start); MAX_ATTEMPTS bounds it.
            log.warning(
                "reading document %s was interrupted (%s); it will be retried",
                doc_id,
                type(exc).__name__,
            )
            return Outcome.lost()
        self._update(
            doc_id, pages=parsed.pages, notes="; ".join(parsed.notes) or None, progress=0.05
        )
        parsed_at = time.monotonic()
        try:
            self._index(doc, chunks, heartbeat)
        except Cancelled:
            self.index().delete_document(doc.user_id, doc_id)
            self.deleted(doc.user_id)
            return _cancelled()
        except LeaseLost:
            return Outcome.lost()
        self.index().optimize(doc.user_id)
        if not self._finish(doc_id, status=INDEXED, error=None, chunks=len(chunks)):
            self.index().delete_document(doc.user_id, doc_id)
            self.deleted(doc.user_id)
            return _cancelled()
        log.info(
            "indexed document %s: %s pages, %d chunks (parse %.1fs, embed+index %.1fs)",
            doc_id,
            parsed.pages,
            len(chunks),
            parsed_at - started,
            time.monotonic() - parsed_at,
        )
        return Outcome.succeeded({"chunks": len(chunks)})

    def _start(self, doc_id: str) -> Document | None:
        with self.db.session() as s:
            doc = s.get(Document, doc_id, with_for_update=True)
            if doc is None:
                return None
            doc.status, doc.error, doc.progress = PROCESSING, None, 0.0
            # Its points are written anew, without multilingual vectors.
            doc.multilingual, doc.multilingual_chunks = ML_PENDING, 0
            return doc

    def _update(self, doc_id: str, **values: object) -> None:
        with self.db.session() as s:
            doc = s.get(Document, doc_id, with_for_update=True)
            if doc is None:
                raise Cancelled
            for k, v in values.items():
                setattr(doc, k, v)

    def _finish(self, doc_id: str, *, status: str, error: str | None, chunks: int = 0) -> bool:
        with self.db.session() as s:
            doc = s.get(Document, doc_id, with_for_update=True)
            if doc is None:
                return False
            doc.status, doc.error, doc.chunks = status, error, chunks
            doc.progress = 1.0 if status == INDEXED else doc.progress
            if status == INDEXED:
                doc.indexed_at = utcnow()
                # Searchable now; its multilingual vectors follow in the background.
                if self.settings.multilingual_search:
                    queue_enrichment(s, doc)
                else:
                    doc.multilingual, doc.multilingual_chunks = ML_OFF, 0
            return True

    def _index(self, doc: Document, chunks: list[Chunk], heartbeat: Beat) -> None:
        index, embedder, sparse = self.index(), self.embedder(), self.sparse()
        # A resumed run starts clean: points of an interrupted run are replaced.
        index.delete_document(doc.user_id, doc.id)
        vectors = _VectorMemo()
        total = len(chunks)
        all_texts = [embedding_text(doc.filename, c) for c in chunks]
        # A batch costs what its longest passage costs (the others are padded to it), so
        # passages are embedded longest first rather than in document order, which wasted
        # ~20% of the work on the corpus's large PDF and handbook. Points are keyed by
        # chunk, so the order they are written in does not matter; progress counts tokens.
        costs = embedder.token_counts(all_texts)
        order = longest_first(costs)
        total_cost = max(1, sum(costs))
        done_cost = 0
        for start in range(0, total, BATCH):
            picked = order[start : start + BATCH]
            batch = [chunks[i] for i in picked]
            texts = [all_texts[i] for i in picked]
            dense = vectors.embed(embedder, texts)
            points = [
                IndexPoint(
                    id=point_id(doc.id, c.index),
                    dense=vec,
                    sparse=sparse.encode_document(text),
                    document_id=doc.id,
                    filename=doc.filename,
                    page=c.page,
                    section=c.section,
                    rows=c.rows,
                    chunk_index=c.index,
                    text=c.text,
                )
                for c, vec, text in zip(batch, dense, texts, strict=True)
            ]
            done_cost += sum(costs[i] for i in picked)
            progress = 0.05 + 0.95 * done_cost / total_cost
            # Holding the row lock while writing the batch: a concurrent delete or clear
            # either waits for it (and then removes these points) or has already removed
            # the row (and this run stops before writing).
            with self.db.session() as s:
                row = s.get(Document, doc.id, with_for_update=True)
                if row is None:
                    raise Cancelled
                index.upsert(doc.user_id, points)
                row.progress = min(progress, 0.99)
                row.chunks = start + len(batch)
            if not heartbeat(progress):
                raise LeaseLost


def _cancelled() -> Outcome:
    return Outcome.cancelled({"chunks": 0})


class _VectorMemo:
    """Each distinct passage text of a document is embedded once.

    Documents repeat themselves: boilerplate on every page, a section a handbook prints
    twice, the same table in two chapters (half of the 1,062 passages of the corpus's
    872-page handbook are repeats). Embedding is nearly all of the ingestion time, so a
    repeat costs a dictionary look-up instead. Keys are digests and vectors float32
    arrays, so a long document's memo stays small (~1.6 KB a distinct passage).
    """

    def __init__(self) -> None:
        self._known: dict[bytes, np.ndarray] = {}

    def embed(self, embedder: Embedder, texts: list[str]) -> list[list[float]]:
        keys = [hashlib.blake2b(t.encode(), digest_size=16).digest() for t in texts]
        new: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._known:
                new.setdefault(key, text)
        if new:
            for key, vec in zip(new, embedder.embed_documents(list(new.values())), strict=True):
                self._known[key] = np.asarray(vec, dtype=np.float32)
        return [self._known[key].tolist() for key in keys]
