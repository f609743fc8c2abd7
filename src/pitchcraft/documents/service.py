"""Documents: accept uploads (duplicates recognised), list, delete, clear the documents of
a user's ended sessions, sweep orphans."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError

from pitchcraft.auth.models import User, UserSession
from pitchcraft.auth.sessions import SessionStore
from pitchcraft.core.db import Database, utcnow
from pitchcraft.core.errors import NotFound, Unauthorized
from pitchcraft.documents.incoming import IncomingFile
from pitchcraft.documents.limits import UserLimits
from pitchcraft.documents.models import FAILED, PROCESSING, QUEUED, Document
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


@dataclass(frozen=True)
class Uploaded:
    """One file of an upload: its new document, or the one it duplicates."""

    document: Document
    duplicate_of: str | None = None


@dataclass
class Documents:
    db: Database
    store: FileStore
    index: Callable[[], VectorIndex]
    sessions: SessionStore
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
        return [u.document for u in self.upload(user_id, incoming)]

    def upload(
        self, user_id: int, incoming: list[IncomingFile], *, session_id: str | None = None
    ) -> list[Uploaded]:
        """Store each received file and queue it; refused files become failed entries, and
        a content the user already has (same SHA-256) is not stored again. Nothing is kept
        when the upload does not fit the user's limits."""
        accepted: list[Uploaded] = []
        try:
            with self.limits.lock(user_id):
                self.limits.check(self.db, user_id, incoming)
                for f in incoming:
                    accepted.append(self._accept_one(user_id, f, session_id))
        finally:
            for f in incoming:  # anything not committed is removed, never left half-way
                if f.temp is not None:
                    f.temp.unlink(missing_ok=True)
        if any(u.document.status == QUEUED and not u.duplicate_of for u in accepted):
            self.notify()
        return accepted

    def _same_content(self, user_id: int, sha256: str) -> Document | None:
        with self.db.session() as s:
            return s.scalar(
                select(Document).where(
                    Document.user_id == user_id, Document.content_sha256 == sha256
                )
            )

    def _duplicate(self, f: IncomingFile, existing: Document) -> Uploaded:
        if f.temp is not None:
            f.temp.unlink(missing_ok=True)
            f.temp = None
        return Uploaded(existing, duplicate_of=existing.id)

    def _accept_one(self, user_id: int, f: IncomingFile, session_id: str | None) -> Uploaded:
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
                    session_id=session_id,
                )
                s.add(doc)
            return Uploaded(doc)
        assert f.temp is not None
        sha = f.sha256 or None
        if sha is not None and (existing := self._same_content(user_id, sha)) is not None:
            return self._duplicate(f, existing)
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
                    session_id=session_id,
                    content_sha256=sha,
                )
                s.add(doc)
                s.flush()
                enqueue(s, kind=INGEST, user_id=user_id, document_id=doc_id)
        except IntegrityError as exc:
            self.store.delete(key)
            # The same content committed by a concurrent upload of this user's won the race
            # (the unique index), or the account (or the session) is gone.
            if sha is not None and (existing := self._same_content(user_id, sha)) is not None:
                return Uploaded(existing, duplicate_of=existing.id)
            raise Unauthorized(
                "Your account or session has ended; sign in again.", code="invalid_token"
            ) from exc
        except Exception:
            self.store.delete(key)
            raise
        return Uploaded(doc)

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

    def clear_ended_sessions(self, user_id: int) -> int:
        """At sign-in: remove the documents (rows, then vectors, then files) uploaded in
        the user's sessions that have ended (signed out, expired, idle; or unknown), unless
        they are queued or processing. A live session's documents are never touched;
        account, templates and job history stay.

        One DELETE decides and removes, so it is safe against what runs meanwhile: an
        upload commits its row as queued (and in a live session), an ingestion holds its
        row as processing, and of two sign-ins at once the second finds the rows gone."""
        now = utcnow()
        with self.db.session() as s:
            self.sessions.mark_over(s, user_id, now)
            ended = select(UserSession.id).where(self.sessions.dead(user_id, now))
            rows = s.execute(
                delete(Document)
                .where(
                    Document.user_id == user_id,
                    Document.status.not_in((QUEUED, PROCESSING)),
                    or_(Document.session_id.is_(None), Document.session_id.in_(ended)),
                )
                .returning(Document.id, Document.storage_key)
                .execution_options(synchronize_session=False)
            ).all()
        if not rows:
            return 0
        index = self.index()
        for doc_id, key in rows:
            index.delete_document(user_id, doc_id)
            self.store.delete(key)
        log.info("cleared %d documents of ended sessions of user %d", len(rows), user_id)
        return len(rows)

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
