"""Queue every stored document for ingestion again (vectors are derived data)."""

from __future__ import annotations

from sqlalchemy import delete, select

from pitchcraft.auth.models import User
from pitchcraft.auth.service import normalize_email
from pitchcraft.core.db import Database
from pitchcraft.documents.enrich import ENRICH
from pitchcraft.documents.models import ML_PENDING, QUEUED, Document
from pitchcraft.documents.service import INGEST
from pitchcraft.jobs.models import Job
from pitchcraft.jobs.queue import enqueue
from pitchcraft.vectors.base import VectorIndex


def queue_reindex(
    db: Database, *, email: str | None = None, index: VectorIndex | None = None
) -> int:
    """Queue the documents (of one user, given `email`) for ingestion again. With `index`,
    a Qdrant server collection created before the multilingual vector existed is deleted
    first, so that re-indexing creates it with both vectors (a server cannot add one)."""
    with db.session() as s:
        query = select(Document).where(Document.storage_key != "")
        if email is not None:
            user_id = s.scalar(select(User.id).where(User.email == normalize_email(email)))
            if user_id is None:
                raise LookupError(f"No account with the email {email!r}.")
            query = query.where(Document.user_id == user_id)
        users = set(s.scalars(query.with_only_columns(Document.user_id).distinct()))
    has_multi = getattr(index, "has_multi", None)
    if index is not None and has_multi is not None:
        for user in sorted(users):
            if has_multi(user) is False:
                index.delete_user(user)
    with db.session() as s:
        docs = list(s.scalars(query))
        for doc in docs:
            # Both vectors are rebuilt: MiniLM's by ingestion, e5's by the enrichment that
            # follows it (a running enrichment stops when its job row goes).
            s.execute(delete(Job).where(Job.document_id == doc.id, Job.kind.in_((INGEST, ENRICH))))
            doc.status, doc.progress, doc.error = QUEUED, 0.0, None
            doc.multilingual, doc.multilingual_chunks = ML_PENDING, 0
            enqueue(s, kind=INGEST, user_id=doc.user_id, document_id=doc.id)
        return len(docs)
