"""The worker: claims jobs from the queue and runs them, renewing its lease as it goes."""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pitchcraft.core.db import Database
from pitchcraft.jobs import queue
from pitchcraft.jobs.models import CANCELLED, FAILED, SUCCEEDED, Job

log = logging.getLogger(__name__)

LOST = "lost"


@dataclass(frozen=True)
class Outcome:
    """How a handler ended: the job's final status with its error and result, or `lost`
    (another worker holds the job now; nothing is written)."""

    status: str
    error: str | None = None
    result: dict[str, Any] | None = None

    @classmethod
    def succeeded(cls, result: dict[str, Any] | None = None) -> Outcome:
        return cls(SUCCEEDED, None, result)

    @classmethod
    def failed(cls, error: str, result: dict[str, Any] | None = None) -> Outcome:
        return cls(FAILED, error, result)

    @classmethod
    def cancelled(cls, result: dict[str, Any] | None = None) -> Outcome:
        return cls(CANCELLED, None, result)

    @classmethod
    def lost(cls) -> Outcome:
        return cls(LOST)


# heartbeat(progress) -> is the job still ours?
Beat = Callable[[float], bool]
Handler = Callable[[Job, Beat], Outcome]
GaveUp = Callable[[Job], None]


class Wakeup:
    """Built before the services that queue work and the workers that run it: queuing a
    job calls it, so every worker (the ingestion and the refine lane) looks at once instead
    of at its next poll."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[threading.Event] = []
        self._event = self.subscribe()

    def subscribe(self) -> threading.Event:
        """An event of one's own, set by every call."""
        event = threading.Event()
        with self._lock:
            self._events.append(event)
        return event

    def __call__(self) -> None:
        with self._lock:
            for event in self._events:
                event.set()

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()


@dataclass
class Kind:
    handler: Handler
    gave_up: GaveUp
    # Claims before the job is given up (a claim after a worker died counts as one).
    max_attempts: int = queue.MAX_ATTEMPTS


class Worker:
    def __init__(
        self,
        db: Database,
        kinds: dict[str, Kind],
        *,
        concurrency: int = 1,
        lease_seconds: int = 60,
        poll_seconds: float = 1.0,
        nice: int = 0,
        wakeup: Wakeup | None = None,
        finished: Callable[[str], None] | None = None,
        worker_id: str | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.db = db
        self.kinds = kinds
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.nice = nice
        self.id = worker_id or new_worker_id()
        self._stop = threading.Event()
        self._wakeup = wakeup or Wakeup()
        self._wake = self._wakeup.subscribe()
        # Told the id of every job this worker finishes (requests waiting for it wake up).
        self._finished = finished or (lambda _job_id: None)
        self._threads: list[threading.Thread] = []
        # Asked before each claim: False leaves the queue alone for now (a lane that only
        # works while others are idle).
        self._ready = ready

    def start(self) -> None:
        for n in range(self.concurrency):
            lane = "-".join(self.kinds)
            t = threading.Thread(target=self._loop, name=f"pitchcraft-{lane}-{n}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout)

    def run_once(self) -> bool:
        """Claim and run one job; False when the queue had nothing runnable."""
        if self._ready is not None and not self._ready():
            return False
        job = queue.claim(
            self.db, worker_id=self.id, kinds=tuple(self.kinds), lease_seconds=self.lease_seconds
        )
        if job is None:
            return False
        self._run(job)
        return True

    def _loop(self) -> None:
        lower_priority(self.nice)
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception:
                log.exception("worker loop error; retrying")
                worked = False
            if not worked:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def _run(self, job: Job) -> None:
        kind = self.kinds[job.kind]
        if job.attempts > kind.max_attempts:
            kind.gave_up(job)
            retried = kind.max_attempts - 1
            if queue.finish(
                self.db,
                job.id,
                worker_id=self.id,
                status=FAILED,
                error=(
                    f"its worker stopped while running it ({kind.max_attempts} times; "
                    f"retried {retried} time{'s' if retried != 1 else ''}); submit it again"
                ),
            ):
                self._finished(job.id)
            return
        lost = threading.Event()
        stop_beat = threading.Event()

        def beat(progress: float | None = None) -> bool:
            # Stopping: the handler leaves at its next step and the job goes back to the queue.
            if lost.is_set() or self._stop.is_set():
                return False
            if not queue.renew(
                self.db,
                job.id,
                worker_id=self.id,
                lease_seconds=self.lease_seconds,
                progress=progress,
            ):
                lost.set()
            return not lost.is_set()

        def keep_alive() -> None:
            while not stop_beat.wait(max(1.0, self.lease_seconds / 3)):
                beat()

        keeper = threading.Thread(target=keep_alive, name=f"lease-{job.id[:8]}", daemon=True)
        keeper.start()
        try:
            outcome = kind.handler(job, beat)
        except Exception as exc:
            if self._stop.is_set():
                # What the handler used was closed under it by the stop; not the job's fault.
                log.info("job %s (%s) interrupted by the stop: %s", job.id, job.kind, exc)
                outcome = Outcome.lost()
            else:
                log.exception("job %s (%s) failed", job.id, job.kind)
                outcome = Outcome.failed(f"unexpected error: {type(exc).__name__}")
        finally:
            stop_beat.set()
            keeper.join()
        if outcome.status == LOST and self._stop.is_set():
            if queue.release(self.db, job.id, worker_id=self.id):
                log.info("job %s (%s) goes back to the queue: stopping", job.id, job.kind)
            return
        if outcome.status != LOST and queue.finish(
            self.db,
            job.id,
            worker_id=self.id,
            status=outcome.status,
            error=outcome.error,
            result=outcome.result,
        ):
            self._finished(job.id)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def lower_priority(nice: int) -> None:
    """Make the calling thread `nice` steps nicer (Linux: the niceness is per thread, and
    threads it starts later inherit it — the embedding model's compute threads included).

    Embedding uses every core; a web request's query embedding or password hash, in a
    thread of normal priority, then takes the CPU first instead of queueing behind a
    large document (measured on 2 cores: query p95 45 ms at equal priority, 24 ms with
    the worker at +10, ingestion as fast)."""
    if nice <= 0 or not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + nice))
    except OSError as exc:
        log.warning("could not lower the worker's CPU priority: %s", exc)
