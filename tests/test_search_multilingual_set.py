"""The multilingual search set (bench/data/search-multilingual.jsonl) against the documents as
the app's own parsers and chunker read them: every language pair is there, and each expected
page exists and holds the answer within a chunk's snippet, as bench.search scores it. The two
large corpus files are left to `python -m bench.check_search_data` (parsing them takes minutes)."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from bench.search import LANGS, MULTILINGUAL_SET, coverage, multilingual_files, snippet_of

from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.ingestion.types import Chunk

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
RECORDS: list[dict[str, Any]] = [
    json.loads(line) for line in MULTILINGUAL_SET.read_text(encoding="utf-8").splitlines() if line
]


def resolve(rel: str) -> Path:
    return REPO / rel if rel.startswith("tests/") else CORPUS / rel


@cache
def chunks_of(rel: str) -> tuple[int | None, list[Chunk]]:
    path = resolve(rel)
    parsed = parse_file(path, detect(path, path.name), ocr=False, soffice=None)
    return parsed.pages, chunk(parsed)


def test_set_covers_each_language_pair_with_unique_ids() -> None:
    counts = Counter(r["lang"] for r in RECORDS)
    assert set(counts) == set(LANGS)
    assert min(counts.values()) >= 3
    assert len(RECORDS) >= 24
    assert len({r["id"] for r in RECORDS}) == len(RECORDS)
    # The set's own documents are the French and Spanish ones, and all of them are used.
    own = {rel for _, rel in multilingual_files()}
    used = {e["file"] for r in RECORDS for e in r["expected"]}
    assert own <= used
    assert all(resolve(f).is_file() or not CORPUS.is_dir() for f in used)


@pytest.mark.parametrize(
    "record",
    [r for r in RECORDS if not any(e["file"].startswith("large/") for e in r["expected"])],
    ids=lambda r: f"{r['id']}-{r['lang']}",
)
def test_expected_page_holds_the_answer(record: dict[str, Any]) -> None:
    found = False
    for e in record["expected"]:
        if not resolve(e["file"]).is_file():
            pytest.skip(f"corpus document {e['file']} is not here")
        pages, chunks = chunks_of(e["file"])
        page = e["page"]
        if page is not None:
            assert pages is not None and 1 <= page <= pages, (e, pages)
        found = found or any(
            (page is None or c.page == page)
            and coverage(record["must_contain"], snippet_of(c.text)) >= 0.8
            for c in chunks
        )
    assert found, record
