"""The job table as a queue: claim with a lease, renew it, finish.

A worker claims a runnable job (queued, or running with an expired lease, i.e. its worker
died) with `FOR UPDATE SKIP LOCKED` on PostgreSQL; on SQLite every transaction takes the
write lock up front (see core/db.py), which serialises claims the same way.

Users take turns: the next job is the oldest one of the user whose last job of these kinds
started longest ago (or never), so one user's 200 uploads do not starve another's one.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from pitchcraft.core.db import Database, utcnow
from pitchcraft.jobs.models import FINISHED, QUEUED, RUNNING, Job

MAX_ATTEMPTS = 5


def new_job_id() -> str:
    return uuid.uuid4().hex


def enqueue(
    session: Session,
    *,
    kind: str,
    user_id: int,
    payload: dict[str, Any] | None = None,
    document_id: str | None = None,
) -> Job:
    job = Job(
        id=new_job_id(),
        kind=kind,
        user_id=user_id,
        status=QUEUED,
        payload=payload or {},
        document_id=document_id,
    )
    session.add(job)
    return job


def claim(
    db: Database, *, worker_id: str, kinds: tuple[str, ...], lease_seconds: int
) -> Job | None:
    """Take the oldest runnable job of these kinds, or None."""
    now = utcnow()
    with db.session() as s:
        served = (
            select(Job.user_id, func.max(Job.started_at).label("last_started"))
            .where(Job.kind.in_(kinds), Job.started_at.is_not(None))
            .group_by(Job.user_id)
            .subquery()
        )
        query = (
            select(Job)
            .outerjoin(served, served.c.user_id == Job.user_id)
            .where(
                Job.kind.in_(kinds),
                or_(Job.status == QUEUED, (Job.status == RUNNING) & (Job.lease_until < now)),
            )
            .order_by(served.c.last_started.asc().nulls_first(), Job.created_at)
            .limit(1)
            .with_for_update(of=Job, skip_locked=True)
        )
        job = s.scalar(query)
        if job is None:
            return None
        job.status = RUNNING
        job.locked_by = worker_id
        job.lease_until = now + timedelta(seconds=lease_seconds)
        job.attempts += 1
        job.started_at = job.started_at or now
        s.flush()
        return job


def _held(job_id: str, worker_id: str) -> tuple[ColumnElement[bool], ...]:
    """The lease rule: a worker writes to a job only while it holds it."""
    return (Job.id == job_id, Job.locked_by == worker_id, Job.status == RUNNING)


def renew(
    db: Database, job_id: str, *, worker_id: str, lease_seconds: int, progress: float | None = None
) -> bool:
    """Extend the lease; False when this worker no longer holds the job (cancelled, taken over)."""
    values: dict[str, Any] = {"lease_until": utcnow() + timedelta(seconds=lease_seconds)}
    if progress is not None:
        values["progress"] = progress
    with db.session() as s:
        result = s.execute(update(Job).where(*_held(job_id, worker_id)).values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(
    db: Database,
    job_id: str,
    *,
    worker_id: str,
    status: str,
    error: str | None = None,
    result: dict[str, Any] | None = None,
) -> bool:
    assert status in FINISHED
    values: dict[str, Any] = {
        "status": status,
        "error": error,
        "finished_at": utcnow(),
        "lease_until": None,
        "progress": 1.0 if status == "succeeded" else Job.progress,
    }
    if result is not None:
        values["result"] = result
    with db.session() as s:
        done = s.execute(update(Job).where(*_held(job_id, worker_id)).values(**values))
        return bool(done.rowcount)  # type: ignore[attr-defined]


def release(db: Database, job_id: str, *, worker_id: str) -> bool:
    """Put a job this worker holds back in the queue, its claim not counted as an attempt
    (the worker is stopping; the job did nothing wrong)."""
    with db.session() as s:
        done = s.execute(
            update(Job)
            .where(*_held(job_id, worker_id))
            .values(status=QUEUED, locked_by=None, lease_until=None, attempts=Job.attempts - 1)
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def save_partial(db: Database, job_id: str, *, worker_id: str, result: dict[str, Any]) -> bool:
    """Show a running job's result so far; False when this worker no longer holds the job."""
    with db.session() as s:
        done = s.execute(update(Job).where(*_held(job_id, worker_id)).values(result=result))
        return bool(done.rowcount)  # type: ignore[attr-defined]


def status_of(db: Database, job_id: str) -> str | None:
    """The job's status, or None when there is no such job (one short read)."""
    with db.session() as s:
        return s.scalar(select(Job.status).where(Job.id == job_id))


def release_running(db: Database, *, kinds: tuple[str, ...]) -> int:
    """Put every running job back in the queue (used when one process owns all work)."""
    with db.session() as s:
        result = s.execute(
            update(Job)
            .where(Job.kind.in_(kinds), Job.status == RUNNING)
            .values(status=QUEUED, locked_by=None, lease_until=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
