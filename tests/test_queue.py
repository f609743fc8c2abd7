"""The job table as a queue, on SQLite and PostgreSQL: claims, leases, take-over, finish."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import update

from pitchcraft.auth.models import User
from pitchcraft.container import build
from pitchcraft.core.db import utcnow
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import Job
from pitchcraft.settings import Settings


def _setup(settings: Settings, jobs: int) -> tuple[object, list[str]]:
    container = build(settings)
    db = container.db
    with db.session() as s:
        user = User(email="q@example.com", password_hash="x")
        s.add(user)
        s.flush()
        ids = [
            queue.enqueue(s, kind="test", user_id=user.id, payload={"n": n}).id for n in range(jobs)
        ]
    return container, ids


def test_claim_order_lease_and_finish(settings: Settings) -> None:
    container, ids = _setup(settings, 3)
    db = container.db  # type: ignore[attr-defined]
    first = queue.claim(db, worker_id="w1", kinds=("test",), lease_seconds=60)
    assert first is not None and first.id == ids[0]
    assert first.status == "running" and first.attempts == 1
    # Another worker does not get the same job while its lease holds.
    second = queue.claim(db, worker_id="w2", kinds=("test",), lease_seconds=60)
    assert second is not None and second.id == ids[1]
    assert queue.claim(db, worker_id="w2", kinds=("other",), lease_seconds=60) is None
    # Only the holder can finish or renew.
    assert not queue.finish(db, first.id, worker_id="w2", status="succeeded")
    assert not queue.renew(db, first.id, worker_id="w2", lease_seconds=60)
    assert queue.renew(db, first.id, worker_id="w1", lease_seconds=60, progress=0.5)
    assert queue.finish(db, first.id, worker_id="w1", status="succeeded", result={"ok": True})
    with db.session() as s:
        done = s.get(Job, first.id)
        assert done is not None
        assert (done.status, done.progress, done.result) == ("succeeded", 1.0, {"ok": True})
        assert done.finished_at is not None


def test_a_dead_workers_job_is_taken_over_after_its_lease(settings: Settings) -> None:
    container, _ = _setup(settings, 1)
    db = container.db  # type: ignore[attr-defined]
    job = queue.claim(db, worker_id="dead", kinds=("test",), lease_seconds=60)
    assert job is not None
    assert queue.claim(db, worker_id="alive", kinds=("test",), lease_seconds=60) is None
    with db.session() as s:
        s.execute(
            update(Job).where(Job.id == job.id).values(lease_until=utcnow() - timedelta(seconds=1))
        )
    again = queue.claim(db, worker_id="alive", kinds=("test",), lease_seconds=60)
    assert again is not None and again.id == job.id
    assert again.attempts == 2 and again.locked_by == "alive"
    # The dead worker, should it wake up, can no longer finish it.
    assert not queue.finish(db, job.id, worker_id="dead", status="failed", error="late")


def test_concurrent_claims_never_share_a_job(settings: Settings) -> None:
    container, ids = _setup(settings, 40)
    db = container.db  # type: ignore[attr-defined]
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            job = queue.claim(db, worker_id=name, kinds=("test",), lease_seconds=60)
            if job is None:
                return
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)
    assert len(set(claimed)) == len(claimed)


def test_release_running_requeues(settings: Settings) -> None:
    container, ids = _setup(settings, 2)
    db = container.db  # type: ignore[attr-defined]
    assert queue.claim(db, worker_id="w", kinds=("test",), lease_seconds=600) is not None
    assert queue.release_running(db, kinds=("test",)) == 1
    job = queue.claim(db, worker_id="w2", kinds=("test",), lease_seconds=60)
    assert job is not None and job.id == ids[0]


def test_worker_threads_run_jobs_at_a_lower_cpu_priority(settings: Settings) -> None:
    """Jobs (and the compute threads they start, such as the embedding model's) run nicer
    than the web's threads, which keep their priority."""
    import os

    from pitchcraft.jobs.worker import Kind, Outcome, Worker

    container, _ids = _setup(settings, 1)
    seen: dict[str, int] = {}
    done = threading.Event()

    def handler(job: Job, heartbeat: object) -> Outcome:
        seen["job"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        def child() -> None:
            seen["started by the job"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

        t = threading.Thread(target=child)
        t.start()
        t.join()
        done.set()
        return Outcome.succeeded()

    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = Worker(
        container.db,  # type: ignore[attr-defined]
        {"test": Kind(handler=handler, gave_up=lambda job: None)},  # type: ignore[arg-type]
        nice=5,
        poll_seconds=0.05,
    )
    worker.start()
    try:
        assert done.wait(30)
    finally:
        worker.stop()
    assert seen == {"job": min(19, base + 5), "started by the job": min(19, base + 5)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


def test_users_take_turns_in_the_queue(settings: Settings) -> None:
    """One user's many uploads do not starve another user's one: after each claim the
    next job is from the user served longest ago (or never)."""
    container = build(settings)
    db = container.db
    with db.session() as s:
        many, one = (
            User(email="many@example.com", password_hash="x"),
            User(email="one@example.com", password_hash="x"),
        )
        s.add_all([many, one])
        s.flush()
        flood = [queue.enqueue(s, kind="ingest", user_id=many.id).id for _ in range(20)]
        s.flush()
        single = queue.enqueue(s, kind="ingest", user_id=one.id).id
        many_id, one_id = many.id, one.id
    first = queue.claim(db, worker_id="w", kinds=("ingest",), lease_seconds=60)
    second = queue.claim(db, worker_id="w", kinds=("ingest",), lease_seconds=60)
    assert first is not None and second is not None
    assert (first.id, first.user_id) == (flood[0], many_id)
    assert (second.id, second.user_id) == (single, one_id)  # not 20th in line
    rest = []
    while (job := queue.claim(db, worker_id="w", kinds=("ingest",), lease_seconds=60)) is not None:
        rest.append(job.id)
    assert rest == flood[1:]  # a user's own jobs keep their order


def test_a_refine_job_whose_worker_died_is_retried_once_then_fails(settings: Settings) -> None:
    from pitchcraft.jobs.worker import Kind, Outcome, Worker

    container = build(settings)
    db = container.db
    with db.session() as s:
        user = User(email="r@example.com", password_hash="x")
        s.add(user)
        s.flush()
        job_id = queue.enqueue(s, kind="refine", user_id=user.id).id
    runs: list[int] = []
    gave_up: list[str] = []

    def handler(job: Job, beat: object) -> Outcome:
        runs.append(job.attempts)
        return Outcome.succeeded()

    worker = Worker(
        db,
        {"refine": Kind(handler=handler, gave_up=lambda j: gave_up.append(j.id), max_attempts=2)},
    )

    def die_holding_it() -> None:
        claimed = queue.claim(db, worker_id="dead", kinds=("refine",), lease_seconds=60)
        assert claimed is not None
        with db.session() as s:  # its lease runs out: the worker is gone
            s.execute(update(Job).where(Job.id == job_id).values(lease_until=utcnow()))

    die_holding_it()
    die_holding_it()  # the one retry dies too
    assert worker.run_once()
    assert runs == [] and gave_up == [job_id]
    with db.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == "failed"
        assert job.error is not None and "stopped" in job.error and "retried 1 time" in job.error
    assert not worker.run_once()  # nothing left running or queued


def test_wakeup_reaches_every_lane() -> None:
    from pitchcraft.jobs.worker import Wakeup

    wakeup = Wakeup()
    a, b = wakeup.subscribe(), wakeup.subscribe()
    wakeup()
    assert a.is_set() and b.is_set()


def test_a_stop_mid_job_puts_it_back_in_the_queue_not_failed(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop closes what a running job uses (the vector index): the job is neither failed
    nor charged an attempt, and the log shows no traceback. A handler that heeds its
    heartbeat leaves at its next step the same way."""
    from pitchcraft.jobs.worker import Kind, Outcome, Worker
    from pitchcraft.vectors.base import IndexClosed

    container, ids = _setup(settings, 2)
    db = container.db  # type: ignore[attr-defined]
    started, stopping = threading.Event(), threading.Event()
    beats: list[bool] = []

    def handler(job: Job, beat: Callable[[float], bool]) -> Outcome:
        started.set()
        assert stopping.wait(30)
        if job.payload == {"n": 0}:
            raise IndexClosed
        beats.append(beat(0.5))
        return Outcome.lost()

    worker = Worker(
        db,
        {"test": Kind(handler=handler, gave_up=lambda job: None)},  # type: ignore[arg-type]
        concurrency=2,
        poll_seconds=0.05,
    )
    worker.start()
    assert started.wait(30)
    deadline = time.monotonic() + 30
    while _statuses(db, ids) != ["running", "running"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with caplog.at_level(logging.INFO, logger="pitchcraft.jobs.worker"):
        threading.Timer(0.2, stopping.set).start()
        worker.stop(timeout=30)
    assert beats == [False]
    with db.session() as s:
        jobs = [s.get(Job, i) for i in ids]
        assert [(j.status, j.attempts, j.locked_by, j.error) for j in jobs if j] == [
            ("queued", 0, None, None),
            ("queued", 0, None, None),
        ]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert sum("back to the queue: stopping" in r.getMessage() for r in caplog.records) == 2


def _statuses(db: object, ids: list[str]) -> list[str]:
    with db.session() as s:  # type: ignore[attr-defined]
        return [s.get(Job, i).status for i in ids]
