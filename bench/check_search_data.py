"""Check the search question sets in bench/data against the parsed documents.

For `search-multilingual.jsonl` (and, with `--set`, any set in the dev set's format): the
fields, `lang`; that each expected file exists (a corpus path, or a path in this
repository) and the expected page exists in the app's parsed output; that some chunk on
that page (or in that file, for `page: null`) holds `must_contain` in its snippet as
bench.search scores it; that no chunk anywhere else in the corpus or the set's documents
does (one clear answer location); and that no question shares 4 consecutive words with
its passage. Documents are parsed and chunked by the production code, as bench.search
does it (`--parse-cache` reuses its cache).

Run: .venv/bin/python -m bench.check_search_data [--set PATH ...] [--parse-cache]
Exits non-zero on any problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench import RESULTS, ROOT, go_offline
from bench.search import (
    LANGS,
    MULTILINGUAL_SET,
    Doc,
    coverage,
    load_corpus,
    multilingual_files,
    snippet_of,
    words_split,
)

FIELDS = {"id", "query", "backgrounds", "expected", "must_contain"}


def shared_run(a: list[str], b: list[str], n: int = 4) -> str | None:
    """The first run of n consecutive words of `a` that also occurs in `b`."""
    grams = {tuple(b[i : i + n]) for i in range(len(b) - n + 1)}
    for i in range(len(a) - n + 1):
        if tuple(a[i : i + n]) in grams:
            return " ".join(a[i : i + n])
    return None


def check_set(path: Path, docs: list[Doc], multilingual: bool) -> list[str]:
    problems: list[str] = []
    by_rel = {d.rel: d for d in docs}
    langs: Counter[str] = Counter()
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        rec: dict[str, Any] = json.loads(line)
        qid = rec.get("id", f"line {n}")
        missing = FIELDS - set(rec)
        if missing:
            problems.append(f"{qid}: missing {sorted(missing)}")
            continue
        if qid in seen:
            problems.append(f"{qid}: duplicate id")
        seen.add(qid)
        if multilingual:
            lang = rec.get("lang")
            if lang not in LANGS:
                problems.append(f"{qid}: lang {lang!r} not one of {LANGS}")
            langs[str(lang)] += 1
        places: list[tuple[Doc, int | None]] = []
        for e in rec["expected"]:
            doc = by_rel.get(e["file"])
            if doc is None:
                problems.append(f"{qid}: {e['file']} is not a parsed corpus or set document")
                continue
            page = e.get("page")
            if page is not None and (doc.pages is None or not 1 <= page <= doc.pages):
                problems.append(f"{qid}: {e['file']} has no page {page} ({doc.pages} pages)")
            places.append((doc, page))
        must = rec["must_contain"]
        answer_chunks = [
            c
            for doc, page in places
            for c in doc.chunks
            if (page is None or c.page == page) and coverage(must, snippet_of(c.text)) >= 0.8
        ]
        if not answer_chunks:
            problems.append(f"{qid}: must_contain not in any snippet at {rec['expected']}")
        expected = {(doc.rel, page) for doc, page in places}
        for doc in docs:
            for c in doc.chunks:
                if (doc.rel, c.page) in expected or (doc.rel, None) in expected:
                    continue
                if coverage(must, c.text) >= 0.8:
                    problems.append(
                        f"{qid}: must_contain also in {doc.rel} page {c.page} (chunk {c.index})"
                    )
                    break
        for c in answer_chunks:
            run = shared_run(words_split(rec["query"]), words_split(c.text))
            if run:
                problems.append(f"{qid}: the query shares {run!r} with its passage")
                break
    if multilingual:
        print(f"{path.relative_to(ROOT)}: {sum(langs.values())} questions")
        for lang in LANGS:
            print(f"  {lang:7} {langs.get(lang, 0)}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.check_search_data")
    parser.add_argument(
        "--set",
        action="append",
        type=Path,
        help="a question set in the dev set's format (default: the multilingual set)",
    )
    parser.add_argument("--parse-cache", action="store_true", help="reuse bench.search's cache")
    args = parser.parse_args(argv)
    go_offline()
    from pitchcraft.settings import Settings

    settings = Settings()
    cache = RESULTS / "cache" if args.parse_cache else None
    corpus, failed, _ = load_corpus(settings, cache)
    own, failed_own, _ = load_corpus(settings, cache, multilingual_files())
    problems = [f"{rel}: not indexed: {why}" for rel, why in failed_own.items()]
    docs = corpus + own
    print(f"{len(corpus)} corpus files ({len(failed)} not indexed), {len(own)} set documents")
    for path in args.set or [MULTILINGUAL_SET]:
        problems += check_set(path.resolve(), docs, multilingual=path.name == MULTILINGUAL_SET.name)
    for p in problems:
        print(f"PROBLEM {p}")
    print("ok" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
