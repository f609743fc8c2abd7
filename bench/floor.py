"""Relevance floor benchmark: what the floor costs in recall, what it keeps out, how long it
takes, and the data its threshold was calibrated on.

The corpus is indexed as `bench.search` does it (production path, int8 MiniLM + BM25, one
Qdrant Edge user). Then, through `pitchcraft.search.service.Search`:
- dev set (shared/eval/retrieval-dev.jsonl, 30 questions): hit@5 and MRR@5 without the floor
  (floor -inf: the fused top 5, as before) and with it (the shipped RELEVANCE_FLOOR);
- off-topic and nonsense queries written for this (bench/data/search-offtopic.jsonl, used to
  calibrate; bench/data/search-offtopic-holdout.jsonl, never used to calibrate): how many
  return any result;
- extra questions written like the dev set (bench/data/search-questions-extra.jsonl, 20):
  hit@5 without and with the floor, to see that recall holds beyond the dev set;
- calibration: the relevance of each dev question's answer (the first hit among the top 5)
  and of the best candidate of each off-topic query, for the shipped score (content words
  weighted by their rarity in the collection), the one before it (unweighted), and their
  parts alone, and the gap between them;
- cost: the floor's own computation per query (content words, their rarity from the
  index, relevance of each candidate), and a whole search with the BM25 candidates' dense
  vectors fetched (needed for their similarity) vs without, p50/p95.

Run: .venv/bin/python -m bench.floor [--parse-cache] [--vector-cache] [--floor X]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    RESULTS,
    banner,
    finish,
    go_offline,
    latency_summary,
    loadavg,
    machine,
    table,
)
from bench.search import LIMIT, USER, Item, Quality, first_hit_rank, load_corpus, load_dev

DATA = Path(__file__).resolve().parent / "data"
CALIBRATION = DATA / "search-offtopic.jsonl"
HOLDOUT = DATA / "search-offtopic-holdout.jsonl"
# German, French and Spanish ones, for bench.floor_multilingual.
ML_CALIBRATION = DATA / "search-offtopic-multilingual.jsonl"
ML_HOLDOUT = DATA / "search-offtopic-multilingual-holdout.jsonl"
EXTRA = DATA / "search-questions-extra.jsonl"
TIMING_ROUNDS = 5
FLOORS = (0.45, 0.5, 0.53, 0.55, 0.6)  # the neighbourhood of the shipped floor


@dataclass(frozen=True)
class Query:
    id: str
    kind: str
    query: str
    backgrounds: list[str]


def load_queries(path: Path) -> list[Query]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(Query(d["id"], d["kind"], d["query"], list(d.get("backgrounds") or [])))
    return out


def load_items(path: Path) -> list[Item]:
    """Questions in the dev set's format (shared/eval/README.md)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            expected = [(Path(e["file"]).name, e.get("page")) for e in d["expected"]]
            out.append(
                Item(
                    d["id"],
                    d["query"],
                    list(d.get("backgrounds") or []),
                    expected,
                    d["must_contain"],
                )
            )
    return out


# The relevance score, the one before it and their parts, on the candidates of one search:
# (cosine, rarity-weighted share, unweighted share).
def _parts(
    groups: list[list[str]], hit: Any, rarity: dict[str, float]
) -> tuple[float, float, float]:
    from pitchcraft.search.relevance import lexical

    return float(hit.similarity), lexical(groups, hit.text, rarity), lexical(groups, hit.text)


SHIPPED = "cosine + weighted share (shipped)"
SCORES: dict[str, Callable[[float, float, float], float]] = {
    SHIPPED: lambda cos, lex, plain: cos + lex,
    "cosine + matched/(n+1) (before)": lambda cos, lex, plain: cos + plain,
    "cosine alone": lambda cos, lex, plain: cos,
    "weighted share alone": lambda cos, lex, plain: lex,
}


def candidates(search: Any, query: str, backgrounds: Sequence[str]) -> list[Any]:
    """The fused top 5 before the floor."""
    return search.find(USER, query, backgrounds, LIMIT).hits


def calibrate(
    search: Any, dev: list[Item], offtopic: list[Query], holdout: list[Query]
) -> dict[str, Any]:
    from pitchcraft.search.relevance import query_words

    def parts(query: str, hits: list[Any]) -> list[tuple[float, float, float]]:
        groups = query_words(query)
        rarity = search.rarity(USER, groups, hits)
        return [_parts(groups, h, rarity) for h in hits]

    dev_rows = []
    for item in dev:
        hits = candidates(search, item.query, item.backgrounds)
        rank = first_hit_rank(item, hits)
        dev_rows.append({"id": item.id, "rank": rank, "parts": parts(item.query, hits)})
    off_rows = {
        name: [
            {"id": q.id, "kind": q.kind, "query": q.query, "parts": parts(q.query, hits)}
            for q in queries
            for hits in [candidates(search, q.query, q.backgrounds)]
        ]
        for name, queries in (("calibration", offtopic), ("holdout", holdout))
    }
    out: dict[str, Any] = {"dev": dev_rows, "offtopic": off_rows, "scores": {}}
    for name, score in SCORES.items():
        answers = [
            (r["id"], score(*r["parts"][r["rank"] - 1])) for r in dev_rows if r["rank"] is not None
        ]
        worst_off = {
            split: [
                (r["id"], max((score(*p) for p in r["parts"]), default=-math.inf)) for r in rows
            ]
            for split, rows in off_rows.items()
        }
        low = min(answers, key=lambda a: a[1])
        high = max(worst_off["calibration"], key=lambda a: a[1])
        out["scores"][name] = {
            "lowest_answer": low,
            "highest_offtopic_calibration": high,
            "highest_offtopic_holdout": max(worst_off["holdout"], key=lambda a: a[1]),
            "gap": low[1] - high[1],
            "answers": sorted(a[1] for a in answers),
            "offtopic_best": sorted(s for _, s in worst_off["calibration"]),
        }
    return out


def quality(
    search: Any, dev: list[Item], queries: dict[str, list[Query]], extra: list[Item]
) -> dict[str, Any]:
    found = []
    for item in dev:
        found.append(first_hit_rank(item, search.search(USER, item.query, item.backgrounds)))
    ranks = [r for r in found if r is not None]
    extra_found = [
        first_hit_rank(it, search.search(USER, it.query, it.backgrounds)) for it in extra
    ]
    leaked = {
        split: [q.id for q in qs if search.find(USER, q.query, q.backgrounds, LIMIT).hits]
        for split, qs in queries.items()
    }
    return {
        "hit_at_5": len(ranks) / len(dev),
        "mrr_at_5": sum(1 / r for r in ranks) / len(dev),
        "missed": [it.id for it, r in zip(dev, found, strict=True) if r is None],
        "extra_hit_at_5": sum(1 for r in extra_found if r is not None) / max(1, len(extra)),
        "extra_missed": [it.id for it, r in zip(extra, extra_found, strict=True) if r is None],
        "offtopic_with_results": {split: len(ids) for split, ids in leaked.items()},
        "offtopic_leaked": leaked,
    }


def cost(
    search: Any, unfloored: Any, plain: Any, texts: list[tuple[str, list[str]]], floor: float
) -> dict[str, Any]:
    """The floor's computation alone (on the candidates before it), and whole searches with
    vs without the BM25 candidates' dense vectors (`plain`: an index that does not fetch
    them, searched without the floor, as before)."""
    from pitchcraft.search.relevance import above_floor, query_words

    floor_s: list[float] = []
    with_vec: list[float] = []
    without: list[float] = []
    for _ in range(TIMING_ROUNDS):
        for query, bgs in texts:
            hits = candidates(unfloored, query, bgs)
            started = time.perf_counter()
            groups = query_words(query)
            above_floor(groups, hits, floor, unfloored.rarity(USER, groups, hits))
            floor_s.append(time.perf_counter() - started)
            # Alternate which goes first, so neither always runs on a warm cache.
            for s, sink in ((search, with_vec), (plain, without))[:: 1 if len(floor_s) % 2 else -1]:
                started = time.perf_counter()
                s.search(USER, query, bgs, LIMIT)
                sink.append(time.perf_counter() - started)
    return {
        "floor_computation": latency_summary(floor_s),
        "search_with_vectors": latency_summary(with_vec),
        "search_without_vectors": latency_summary(without),
    }


class _NoVectors:
    """EdgeIndex whose BM25 requests do not return dense vectors (what shipped before)."""

    def __init__(self, index: Any) -> None:
        import qdrant_edge as qe

        from pitchcraft.vectors.base import SparseVec

        self._index = index
        original = index._request

        def request(vector: Any, n: int) -> Any:
            built = original(vector, n)
            if isinstance(vector, SparseVec):
                return qe.QueryRequest(limit=n, query=built.query, with_payload=True)
            return built

        self._request = request

    def search(self, user_id: int, **kwargs: Any) -> Any:
        saved = self._index._request
        self._index._request = self._request
        try:
            return self._index.search(user_id, **kwargs)
        finally:
            self._index._request = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.floor", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--parse-cache", action="store_true", help="reuse parsed corpus files")
    parser.add_argument("--vector-cache", action="store_true", help="reuse corpus vectors")
    parser.add_argument("--floor", type=float, default=None, help="try another threshold")
    args = parser.parse_args(argv)
    go_offline()
    from pitchcraft.search.relevance import RELEVANCE_FLOOR
    from pitchcraft.search.service import Search
    from pitchcraft.settings import Settings

    floor = RELEVANCE_FLOOR if args.floor is None else args.floor
    settings = Settings()
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), load {info['loadavg_at_start']}")
    results: dict[str, Any] = {"benchmark": "floor", "floor": floor, "machine": info}
    dev = load_dev()
    queries = {"calibration": load_queries(CALIBRATION), "holdout": load_queries(HOLDOUT)}
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
        banner("indexing the corpus (production path, int8)")
        docs, _, _ = load_corpus(settings, RESULTS / "cache" if args.parse_cache else None)
        q = Quality(settings, docs, Path(tmp) / "edge")
        q.build("int8", USER, settings_threads(), RESULTS / "cache" if args.vector_cache else None)
        embedder = q.embedders["int8"]

        def make(f: float, index: Any = None) -> Search:
            idx = index or q.index
            return Search(
                index=lambda: idx, embedder=lambda: embedder, sparse=lambda: q.bm25, floor=f
            )

        unfloored, floored = make(-math.inf), make(floor)
        make(floor).search(USER, "warm-up")
        banner("calibration: relevance of dev answers vs best off-topic candidates")
        cal = calibrate(unfloored, dev, queries["calibration"], queries["holdout"])
        print(
            table(
                ["score", "lowest dev answer", "highest off-topic (calibration)", "gap", "holdout"],
                [
                    [
                        name,
                        f"{s['lowest_answer'][1]:.3f} ({s['lowest_answer'][0]})",
                        f"{s['highest_offtopic_calibration'][1]:.3f} "
                        f"({s['highest_offtopic_calibration'][0]})",
                        f"{s['gap']:+.3f}",
                        f"{s['highest_offtopic_holdout'][1]:.3f} "
                        f"({s['highest_offtopic_holdout'][0]})",
                    ]
                    for name, s in cal["scores"].items()
                ],
            )
        )
        shipped = cal["scores"][SHIPPED]
        print("dev answers:", " ".join(f"{x:.2f}" for x in shipped["answers"]))
        print("off-topic best:", " ".join(f"{x:.2f}" for x in shipped["offtopic_best"]))
        results["calibration"] = cal
        banner(f"quality: without the floor vs floor {floor}")
        extra = load_items(EXTRA)
        before = quality(unfloored, dev, queries, extra)
        after = quality(floored, dev, queries, extra)
        n = {k: len(v) for k, v in queries.items()}
        print(
            table(
                [
                    "",
                    "dev hit@5",
                    "dev MRR@5",
                    "extra hit@5",
                    "off-topic with results (calibration)",
                    "(holdout)",
                ],
                [
                    [
                        name,
                        r["hit_at_5"],
                        r["mrr_at_5"],
                        r["extra_hit_at_5"],
                        f"{r['offtopic_with_results']['calibration']}/{n['calibration']}",
                        f"{r['offtopic_with_results']['holdout']}/{n['holdout']}",
                    ]
                    for name, r in (("no floor", before), (f"floor {floor}", after))
                ],
            )
        )
        print(f"dev questions missed with the floor: {after['missed']}")
        print(f"extra questions missed: {before['extra_missed']} -> {after['extra_missed']}")
        print(f"off-topic queries with results at the floor: {after['offtopic_leaked']}")
        for floor_try in FLOORS:
            r = quality(make(floor_try), dev, queries, extra)
            print(
                f"  floor {floor_try}: hit@5 {r['hit_at_5']:.3f}, MRR@5 {r['mrr_at_5']:.3f}, "
                f"extra hit@5 {r['extra_hit_at_5']:.3f}, "
                f"off-topic with results {r['offtopic_with_results']}"
            )
            results.setdefault("floors", {})[floor_try] = r
        results["quality"] = {"no_floor": before, "floor": after}
        banner("cost per query")
        texts = [(it.query, it.backgrounds) for it in dev] + [
            (x.query, x.backgrounds) for qs in queries.values() for x in qs
        ]
        c = cost(floored, unfloored, make(-math.inf, _NoVectors(q.index)), texts, floor)
        print(
            table(
                ["", "p50 ms", "p95 ms", "n"],
                [[k, v["p50_ms"], v["p95_ms"], v["n"]] for k, v in c.items()],
            )
        )
        results["cost"] = c
        q.index.close()
    info["loadavg_at_end"] = loadavg()
    return finish("floor", results)


def settings_threads() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
