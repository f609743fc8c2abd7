"""Documents: accept uploads, list, delete, clear a user's documents, sweep orphans."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, select

from pitchcraft.auth.models import User
from pitchcraft.core.db import Database
from pitchcraft.core.errors import NotFound
from pitchcraft.documents.incoming import IncomingFile
from pitchcraft.documents.limits import UserLimits
from pitchcraft.documents.models import FAILED, QUEUED, Document
from pitchcraft.documents.storage import PART_SUFFIX, FileStore
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.types import ParseFailure
from pitchcraft.jobs.queue import enqueue
from pitchcraft.vectors.base import VectorIndex

log = logging.getLogger(__name__)

INGEST = "ingest"
EXTENSIONS = {
    "pdf": ".pdf",
    "docx": ".docx",
    "pptx": ".pptx",
    "ppt": ".ppt",
    "image": ".img",
    "text": ".txt",
    "markdown": ".md",
    "html": ".html",
    "xlsx": ".xlsx",
    "csv": ".csv",
}


@dataclass
class Documents:
    db: Database
    store: FileStore
    index: Callable[[], VectorIndex]
    # Called after new ingestion jobs are committed, to wake an idle in-process worker.
    notify: Callable[[], None] = lambda: None
    limits: UserLimits = field(default_factory=UserLimits)

    def check_room(self, user_id: int) -> None:
        """Refuse an upload before it is read when the user has no room left."""
        self.limits.check(self.db, user_id)

    # Called with the user's id after their vectors lost a document, so that its passage
    # text is purged from disk (vectors/purge.py).
    deleted: Callable[[int], None] = lambda _user_id: None

    def accept(self, user_id: int, incoming: list[IncomingFile]) -> list[Document]:
        """Store each received file and queue it; refused files become failed entries.
        Nothing is kept when the upload does not fit the user's limits."""
        accepted: list[Document] = []
        try:
            with self.limits.lock(user_id):
                self.limits.check(self.db, user_id, incoming)
                for f in incoming:
                    accepted.append(self._accept_one(user_id, f))
        finally:
            for f in incoming:  # anything not committed is removed, never left half-way
                if f.temp is not None:
                    f.temp.unlink(missing_ok=True)
        if any(d.status == QUEUED for d in accepted):
            self.notify()
        return accepted

    def _accept_one(self, user_id: int, f: IncomingFile) -> Document:
        doc_id = str(uuid.uuid4())
        reason, kind = f.refused, "unknown"
        if reason is None and f.size == 0:
            reason = "empty document"
        if reason is None:
            assert f.temp is not None
            try:
                kind = detect(f.temp, f.filename)
            except ParseFailure as exc:
                reason = str(exc)
        if reason is not None:
            with self.db.session() as s:
                doc = Document(
                    id=doc_id,
                    user_id=user_id,
                    filename=f.filename,
                    file_type=kind,
                    size=f.size,
                    storage_key="",
                    status=FAILED,
                    error=reason,
                )
                s.add(doc)
            return doc
        assert f.temp is not None
        key = f"{user_id}/{doc_id}{EXTENSIONS.get(kind, '')}"
        self.store.commit(f.temp, key)
        f.temp = None
        try:
            with self.db.session() as s:
                doc = Document(
                    id=doc_id,
                    user_id=user_id,
                    filename=f.filename,
                    file_type=kind,
                    size=f.size,
                    storage_key=key,
                    status=QUEUED,
                )
                s.add(doc)
                s.flush()
                enqueue(s, kind=INGEST, user_id=user_id, document_id=doc_id)
        except Exception:
            self.store.delete(key)
            raise
        return doc

    def list(self, user_id: int) -> list[Document]:
        with self.db.session() as s:
            rows = s.scalars(
                select(Document)
                .where(Document.user_id == user_id)
                .order_by(Document.created_at.desc(), Document.id)
            )
            return list(rows)

    def get(self, user_id: int, document_id: str) -> Document:
        with self.db.session() as s:
            doc = s.get(Document, document_id) if _possible_id(document_id) else None
        if doc is None or doc.user_id != user_id:
            raise NotFound("No such document.", code="document_not_found")
        return doc

    def delete(self, user_id: int, document_id: str) -> None:
        """Row first (its ingestion job goes with it), then vectors, then the file."""
        with self.db.session() as s:
            doc = s.get(Document, document_id) if _possible_id(document_id) else None
            if doc is None or doc.user_id != user_id:
                raise NotFound("No such document.", code="document_not_found")
            key = doc.storage_key
            s.delete(doc)
        self.index().delete_document(user_id, document_id)
        self.store.delete(key)
        self.deleted(user_id)

    def clear_user(self, user_id: int) -> int:
        """Remove every document of a user: rows, vectors, files. Account, templates and
        job history stay. An ingestion running now sees its row gone and stops."""
        with self.db.session() as s:
            keys = list(s.scalars(select(Document.storage_key).where(Document.user_id == user_id)))
            s.execute(delete(Document).where(Document.user_id == user_id))
        self.index().delete_user(user_id)
        for key in keys:
            self.store.delete(key)
        if keys:
            log.info("cleared %d documents of user %d at sign-in", len(keys), user_id)
        return len(keys)

    def sweep_orphans(self, *, min_age_s: float = 0) -> dict[str, int]:
        """Remove what a crash can leave behind: temp uploads, files without a row,
        vectors of documents that no longer exist.

        At start-up with the embedded index (the only caller) this process is the only one
        and serves nothing yet, so every file without a row is an orphan, however young: a
        grace period would keep what a crash just before a restart left behind until the
        next restart. A caller that sweeps while uploads may be in flight (another replica,
        a periodic sweep) passes `min_age_s`, since a young file may belong to an upload
        being committed right now."""
        with self.db.session() as s:
            rows = s.execute(select(Document.id, Document.user_id, Document.storage_key)).all()
            user_ids = list(s.scalars(select(User.id)))
        known_keys = {r.storage_key for r in rows if r.storage_key}
        docs_by_user: dict[int, set[str]] = {}
        for r in rows:
            docs_by_user.setdefault(r.user_id, set()).add(r.id)
        files = 0
        cutoff = time.time() - min_age_s
        for key, path in list(self.store.keys()):
            orphan = path.name.endswith(PART_SUFFIX) or key not in known_keys
            if orphan and (min_age_s <= 0 or path.stat().st_mtime < cutoff):
                path.unlink(missing_ok=True)
                files += 1
        vectors = 0
        index = self.index()
        for user_id in user_ids:
            for doc_id in index.document_ids(user_id) - docs_by_user.get(user_id, set()):
                index.delete_document(user_id, doc_id)
                vectors += 1
        return {"files": files, "vector_documents": vectors}


def _possible_id(document_id: str) -> bool:
    """An id from an address can hold anything; a NUL would make PostgreSQL fail the query."""
    return len(document_id) <= 64 and "\x00" not in document_id
