"""What a user holds, as a summary, as an export, and its deletion."""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random

from pitchcraft.accounts.stream import ZipSink
from pitchcraft.auth.models import User
from pitchcraft.auth.service import Accounts
from pitchcraft.core.db import Database, utcnow
from pitchcraft.core.errors import Unauthorized
from pitchcraft.documents.models import Document
from pitchcraft.documents.storage import FileStore
from pitchcraft.jobs.models import Job
from pitchcraft.templates.models import PromptTemplate
from pitchcraft.vectors.base import VectorIndex

log = logging.getLogger(__name__)

ACCOUNT_DELETED = "account_deleted"
READ_CHUNK = 1024 * 1024
# The user's own jobs (their History): ingestion jobs are the server's bookkeeping.
USER_JOB_KINDS = ("refine",)


@dataclass(frozen=True)
class Summary:
    email: str
    is_subscribed: bool
    is_admin: bool
    created_at: datetime
    documents: int
    jobs: int
    storage_bytes: int


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode()


def _document(d: Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "filename": d.filename,
        "file_type": d.file_type,
        "size": d.size,
        "status": d.status,
        "error": d.error,
        "pages": d.pages,
        "chunks": d.chunks,
        "notes": d.notes,
        "content_sha256": d.content_sha256,
        "created_at": d.created_at,
        "indexed_at": d.indexed_at,
    }


def _job(j: Job) -> dict[str, Any]:
    return {
        "id": j.id,
        "kind": j.kind,
        "status": j.status,
        "document_id": j.document_id,
        "request": j.payload,
        "result": j.result,
        "error": j.error,
        "created_at": j.created_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
    }


def export_name(document: Document) -> str:
    # The id keeps two files of the same name apart; the name is already a clean one.
    return f"files/{document.id}-{document.filename}"


@dataclass
class AccountData:
    db: Database
    accounts: Accounts
    store: FileStore
    index: Callable[[], VectorIndex]
    # Per-user data of other features (e.g. a glossary): file name in the export -> what
    # to write there for a user id. Their rows go with the user row (ON DELETE CASCADE).
    export_sections: dict[str, Callable[[int], Any]] = field(default_factory=dict)

    def summary(self, user_id: int) -> Summary:
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise Unauthorized("The access token is no longer valid.", code="invalid_token")
            documents, size = s.execute(
                select(func.count(Document.id), func.coalesce(func.sum(Document.size), 0)).where(
                    Document.user_id == user_id, Document.storage_key != ""
                )
            ).one()
            failed = s.scalar(
                select(func.count(Document.id)).where(
                    Document.user_id == user_id, Document.storage_key == ""
                )
            )
            jobs = s.scalar(
                select(func.count(Job.id)).where(
                    Job.user_id == user_id, Job.kind.in_(USER_JOB_KINDS)
                )
            )
        return Summary(
            email=user.email,
            is_subscribed=user.is_subscribed,
            is_admin=user.is_admin,
            created_at=user.created_at,
            documents=int(documents) + int(failed or 0),
            jobs=int(jobs or 0),
            storage_bytes=int(size),
        )

    # -- export ----------------------------------------------------------------------------

    def export(self, user_id: int) -> Iterator[bytes]:
        """The user's data as a zip, produced piece by piece (never whole in memory).

        The rows are read in one transaction at the start, so the export is one consistent
        moment; a file deleted meanwhile (a sign-in clearing, a delete) is listed in
        `manifest.json` under `missing` instead."""
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise Unauthorized("The access token is no longer valid.", code="invalid_token")
            docs = list(
                s.scalars(
                    select(Document)
                    .where(Document.user_id == user_id)
                    .order_by(Document.created_at, Document.id)
                )
            )
            jobs = list(
                s.scalars(
                    select(Job)
                    .where(Job.user_id == user_id, Job.kind.in_(USER_JOB_KINDS))
                    .order_by(Job.created_at)
                )
            )
            template = s.scalar(select(PromptTemplate).where(PromptTemplate.user_id == user_id))
        sections = {name: make(user_id) for name, make in self.export_sections.items()}
        return self._zip(user, docs, jobs, template, sections)

    def _zip(
        self,
        user: User,
        docs: list[Document],
        jobs: list[Job],
        template: PromptTemplate | None,
        sections: dict[str, Any],
    ) -> Iterator[bytes]:
        sink = ZipSink()
        missing: list[str] = []
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            account = {
                "email": user.email,
                "is_subscribed": user.is_subscribed,
                "created_at": user.created_at,
            }
            zf.writestr("account.json", _json(account))
            yield sink.take()
            listed = []
            for d in docs:
                entry = _document(d)
                if d.storage_key:
                    entry["file"] = export_name(d)
                listed.append(entry)
            zf.writestr("documents.json", _json(listed))
            zf.writestr("jobs.json", _json([_job(j) for j in jobs]))
            prompt = {
                "template": template.template if template else None,
                "updated_at": template.updated_at if template else None,
            }
            zf.writestr("prompt_template.json", _json(prompt))
            for name, value in sections.items():
                zf.writestr(name, _json(value))
            yield sink.take()
            for d in docs:
                if not d.storage_key:
                    continue
                try:
                    source = self.store.path(d.storage_key).open("rb")
                except FileNotFoundError:
                    missing.append(d.id)
                    continue
                with source, zf.open(export_name(d), "w", force_zip64=True) as out:
                    while chunk := source.read(READ_CHUNK):
                        out.write(chunk)
                        yield sink.take()
            manifest = {"exported_at": utcnow(), "documents": len(docs), "missing": missing}
            zf.writestr("manifest.json", _json(manifest))
        yield sink.take()

    # -- deletion --------------------------------------------------------------------------

    def delete(self, user_id: int, *, password: str, client: str) -> None:
        """Remove the account and everything it holds: rows, then vectors, then files.

        The account is first switched off and its sessions ended, so nothing new starts
        for it (its tokens are refused); then one transaction deletes the user row, which
        takes every row of theirs with it. An ingestion running at that moment holds its
        document's row while it writes a batch, so the delete waits for the batch, and the
        ingestion finds the row gone and stops; an upload that arrives after finds the
        account gone, removes its file and is refused."""
        self.accounts.verify_password(user_id, password, client=client)
        with self.db.session() as s:
            user = s.get(User, user_id, with_for_update=True)
            if user is None:
                raise Unauthorized("The access token is no longer valid.", code="invalid_token")
            user.is_active = False
            ended = self.accounts.sessions.end_all(s, user_id, reason=ACCOUNT_DELETED)
        self.accounts.sessions.forget(*ended)
        self.accounts.sessions.forget_user(user_id)
        # PostgreSQL may pick this transaction as a deadlock's victim (the cascade locks the
        # user's document rows while an upload or ingestion locks them in its own order);
        # it was rolled back whole, so doing it again is safe.
        for attempt in Retrying(
            retry=retry_if_exception(_deadlock),
            stop=stop_after_attempt(5),
            wait=wait_random(0.05, 0.3),
            reraise=True,
        ):
            with attempt, self.db.session() as s:
                s.execute(delete(User).where(User.id == user_id))
        # The whole folder rather than the keys read before: an upload committed between
        # the two transactions is gone with the row too.
        self.index().delete_user(user_id)
        self.store.remove_user(user_id)
        log.info("deleted account %d and everything it held", user_id)


def _deadlock(exc: BaseException) -> bool:
    """A PostgreSQL deadlock (SQLSTATE 40P01)."""
    return isinstance(exc, OperationalError) and getattr(exc.orig, "sqlstate", None) == "40P01"
