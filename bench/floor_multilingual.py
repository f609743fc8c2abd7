"""The relevance floor with the multilingual (e5) list: what the e5 rule lets through.

The corpus and the multilingual set's own French and Spanish documents are indexed as
`bench.search --multilingual on` does it (int8 MiniLM + BM25 + e5 on every passage, one
Qdrant Edge user). Then, through `Search` with the shipped floor, for three e5 rules
(search/relevance.py: an e5 cosine reaching the floor on its own):

- shipped: 0.90 for an English question, 0.85 for one in German, French or Spanish;
- 0.85 for every question (the rule before);
- none (e5 never counts alone; MiniLM and shared words judge, as English-only search);

hit@5 of the dev set, the extra questions and the multilingual set (per language), and how
many off-topic and nonsense queries return anything: the English calibration and holdout
sets, and `search-offtopic-multilingual*.jsonl` (30 + 15 in German, French and Spanish,
written for this; the holdout never used to set a threshold).

Run: .venv/bin/python -m bench.floor_multilingual [--parse-cache] [--vector-cache]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    RESULTS,
    banner,
    finish,
    go_offline,
    loadavg,
    machine,
    table,
)
from bench.floor import (
    CALIBRATION,
    HOLDOUT,
    ML_CALIBRATION,
    ML_HOLDOUT,
    load_queries,
    settings_threads,
)
from bench.search import (
    EXTRA_SET,
    LIMIT,
    MULTILINGUAL_SET,
    USER,
    Quality,
    first_hit_rank,
    load_corpus,
    load_dev,
    load_items,
    multilingual_files,
)


def rules() -> dict[str, Callable[[str], float]]:
    from pitchcraft.search.relevance import e5_at_floor

    return {
        "shipped (0.90 English, 0.85 other)": e5_at_floor,
        "0.85 for every question (before)": lambda _query: 0.85,
        "none (e5 never alone)": lambda _query: 2.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parse-cache", action="store_true")
    parser.add_argument("--vector-cache", action="store_true")
    args = parser.parse_args(argv)
    go_offline()
    import pitchcraft.search.service as service
    from pitchcraft.embedding.multilingual import load_multilingual
    from pitchcraft.search.service import Search
    from pitchcraft.settings import Settings

    settings = Settings()
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), load {info['loadavg_at_start']}")
    cache = RESULTS / "cache"
    sets = {
        "dev": load_dev(),
        "extra": load_items(EXTRA_SET),
        "multilingual": load_items(MULTILINGUAL_SET),
    }
    offtopic = {
        "English": load_queries(CALIBRATION),
        "English holdout": load_queries(HOLDOUT),
        "de/fr/es": load_queries(ML_CALIBRATION),
        "de/fr/es holdout": load_queries(ML_HOLDOUT),
    }
    results: dict[str, Any] = {"benchmark": "floor_multilingual", "machine": info, "rules": {}}
    with tempfile.TemporaryDirectory(prefix="bench-floor-ml-") as tmp:
        banner("indexing the corpus and the multilingual documents (int8 + e5)")
        docs, _, _ = load_corpus(settings, cache if args.parse_cache else None)
        q = Quality(settings, docs, Path(tmp) / "edge")
        q.multi = load_multilingual()
        vectors = cache if args.vector_cache else None
        q.build("int8", USER, settings_threads(), vectors)
        ml_docs, _, _ = load_corpus(
            settings, cache if args.parse_cache else None, multilingual_files()
        )
        q.add_docs(ml_docs, settings_threads(), vectors)
        embedder = q.embedders["int8"]
        search = Search(
            index=lambda: q.index,
            embedder=lambda: embedder,
            sparse=lambda: q.bm25,
            multilingual=lambda: q.multi,
        )
        rows = []
        shipped_rule = service.e5_at_floor
        try:
            for name, rule in rules().items():
                service.e5_at_floor = rule  # what Search._floored reads
                found = {
                    set_name: [
                        first_hit_rank(it, search.search(USER, it.query, it.backgrounds, LIMIT))
                        for it in items
                    ]
                    for set_name, items in sets.items()
                }
                leaked = {
                    split: [
                        x.id for x in qs if search.find(USER, x.query, x.backgrounds, LIMIT).hits
                    ]
                    for split, qs in offtopic.items()
                }
                by_lang: dict[str, list[int]] = {}
                for it, rank in zip(sets["multilingual"], found["multilingual"], strict=True):
                    counts = by_lang.setdefault(it.lang, [0, 0])
                    counts[0] += rank is not None
                    counts[1] += 1
                results["rules"][name] = {
                    "hits": {k: sum(r is not None for r in v) for k, v in found.items()},
                    "offtopic_leaked": leaked,
                    "multilingual_by_lang": by_lang,
                }
                rows.append(
                    [
                        name,
                        *(f"{sum(r is not None for r in found[k])}/{len(sets[k])}" for k in sets),
                        *(f"{len(leaked[k])}/{len(offtopic[k])}" for k in offtopic),
                    ]
                )
                print(f"{name}: multilingual by language {by_lang}; leaked {leaked}")
        finally:
            service.e5_at_floor = shipped_rule
        banner("hit@5 and off-topic queries returning anything, per e5 rule")
        print(
            table(
                ["e5 rule", *(f"{k} hit@5" for k in sets), *(f"off-topic {k}" for k in offtopic)],
                rows,
            )
        )
        q.index.close()
    info["loadavg_at_end"] = loadavg()
    return finish("floor-multilingual", results)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
