"""Accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from pitchcraft.core.db import Base, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored lower-cased, so the unique index makes emails unique case-insensitively.
    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_subscribed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Administrators connect the model and manage accounts; the first account is one.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Part of every token; bumping it revokes all tokens issued before.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The user's id in the original system's database, for accounts brought over by
    # `pitchcraft import-legacy`; re-imports recognise them by it.
    legacy_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


# Why a session ended, as stored in `UserSession.end_reason`.
SIGNED_OUT, EXPIRED, IDLE, PASSWORD_CHANGED = "signed_out", "expired", "idle", "password_changed"


class UserSession(Base):
    """One sign-in (API or page). Its id travels in the access token; a token is only good
    while its session is live: not ended, not past `expires_at`, seen within the idle limit."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Written at most every few seconds to a minute (see auth/sessions.py), not per request.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Documents of earlier sessions cleared when this one began; the Documents page says so
    # once, then sets it back to 0.
    cleared_documents: Mapped[int] = mapped_column(Integer, default=0)
