"""What the account routes answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from pitchcraft.accounts.service import Summary


class AccountOut(BaseModel):
    email: str
    is_subscribed: bool
    is_admin: bool
    created_at: datetime
    documents: int
    jobs: int
    storage_bytes: int

    @classmethod
    def of(cls, s: Summary) -> AccountOut:
        return cls(
            email=s.email,
            is_subscribed=s.is_subscribed,
            is_admin=s.is_admin,
            created_at=s.created_at,
            documents=s.documents,
            jobs=s.jobs,
            storage_bytes=s.storage_bytes,
        )
