"""Accounts as an administrator manages them: the list with what each account uses, and
the role, subscription and disabled flags. The install always keeps one administrator
who can sign in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pitchcraft.auth.models import User
from pitchcraft.auth.service import normalize_email
from pitchcraft.core.db import Database
from pitchcraft.core.errors import Conflict, NotFound
from pitchcraft.documents.models import Document
from pitchcraft.jobs.models import Job
from pitchcraft.refine.service import REFINE

LAST_ADMIN = "This is the last administrator; promote another account first."


class UserRow(BaseModel):
    """An account with what it uses; also the administration API's body for one
    (admin.schemas.AdminUserOut)."""

    model_config = ConfigDict(frozen=True)

    id: int
    email: str
    is_admin: bool
    is_subscribed: bool
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    documents: int
    jobs: int
    storage_bytes: int


@dataclass
class Users:
    db: Database

    def list(self, *, limit: int = 50, offset: int = 0) -> tuple[list[UserRow], int]:
        docs = (
            select(
                Document.user_id,
                func.count(Document.id).label("n"),
                func.coalesce(func.sum(Document.size), 0).label("bytes"),
            )
            .group_by(Document.user_id)
            .subquery()
        )
        jobs = (
            select(Job.user_id, func.count(Job.id).label("n"))
            .where(Job.kind == REFINE)
            .group_by(Job.user_id)
            .subquery()
        )
        query = (
            select(User, docs.c.n, docs.c.bytes, jobs.c.n)
            .outerjoin(docs, docs.c.user_id == User.id)
            .outerjoin(jobs, jobs.c.user_id == User.id)
            .order_by(User.id)
            .limit(limit)
            .offset(offset)
        )
        with self.db.session() as s:
            total = int(s.scalar(select(func.count(User.id))) or 0)
            rows = [
                _row(user, n_docs or 0, int(n_bytes or 0), n_jobs or 0)
                for user, n_docs, n_bytes, n_jobs in s.execute(query)
            ]
        return rows, total

    def get(self, user_id: int) -> UserRow:
        with self.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                raise NotFound("No such account.", code="user_not_found")
            n_docs, n_bytes = s.execute(
                select(func.count(Document.id), func.coalesce(func.sum(Document.size), 0)).where(
                    Document.user_id == user_id
                )
            ).one()
            n_jobs = s.scalar(
                select(func.count(Job.id)).where(Job.user_id == user_id, Job.kind == REFINE)
            )
            return _row(user, n_docs, int(n_bytes), n_jobs or 0)

    def id_for_email(self, email: str) -> int:
        with self.db.session() as s:
            found = s.scalar(select(User.id).where(User.email == normalize_email(email)))
        if found is None:
            raise NotFound(f"No account with the email {email!r}.", code="unknown_user")
        return found

    def update(
        self,
        user_id: int,
        *,
        is_admin: bool | None = None,
        is_subscribed: bool | None = None,
        disabled: bool | None = None,
        actor_id: int | None = None,
    ) -> UserRow:
        """Change the flags given (None: leave as is), all or none."""
        with self.db.session() as s:
            # The administrators are locked first: two concurrent demotions cannot both
            # see another administrator left.
            admins = _locked_admins(s)
            user = s.get(User, user_id)
            if user is None:
                raise NotFound("No such account.", code="user_not_found")
            if disabled and actor_id == user_id:
                raise Conflict("You cannot disable your own account.", code="cannot_disable_self")
            stays_admin = user.is_admin if is_admin is None else is_admin
            stays_active = user.is_active if disabled is None else not disabled
            leaves = user.is_admin and user.is_active and not (stays_admin and stays_active)
            if leaves and not any(a.id != user.id for a in admins):
                raise Conflict(LAST_ADMIN, code="last_admin")
            if is_admin is not None:
                user.is_admin = is_admin
            if is_subscribed is not None:
                user.is_subscribed = is_subscribed
            if disabled is not None and disabled == user.is_active:
                user.is_active = not disabled
                if disabled:
                    user.token_version += 1  # its sessions end, and stay ended if re-enabled
        return self.get(user_id)


def _locked_admins(s: Session) -> list[User]:
    """The administrators who can sign in, locked for the rest of the transaction."""
    return list(
        s.scalars(
            select(User)
            .where(User.is_admin.is_(True), User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
    )


def _row(user: User, documents: int, storage_bytes: int, jobs: int) -> UserRow:
    return UserRow(
        id=user.id,
        email=user.email,
        is_admin=user.is_admin,
        is_subscribed=user.is_subscribed,
        disabled=not user.is_active,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        documents=int(documents),
        jobs=int(jobs),
        storage_bytes=storage_bytes,
    )
