"""Deleted passages leave the disk, not only the search results.

Deleting points only marks them deleted: their payload (the passage text) stays in the
vector store's pages and WAL, and a SQLite database keeps old pages in its WAL. A delete
marks the user; `VECTOR_PURGE_DELAY_S` after the last delete of a batch (deletes that
follow each other closely are one batch) the user's vectors are rewritten without the
deleted points and the database's WAL is checkpointed and truncated. `run_due` is what the
timer calls; `run_now` does every pending purge at once (tests, shutdown).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pitchcraft.vectors.base import VectorIndex

log = logging.getLogger(__name__)


class Purger:
    def __init__(
        self,
        index: Callable[[], VectorIndex],
        *,
        delay_s: float,
        after: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._index = index
        self._delay = delay_s
        self._after = after  # the database's part, once the vectors are done
        self._clock = clock
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._due: dict[int, float] = {}  # user id -> when to purge
        self._timer: threading.Timer | None = None
        self._closed = False

    def mark(self, user_id: int) -> None:
        """The user's vectors lost points: purge them once the batch of deletes is over."""
        with self._lock:
            if self._closed:
                return
            self._due[user_id] = self._clock() + self._delay
            self._schedule(min(self._due.values()) - self._clock())

    def pending(self) -> set[int]:
        with self._lock:
            return set(self._due)

    def _schedule(self, delay: float) -> None:
        """(Re)arm the one timer for `delay` from now (lock held)."""
        if self._timer is not None:
            self._timer.cancel()
        timer = threading.Timer(max(0.0, delay), self.run_due)
        timer.name = "purge-deleted"
        timer.daemon = True
        self._timer = timer
        timer.start()

    def run_due(self) -> None:
        now = self._clock()
        with self._lock:
            users = [u for u, when in self._due.items() if when <= now]
        self._purge(users)
        self._rearm()

    def run_now(self) -> list[int]:
        """Purge every pending user now; returns who was purged (or tried)."""
        with self._lock:
            users = list(self._due)
        self._purge(users)
        self._rearm()
        return users

    def _rearm(self) -> None:
        with self._lock:
            if self._due and not self._closed:
                self._schedule(min(self._due.values()) - self._clock())

    def _purge(self, users: list[int]) -> None:
        if not users:
            return
        with self._run_lock:
            for user_id in users:
                with self._lock:
                    self._due.pop(user_id, None)
                started = self._clock()
                try:
                    self._index().purge_deleted(user_id)
                except Exception:
                    log.warning(
                        "purging deleted passages of user %s failed; trying again in %gs",
                        user_id,
                        self._delay,
                        exc_info=True,
                    )
                    with self._lock:
                        self._due.setdefault(user_id, self._clock() + self._delay)
                    continue
                log.info(
                    "deleted passages of user %s purged from disk in %.1fs",
                    user_id,
                    self._clock() - started,
                )
            if self._after is not None:
                try:
                    self._after()
                except Exception:
                    log.warning("compacting the database after deletes failed", exc_info=True)

    def close(self) -> None:
        """Do what is pending (a stop must not leave deleted text behind), then stop."""
        self.run_now()
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
