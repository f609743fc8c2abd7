"""Sign-in sessions: opened at each sign-in, checked on each request, ended on sign-out,
expiry, idleness or a password change.

A token names its session (`sid`). Checking it is one primary-key lookup of the session
joined to its user; the activity stamp is written at most every `touch_every` (a minute by
default), not on every request. A process may also reuse a live session's check for
`cache_seconds` (SESSION_CACHE_SECONDS, off by default): a sign-out or password change made
in this process drops the cached entry at once, one made elsewhere (another replica, the CLI)
takes effect within that time.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from pitchcraft.auth.models import EXPIRED, IDLE, SIGNED_OUT, User, UserSession
from pitchcraft.auth.security import InvalidToken, Tokens
from pitchcraft.core.db import Database, utcnow
from pitchcraft.core.errors import Unauthorized

CACHE_ENTRIES = 10_000
TOUCH_EVERY = timedelta(minutes=1)

ENDED_MESSAGES = {
    SIGNED_OUT: "You signed out; sign in again.",
    EXPIRED: "Your session has expired; please sign in again.",
    IDLE: "Your session ended after a while without activity; please sign in again.",
}
ENDED_DEFAULT = "Your session has ended; please sign in again."


@dataclass(frozen=True)
class SignedIn:
    """A checked token: whose it is and which session it belongs to."""

    user: User
    session_id: str


@dataclass(frozen=True)
class Opened:
    """A new session: its token, and how many documents of ended sessions it cleared."""

    user: User
    session_id: str
    token: str
    cleared_documents: int = 0


def invalid(message: str) -> Unauthorized:
    return Unauthorized(message, code="invalid_token")


class SessionStore:
    def __init__(
        self, db: Database, tokens: Tokens, *, idle_minutes: float, cache_seconds: float = 0
    ) -> None:
        self.db = db
        self.tokens = tokens
        self.idle = timedelta(minutes=idle_minutes)
        # A short idle limit (tests, kiosks) needs fresher stamps than once a minute.
        self.touch_every = min(TOUCH_EVERY, self.idle / 10)
        self.cache_seconds = min(cache_seconds, self.touch_every.total_seconds())
        self._cache: OrderedDict[str, tuple[float, SignedIn]] = OrderedDict()
        self._lock = threading.Lock()

    # -- opening ---------------------------------------------------------------------------

    def open(self, s: Session, user: User) -> tuple[UserSession, str]:
        """Add a live session for `user` in the caller's transaction; return it and its token."""
        now = utcnow()
        row = UserSession(
            id=uuid.uuid4().hex,
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=self.tokens.lifetime_seconds),
        )
        s.add(row)
        s.flush()
        return row, self.tokens.issue(user.id, user.token_version, row.id, now)

    def dead(self, user_id: int, now: datetime) -> ColumnElement[bool]:
        """The condition of a user's sessions that are over, ended or not yet marked so."""
        return and_(
            UserSession.user_id == user_id,
            or_(
                UserSession.ended_at.is_not(None),
                UserSession.expires_at <= now,
                UserSession.last_seen_at < now - self.idle,
            ),
        )

    def mark_over(self, s: Session, user_id: int, now: datetime) -> None:
        """Record the end of the user's expired and idle sessions (in the caller's
        transaction), so that none of them can be used again."""
        live = (UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        s.execute(
            update(UserSession)
            .where(*live, UserSession.expires_at <= now)
            .values(ended_at=now, end_reason=EXPIRED)
        )
        s.execute(
            update(UserSession)
            .where(*live, UserSession.last_seen_at < now - self.idle)
            .values(ended_at=now, end_reason=IDLE)
        )

    # -- checking --------------------------------------------------------------------------

    def check(self, token: str) -> SignedIn:
        try:
            claims = self.tokens.decode(token)
        except InvalidToken as exc:
            raise invalid(str(exc)) from exc
        sid = claims.session_id
        if not sid or len(sid) > 32:
            raise invalid("This access token is from an older release; please sign in again.")
        if self.cache_seconds > 0:
            with self._lock:
                hit = self._cache.get(sid)
            fresh = hit is not None and time.monotonic() - hit[0] < self.cache_seconds
            if hit is not None and fresh and hit[1].user.id == claims.user_id:
                return hit[1]
        now = utcnow()
        with self.db.session() as s:
            found = s.execute(
                select(UserSession, User)
                .join(User, User.id == UserSession.user_id)
                .where(UserSession.id == sid)
            ).first()
            if found is None:
                raise invalid("The access token is no longer valid.")
            session, user = found
            if (
                session.user_id != claims.user_id
                or not user.is_active
                or user.token_version != claims.token_version
            ):
                raise invalid("The access token is no longer valid.")
            if session.ended_at is not None:
                raise invalid(ENDED_MESSAGES.get(session.end_reason or "", ENDED_DEFAULT))
            over = EXPIRED if session.expires_at <= now else None
            if over is None and session.last_seen_at < now - self.idle:
                over = IDLE
            if over is not None:
                session.ended_at, session.end_reason = now, over
            elif now - session.last_seen_at >= self.touch_every:
                session.last_seen_at = now
        if over is not None:  # committed above: the session stays ended
            raise invalid(ENDED_MESSAGES[over])
        signed = SignedIn(user, sid)
        if self.cache_seconds > 0:
            with self._lock:
                self._cache[sid] = (time.monotonic(), signed)
                self._cache.move_to_end(sid)
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return signed

    # -- ending ----------------------------------------------------------------------------

    def end(self, session_id: str, reason: str = SIGNED_OUT) -> bool:
        """End one session; False when it had already ended (or never existed)."""
        with self.db.session() as s:
            done = s.execute(
                update(UserSession)
                .where(UserSession.id == session_id, UserSession.ended_at.is_(None))
                .values(ended_at=utcnow(), end_reason=reason)
            )
        self.forget(session_id)
        return bool(done.rowcount)  # type: ignore[attr-defined]

    def end_all(
        self, s: Session, user_id: int, *, reason: str, keep: str | None = None
    ) -> list[str]:
        """End every live session of a user but `keep`, in the caller's transaction."""
        where = [UserSession.user_id == user_id, UserSession.ended_at.is_(None)]
        if keep is not None:
            where.append(UserSession.id != keep)
        ids = list(s.scalars(select(UserSession.id).where(*where)))
        if ids:
            s.execute(
                update(UserSession)
                .where(UserSession.id.in_(ids))
                .values(ended_at=utcnow(), end_reason=reason)
            )
        return ids

    def forget(self, *session_ids: str) -> None:
        """Drop cached checks (after their sessions ended, or their user changed)."""
        with self._lock:
            for sid in session_ids:
                self._cache.pop(sid, None)

    def forget_user(self, user_id: int) -> None:
        with self._lock:
            for sid in [k for k, (_, v) in self._cache.items() if v.user.id == user_id]:
                del self._cache[sid]

    def take_cleared(self, session_id: str) -> int:
        """How many documents this session's sign-in cleared, once: the next call says 0."""
        with self.db.session() as s:
            row = s.get(UserSession, session_id, with_for_update=True)
            if row is None or not row.cleared_documents:
                return 0
            n, row.cleared_documents = row.cleared_documents, 0
            return n
