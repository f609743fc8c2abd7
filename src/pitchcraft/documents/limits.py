"""Per-user limits on documents: what an account may store, and how many of its documents
may wait in the ingestion queue. Zero means unlimited. Refusals name the limit and the
setting that sets it."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select

from pitchcraft.core.db import Database
from pitchcraft.core.errors import RateLimited, TooLarge
from pitchcraft.documents.incoming import IncomingFile
from pitchcraft.documents.models import PROCESSING, QUEUED, Document

MB = 1024 * 1024
# How long a client should wait before trying again once the queue is full: long enough
# for a few documents to be indexed.
QUEUE_RETRY_S = 60


@dataclass
class UserLimits:
    quota_bytes: int = 0
    max_queued: int = 0
    # Checking and storing happen under one lock per user, so parallel uploads of one
    # process cannot all pass the check before any of them is counted.
    _locks: dict[int, threading.Lock] = field(default_factory=dict, repr=False, compare=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def lock(self, user_id: int) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(user_id, threading.Lock())

    def check(self, db: Database, user_id: int, incoming: Sequence[IncomingFile] = ()) -> None:
        """Raise TooLarge (quota) or RateLimited (queue) unless `incoming` fits; with no
        files, whether any room is left at all (checked before an upload is read)."""
        if not self.quota_bytes and not self.max_queued:
            return
        stored = [f for f in incoming if f.refused is None and f.size > 0]
        with db.session() as s:
            used = int(
                s.scalar(
                    select(func.coalesce(func.sum(Document.size), 0)).where(
                        Document.user_id == user_id, Document.storage_key != ""
                    )
                )
                or 0
            )
            waiting = int(
                s.scalar(
                    select(func.count(Document.id)).where(
                        Document.user_id == user_id, Document.status.in_((QUEUED, PROCESSING))
                    )
                )
                or 0
            )
        adding = sum(f.size for f in stored)
        if self.quota_bytes and (used + adding > self.quota_bytes or used >= self.quota_bytes):
            raise TooLarge(
                f"Storage quota reached: your documents take {_mb(used)} of the "
                f"{_mb(self.quota_bytes)} an account may store (USER_STORAGE_QUOTA_MB)"
                + (f", and this upload adds {_mb(adding)}" if adding else "")
                + ". Delete documents you no longer need, or ask an administrator.",
                code="storage_quota_exceeded",
            )
        if self.max_queued and (
            waiting + len(stored) > self.max_queued or waiting >= self.max_queued
        ):
            raise RateLimited(
                f"Too many documents waiting to be indexed: at most {self.max_queued} per "
                f"account (USER_QUEUED_DOCUMENTS); {waiting} are waiting now"
                + (f" and this upload adds {len(stored)}" if stored else "")
                + ". Upload more once some are indexed.",
                retry_after=QUEUE_RETRY_S,
                code="queue_limit_reached",
            )


def _mb(n: int) -> str:
    return f"{n / MB:,.1f} MB"
