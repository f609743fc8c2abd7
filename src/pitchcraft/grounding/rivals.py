"""Rival values: where a passage states the rest of a claim with another figure, date or name
in place of the claim's, that is what the document says instead."""

from __future__ import annotations

import math
import re
from functools import lru_cache

from pitchcraft.grounding.dates import date_matches
from pitchcraft.grounding.extract import Item, Parsed
from pitchcraft.grounding.lexicon import alternatives, stem
from pitchcraft.grounding.numbers import Num, comparable, matches, same_kind
from pitchcraft.grounding.state import Hit, UnitMatch
from pitchcraft.grounding.text import Row


def word_hit(row: Row, alts: frozenset[str], abbr: dict[str, set[str]]) -> tuple[int, int] | None:
    for s, a, b in row.words:
        if s in alts or (s in abbr and alts & abbr[s]):
            return a, b
    return None


@lru_cache(maxsize=4096)
def label_stems(label: str) -> frozenset[str]:
    """Stems of a passage label's words ("norwich-city.txt" → norwich, city, txt)."""
    return frozenset(stem(w) for w in re.findall(r"[^\W\d_]+", label))


def _covers_rest(parsed: Parsed, m: UnitMatch, idx: int) -> bool:
    """The unit states what the sentence says around item `idx`: every name, and most of the
    words, so a different value here is a different value for the same thing."""
    items = parsed.items
    label = label_stems(m.passage.label)

    def stated(i: int) -> bool:
        # The document's own name for its subject ("norwich-city.txt") need not be repeated.
        return i in m.hits or (
            items[i].kind == "name" and all(alts & label for alts in items[i].stems)
        )

    others = [
        i
        for i, it in enumerate(items)
        if i != idx and it.num is None and it.date is None and it.code is None
    ]
    if len(others) < 2:
        return False
    if any(items[i].kind == "name" and not items[i].subject and not stated(i) for i in others):
        return False
    total = sum(items[i].weight for i in others)
    found = sum(items[i].weight for i in others if stated(i))
    return found >= 0.6 * total and sum(stated(i) for i in others) >= 2


def _year_like(n: Num) -> bool:
    return n.unit == "" and not n.currency and 1800 <= n.value <= 2100 and n.value == int(n.value)


def rival_values(parsed: Parsed, m: UnitMatch) -> None:
    """A sentence that states everything else the claim says, with one value of the same kind
    in place of the claim's: that value is what the document says instead ("at least monthly",
    "five-year checks" for "every ten years")."""
    if m.unit.table:
        _table_rival_values(parsed, m)
        return
    if len(m.hits) < 2:
        return  # the rest of the sentence is not stated here
    items = parsed.items
    taken = {(h.row, h.start) for h in m.hits.values()}
    for idx, item in enumerate(items):
        if idx in m.hits or idx in m.conflicts or item.subject:
            continue
        if item.kind == "name" and item.literal is None and item.num is None:
            rival = _rival_name(parsed, m, idx)
            if rival is not None:
                m.conflicts[idx] = rival
            continue
        if item.num is None and item.date is None:
            continue
        if not _covers_rest(parsed, m, idx):
            continue
        found: list[Hit] = []
        for r, row in enumerate(m.unit.rows):
            if item.num is not None:
                claim = item.num
                found += [
                    Hit(r, d.start, d.end, d.raw)
                    for d in row.nums
                    if (r, d.start) not in taken
                    and same_kind(claim, d)
                    and comparable(claim, d)
                    and not matches(claim, d)
                    and d.ordinal == claim.ordinal
                    and _year_like(d) == _year_like(claim)
                    and (not claim.currency or claim.currency == d.currency)
                    # "200 laptops" is no rival of "15 hours"
                    and not (
                        claim.noun
                        and d.noun
                        and not alternatives(claim.noun) & alternatives(d.noun)
                    )
                ]
            elif item.date is not None:
                own = [it.date for it in items if it.date is not None]
                dates = [
                    d
                    for d in row.dates
                    if (r, d.start) not in taken
                    and (d.until is None) == (item.date.until is None)
                    and not any(date_matches(o, d) for o in own)
                ]
                # A date written as precisely as the claim's, else any other ("April 1992"
                # for "11 October 1991").
                same = [
                    d
                    for d in dates
                    if (d.day is None) == (item.date.day is None)
                    and (d.month is None) == (item.date.month is None)
                ]
                found += [Hit(r, d.start, d.end, d.raw) for d in same or dates]
        if len(found) == 1:
            m.conflicts[idx] = found[0]
        elif found and (claim_num := item.num) is not None:
            # Several: the one nearest in value ("62.5 percent" beside "65.2% vs. 42.9%").
            m.conflicts[idx] = min(found, key=lambda h: distance(claim_num, h, m))


_CAPITALISED_RUN = re.compile(r"[A-Z][\w'-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'-]*)*")


def _rival_name(parsed: Parsed, m: UnitMatch, idx: int) -> Hit | None:
    """Another name where the sentence has its name, in a sentence stating the rest: one that
    shares its kind ("Harvard University" for "Stanford University"), or fills the same slot
    ("captured at Barshamp" for "captured near Ostagar")."""
    items = parsed.items
    item = items[idx]
    if not _covers_rest(parsed, m, idx):
        return None
    own = {a for it in items if it.kind == "name" for alts in it.stems for a in alts}
    row_index = 0 if len(m.unit.rows) == 1 else None
    text = m.an.text
    runs = [
        (r.start(), r.end(), r.group())
        for r in _CAPITALISED_RUN.finditer(text, m.unit.start, m.unit.end)
        if r.start() > m.unit.start  # a sentence's first word is no name
    ]
    head = item.stems[-1] if item.stems else frozenset()
    for a, b, name in runs:
        parts = re.findall(r"[\w'-]+", name)
        stems = {stem(w) for w in parts}
        if stems & own - head or not stems - own:
            continue  # names the sentence names itself
        if len(item.stems) >= 2 and len(parts) >= 2 and stem(parts[-1]) in head:
            return Hit(row_index or 0, a, b, name)
    # The word before the name and its preposition: "captured near Ostagar".
    before = [i for i, it in enumerate(items) if it.end <= item.start and it.kind == "term"]
    if not before or before[-1] not in m.hits:
        return None
    gap = parsed.text[items[before[-1]].end : item.start]
    if not re.fullmatch(r"\s+(?:in|at|near|from|to|by|for|with|on)\s+(?:the\s+)?", gap):
        return None
    after = text[m.hits[before[-1]].end : m.hits[before[-1]].end + 40]
    slot = re.match(r"\s+(?:in|at|near|from|to|by|for|with|on)\s+(?:the\s+)?([A-Z][\w'-]*)", after)
    if slot and stem(slot.group(1)) not in own:
        start = m.hits[before[-1]].end + slot.start(1)
        return Hit(m.hits[before[-1]].row, start, start + len(slot.group(1)), slot.group(1))
    return None


def distance(claim: Num, hit: Hit, m: UnitMatch) -> float:
    doc = next(n for n in m.unit.rows[hit.row].nums if n.start == hit.start)
    return min(
        abs(math.log(abs(a) / abs(b))) if a and b else math.inf
        for a in claim.alts
        for b in doc.alts
    )


def _table_rival_values(parsed: Parsed, m: UnitMatch) -> None:
    """In a table, the row the claim names holds, in the column its figure is about, another
    figure ("Czech Republic | 10.7 | 78,866" for "an area of 87,866 km²")."""
    items = parsed.items
    names = [i for i, it in enumerate(items) if it.kind == "name"]
    numbers = [i for i, it in enumerate(items) if it.num is not None and not it.num.ordinal]
    if not names or len(numbers) != 1 or numbers[0] in m.hits or numbers[0] in m.conflicts:
        return
    idx = numbers[0]
    claim = items[idx].num
    assert claim is not None
    keys = {a for k in (claim.noun, *claim.attr.split()) if k for a in alternatives(k)}
    for r, row in enumerate(m.unit.rows):
        spans = [words_hit(row, items[i], {}) for i in names]
        if any(sp is None for sp in spans):
            continue
        if not keys & (row.stems | row.heading_stems):
            continue
        found = [
            d
            for d in row.nums
            if same_kind(claim, d)
            and comparable(claim, d)
            and not matches(claim, d)
            and _year_like(d) == _year_like(claim)
        ]
        if len(found) == 1:
            d = found[0]
            m.conflicts[idx] = Hit(r, d.start, d.end, d.raw)
            for i, sp in zip(names, spans, strict=True):
                if sp is not None:
                    m.hits.setdefault(i, Hit(r, sp[0], sp[1]))
            return


def words_hit(row: Row, item: Item, abbr: dict[str, set[str]]) -> tuple[int, int] | None:
    """The span of a name's or a term's words in the row, when every one of them is there."""
    spans = []
    for alts in item.stems:
        hit = word_hit(row, alts, abbr)
        if hit is None:
            return None
        spans.append(hit)
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None
