"""Waiting for a job to finish without holding a thread or a database connection.

A job finishes either in this process (its worker calls `Finished`, which wakes the waiters
at once) or in a `pitchcraft worker` elsewhere, which only the database tells: the waiter
also reads the job's status now and then, each read a short session of its own. Between
reads a waiter is a suspended coroutine, nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Iterator

from pitchcraft.jobs.models import FINISHED

# The first status read comes this soon after the previous one; the pause doubles up to
# the maximum (a job in another process is seen within about a second of finishing).
POLL_FIRST_S = 0.2
POLL_MAX_S = 1.0


class Finished:
    """Jobs finishing in this process, told to whoever listens for them. Called from worker
    threads; listeners run in the caller's thread and must be quick."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: dict[str, list[Callable[[], None]]] = {}

    def __call__(self, job_id: str) -> None:
        with self._lock:
            listeners = self._listeners.pop(job_id, [])
        for listener in listeners:
            listener()

    def listening(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._listeners.values())

    @contextlib.contextmanager
    def listen(self, job_id: str, listener: Callable[[], None]) -> Iterator[None]:
        with self._lock:
            self._listeners.setdefault(job_id, []).append(listener)
        try:
            yield
        finally:
            with self._lock:
                left = self._listeners.get(job_id)
                if left is not None and listener in left:
                    left.remove(listener)
                    if not left:
                        del self._listeners[job_id]


async def wait_finished(
    job_id: str,
    *,
    status_of: Callable[[str], str | None],
    finished: Finished,
    timeout: float,
    gone: Callable[[], Awaitable[bool]] | None = None,
) -> str | None:
    """The job's status once it has finished, or as it stands when `timeout` seconds have
    passed or `gone()` says nobody waits any more; None when the job no longer exists.

    `status_of(job_id)` reads the status in a short session; it runs in a thread, briefly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    woken = asyncio.Event()

    def wake() -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(woken.set)

    pause = POLL_FIRST_S
    with finished.listen(job_id, wake):
        while True:
            status = await asyncio.to_thread(status_of, job_id)
            if status is None or status in FINISHED:
                return status
            left = deadline - loop.time()
            if left <= 0 or (gone is not None and await gone()):
                return status
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(pause, left))
            pause = min(POLL_MAX_S, pause * 2)
