"""Search benchmark: retrieval quality on the dev set, and latency at 100k chunks.

Quality: every corpus file is indexed into one user's EdgeIndex in this process by the
production path (detect -> parse_sandboxed -> chunk -> pipeline.embedding_text ->
embedder + Bm25Encoder -> IndexPoint(pipeline.point_id) -> EdgeIndex.upsert per pipeline
batch -> optimize), then the 30 dev questions go through `pitchcraft.search.service.Search`
(query + backgrounds, limit 5) and are scored by the rules of shared/eval/README.md.
Variants: hybrid (shipped), dense-only, sparse-only, int8 vs fp32 embeddings, and hybrid
without the backgrounds in the query.

Latency: one user's collection of 100,000 chunks (the real corpus chunks plus filler:
random unit dense vectors and BM25 vectors of random corpus words, because embedding 100k
real passages would take hours here), optimised; p50/p95 of a full search through
`Search` (query embedding included) over ~200 queries, against qdrant-client's local mode
(`QdrantClient(path=...)`, through the production ServerIndex adapter) holding the same
points and queried the same way.

Run: .venv/bin/python -m bench.search [--quick] [--skip-quality] [--skip-latency | --quality-only]
     [--parse-cache] [--vector-cache] (the caches speed up tuning runs)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import sys
import tempfile
import time
import unicodedata
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import (
    CORPUS,
    CPU_NOTE,
    DEV_SET,
    RESULTS,
    ROOT,
    CpuShare,
    Stopwatch,
    banner,
    finish,
    go_offline,
    latency_summary,
    loadavg,
    machine,
    ratio,
    table,
)

USER = 1
LATENCY_USER = 7
LIMIT = 5
DEEP = 100  # how far down the single-arm lists the diagnostics look for the answer
NAMESPACE = uuid.UUID("0b1e7c57-5eac-4c4e-9d1c-beac00000001")
DATA = Path(__file__).resolve().parent / "data"
EXTRA_SET = DATA / "search-questions-extra.jsonl"  # 20 more questions over the corpus
MULTILINGUAL_SET = DATA / "search-multilingual.jsonl"  # German, French, Spanish <-> English
MULTILINGUAL_DOCS = ROOT / "tests" / "data" / "multilingual"  # its French and Spanish documents

# ---------------------------------------------------------------------------------------
# the dev set and its scoring rules (shared/eval/README.md)

_JOINED_HYPHEN = re.compile(r"(?<=\w)[-\u2010\u2011\u00ad](?=\w)")
_HYPHENS = re.compile(r"[-\u2010\u2011\u2012\u2013\u2014\u00ad]")
_WORD = re.compile(r"[^\W_]+")


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def words_joined(text: str) -> list[str]:
    """Lower-cased word tokens; a hyphen inside a word is dropped ("sub-sub" -> "subsub")."""
    return _WORD.findall(_JOINED_HYPHEN.sub("", _norm(text)))


def words_split(text: str) -> list[str]:
    """Lower-cased word tokens; hyphens separate words ("sub-sub" -> "sub", "sub")."""
    return _WORD.findall(_HYPHENS.sub(" ", _norm(text)))


def coverage(must_contain: str, snippet: str) -> float:
    """Share of must_contain's words found in the snippet. Punctuation and table
    separators are not words; hyphens are ignored (either reading of them counts)."""
    have = set(words_joined(snippet)) | set(words_split(snippet))
    best = 0.0
    for tokens in (words_joined(must_contain), words_split(must_contain)):
        if tokens:
            best = max(best, sum(1 for t in tokens if t in have) / len(tokens))
    return best


@dataclass(frozen=True)
class Item:
    id: str
    query: str
    backgrounds: list[str]
    expected: list[tuple[str, int | None]]  # (file name as uploaded, page)
    must_contain: str
    lang: str = ""  # question language -> document language ("de", "en->fr"); multilingual set


def load_items(path: Path) -> list[Item]:
    """Questions in the dev set's format (shared/eval/README.md), with the multilingual
    set's optional `lang`."""
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        items.append(
            Item(
                id=d["id"],
                query=d["query"],
                backgrounds=list(d.get("backgrounds") or []),
                expected=[(Path(e["file"]).name, e.get("page")) for e in d["expected"]],
                must_contain=d["must_contain"],
                lang=d.get("lang") or "",
            )
        )
    return items


def load_dev() -> list[Item]:
    return load_items(DEV_SET)


def multilingual_files() -> list[tuple[Path, str]]:
    """The multilingual set's own documents (French, Spanish), with their names as the
    set's `file` gives them (relative to the repository); the set's German and English
    documents are corpus files."""
    return [
        (p, str(p.relative_to(ROOT)))
        for p in sorted(MULTILINGUAL_DOCS.iterdir())
        if p.is_file() and p.name != "README.md" and p.parent.name != "copyright"
    ]


def snippet_of(text: str) -> str:
    from pitchcraft.search.schemas import SNIPPET_CHARS

    return text[:SNIPPET_CHARS]


def is_hit(item: Item, filename: str, page: int | None, text: str) -> bool:
    for name, want_page in item.expected:
        if filename == name and (want_page is None or page == want_page):
            return coverage(item.must_contain, snippet_of(text)) >= 0.8
    return False


def first_hit_rank(item: Item, hits: Sequence[Any]) -> int | None:
    for rank, h in enumerate(hits, 1):
        if is_hit(item, h.filename, h.page, h.text):
            return rank
    return None


# ---------------------------------------------------------------------------------------
# the corpus, parsed and chunked by the production code


@dataclass
class Doc:
    rel: str
    name: str
    doc_id: str
    kind: str
    pages: int | None
    chunks: list[Any]
    texts: list[str]  # pipeline.embedding_text of each chunk
    sparse: list[Any] = field(default_factory=list)


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "MANIFEST.md")


def parse_cached(path: Path, kind: str, settings: Any, cache: Path | None) -> Any:
    """parse_sandboxed, or its result from an earlier run (keyed by the file's bytes, the
    OCR setting and the parser sources), so that tuning chunking or search does not wait
    for the 619-page PDF to be parsed again. A ParseFailure is cached too."""
    import pickle

    import pitchcraft.ingestion as ingestion
    from pitchcraft.ingestion.sandbox import parse_sandboxed
    from pitchcraft.ingestion.types import ParseFailure

    cached = None
    if cache is not None:
        key = hashlib.sha256(path.read_bytes())
        key.update(f"{kind}|{settings.ocr_enabled}|{settings.soffice_path}".encode())
        package = Path(ingestion.__file__).parent
        for source in sorted([*package.glob("parsers/*.py"), *package.glob("*.py")]):
            if source.name != "chunking.py":
                key.update(source.read_bytes())
        cached = cache / f"parsed-{key.hexdigest()[:24]}.pickle"
        if cached.exists():
            outcome = pickle.loads(cached.read_bytes())  # noqa: S301  # written by this bench
            if isinstance(outcome, ParseFailure):
                raise outcome
            return outcome
    try:
        outcome = parse_sandboxed(
            path,
            kind,
            ocr=settings.ocr_enabled,
            soffice=settings.soffice_path,
            timeout_s=settings.parse_timeout_s,
            memory_mb=settings.parse_memory_mb,
        )
    except ParseFailure as exc:
        outcome = exc
    # A reader that stopped or crashed may be this run's environment, not the file.
    transient = isinstance(outcome, ParseFailure) and str(outcome).startswith(
        "could not be read: the reader"
    )
    if cached is not None and not transient:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(pickle.dumps(outcome))
    if isinstance(outcome, ParseFailure):
        raise outcome
    return outcome


def load_corpus(
    settings: Any, cache: Path | None = None, files: Sequence[tuple[Path, str]] | None = None
) -> tuple[list[Doc], dict[str, str], float]:
    """Parse and chunk the corpus, or `files` ((path, name relative to where it lives))."""
    from pitchcraft.documents.ingest import embedding_text
    from pitchcraft.embedding.sparse import Bm25Encoder
    from pitchcraft.ingestion.chunking import chunk
    from pitchcraft.ingestion.detect import detect
    from pitchcraft.ingestion.types import ParseFailure

    bm25 = Bm25Encoder()
    docs: list[Doc] = []
    failed: dict[str, str] = {}
    with Stopwatch() as sw:
        if files is None:
            files = [(p, str(p.relative_to(CORPUS))) for p in corpus_files()]
        for path, rel in files:
            try:
                kind = detect(path, path.name)
                parsed = parse_cached(path, kind, settings, cache)
                chunks = chunk(parsed, size=settings.chunk_size, overlap=settings.chunk_overlap)
                if not chunks:
                    raise ParseFailure("no extractable text")
            except ParseFailure as exc:
                failed[rel] = str(exc)
                continue
            texts = [embedding_text(path.name, c) for c in chunks]
            docs.append(
                Doc(
                    rel=rel,
                    name=path.name,
                    doc_id=str(uuid.uuid5(NAMESPACE, rel)),
                    kind=kind,
                    pages=parsed.pages,
                    chunks=chunks,
                    texts=texts,
                    sparse=[bm25.encode_document(t) for t in texts],
                )
            )
    return docs, failed, sw.seconds


# ---------------------------------------------------------------------------------------
# embedding and indexing (the pipeline's batches)


def bulk_embedder(settings: Any, quantize: str, threads: int) -> Any:
    """build_embedder with EMBEDDING_QUANTIZE=quantize; `threads` only for bulk indexing
    here (production uses all cores; the vectors are the same up to rounding)."""
    from pitchcraft.embedding import build_embedder

    embedder = build_embedder(settings.model_copy(update={"embedding_quantize": quantize}))
    embedder.num_threads = threads  # type: ignore[attr-defined]
    return embedder


def query_embedder(settings: Any, quantize: str) -> Any:
    """Exactly what the server builds (default thread count)."""
    from pitchcraft.embedding import build_embedder

    return build_embedder(settings.model_copy(update={"embedding_quantize": quantize}))


def embed_docs(
    docs: list[Doc], embedder: Any, cache: Path | None
) -> tuple[list[list[list[float]]], float]:
    """Vectors per doc, embedded in the pipeline's batches (int8 activations are quantised
    per batch, so batch composition matters a little)."""
    from pitchcraft.documents.ingest import BATCH

    key = hashlib.sha256(embedder.name.encode())
    for d in docs:
        for t in d.texts:
            key.update(t.encode())
            key.update(b"\0")
        key.update(b"\1")
    cached = cache / f"vectors-{key.hexdigest()[:20]}.json" if cache else None
    if cached is not None and cached.exists():
        print(f"  (vectors from the cache {cached.name})", flush=True)
        return json.loads(cached.read_text()), 0.0
    out: list[list[list[float]]] = []
    with Stopwatch() as sw:
        for d in docs:
            vecs: list[list[float]] = []
            for start in range(0, len(d.texts), BATCH):
                vecs.extend(embedder.embed_documents(d.texts[start : start + BATCH]))
            out.append(vecs)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(out))
    return out, sw.seconds


def points_of(doc: Doc, vectors: list[list[float]]) -> list[Any]:
    from pitchcraft.documents.ingest import point_id
    from pitchcraft.vectors.base import IndexPoint

    return [
        IndexPoint(
            id=point_id(doc.doc_id, c.index),
            dense=vec,
            sparse=sp,
            document_id=doc.doc_id,
            filename=doc.name,
            page=c.page,
            section=c.section,
            chunk_index=c.index,
            text=c.text,
        )
        for c, vec, sp in zip(doc.chunks, vectors, doc.sparse, strict=True)
    ]


def index_docs(index: Any, user: int, docs: list[Doc], vectors: list[list[list[float]]]) -> float:
    """As the Ingestor does: delete_document, upsert per pipeline batch, optimize per doc."""
    from pitchcraft.documents.ingest import BATCH

    with Stopwatch() as sw:
        for doc, vecs in zip(docs, vectors, strict=True):
            index.delete_document(user, doc.doc_id)
            points = points_of(doc, vecs)
            for start in range(0, len(points), BATCH):
                index.upsert(user, points[start : start + BATCH])
            index.optimize(user)
    return sw.seconds


# ---------------------------------------------------------------------------------------
# querying the index: the shipped Search, and single-arm / fusion variants


def shard_query(index: Any, user: int, request: Any) -> list[Any]:
    """A raw Qdrant Edge query on the user's shard (EdgeIndex has no public call for a
    single arm or other fusion parameters; the bench uses its shard directly)."""
    from pitchcraft.vectors.payload import hit_from

    with index._shards.borrow(user) as shard:
        if shard is None:
            return []
        scored = shard.query(request)
    return [hit_from(p.payload or {}, p.score) for p in scored]


def dense_arm(vector: Sequence[float]) -> Any:
    import qdrant_edge as qe

    from pitchcraft.vectors.base import DENSE

    return qe.Query.Nearest([float(x) for x in vector], using=DENSE)


def sparse_arm(vec: Any) -> Any:
    import qdrant_edge as qe

    from pitchcraft.vectors.base import SPARSE

    return qe.Query.Nearest(
        qe.SparseVector(list(vec.indices), [float(v) for v in vec.values]), using=SPARSE
    )


def single(index: Any, user: int, arm: Any, limit: int) -> list[Any]:
    import qdrant_edge as qe

    return shard_query(index, user, qe.QueryRequest(limit=limit, query=arm, with_payload=True))


def fused(
    index: Any,
    user: int,
    dense: Sequence[float],
    sparse: Any,
    limit: int,
    *,
    candidates: int,
    k: int,
    weights: list[float] | None = None,
) -> list[Any]:
    import qdrant_edge as qe

    prefetches = [qe.Prefetch(limit=candidates, query=dense_arm(dense))]
    if sparse.indices:
        prefetches.append(qe.Prefetch(limit=candidates, query=sparse_arm(sparse)))
    elif weights:
        weights = weights[:1]
    request = qe.QueryRequest(
        limit=limit,
        prefetches=prefetches,
        query=qe.Fusion.Rrf(k=k, weights=weights),  # type: ignore[arg-type]
        with_payload=True,
    )
    return shard_query(index, user, request)


@dataclass
class Variant:
    name: str
    run: Callable[[Item], list[Any]]
    note: str = ""


def score(items: list[Item], variant: Variant) -> dict[str, Any]:
    per_item = []
    for item in items:
        hits = variant.run(item)[:LIMIT]
        rank = first_hit_rank(item, hits)
        top = hits[0] if hits else None
        per_item.append(
            {
                "id": item.id,
                "rank": rank,
                "top1": None
                if top is None
                else {
                    "filename": top.filename,
                    "page": top.page,
                    "section": top.section,
                    "text": top.text[:160],
                },
            }
        )
    found = [r["rank"] for r in per_item if r["rank"] is not None]
    return {
        "variant": variant.name,
        "note": variant.note,
        "hit_at_5": len(found) / len(items),
        "mrr_at_5": sum(1.0 / r for r in found) / len(items),
        "hits": len(found),
        "questions": len(items),
        "items": per_item,
    }


# ---------------------------------------------------------------------------------------
# quality


def answerable(item: Item, docs: list[Doc]) -> dict[str, Any]:
    """Whether any indexed chunk can be a hit at all, and if not, whether the passage is
    in the parsed text of the expected page but split over two chunks or cut by the
    snippet length."""
    best = 0.0
    best_full = 0.0
    page_text: list[str] = []
    for d in docs:
        for c in d.chunks:
            for name, page in item.expected:
                if d.name == name and (page is None or c.page == page):
                    best = max(best, coverage(item.must_contain, snippet_of(c.text)))
                    best_full = max(best_full, coverage(item.must_contain, c.text))
                    page_text.append(c.text)
    return {
        "best_chunk_coverage": round(best, 3),
        "best_chunk_coverage_untruncated": round(best_full, 3),
        "expected_page_coverage": round(coverage(item.must_contain, "\n".join(page_text)), 3),
        "answerable": best >= 0.8,
    }


def deep_rank(item: Item, hits: Sequence[Any]) -> int | None:
    return first_hit_rank(item, hits)


class _PassageEmbedder:
    """e5 in embed_docs' shape (its vectors cached under its own name)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.name = f"e5:{engine.name}"

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.engine.embed_passages(texts)


class Quality:
    """Both indexes (int8, fp32) in one EdgeIndex root, one user each."""

    def __init__(self, settings: Any, docs: list[Doc], root: Path) -> None:
        from pitchcraft.embedding.sparse import Bm25Encoder
        from pitchcraft.vectors.qdrant_edge import EdgeIndex

        self.settings = settings
        self.docs = docs
        self.index = EdgeIndex(root, settings.embedding_dim)
        self.bm25 = Bm25Encoder()
        self.users: dict[str, int] = {}
        self.embedders: dict[str, Any] = {}
        self._qcache: dict[tuple[str, str], list[float]] = {}

    multi: Any = None  # the e5 engine when MULTILINGUAL_SEARCH is measured on

    def enrich(self, user: int, docs: list[Doc], cache: Path | None) -> float:
        """As the enrichment job does: e5 vectors for every passage, set on the points."""
        from pitchcraft.documents.ingest import point_id

        if self.multi is None:
            return 0.0
        vectors, seconds = embed_docs(docs, _PassageEmbedder(self.multi), cache)
        for doc, vecs in zip(docs, vectors, strict=True):
            pairs = [
                (point_id(doc.doc_id, c.index), v) for c, v in zip(doc.chunks, vecs, strict=True)
            ]
            for start in range(0, len(pairs), 256):
                self.index.set_multi(user, pairs[start : start + 256])
        return seconds

    def build(self, quantize: str, user: int, threads: int, cache: Path | None) -> dict[str, Any]:
        embedder = bulk_embedder(self.settings, quantize, threads)
        with CpuShare() as cpu:
            vectors, embed_s = embed_docs(self.docs, embedder, cache)
        index_s = index_docs(self.index, user, self.docs, vectors)
        enrich_s = self.enrich(user, self.docs, cache)
        self.users[quantize] = user
        self.embedders[quantize] = query_embedder(self.settings, quantize)
        self.vectors = getattr(self, "vectors", {})
        self.vectors[quantize] = vectors
        return {
            "embed_s": embed_s,
            "texts": sum(len(d.texts) for d in self.docs),
            "embed_threads": threads,
            "index_s": index_s,
            "enrich_s": enrich_s,
            "cpu": cpu.result(),
        }

    def add_docs(self, docs: list[Doc], threads: int, cache: Path | None) -> dict[str, Any]:
        """Index more documents into every index built so far, the same way as `build`."""
        out: dict[str, Any] = {}
        for quantize, user in self.users.items():
            embedder = bulk_embedder(self.settings, quantize, threads)
            vectors, embed_s = embed_docs(docs, embedder, cache)
            index_s = index_docs(self.index, user, docs, vectors)
            enrich_s = self.enrich(user, docs, cache)
            out[quantize] = {"embed_s": embed_s, "index_s": index_s, "enrich_s": enrich_s}
        self.docs = [*self.docs, *docs]
        return out

    def qvec(self, quantize: str, text: str) -> list[float]:
        key = (quantize, text)
        if key not in self._qcache:
            self._qcache[key] = self.embedders[quantize].embed_query(text)
        return self._qcache[key]

    def search(self, quantize: str, multilingual: bool = True) -> Any:
        from pitchcraft.search.service import Search

        embedder = self.embedders[quantize]
        multi = self.multi if multilingual else None
        return Search(
            index=lambda: self.index,
            embedder=lambda: embedder,
            sparse=lambda: self.bm25,
            multilingual=lambda: multi,
        )

    # variants ---------------------------------------------------------------------------

    def hybrid(
        self, quantize: str, with_backgrounds: bool = True, multilingual: bool = True
    ) -> Callable[[Item], list[Any]]:
        search = self.search(quantize, multilingual)
        user = self.users[quantize]
        return lambda it: search.search(
            user, it.query, it.backgrounds if with_backgrounds else [], LIMIT
        )

    def hybrid_no_floor(self, quantize: str) -> Callable[[Item], list[Any]]:
        """The shipped search with the relevance floor off (the fused top 5)."""
        from pitchcraft.search.service import Search

        embedder = self.embedders[quantize]
        search = Search(
            index=lambda: self.index,
            embedder=lambda: embedder,
            sparse=lambda: self.bm25,
            floor=-math.inf,
            multilingual=lambda: self.multi,
        )
        user = self.users[quantize]
        return lambda it: search.search(user, it.query, it.backgrounds, LIMIT)

    def dense_only(
        self, quantize: str, with_backgrounds: bool = True
    ) -> Callable[[Item], list[Any]]:
        from pitchcraft.search.service import query_text
        from pitchcraft.vectors.base import SparseVec

        user = self.users[quantize]

        def run(it: Item) -> list[Any]:
            text = query_text(it.query, it.backgrounds if with_backgrounds else [])
            # EdgeIndex.search with an empty sparse vector: the dense prefetch alone.
            return self.index.search(
                user, dense=self.qvec(quantize, text), sparse=SparseVec([], []), limit=LIMIT
            )

        return run

    def sparse_only(
        self, quantize: str, with_backgrounds: bool = True, limit: int = LIMIT
    ) -> Callable[[Item], list[Any]]:
        """BM25 alone. At LIMIT as the shipped search would return one list (copies and
        near-duplicates collapsed, like dense-only through EdgeIndex.search with no sparse
        vector); deeper (diagnostics) the raw list."""
        from pitchcraft.search.service import query_text
        from pitchcraft.vectors.fusion import candidates_for, fuse

        user = self.users[quantize]

        def run(it: Item) -> list[Any]:
            text = query_text(it.query, it.backgrounds if with_backgrounds else [])
            vec = self.bm25.encode_query(text)
            if not vec.indices:
                return []
            if limit > LIMIT:
                return single(self.index, user, sparse_arm(vec), limit)
            hits = single(self.index, user, sparse_arm(vec), candidates_for(limit))
            return fuse([], hits, limit)

        return run

    def dense_deep(self, quantize: str) -> Callable[[Item], list[Any]]:
        from pitchcraft.search.service import query_text

        user = self.users[quantize]

        def run(it: Item) -> list[Any]:
            vec = self.qvec(quantize, query_text(it.query, it.backgrounds))
            return single(self.index, user, dense_arm(vec), DEEP)

        return run

    def custom(
        self,
        quantize: str,
        *,
        candidates: int | None = None,
        k: int | None = None,
        weights: tuple[float, float] | None = None,
        near_duplicate: float | None = None,
        dense_bg: bool = True,
        sparse_bg: bool = True,
    ) -> Callable[[Item], list[Any]]:
        """The shipped fusion (pitchcraft.vectors.fusion.fuse) with one parameter changed:
        both candidate lists fetched from the shard, fused here."""
        from pitchcraft.search.service import query_text
        from pitchcraft.vectors import fusion

        user = self.users[quantize]
        n = candidates if candidates is not None else fusion.candidates_for(LIMIT)

        def run(it: Item) -> list[Any]:
            dtext = query_text(it.query, it.backgrounds if dense_bg else [])
            stext = query_text(it.query, it.backgrounds if sparse_bg else [])
            dense = single(self.index, user, dense_arm(self.qvec(quantize, dtext)), n)
            svec = self.bm25.encode_query(stext)
            sparse = single(self.index, user, sparse_arm(svec), n) if svec.indices else []
            return fusion.fuse(
                dense,
                sparse,
                LIMIT,
                weights=weights or (fusion.DENSE_WEIGHT, fusion.SPARSE_WEIGHT),
                k=k if k is not None else fusion.RRF_K,
                near_duplicate=(
                    near_duplicate if near_duplicate is not None else fusion.NEAR_DUPLICATE
                ),
            )

        return run

    def score_fusion(
        self, quantize: str, method: str, dense_weight: float = 0.5, candidates: int = 20
    ) -> Callable[[Item], list[Any]]:
        """Fusing the two lists by their scores instead of their ranks: "dbsf" (Qdrant's
        distribution-based score fusion: each list's scores mapped from mean +- 3 sd to
        0..1, then added, weighted) or "minmax" (each list min-max normalised, convex
        combination). Copies are merged and near-duplicates collapsed as in `fuse`."""
        from pitchcraft.search.service import query_text
        from pitchcraft.vectors import fusion

        user = self.users[quantize]

        def normalise(hits: list[Any]) -> list[float]:
            scores = [h.score for h in hits]
            if not scores:
                return []
            if method == "dbsf":
                mean = sum(scores) / len(scores)
                sd = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
                lo, hi = mean - 3 * sd, mean + 3 * sd
            else:
                lo, hi = min(scores), max(scores)
            span = hi - lo
            return [min(1.0, max(0.0, (s - lo) / span)) if span > 0 else 1.0 for s in scores]

        def run(it: Item) -> list[Any]:
            from dataclasses import replace

            text = query_text(it.query, it.backgrounds)
            dense = single(self.index, user, dense_arm(self.qvec(quantize, text)), candidates)
            svec = self.bm25.encode_query(text)
            sparse = single(self.index, user, sparse_arm(svec), candidates) if svec.indices else []
            total: dict[str, float] = {}
            hit_of: dict[str, Any] = {}
            for hits, weight in ((dense, dense_weight), (sparse, 1.0 - dense_weight)):
                seen: set[str] = set()
                for hit, norm in zip(hits, normalise(hits), strict=True):
                    if hit.text in seen:
                        continue
                    seen.add(hit.text)
                    total[hit.text] = total.get(hit.text, 0.0) + weight * norm
                    hit_of.setdefault(hit.text, hit)
            ranked = sorted(total, key=lambda t: -total[t])
            # Near-duplicate collapsing as the shipped fusion does it: reuse `fuse` on the
            # ranked list alone (one list, so its order is kept).
            ordered = [replace(hit_of[t], score=total[t]) for t in ranked]
            return fusion.fuse(ordered, [], LIMIT)

        return run

    def feedback(
        self, quantize: str, top: int = 3, alpha: float = 0.5
    ) -> Callable[[Item], list[Any]]:
        """Pseudo-relevance feedback on the dense side (Rocchio): the shipped search, then
        the query vector moved toward the mean of its top results' vectors and searched
        again."""
        import numpy as np

        from pitchcraft.search.service import query_text

        search = self.search(quantize)
        user = self.users[quantize]
        embedder = self.embedders[quantize]

        def run(it: Item) -> list[Any]:
            first = search.search(user, it.query, it.backgrounds, LIMIT)
            text = query_text(it.query, it.backgrounds)
            q = np.asarray(self.qvec(quantize, text))
            if first[:top]:
                docs = np.asarray(embedder.embed_documents([h.text for h in first[:top]]))
                q = q + alpha * docs.mean(axis=0)
                q = q / np.linalg.norm(q)
            return self.index.search(
                user, dense=q.tolist(), sparse=self.bm25.encode_query(text), limit=LIMIT
            )

        return run

    def previous(self, quantize: str) -> Callable[[Item], list[Any]]:
        """What shipped before: Qdrant's RRF (k=2, equal weights) over 20 candidates per
        list, no collapsing of copies."""
        from pitchcraft.search.service import query_text

        user = self.users[quantize]

        def run(it: Item) -> list[Any]:
            text = query_text(it.query, it.backgrounds)
            return fused(
                self.index,
                user,
                self.qvec(quantize, text),
                self.bm25.encode_query(text),
                LIMIT,
                candidates=20,
                k=2,
            )

        return run


def run_quality(args: argparse.Namespace, settings: Any, work: Path) -> dict[str, Any]:
    banner("quality: parsing and chunking the corpus (production code, sandboxed)")
    docs, failed, parse_s = load_corpus(settings, RESULTS / "cache" if args.parse_cache else None)
    n_chunks = sum(len(d.chunks) for d in docs)
    print(f"{len(docs)} files indexed, {n_chunks} chunks, {len(failed)} failed ({parse_s:.0f} s)")
    for rel, reason in failed.items():
        print(f"  not indexed: {rel}: {reason}")
    items = load_dev()
    quality = Quality(settings, docs, work / "edge-quality")
    if args.multilingual == "on":
        from pitchcraft.embedding.multilingual import load_multilingual

        quality.multi = load_multilingual()
    cache = RESULTS / "cache" if args.vector_cache else None
    threads = args.index_threads
    builds = {}
    quantizations = ["int8"] if args.quick else ["int8", "none"]
    for user, quantize in enumerate(quantizations, start=USER):
        print(f"embedding and indexing {n_chunks} chunks ({quantize}, {threads} threads) ...")
        builds[quantize] = quality.build(quantize, user, threads, cache)
        b = builds[quantize]
        if b["embed_s"]:
            print(
                f"  {b['embed_s']:.0f} s ({b['texts'] / b['embed_s']:.1f} texts/s), "
                f"index {b['index_s']:.1f} s"
            )

    variants = [
        *shipped_variants(quality),
        Variant("dense-only int8", quality.dense_only("int8")),
        Variant("sparse-only (BM25)", quality.sparse_only("int8")),
        Variant("hybrid int8, no backgrounds", quality.hybrid("int8", with_backgrounds=False)),
        Variant(
            "dense-only int8, no backgrounds", quality.dense_only("int8", with_backgrounds=False)
        ),
        Variant("sparse-only, no backgrounds", quality.sparse_only("int8", with_backgrounds=False)),
    ]
    if "none" in quality.users:
        variants += [
            Variant("hybrid fp32", quality.hybrid("none")),
            Variant("dense-only fp32", quality.dense_only("none")),
        ]
    experiments = experiment_variants(quality) if args.experiments else []
    scored = [score(items, v) for v in variants]
    scored_exp = [score(items, v) for v in experiments]

    banner("quality: hit@5 and MRR@5 on the 30 dev questions")
    print(
        table(
            ["variant", "hit@5", "MRR@5", "hits"],
            [
                [s["variant"], s["hit_at_5"], s["mrr_at_5"], f"{s['hits']}/{s['questions']}"]
                for s in scored
            ],
        )
    )
    by_name = {s["variant"]: s for s in scored}
    shipped = by_name["hybrid int8 (shipped)"]
    comparisons: dict[str, Any] = {
        "target_hit_at_5": 0.95,
        "shipped_meets_target": shipped["hit_at_5"] >= 0.95,
        "backgrounds_effect_hit_at_5": shipped["hit_at_5"]
        - by_name["hybrid int8, no backgrounds"]["hit_at_5"],
        "backgrounds_effect_mrr_at_5": shipped["mrr_at_5"]
        - by_name["hybrid int8, no backgrounds"]["mrr_at_5"],
    }
    if "hybrid fp32" in by_name:
        delta = by_name["hybrid fp32"]["hit_at_5"] - shipped["hit_at_5"]
        comparisons["fp32_minus_int8_hit_at_5"] = delta
        comparisons["int8_within_0.02_of_fp32"] = delta <= 0.02 + 1e-9
    print()
    print(
        f"shipped hybrid hit@5 {shipped['hit_at_5']:.3f} (target >= 0.95: "
        f"{'met' if comparisons['shipped_meets_target'] else 'NOT met'})"
    )
    if "fp32_minus_int8_hit_at_5" in comparisons:
        print(
            f"fp32 - int8 hybrid hit@5: {comparisons['fp32_minus_int8_hit_at_5']:+.3f} "
            f"(int8 within 0.02 of fp32: {comparisons['int8_within_0.02_of_fp32']})"
        )
    print(
        f"appending backgrounds to the query: hit@5 "
        f"{comparisons['backgrounds_effect_hit_at_5']:+.3f}, MRR@5 "
        f"{comparisons['backgrounds_effect_mrr_at_5']:+.3f} (with minus without)"
    )

    misses = diagnose(items, shipped, quality, docs)
    print_misses(misses)
    if scored_exp:
        banner("quality experiments (the shipped fusion with one parameter changed)")
        print(
            table(
                ["experiment", "hit@5", "MRR@5", "hits"],
                [
                    [s["variant"], s["hit_at_5"], s["mrr_at_5"], f"{s['hits']}/{s['questions']}"]
                    for s in scored_exp
                ],
            )
        )
        for s in scored_exp:
            if s["note"]:
                print(f"  {s['variant']}: {s['note']}")
    sets = run_sets(args, settings, quality, shipped) if args.sets else None
    quality.index.close()
    return {
        "sets": sets,
        "files_indexed": len(docs),
        "chunks": n_chunks,
        "files_failed": failed,
        "parse_s": parse_s,
        "builds": builds,
        "variants": scored,
        "experiments": scored_exp,
        "comparisons": comparisons,
        "misses": misses,
        "_docs": docs,
        "_vectors": quality.vectors.get("int8"),
    }


# ---------------------------------------------------------------------------------------
# more question sets beside the dev set: the extra questions and the multilingual set

# Question language -> document language; same-language first, then across.
LANGS = ("de", "en->de", "de->en", "fr", "en->fr", "fr->en", "es", "en->es", "es->en")


def shipped_variants(quality: Quality) -> list[Variant]:
    """The shipped search, and beside it the same without e5 when e5 is measured."""
    shipped = [Variant("hybrid int8 (shipped)", quality.hybrid("int8"))]
    if quality.multi is not None:
        english = quality.hybrid("int8", multilingual=False)
        shipped.append(Variant("hybrid int8, English-only (no e5)", english))
    return shipped


def set_variants(quality: Quality) -> list[Variant]:
    """The shipped search and its parts, for the extra and multilingual sets."""
    variants = [
        *shipped_variants(quality),
        Variant("hybrid int8, no floor", quality.hybrid_no_floor("int8")),
        Variant("dense-only int8", quality.dense_only("int8")),
        Variant("sparse-only (BM25)", quality.sparse_only("int8")),
    ]
    if "none" in quality.users:
        variants.append(Variant("hybrid fp32", quality.hybrid("none")))
    return variants


def by_lang(items: list[Item], scored: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """hit@5 per `lang`, then over the same-language and the cross-lingual questions."""
    rank = {r["id"]: r["rank"] for r in scored["items"]}
    langs = [lang for lang in LANGS if any(it.lang == lang for it in items)]
    langs += sorted({it.lang for it in items} - set(langs))
    groups = {lang: [it for it in items if it.lang == lang] for lang in langs}
    groups["same language"] = [it for it in items if "->" not in it.lang]
    groups["cross-lingual"] = [it for it in items if "->" in it.lang]
    out = {}
    for name, group in groups.items():
        hits = sum(1 for it in group if rank[it.id] is not None)
        out[name] = {
            "hits": hits,
            "questions": len(group),
            "hit_at_5": hits / len(group) if group else math.nan,
        }
    return out


def run_sets(
    args: argparse.Namespace, settings: Any, quality: Quality, dev_shipped: dict[str, Any]
) -> dict[str, Any]:
    """The extra questions (over the corpus as the dev set sees it), then the multilingual
    set (over the corpus plus its own French and Spanish documents, indexed the same way;
    after the dev and extra sets, so that their figures stay comparable with earlier runs)."""
    cache = RESULTS / "cache"
    variants = set_variants(quality)
    extra_items = load_items(EXTRA_SET)
    extra = [score(extra_items, v) for v in variants]

    banner("multilingual set: parsing and indexing its own documents")
    ml_docs, failed, parse_s = load_corpus(
        settings, cache if args.parse_cache else None, multilingual_files()
    )
    for rel, reason in failed.items():
        print(f"  not indexed: {rel}: {reason}")
    build = quality.add_docs(ml_docs, args.index_threads, cache if args.vector_cache else None)
    print(
        f"{len(ml_docs)} files, {sum(len(d.chunks) for d in ml_docs)} chunks added to the "
        f"{len(quality.docs) - len(ml_docs)} corpus files ({parse_s:.0f} s to parse)"
    )
    ml_items = load_items(MULTILINGUAL_SET)
    multilingual = [score(ml_items, v) for v in variants]
    for s in multilingual:
        s["by_lang"] = by_lang(ml_items, s)

    banner("hit@5 beside the dev set (the shipped search unless named)")
    rows = [["dev set (shared/eval)", dev_shipped]]
    rows += [[f"extra questions: {s['variant']}", s] for s in extra]
    rows += [[f"multilingual: {s['variant']}", s] for s in multilingual]
    print(
        table(
            ["set", "hit@5", "MRR@5", "hits"],
            [
                [name, s["hit_at_5"], s["mrr_at_5"], f"{s['hits']}/{s['questions']}"]
                for name, s in rows
            ],
        )
    )
    names = list(multilingual[0]["by_lang"])
    print()
    print("multilingual set, hit@5 per language (question -> document), hits/questions:")
    print(
        table(
            ["variant", *names],
            [
                [
                    s["variant"],
                    *(f"{g['hits']}/{g['questions']}" for g in s["by_lang"].values()),
                ]
                for s in multilingual
            ],
        )
    )
    shipped = multilingual[0]
    print(
        f"\nmultilingual hit@5 {shipped['hit_at_5']:.3f} (target >= 0.9: "
        f"{'met' if shipped['hit_at_5'] >= 0.9 else 'NOT met'})"
    )
    ml_misses = diagnose(ml_items, shipped, quality, quality.docs)
    print_misses(ml_misses, "multilingual set")
    return {
        "extra": {"file": str(EXTRA_SET.relative_to(ROOT)), "variants": extra},
        "multilingual": {
            "file": str(MULTILINGUAL_SET.relative_to(ROOT)),
            "documents": [d.rel for d in ml_docs],
            "chunks_added": sum(len(d.chunks) for d in ml_docs),
            "files_failed": failed,
            "build": build,
            "variants": multilingual,
            "target_hit_at_5": 0.9,
            "shipped_meets_target": shipped["hit_at_5"] >= 0.9,
            "misses": ml_misses,
        },
    }


def diagnose(
    items: list[Item], shipped: dict[str, Any], quality: Quality, docs: list[Doc]
) -> list[dict[str, Any]]:
    by_id = {it.id: it for it in items}
    dense_deep = quality.dense_deep("int8")
    sparse_deep = quality.sparse_only("int8", limit=DEEP)
    out = []
    for r in shipped["items"]:
        if r["rank"] is not None:
            continue
        item = by_id[r["id"]]
        out.append(
            {
                "id": item.id,
                "query": item.query,
                "backgrounds": item.backgrounds,
                "lang": item.lang,
                "expected": item.expected,
                "must_contain": item.must_contain,
                "top1": r["top1"],
                "dense_rank_top100": deep_rank(item, dense_deep(item)),
                "sparse_rank_top100": deep_rank(item, sparse_deep(item)),
                **answerable(item, docs),
            }
        )
    return out


def print_misses(misses: list[dict[str, Any]], what: str = "quality") -> None:
    banner(f"{what}: misses of the shipped hybrid ({len(misses)})")
    for m in misses:
        top = m["top1"]
        where = "nothing" if top is None else f"{top['filename']} p.{top['page']}"
        text = "" if top is None else " ".join(top["text"].split())[:110]
        expected = ", ".join(f"{f} p.{p}" for f, p in m["expected"])
        lang = f", {m['lang']}" if m.get("lang") else ""
        print(f"- {m['id']}: {m['query']!r} (backgrounds {m['backgrounds']}{lang})")
        print(f"    expected {expected}: {m['must_contain']!r}")
        print(f"    top-1: {where}: {text!r}")
        print(
            f"    answerable by one chunk: {m['answerable']} (best chunk covers "
            f"{m['best_chunk_coverage']:.0%} of must_contain, expected page/file as a whole "
            f"{m['expected_page_coverage']:.0%}); rank in dense top-{DEEP}: "
            f"{m['dense_rank_top100']}, in BM25 top-{DEEP}: {m['sparse_rank_top100']}"
        )


def experiment_variants(q: Quality) -> list[Variant]:
    """The shipped fusion with one parameter changed at a time, and what shipped before
    (bench only; src/ is what the first table measures)."""
    c = q.custom
    return [
        Variant("shipped fusion, recomputed here", c("int8")),
        Variant(
            "previous: Qdrant RRF k=2, 20 candidates",
            q.previous("int8"),
            "equal weights, copies and near-duplicates not collapsed",
        ),
        Variant("equal weights (dense 1 : BM25 1)", c("int8", weights=(1.0, 1.0))),
        Variant("weights dense 1 : BM25 2", c("int8", weights=(1.0, 2.0))),
        Variant("weights dense 2 : BM25 1", c("int8", weights=(2.0, 1.0))),
        Variant("near-duplicates kept (copies still merged)", c("int8", near_duplicate=2.0)),
        Variant("near-duplicate Jaccard >= 0.8", c("int8", near_duplicate=0.8)),
        Variant("50 candidates per list", c("int8", candidates=50)),
        Variant("100 candidates per list", c("int8", candidates=100)),
        Variant("rrf k=1", c("int8", k=1)),
        Variant("rrf k=60", c("int8", k=60)),
        Variant("backgrounds in BM25 only", c("int8", dense_bg=False)),
        Variant("backgrounds in dense only", c("int8", sparse_bg=False)),
        Variant("dense feedback: top 3, alpha 0.5", q.feedback("int8", 3, 0.5)),
        Variant("dense feedback: top 5, alpha 0.3", q.feedback("int8", 5, 0.3)),
        Variant("dense feedback: top 2, alpha 1.0", q.feedback("int8", 2, 1.0)),
        Variant("score fusion: DBSF, equal weights", q.score_fusion("int8", "dbsf", 0.5)),
        Variant("score fusion: DBSF, dense 0.4", q.score_fusion("int8", "dbsf", 0.4)),
        Variant("score fusion: DBSF, dense 0.6", q.score_fusion("int8", "dbsf", 0.6)),
        Variant("score fusion: min-max, dense 0.4", q.score_fusion("int8", "minmax", 0.4)),
        Variant("score fusion: min-max, dense 0.5", q.score_fusion("int8", "minmax", 0.5)),
        Variant("score fusion: min-max, dense 0.6", q.score_fusion("int8", "minmax", 0.6)),
    ]


# ---------------------------------------------------------------------------------------
# latency at 100k chunks


def latency_queries(
    items: list[Item], docs: list[Doc], n: int, seed: int = 7
) -> list[tuple[str, list[str]]]:
    """The dev questions, then word windows of random real chunks (8-14 words) with 0-2
    backgrounds from the dev set, up to n."""
    rng = random.Random(seed)
    queries = [(it.query, it.backgrounds) for it in items][:n]
    backgrounds = sorted({b for it in items for b in it.backgrounds}) or ["marketing"]
    chunks = [t for d in docs for t in d.texts]
    while len(queries) < n:
        words = rng.choice(chunks).split()
        size = rng.randint(8, 14)
        start = rng.randint(0, max(0, len(words) - size))
        text = " ".join(words[start : start + size]) or "company overview"
        queries.append((text, rng.sample(backgrounds, rng.randint(0, 2))))
    return queries


def filler_batches(docs: list[Doc], total: int, batch: int, dim: int, seed: int = 11) -> Any:
    """IndexPoints of random unit dense vectors and BM25 vectors of random corpus words
    (drawn from the corpus's word stream, so common words stay common), with the text as
    payload; word counts follow the real chunks'."""
    import numpy as np

    from pitchcraft.embedding.sparse import Bm25Encoder
    from pitchcraft.vectors.base import IndexPoint

    rng = np.random.default_rng(seed)
    stream = [w for d in docs for t in d.texts for w in t.split()]
    lengths = [len(t.split()) for d in docs for t in d.texts]
    bm25 = Bm25Encoder()
    made = 0
    while made < total:
        n = min(batch, total - made)
        dense = rng.standard_normal((n, dim)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        sizes = rng.choice(lengths, size=n)
        picks = rng.integers(0, len(stream), size=int(sizes.sum()))
        points = []
        offset = 0
        for i in range(n):
            text = " ".join(stream[j] for j in picks[offset : offset + sizes[i]])
            offset += sizes[i]
            number = made + i
            doc_id = f"filler-{number // 1000}"
            points.append(
                IndexPoint(
                    id=str(uuid.uuid5(NAMESPACE, f"filler:{number}")),
                    dense=dense[i].tolist(),
                    sparse=bm25.encode_document(text),
                    document_id=doc_id,
                    filename=f"{doc_id}.txt",
                    page=None,
                    section=None,
                    chunk_index=number % 1000,
                    text=text,
                )
            )
        made += n
        yield points


def run_latency(
    args: argparse.Namespace, settings: Any, work: Path, quality: dict[str, Any] | None
) -> dict[str, Any]:
    from qdrant_client import QdrantClient

    from pitchcraft.embedding.sparse import Bm25Encoder
    from pitchcraft.search.relevance import above_floor, query_words
    from pitchcraft.search.service import Search, query_text
    from pitchcraft.vectors.qdrant_edge import EdgeIndex
    from pitchcraft.vectors.qdrant_server import ServerIndex

    banner(f"latency: one user with {args.points:,} chunks")
    if quality is not None:
        docs, vectors = quality["_docs"], quality["_vectors"]
    else:
        docs, _failed, _ = load_corpus(settings, RESULTS / "cache" if args.parse_cache else None)
        embedder = bulk_embedder(settings, "int8", args.index_threads)
        cache = RESULTS / "cache" if args.vector_cache else None
        print(f"embedding {sum(len(d.texts) for d in docs)} corpus chunks (int8) ...")
        vectors, _ = embed_docs(docs, embedder, cache)
    real_points = [p for d, v in zip(docs, vectors, strict=True) for p in points_of(d, v)]
    n_filler = max(0, args.points - len(real_points))
    print(
        f"{len(real_points)} real corpus chunks + {n_filler:,} filler points (random unit "
        "dense vectors, BM25 of random corpus words: embedding 100k real passages would "
        "take hours on this machine)"
    )
    edge = EdgeIndex(work / "edge-latency", settings.embedding_dim)
    local_client = QdrantClient(path=str(work / "qdrant-local"))
    local = ServerIndex(local_client, settings.embedding_dim, description="qdrant-client local")
    edge_upsert = local_upsert = 0.0
    logging.getLogger("qdrant_client").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # local mode warns above 20,000 points
        batches = [real_points[i : i + 2000] for i in range(0, len(real_points), 2000)]
        ids: list[str] = []
        for batch in [*batches, *filler_batches(docs, n_filler, 2000, settings.embedding_dim)]:
            ids += [p.id for p in batch]
            t = time.perf_counter()
            edge.upsert(LATENCY_USER, batch)
            edge_upsert += time.perf_counter() - t
            t = time.perf_counter()
            local.upsert(LATENCY_USER, batch)
            local_upsert += time.perf_counter() - t
        multi = None
        if args.multilingual == "on":
            from pitchcraft.embedding.multilingual import load_multilingual

            # Every passage enriched: random unit e5 vectors (as the MiniLM filler), so the
            # third list searches the whole collection.
            multi = load_multilingual()
            rng = np.random.default_rng(7)
            for start in range(0, len(ids), 2000):
                part = ids[start : start + 2000]
                vecs = rng.standard_normal((len(part), 384)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                edge.set_multi(LATENCY_USER, list(zip(part, vecs.tolist(), strict=True)))
        with Stopwatch() as optimise:
            edge.optimize(LATENCY_USER)
        count = edge.count(LATENCY_USER)
        print(
            f"Qdrant Edge: {count:,} points, upsert {edge_upsert:.0f} s, optimise "
            f"{optimise.seconds:.0f} s; qdrant-client local mode upsert {local_upsert:.0f} s"
        )

        items = load_dev()
        queries = latency_queries(items, docs, args.queries)
        embedder = query_embedder(settings, "int8")  # the server's: int8, default threads
        bm25 = Bm25Encoder()
        edge_search = Search(index=lambda: edge, embedder=lambda: embedder, sparse=lambda: bm25)
        local_search = Search(index=lambda: local, embedder=lambda: embedder, sparse=lambda: bm25)
        three_way = Search(
            index=lambda: edge,
            embedder=lambda: embedder,
            sparse=lambda: bm25,
            multilingual=lambda: multi,
        )
        for q, b in queries[:5]:  # warm-up
            edge_search.search(LATENCY_USER, q, b, LIMIT)
            local_search.search(LATENCY_USER, q, b, LIMIT)
            three_way.search(LATENCY_USER, q, b, LIMIT)
        three_times: list[float] = []
        edge_times: list[float] = []
        local_times: list[float] = []
        local_spent = 0.0
        with CpuShare() as cpu:
            # Interleaved, so both see the same background load; the local baseline stops
            # after its time budget (it is much slower), compared on the same queries.
            for i, (q, b) in enumerate(queries):
                t = time.perf_counter()
                edge_search.search(LATENCY_USER, q, b, LIMIT)
                edge_times.append(time.perf_counter() - t)
                if multi is not None:
                    t = time.perf_counter()
                    three_way.search(LATENCY_USER, q, b, LIMIT)
                    three_times.append(time.perf_counter() - t)
                if local_spent < args.local_budget or i < args.local_min:
                    t = time.perf_counter()
                    local_search.search(LATENCY_USER, q, b, LIMIT)
                    elapsed = time.perf_counter() - t
                    local_times.append(elapsed)
                    local_spent += elapsed
        # Components: the query embedding alone, the index call alone, and the relevance
        # floor alone (its words' rarity read off the index, the candidates judged).
        embed_times, index_times, floor_times = [], [], []
        for q, b in queries:
            text = query_text(q, b)
            t = time.perf_counter()
            dense = embedder.embed_query(text)
            embed_times.append(time.perf_counter() - t)
            sparse = bm25.encode_query(text)
            t = time.perf_counter()
            hits = edge.search(LATENCY_USER, dense=dense, sparse=sparse, limit=LIMIT)
            index_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            groups = query_words(q)
            rarity = edge_search.rarity(LATENCY_USER, groups, hits)
            above_floor(groups, hits, edge_search.floor, rarity)
            floor_times.append(time.perf_counter() - t)
        big_hits = [
            first_hit_rank(it, edge_search.search(LATENCY_USER, it.query, it.backgrounds, LIMIT))
            for it in items
        ]
    edge.close()
    local.close()
    n_local = len(local_times)
    edge_all = latency_summary(edge_times)
    edge_same = latency_summary(edge_times[:n_local])
    local_sum = latency_summary(local_times)
    result = {
        "points": count,
        "real_chunks": len(real_points),
        "filler_points": n_filler,
        "filler_note": "random unit dense vectors and BM25 vectors of random corpus words",
        "edge_upsert_s": edge_upsert,
        "edge_optimise_s": optimise.seconds,
        "local_upsert_s": local_upsert,
        "queries": len(queries),
        "edge_full_search": edge_all,
        "edge_three_way_search": latency_summary(three_times) if three_times else None,
        "target_three_way_p95_ms": 60,
        "edge_full_search_same_queries_as_local": edge_same,
        "local_full_search": local_sum,
        "query_embedding_only": latency_summary(embed_times),
        "edge_index_only": latency_summary(index_times),
        "floor_only": latency_summary(floor_times),
        "ratio_local_over_edge_p50": ratio(local_sum["p50_ms"], edge_same["p50_ms"]),
        "ratio_local_over_edge_p95": ratio(local_sum["p95_ms"], edge_same["p95_ms"]),
        "target_p95_ms": 25,
        "edge_p95_meets_target": edge_all["p95_ms"] <= 25,
        "dev_hit_at_5_in_100k": sum(1 for r in big_hits if r is not None) / len(items),
        "cpu": cpu.result(),
    }
    print(
        table(
            ["search (query embedding included)", "n", "p50 ms", "p95 ms", "max ms"],
            [
                [
                    "Qdrant Edge via Search",
                    edge_all["n"],
                    edge_all["p50_ms"],
                    edge_all["p95_ms"],
                    edge_all["max_ms"],
                ],
                [
                    "  same queries as local",
                    edge_same["n"],
                    edge_same["p50_ms"],
                    edge_same["p95_ms"],
                    edge_same["max_ms"],
                ],
                [
                    "qdrant-client local via Search",
                    local_sum["n"],
                    local_sum["p50_ms"],
                    local_sum["p95_ms"],
                    local_sum["max_ms"],
                ],
                *(
                    [["three-way (MiniLM, e5, BM25) via Search", *_lat(three)]]
                    if (three := result["edge_three_way_search"])
                    else []
                ),
                ["query embedding only (int8)", *_lat(result["query_embedding_only"])],
                ["Qdrant Edge index call only", *_lat(result["edge_index_only"])],
                ["relevance floor only (rarity + judging)", *_lat(result["floor_only"])],
            ],
        )
    )
    print(
        f"\nlocal / edge: p50 {result['ratio_local_over_edge_p50']:.1f}x, p95 "
        f"{result['ratio_local_over_edge_p95']:.1f}x (same {n_local} queries); edge p95 "
        f"{edge_all['p95_ms']:.1f} ms (target <= 25 ms: "
        f"{'met' if result['edge_p95_meets_target'] else 'NOT met'}); other load during the "
        f"queries {result['cpu']['other_cores']:.2f} cores"
    )
    print(f"dev hit@5 with the 100k filler points present: {result['dev_hit_at_5_in_100k']:.3f}")
    return result


def _lat(s: dict[str, Any]) -> list[Any]:
    return [s["n"], s["p50_ms"], s["p95_ms"], s["max_ms"]]


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="int8 only (no fp32 index), 20k points and 60 queries for latency",
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--multilingual",
        choices=("on", "off"),
        default="on",
        help="measure with the e5 vectors and the three-way fusion (MULTILINGUAL_SEARCH)",
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--no-experiments",
        dest="experiments",
        action="store_false",
        help="skip the bench-only fusion/query/duplicate experiments (they take seconds)",
    )
    parser.add_argument(
        "--no-sets",
        dest="sets",
        action="store_false",
        help="skip the extra questions and the multilingual set (bench/data/search-*.jsonl)",
    )
    parser.add_argument("--points", type=int, default=None, help="latency collection size (100000)")
    parser.add_argument("--queries", type=int, default=None, help="latency queries (200)")
    parser.add_argument(
        "--local-budget",
        type=float,
        default=45.0,
        help="seconds of qdrant-client local-mode queries at most (it is slow at 100k)",
    )
    parser.add_argument("--local-min", type=int, default=10, help="local-mode queries at least")
    parser.add_argument(
        "--index-threads",
        type=int,
        default=None,
        help="torch threads for bulk corpus embedding (default: all cores)",
    )
    parser.add_argument(
        "--vector-cache",
        action="store_true",
        help="reuse corpus vectors from bench/results/cache (keyed by model and texts)",
    )
    parser.add_argument(
        "--parse-cache",
        action="store_true",
        help="reuse parsed corpus files from bench/results/cache (keyed by file and parsers)",
    )
    parser.add_argument(
        "--quality-only",
        dest="skip_latency",
        action="store_true",
        help="the same as --skip-latency",
    )
    args = parser.parse_args(argv)
    if args.points is None:
        args.points = 20_000 if args.quick else 100_000
    if args.queries is None:
        args.queries = 60 if args.quick else 200
    if args.index_threads is None:
        import os

        args.index_threads = os.cpu_count() or 1

    go_offline()
    from pitchcraft.settings import Settings

    settings = Settings()
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), load {info['loadavg_at_start']}")
    print(f"note: {CPU_NOTE}")
    started = time.perf_counter()
    results: dict[str, Any] = {"benchmark": "search", "quick": args.quick, "machine": info}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        work = Path(tmp)
        quality = None if args.skip_quality else run_quality(args, settings, work)
        if quality is not None:
            results["quality"] = {k: v for k, v in quality.items() if not k.startswith("_")}
        if not args.skip_latency:
            results["latency"] = run_latency(args, settings, work, quality)
    info["loadavg_at_end"] = loadavg()
    results["wall_s"] = time.perf_counter() - started
    results["settings"] = {
        k: getattr(settings, k)
        for k in ("embedding_model", "embedding_quantize", "chunk_size", "chunk_overlap")
    }
    print(
        f"\nwall time {results['wall_s']:.0f} s; load average at start "
        f"{info['loadavg_at_start']}, at end {info['loadavg_at_end']}"
    )
    return finish("search", results)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
