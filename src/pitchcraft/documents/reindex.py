"""Queue every stored document for ingestion again (vectors are derived data)."""

from __future__ import annotations

from sqlalchemy import delete, select

from pitchcraft.auth.models import User
from pitchcraft.auth.service import normalize_email
from pitchcraft.core.db import Database
from pitchcraft.documents.models import QUEUED, Document
from pitchcraft.documents.service import INGEST
from pitchcraft.jobs.models import Job
from pitchcraft.jobs.queue import enqueue


def queue_reindex(db: Database, *, email: str | None = None) -> int:
    with db.session() as s:
        query = select(Document).where(Document.storage_key != "")
        if email is not None:
            user_id = s.scalar(select(User.id).where(User.email == normalize_email(email)))
            if user_id is None:
                raise LookupError(f"No account with the email {email!r}.")
            query = query.where(Document.user_id == user_id)
        docs = list(s.scalars(query))
        for doc in docs:
            s.execute(delete(Job).where(Job.document_id == doc.id, Job.kind == INGEST))
            doc.status, doc.progress, doc.error = QUEUED, 0.0, None
            enqueue(s, kind=INGEST, user_id=doc.user_id, document_id=doc.id)
        return len(docs)
