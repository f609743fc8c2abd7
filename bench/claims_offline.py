"""Claim-checker benchmark, offline: each claim against the passages search would hand it.

For each claim the documents are parsed with the app's parsers (`detect` → `parse_file`),
chunked with `pitchcraft.ingestion.chunking.chunk`, and embedded with the local MiniLM embedder
(built from Settings, as the app builds it); the top 6 chunks by cosine to the sentence become
Passages 1..6 and `check_claims` gives the verdict. Parsed and embedded chunks are cached per
document for the run.

Reports: verdicts right; unsupported or contradicted called supported (must be 0);
contradicted caught; supported found (supported or partial); quotes verbatim; ms per sentence
p50/p95 (the check only, not the embedding); a confusion table.

Run: .venv/bin/python -m bench.claims_offline --set PATH [--show-wrong] [--top 6]
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
import statistics
import time
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pitchcraft.embedding import build_embedder
from pitchcraft.embedding.base import Embedder
from pitchcraft.grounding import Passage, check_claims
from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.settings import Settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
VERDICTS = ("supported", "partial", "unsupported", "contradicted")


@dataclass
class DocChunks:
    texts: list[str]
    labels: list[str]
    vectors: np.ndarray


class Library:
    """Parsed, chunked and embedded documents, each done once per run."""

    def __init__(self, embedder: Embedder, corpus: Path, cache: Path | None = None) -> None:
        self.embedder = embedder
        self.corpus = corpus
        self.cache = cache
        self.docs: dict[str, DocChunks] = {}

    def get(self, rel: str) -> DocChunks:
        stored = self.cache / (rel.replace("/", "__") + ".pkl") if self.cache else None
        if rel not in self.docs and stored is not None and stored.is_file():
            texts, labels, vectors = pickle.loads(stored.read_bytes())  # noqa: S301 - ours
            self.docs[rel] = DocChunks(texts, labels, vectors)
        if rel not in self.docs:
            path = self.corpus / rel
            parsed = parse_file(path, detect(path, path.name), ocr=False, soffice=None)
            chunks = chunk(parsed)
            texts = [c.text for c in chunks]
            labels = [
                f"{path.name}, page {c.page}" if c.page is not None else path.name for c in chunks
            ]
            embedded = [f"{c.section}\n{c.text}" if c.section else c.text for c in chunks]
            vectors = np.asarray(self.embedder.embed_documents(embedded), dtype=np.float32)
            self.docs[rel] = DocChunks(texts, labels, vectors)
            if stored is not None:
                stored.parent.mkdir(parents=True, exist_ok=True)
                stored.write_bytes(pickle.dumps((texts, labels, vectors)))
        return self.docs[rel]

    def passages(self, docs: list[str], sentence: str, top: int) -> list[Passage]:
        q = np.asarray(self.embedder.embed_query(sentence), dtype=np.float32)
        scored: list[tuple[float, str, str]] = []
        for rel in docs:
            d = self.get(rel)
            sims = d.vectors @ q
            scored += [
                (float(s), t, lab) for s, t, lab in zip(sims, d.texts, d.labels, strict=True)
            ]
        scored.sort(key=lambda x: -x[0])
        return [Passage(i + 1, t, lab) for i, (_, t, lab) in enumerate(scored[:top])]


def run(
    set_path: Path, *, top: int, show_wrong: bool, corpus: Path, cache: Path | None = None
) -> dict[str, Any]:
    rows = [json.loads(line) for line in set_path.read_text().splitlines() if line.strip()]
    lib = Library(build_embedder(Settings()), corpus, cache)
    confusion: Counter[tuple[str, str]] = Counter()
    times: list[float] = []
    quotes_total = quotes_ok = 0
    wrong: list[str] = []
    for row in rows:
        passages = lib.passages(row["docs"], row["text"], top)
        t0 = time.perf_counter()
        claim = check_claims([row["text"]], passages)[0]
        times.append((time.perf_counter() - t0) * 1000)
        confusion[(row["verdict"], claim.verdict)] += 1
        by_n = {p.n: p.text for p in passages}
        for ev in claim.evidence:
            quotes_total += 1
            if ev.quote in by_n.get(ev.n, "") and 8 <= len(ev.quote) <= 300:
                quotes_ok += 1
            else:
                wrong.append(f"  QUOTE NOT VERBATIM {row['id']}: {ev.quote!r}")
        if claim.verdict != row["verdict"]:
            wrong.append(
                f"{row['id']}: expected {row['verdict']}, got {claim.verdict}: {row['text']}\n"
                f"    reason: {claim.reason}\n"
                f"    checks: {[(c.kind, c.text, c.found, c.document_value) for c in claim.checks]}"
                + "".join(f"\n    [{e.n}] {e.quote!r}" for e in claim.evidence)
            )
    n = len(rows)
    right = sum(v for (e, g), v in confusion.items() if e == g)
    false_support = sum(
        v
        for (e, g), v in confusion.items()
        if e in ("unsupported", "contradicted") and g == "supported"
    )
    contra = sum(v for (e, _), v in confusion.items() if e == "contradicted")
    contra_caught = confusion[("contradicted", "contradicted")]
    supp = sum(v for (e, _), v in confusion.items() if e == "supported")
    supp_found = confusion[("supported", "supported")] + confusion[("supported", "partial")]
    times.sort()
    result = {
        "claims": n,
        "verdicts_right": right / n if n else 0.0,
        "false_supported": false_support,
        "contradicted_caught": f"{contra_caught}/{contra}",
        "supported_found": f"{supp_found}/{supp}",
        "quotes_verbatim": f"{quotes_ok}/{quotes_total}",
        "ms_p50": statistics.median(times) if times else 0.0,
        "ms_p95": times[min(len(times) - 1, int(0.95 * len(times)))] if times else 0.0,
    }
    print(f"set: {set_path} ({n} claims, top {top} passages)")
    print(f"verdicts right:                         {right}/{n} = {result['verdicts_right']:.2f}")
    print(f"unsupported/contradicted called supported: {false_support}  (must be 0)")
    print(f"contradicted caught:                    {result['contradicted_caught']}")
    print(f"supported found (supported or partial): {result['supported_found']}")
    print(f"quotes verbatim:                        {result['quotes_verbatim']}")
    print(
        f"ms per sentence p50 / p95:              {result['ms_p50']:.2f} / {result['ms_p95']:.2f}"
    )
    print("\nconfusion (rows: expected, columns: given)")
    print(f"{'':>14}" + "".join(f"{v:>14}" for v in VERDICTS))
    for e in VERDICTS:
        print(f"{e:>14}" + "".join(f"{confusion[(e, g)]:>14}" for g in VERDICTS))
    if show_wrong and wrong:
        print("\nmisses:")
        print("\n".join(wrong))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, required=True, help="a claims JSONL file")
    parser.add_argument("--top", type=int, default=6, help="passages per claim")
    parser.add_argument("--show-wrong", action="store_true", help="list the misses")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--cache", type=Path, help="keep parsed and embedded chunks here between runs (tuning)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    run(args.set, top=args.top, show_wrong=args.show_wrong, corpus=args.corpus, cache=args.cache)


if __name__ == "__main__":
    main()
