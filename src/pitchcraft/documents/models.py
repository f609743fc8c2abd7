"""Uploaded documents (metadata; the bytes live under STORAGE_PATH)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pitchcraft.core.db import Base, UTCDateTime, utcnow

QUEUED, PROCESSING, INDEXED, FAILED = "queued", "processing", "indexed", "failed"
# Multilingual enrichment (documents/enrich.py): the passages' e5 vectors, added after
# indexing. "off": MULTILINGUAL_SEARCH is off, or the engine cannot run here.
ML_PENDING, ML_RUNNING, ML_DONE, ML_OFF = "pending", "running", "done", "off"


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        Index("ix_documents_user_created", "user_id", "created_at"),
        # One copy of a content per user: a second upload of the same bytes is a duplicate.
        Index("ix_documents_user_sha256", "user_id", "content_sha256", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    file_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    # Relative to STORAGE_PATH; empty for a file refused before it was stored.
    storage_key: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16), default=QUEUED, index=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The sign-in that uploaded it: clearing at sign-in only takes documents of ended
    # sessions. NULL for documents from before sessions existed, or whose session is gone.
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # SHA-256 of the stored bytes; NULL for a file refused before it was stored.
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Multilingual enrichment: its state, and how many passages (in chunk order) have their
    # e5 vector; a resumed enrichment starts there.
    multilingual: Mapped[str] = mapped_column(
        String(16), default=ML_PENDING, server_default=ML_PENDING
    )
    multilingual_chunks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
