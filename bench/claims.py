"""Claim ledger benchmark: verdicts right on claim sets, and ledger time on a big library.

Quality: each claim's documents are parsed and chunked by the app's own parsers, embedded by
the configured embedder and indexed in a real Qdrant Edge shard for a user of their own; the
claim is then checked by the refine job's own ledger step (`Runner.ledger`: the per-sentence
search with the relevance floor, the context selection and the checker), exactly as a job
checks the sentences of a marketing text. Reported per set: verdicts right, unsupported or
contradicted claims called supported (must be 0), contradicted caught, supported found
(supported or partial), quotes verbatim in the source they name.

Speed: one user with 1,000 documents — the corpus's real documents plus filler documents of
20 passages each (random unit vectors and BM25 of random corpus words, as in bench.search) —
and 10-sentence texts made of claims. Ledger time (search per sentence, whole-text search,
selection, checking) against one search of the same text, both measured in the same run.

Run: .venv/bin/python -m bench.claims [--quick] [--set NAME_OR_PATH ...]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import (
    CORPUS,
    SHARED,
    banner,
    go_offline,
    latency_summary,
    machine,
    ratio,
    table,
    write_results,
)

DATA = Path(__file__).resolve().parent / "data"
SETS = {
    "dev": SHARED / "eval" / "claims-dev.jsonl",
    "train": DATA / "claims-train.jsonl",
    "holdout": DATA / "claims-holdout.jsonl",
    "fresh": DATA / "claims-fresh.jsonl",
    "blind2": DATA / "claims-blind2.jsonl",
}
VERDICTS = ("supported", "partial", "contradicted", "unsupported")
LIBRARY_DOCUMENTS = 1000
FILLER_PASSAGES = 20
SENTENCES_PER_TEXT = 10


def load_set(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Library:
    """Corpus documents parsed, chunked and embedded once, indexed per user on demand."""

    def __init__(self, settings: Any, container: Any) -> None:
        self.settings = settings
        self.container = container
        self.points: dict[str, list[Any]] = {}
        self.failed: dict[str, str] = {}
        self.users: dict[tuple[str, ...], int] = {}

    def document(self, rel: str) -> list[Any]:
        if rel in self.points or rel in self.failed:
            return self.points.get(rel, [])
        from bench.search import Doc, parse_cached, points_of
        from pitchcraft.documents.ingest import embedding_text
        from pitchcraft.ingestion.chunking import chunk
        from pitchcraft.ingestion.detect import detect
        from pitchcraft.ingestion.types import ParseFailure

        path = CORPUS / rel
        try:
            kind = detect(path, path.name)
            parsed = parse_cached(path, kind, self.settings, None)
            chunks = chunk(
                parsed, size=self.settings.chunk_size, overlap=self.settings.chunk_overlap
            )
        except ParseFailure as exc:
            self.failed[rel] = str(exc)
            return []
        texts = [embedding_text(path.name, c) for c in chunks]
        sparse = self.container.sparse()
        doc = Doc(
            rel=rel,
            name=path.name,
            doc_id=str(uuid.uuid5(uuid.NAMESPACE_URL, rel)),
            kind=kind,
            pages=parsed.pages,
            chunks=chunks,
            texts=texts,
            sparse=[sparse.encode_document(t) for t in texts],
        )
        vectors = self.container.embedder().embed_documents(texts) if texts else []
        self.points[rel] = points_of(doc, vectors)
        return self.points[rel]

    def user_for(self, docs: list[str]) -> int:
        key = tuple(sorted(docs))
        if key not in self.users:
            user = 1000 + len(self.users)
            for rel in key:
                points = self.document(rel)
                if points:
                    self.container.index().upsert(user, points)
            self.users[key] = user
        return self.users[key]


def quality(
    library: Library, runner: Any, name: str, claims: list[dict[str, Any]]
) -> dict[str, Any]:
    confusion: Counter[tuple[str, str]] = Counter()
    quotes = quotes_verbatim = 0
    wrong: list[dict[str, Any]] = []
    seconds: list[float] = []
    for item in claims:
        user = library.user_for(list(item["docs"]))
        started = time.perf_counter()
        ledger = runner.ledger(user, item["text"], [])
        seconds.append(time.perf_counter() - started)
        claim = ledger.claims[0] if ledger.claims else None
        got = claim.verdict if claim else "unsupported"
        confusion[(item["verdict"], got)] += 1
        by_n = {p.n: p.text for p in ledger.passages}
        for ev in claim.evidence if claim else []:
            quotes += 1
            quotes_verbatim += ev.quote in by_n.get(ev.n, "")
        if got != item["verdict"]:
            wrong.append(
                {
                    "id": item["id"],
                    "expected": item["verdict"],
                    "got": got,
                    "text": item["text"],
                    "reason": claim.reason if claim else "",
                }
            )
    total = sum(confusion.values())
    expected = Counter(item["verdict"] for item in claims)
    right = sum(n for (e, g), n in confusion.items() if e == g)
    false_supported = sum(
        n
        for (e, g), n in confusion.items()
        if g == "supported" and e in ("unsupported", "contradicted")
    )
    return {
        "set": name,
        "claims": total,
        "by_verdict": dict(expected),
        "right": right / total if total else None,
        "false_supported": false_supported,
        "contradicted_caught": (
            confusion[("contradicted", "contradicted")] / expected["contradicted"]
            if expected["contradicted"]
            else None
        ),
        "supported_found": (
            (confusion[("supported", "supported")] + confusion[("supported", "partial")])
            / expected["supported"]
            if expected["supported"]
            else None
        ),
        "quotes": quotes,
        "quotes_verbatim": quotes_verbatim,
        "confusion": {f"{e}->{g}": n for (e, g), n in sorted(confusion.items())},
        "ledger_ms": latency_summary(seconds),
        "wrong": wrong,
    }


def filler_documents(library: Library, count: int, seed: int = 5) -> list[Any]:
    """`count` documents of FILLER_PASSAGES passages each, drawn like bench.search's filler."""
    from bench.search import Doc, filler_batches

    real = [
        Doc(
            rel=rel,
            name=rel,
            doc_id="",
            kind="",
            pages=None,
            chunks=[],
            texts=[p.text for p in pts],
        )
        for rel, pts in library.points.items()
    ]
    dim = len(next(iter(library.points.values()))[0].dense)
    out = []
    for batch in filler_batches(real, count * FILLER_PASSAGES, 2000, dim, seed=seed):
        for p in batch:
            number = len(out)
            doc = number // FILLER_PASSAGES
            out.append(
                replace(
                    p,
                    document_id=f"library-{doc}",
                    filename=f"library-{doc}.txt",
                    chunk_index=number % FILLER_PASSAGES,
                )
            )
    return out


def speed(
    library: Library, runner: Any, search: Any, claims: list[dict[str, Any]], texts: int
) -> dict[str, Any]:
    from pitchcraft.grounding import split_sentences

    user = 999
    real_docs = sorted({rel for item in claims for rel in item["docs"]})
    for rel in real_docs:
        if library.document(rel):
            library.container.index().upsert(user, library.points[rel])
    indexed_real = sum(1 for rel in real_docs if library.points.get(rel))
    filler = filler_documents(library, LIBRARY_DOCUMENTS - indexed_real)
    for start in range(0, len(filler), 2000):
        library.container.index().upsert(user, filler[start : start + 2000])
    library.container.index().optimize(user)
    documents = len(library.container.index().document_ids(user))
    rng = random.Random(3)
    # Claims that read as one sentence each (some are two, or end without a full stop).
    sentences = [item["text"] for item in claims if len(split_sentences(item["text"])) == 1]
    batches = [" ".join(rng.sample(sentences, SENTENCES_PER_TEXT)) for _ in range(texts + 1)]
    ledger_s: list[float] = []
    search_s: list[float] = []
    searches_ms: list[float] = []
    sentences_checked: list[int] = []
    checks_ms: list[float] = []
    for i, text in enumerate(batches):
        started = time.perf_counter()
        search.find(user, text, [], limit=runner.context_passages * 3)
        one = time.perf_counter() - started
        started = time.perf_counter()
        ledger = runner.ledger(user, text, [])
        whole = time.perf_counter() - started
        if i == 0:
            continue  # warm-up
        sentences_checked.append(len(ledger.claims))
        ledger_s.append(whole)
        search_s.append(one)
        searches_ms.append(ledger.search_ms)
        checks_ms.append(ledger.check_ms)
    return {
        "documents": documents,
        "passages": library.container.index().count(user),
        "texts": texts,
        "sentences_per_text": SENTENCES_PER_TEXT,
        "sentences_checked_mean": statistics.mean(sentences_checked),
        "ledger": latency_summary(ledger_s),
        "one_search": latency_summary(search_s),
        "ledger_searches_ms_p50": statistics.median(searches_ms),
        "ledger_check_ms_p50": statistics.median(checks_ms),
        "ledger_over_one_search_p50": ratio(
            statistics.median(ledger_s), statistics.median(search_s)
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="dev and train only; 10 texts")
    parser.add_argument("--set", action="append", help="a set name or a .jsonl path (repeatable)")
    parser.add_argument("--texts", type=int, default=40, help="10-sentence texts to time")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality sets")
    parser.add_argument("--show-wrong", action="store_true")
    args = parser.parse_args(argv)
    go_offline()

    from pitchcraft.container import build
    from pitchcraft.refine.runner import Runner
    from pitchcraft.settings import Settings

    names = args.set or (["dev", "train"] if args.quick else list(SETS))
    chosen = {n: SETS.get(n, Path(n)) for n in names}
    chosen = {n: p for n, p in chosen.items() if p.exists()}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp) / "data", llm_base_url=None)
        container = build(settings)
        runner = Runner(
            db=container.db,
            search=container.search,
            llm=lambda: None,
            context_passages=settings.context_passages,
            context_budget_chars=settings.context_budget_chars,
        )
        library = Library(settings, container)
        results: dict[str, Any] = {"machine": machine(), "sets": {}}
        all_claims: list[dict[str, Any]] = []
        for name, path in chosen.items():
            banner(f"claims: {name} ({path})")
            claims = load_set(path)
            all_claims += claims
            if args.speed_only:
                continue
            result = quality(library, runner, name, claims)
            results["sets"][name] = result
            if args.show_wrong:
                for w in result["wrong"]:
                    print(
                        f"  {w['id']}: {w['expected']} -> {w['got']}: {w['text']}\n"
                        f"      {w['reason']}"
                    )
        print(
            table(
                [
                    "set",
                    "claims",
                    "right",
                    "false supported",
                    "contradicted caught",
                    "supported found",
                    "quotes verbatim",
                ],
                [
                    [
                        r["set"],
                        r["claims"],
                        f"{r['right']:.3f}",
                        r["false_supported"],
                        "-"
                        if r["contradicted_caught"] is None
                        else f"{r['contradicted_caught']:.3f}",
                        "-" if r["supported_found"] is None else f"{r['supported_found']:.3f}",
                        f"{r['quotes_verbatim']}/{r['quotes']}",
                    ]
                    for r in results["sets"].values()
                ],
            )
        )
        banner(
            f"speed: {SENTENCES_PER_TEXT}-sentence texts, a {LIBRARY_DOCUMENTS:,}-document library"
        )
        results["speed"] = speed(
            library, runner, container.search, all_claims, 10 if args.quick else args.texts
        )
        sp = results["speed"]
        print(
            f"{sp['documents']} documents, {sp['passages']:,} passages; ledger p50 "
            f"{sp['ledger']['p50_ms']:.1f} ms, p95 {sp['ledger']['p95_ms']:.1f} ms; one search p50 "
            f"{sp['one_search']['p50_ms']:.1f} ms; ledger / one search (p50) "
            f"{sp['ledger_over_one_search_p50']:.2f} "
            f"(searches {sp['ledger_searches_ms_p50']:.1f} ms, "
            f"checking {sp['ledger_check_ms_p50']:.1f} ms at p50)"
        )
        for r in results["sets"].values():
            r["wrong"] = [w["id"] for w in r["wrong"]]
        write_results("claims", results)
        container.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
