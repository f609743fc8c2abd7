"""Validate the claim sets in bench/data/ (train, holdout, fresh, blind2, blind3).

Checks every record: the fields and their types, the id prefix of its set, the verdict value,
that each document in `docs` exists under the corpus, that `file` is one of `docs`, that
`quote` is found verbatim in the extracted text of `file` (after Unicode NFKC and whitespace
normalisation, and a repair of double-encoded UTF-8 for text files), that `document_value` is
given for contradicted claims only, and that no sentence repeats the dev set or another set.
Prints the counts per verdict for each set; exits non-zero on any problem.

With `--app-parser`, quotes are also looked up in the text the app's own parsers give
(`pitchcraft.ingestion`: `detect` → `parse_file`, blocks joined), so a quote is known to be
visible to the checker too; there the app's table-cell separators (` | `) count as spaces.

Run: .venv/bin/python -m bench.check_claims_data [--corpus DIR] [--data DIR] [--app-parser]
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import unicodedata
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_CORPUS = Path("/work/shared/corpus")
DEFAULT_DEV = Path("/work/shared/eval/claims-dev.jsonl")
SETS = {"train": "tr", "holdout": "ho", "fresh": "fr", "blind2": "b2", "blind3": "b3"}
MINIMUM = {"train": 80, "holdout": 60, "fresh": 60, "blind2": 64, "blind3": 64}
VERDICTS = ("supported", "partial", "unsupported", "contradicted")
FIELDS = ("id", "docs", "text", "verdict", "file", "quote", "document_value", "note")


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as Latin-1 and encoded again (norwich-city.txt)."""
    try:
        import ftfy  # optional; the fallback below handles the corpus

        return ftfy.fix_text(text)
    except ImportError:
        pass
    if not re.search("[\u00c2-\u00f4][\u0080-\u00bf\u2018-\u203a\u0152-\u0178]", text):
        return text
    for codec in ("latin-1", "cp1252"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) != "Cc")
    return re.sub(r"\s+", " ", text).strip()


def _pdf_text(path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pymupdf
    with pymupdf.open(path) as doc:
        return "\n".join(page.get_text() for page in doc)


def _docx_text(path: Path) -> str:
    import docx

    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]

    def tables(items) -> None:
        for table in items:
            for row in table.rows:
                for cell in row.cells:
                    parts.extend(p.text for p in cell.paragraphs)
                    tables(cell.tables)

    tables(document.tables)
    return "\n".join(parts)


def _pptx_text(path: Path) -> str:
    import pptx
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    parts: list[str] = []

    def walk(shapes) -> None:
        for shape in shapes:
            if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
                walk(shape.shapes)
            if shape.has_text_frame:
                parts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False):
                for row in shape.table.rows:
                    parts.extend(cell.text for cell in row.cells)

    for slide in pptx.Presentation(str(path)).slides:
        walk(slide.shapes)
    return "\n".join(parts)


def _plain_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252", errors="replace")
    if path.suffix.lower() in (".html", ".htm"):
        from bs4 import BeautifulSoup

        text = BeautifulSoup(text, "html.parser").get_text("\n")
    return repair_mojibake(text)


def without_cell_bars(text: str) -> str:
    """Drop table-cell separators: the app's parsers join cells with " | ", the readers here
    with spaces, so a quote copied from either must match."""
    return re.sub(r" ?\| ?", " ", text)


@functools.cache
def document_text(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = _pdf_text(path)
    elif suffix == ".docx":
        text = _docx_text(path)
    elif suffix == ".pptx":
        text = _pptx_text(path)
    else:
        text = _plain_text(path)
    return normalise(text)


@functools.cache
def app_text(path: Path) -> str:
    from pitchcraft.ingestion.detect import detect
    from pitchcraft.ingestion.parsers import parse_file

    parsed = parse_file(path, detect(path, path.name), ocr=False, soffice=None)
    return _unpipe(normalise("\n".join(block.text for block in parsed.blocks)))


def _unpipe(text: str) -> str:
    # The app joins table cells with " | ", the extraction above with newlines.
    return re.sub(r"\s+", " ", text.replace("|", " ")).strip()


def check_record(rec: dict, prefix: str, corpus: Path, app_parser: bool = False) -> list[str]:
    problems: list[str] = []
    missing = [f for f in FIELDS if f not in rec]
    extra = [f for f in rec if f not in FIELDS]
    if missing or extra:
        return [f"fields missing {missing} / unexpected {extra}"]
    if not re.fullmatch(rf"{prefix}-\d{{2,3}}", str(rec["id"])):
        problems.append(f"id should look like {prefix}-01")
    verdict = rec["verdict"]
    if verdict not in VERDICTS:
        problems.append(f"verdict {verdict!r} not one of {VERDICTS}")
    text = rec["text"]
    if not isinstance(text, str) or len(text) < 10 or not text.rstrip().endswith((".", "!", "?")):
        problems.append("text should be one sentence with its closing punctuation")
    if not isinstance(rec["note"], str) or not rec["note"].strip():
        problems.append("note is empty")
    docs = rec["docs"]
    if not isinstance(docs, list) or not 1 <= len(docs) <= 3:
        return [*problems, "docs should be a list of 1-3 paths"]
    for doc in docs:
        if not (corpus / doc).is_file():
            problems.append(f"document {doc} not found under {corpus}")
    by_name = {Path(d).name: d for d in docs}
    file, quote, value = rec["file"], rec["quote"], rec["document_value"]
    if verdict == "unsupported":
        if file is not None or quote is not None or value is not None:
            problems.append("unsupported claims have file, quote and document_value null")
        return problems
    if file not in by_name:
        return [*problems, f"file {file!r} is not one of docs"]
    if not isinstance(quote, str) or not 8 <= len(quote) <= 300:
        problems.append("quote should be a string of 8-300 characters")
    elif (corpus / by_name[file]).is_file() and without_cell_bars(
        normalise(quote)
    ) not in without_cell_bars(document_text(corpus / by_name[file])):
        problems.append(f"quote not found in the text of {file}: {quote[:60]!r}")
    elif app_parser and _unpipe(normalise(quote)) not in app_text(corpus / by_name[file]):
        problems.append(f"quote not in the app parser's text of {file}: {quote[:60]!r}")
    if verdict == "contradicted":
        if not isinstance(value, str) or not value.strip():
            problems.append("contradicted claims give the document's value")
    elif value is not None:
        problems.append("document_value is only for contradicted claims")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    parser.add_argument(
        "--app-parser", action="store_true", help="also find quotes in the app parsers' text"
    )
    args = parser.parse_args(argv)

    seen: dict[str, str] = {}
    if args.dev.is_file():
        for line in args.dev.read_text().splitlines():
            if line.strip():
                seen[normalise(json.loads(line)["text"]).lower()] = "dev"
    failures = 0
    table: dict[str, Counter] = {}
    for name, prefix in SETS.items():
        path = args.data / f"claims-{name}.jsonl"
        if not path.is_file():
            print(f"{path}: missing")
            failures += 1
            continue
        counts: Counter = Counter()
        ids: set[str] = set()
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                print(f"{path.name}:{lineno}: not JSON ({exc})")
                failures += 1
                continue
            problems = check_record(rec, prefix, args.corpus, args.app_parser)
            rid = rec.get("id")
            if rid in ids:
                problems.append(f"duplicate id {rid}")
            ids.add(rid)
            key = normalise(str(rec.get("text", ""))).lower()
            if key in seen:
                problems.append(f"same sentence as in {seen[key]}")
            seen[key] = name
            for problem in problems:
                print(f"{path.name}:{lineno} {rid}: {problem}")
            failures += len(problems)
            counts[rec.get("verdict")] += 1
        table[name] = counts
        if sum(counts.values()) < MINIMUM[name]:
            print(f"{path.name}: {sum(counts.values())} claims, want at least {MINIMUM[name]}")
            failures += 1

    print(f"\n{'set':<8} " + " ".join(f"{v:>12}" for v in VERDICTS) + f" {'total':>6}")
    for name, counts in table.items():
        cells = " ".join(f"{counts[v]:>12}" for v in VERDICTS)
        print(f"{name:<8} {cells} {sum(counts.values()):>6}")
    print("\nOK" if not failures else f"\n{failures} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
