"""A glossary from a CSV file, merged into the saved one.

Each row: the word to use, then the words to avoid (one per cell, or several in one cell
separated by ";" or "|"). A row whose first cell is `banned` lists banned words. A header
row whose first cell is `use` is skipped. Blank cells and rows are ignored."""

from __future__ import annotations

import csv
import io
from typing import Any

from pitchcraft.core.errors import Invalid
from pitchcraft.glossary.rules import Glossary

MAX_CSV_CHARS = 200_000


def _cells(row: list[str]) -> list[str]:
    out: list[str] = []
    for cell in row:
        for part in cell.replace("|", ";").split(";"):
            if part.strip():
                out.append(part.strip())
    return out


def read_csv(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(terms, banned) as the CSV lists them."""
    if len(text) > MAX_CSV_CHARS:
        raise Invalid(
            f"The CSV is longer than {MAX_CSV_CHARS:,} characters.", code="invalid_glossary"
        )
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    terms: list[dict[str, Any]] = []
    banned: list[str] = []
    try:
        rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), dialect))
    except csv.Error as exc:
        raise Invalid(f"The CSV could not be read: {exc}.", code="invalid_glossary") from exc
    for n, row in enumerate(rows, start=1):
        first = row[0].strip() if row else ""
        rest = _cells(row[1:]) if row else []
        if n == 1 and first.casefold() == "use":
            continue
        if first.casefold() == "banned":
            banned.extend(rest)
        elif first:
            terms.append({"use": first, "avoid": rest})
        elif rest:
            raise Invalid(
                f"Row {n} of the CSV lists words to avoid but no word to use.",
                code="invalid_glossary",
            )
    return terms, banned


def merged(
    saved: Glossary, terms: list[dict[str, Any]], banned: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The saved glossary with the new entries added: a word to use already there gains
    the new words to avoid; nothing is listed twice."""
    uses: list[str] = [t.use for t in saved.terms]
    avoids: dict[str, list[str]] = {t.use.casefold(): list(t.avoid) for t in saved.terms}
    for t in terms:
        use = " ".join(str(t["use"]).split())
        key = use.casefold()
        if key not in avoids:
            uses.append(use)
            avoids[key] = []
        kept_use = next(u for u in uses if u.casefold() == key)
        for a in t.get("avoid") or []:
            if a not in avoids[key] and a != kept_use:
                avoids[key].append(a)
    out: list[dict[str, Any]] = [{"use": u, "avoid": avoids[u.casefold()]} for u in uses]
    bans = list(saved.banned)
    seen = {b.casefold() for b in bans}
    for b in banned:
        if b.casefold() not in seen:
            seen.add(b.casefold())
            bans.append(b)
    return out, bans
