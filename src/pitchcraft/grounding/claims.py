"""Per-sentence checking: find where the sentence's content co-occurs, then decide a verdict."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pitchcraft.grounding.dates import Date, date_matches
from pitchcraft.grounding.extract import Item, Parsed, parse_claim
from pitchcraft.grounding.lexicon import (
    CATEGORIES,
    alternatives,
    light,
    stem,
)
from pitchcraft.grounding.model import Claim, Passage
from pitchcraft.grounding.numbers import Num, comparable, matches, same_kind
from pitchcraft.grounding.rivals import distance, label_stems, rival_values, word_hit, words_hit
from pitchcraft.grounding.rules import (
    COMMON_STEMS,
    check_slots,
    negated_near,
    negation_before,
    opposites,
    void_unanchored,
)
from pitchcraft.grounding.state import Context, Hit, UnitMatch
from pitchcraft.grounding.text import Analysed, Row, abbreviations, analyse
from pitchcraft.grounding.verdict import decide

_DIGIT = re.compile(r"\d")
_NOTE_WORDS = frozenset(stem(w) for w in ("note", "notes", "source", "sources"))


def _item_hit(item: Item, row: Row, ctx: Context) -> tuple[int, int, str | None] | None:
    if item.literal is not None:
        at = row.text.find(item.literal, row.start, row.end)
        return (at, at + len(item.literal), None) if at >= 0 else None
    if item.joined is not None:
        hit = word_hit(row, item.joined, ctx.abbr)
        if hit is not None:
            return hit[0], hit[1], None
    if item.kind in ("name", "term"):
        span = words_hit(row, item, ctx.abbr)
        return (span[0], span[1], None) if span is not None else None
    if item.code is not None:
        for c in row.codes:
            if c.digits == item.code.digits:
                return c.start, c.end, c.raw
        return None
    if item.num is not None:
        for doc in row.nums:
            if matches(item.num, doc) and _noun_ok(item.num, doc, row):
                return doc.start, doc.end, doc.raw
        return None
    if item.date is not None:
        for d in row.dates:
            if date_matches(item.date, d):
                return d.start, d.end, d.raw
        # A bare year may also be read as a number on the other side ("in 2004").
        if item.date.month is None:
            for n in row.nums:
                if n.value == item.date.year and n.unit == "":
                    return n.start, n.end, n.raw
    return None


def _window(row: Row, doc: Num) -> set[str]:
    """Stems of the words just around a document number: what it counts."""
    # Up to the neighbouring numbers: in "10,000 blankets, and 200 laptops" the laptops are
    # counted by the 200.
    nxt = min([n.start for n in row.nums if n.start >= doc.end] + [doc.end + 40])
    prv = max([n.end for n in row.nums if n.end <= doc.start] + [doc.start - 40])
    after = [s for s, a, _ in row.words if doc.end <= a < nxt][:3]
    before = [s for s, _, b in row.words if prv < b <= doc.start][-4:]
    return set(after) | set(before)


def _noun_ok(claim: Num, doc: Num, row: Row) -> bool:
    if not claim.noun:
        return True
    alts = alternatives(claim.noun)
    if alts & _window(row, doc):
        return True
    if row.table and alts & row.heading_stems:
        # A table's figures are counted by their column's heading ("Area (km2)").
        return True
    if not doc.noun:
        return bool(alts & row.stems)
    window = _window(row, doc)
    return any(alternatives(k) & window for k in claim.attr.split())


def _same_quantity(claim: Num, doc: Num, row: Row, sums: int = 0) -> bool:
    """Does `doc` count the same thing as the claim's number (so a different value conflicts)?
    `sums`: how many sums in the claim's currency the unit states."""
    if not same_kind(claim, doc):
        return False
    if claim.unit == "score":
        return True
    if claim.head and doc.head and not (alternatives(claim.head) & alternatives(doc.head)):
        return False  # "202 league goals" and "647 league appearances" count different things
    if not comparable(claim, doc):
        return False
    window = _window(row, doc)
    if claim.currency and claim.currency == doc.currency:
        # Two sums of money in one currency in one sentence: the same sum, unless the words
        # around them say otherwise.
        return sums == 1 or bool(
            {a for k in (claim.noun, *claim.attr.split()) if k for a in alternatives(k)} & window
        )
    # What the claim's number counts: the word after it, else the words before it.
    keys = [claim.noun] if claim.noun else claim.attr.split()
    return any(alternatives(k) & window for k in keys)


def _cell(row: Row, pos: int) -> int | None:
    for i, (a, b) in enumerate(row.cells):
        if a <= pos < b:
            return i
    return None


def _aligned(r1: Row, c1: int, r2: Row, c2: int) -> bool | None:
    """Same column? None when the rows' shapes do not tell."""
    n1, n2 = len(r1.cells), len(r2.cells)
    if n1 < 3 or n2 < 3:
        return None
    if n1 == n2:
        return c1 == c2
    if n2 == n1 + 1:
        return c2 == c1 + 1
    if n1 == n2 + 1:
        return c1 == c2 + 1
    return None


def _match_unit(parsed: Parsed, m: UnitMatch, ctx: Context) -> None:
    rows = m.unit.rows
    per_row: list[dict[int, tuple[int, int, str | None]]] = []
    for row in rows:
        found: dict[int, tuple[int, int, str | None]] = {}
        for idx, item in enumerate(parsed.items):
            hit = _item_hit(item, row, ctx)
            if hit is not None:
                found[idx] = hit
        per_row.append(found)
    items = parsed.items
    for r, found in enumerate(per_row):
        row = rows[r]
        for idx, (a, b, value) in found.items():
            if idx in m.hits:
                continue
            if m.unit.table and not _bound(idx, r, per_row, rows, items):
                continue
            m.hits[idx] = Hit(r, a, b, value)
    if len(rows) > 1 and (not m.unit.table or all(len(r.cells) < 2 for r in rows)):
        _one_line(m, per_row)
    if not m.unit.table and m.hits:
        _referred(parsed, m, ctx)
    if not parsed.negated:
        for idx in [i for i, h in m.hits.items() if not items[i].subject]:
            if negation_before(m, m.hits[idx]):
                m.negated_hits[idx] = m.hits.pop(idx)
    if m.unit.table:
        _align_values(parsed, m, per_row)
    _find_conflicts(parsed, m)
    rival_values(parsed, m)
    check_slots(parsed, m, ctx)
    void_unanchored(parsed, m)
    m.negated = not parsed.negated and negated_near(m, parsed)
    opposites(parsed, m)
    claim_stems = {a for it in items for alts in it.stems for a in alts}
    for r in {h.row for h in m.hits.values()}:
        m.rivals |= rows[r].names - claim_stems - ctx.lower_stems - COMMON_STEMS
    m.score = sum(items[i].weight for i in m.hits if not items[i].subject)
    if not any(items[i].kind != "name" and not items[i].hard for i in m.hits):
        # Names alone are the topic, not a statement about it.
        m.score /= 2
    m.score += 1.0 * len(m.conflicts)


def _one_line(m: UnitMatch, per_row: list[dict[int, tuple[int, int, str | None]]]) -> None:
    """Lines read together (a slide's bullets) each state their own thing: what two full
    lines say is not said by either ("Use .text for first bullet" / "... for subsequent
    bullets"). A short line (a title, a date) still belongs with the next."""
    rows = m.unit.rows
    # The first line is a title (a slide's, a list's): about every line below it.
    full = [r for r in {h.row for h in m.hits.values()} if r > 0 and len(rows[r].words) >= 4]
    if len(full) < 2:
        return
    # The full line that states most of the sentence; the other full lines add nothing.
    keep = max(range(1, len(rows)), key=lambda r: (len(rows[r].words) >= 4, len(per_row[r]), -r))
    for idx, h in list(m.hits.items()):
        if idx in per_row[keep]:
            a, b, value = per_row[keep][idx]
            m.hits[idx] = Hit(keep, a, b, value)
        elif h.row > 0 and len(rows[h.row].words) >= 4:
            del m.hits[idx]


_PRONOUN = re.compile(
    r"\b(?:it|its|they|their|them|he|his|him|she|her)\b|"
    r"\b(?:that|the same|this) (?:season|year|month|day|time)\b",
    re.IGNORECASE,
)


def _referred(parsed: Parsed, m: UnitMatch, ctx: Context) -> None:
    """A sentence that refers back ("it has been known to command...", "that season") states
    what the one or two sentences before it name: a word or a date found there counts, as the
    reference in this sentence."""
    row = m.unit.rows[0]
    ref = _PRONOUN.search(m.an.text, m.unit.start, m.unit.end)
    if ref is None:
        return
    units = [u for u in m.an.units if not u.table and u.end <= m.unit.start]
    before = [u for u in units if m.unit.start - u.end < 600][-3:]
    if not before:
        return
    own_dates = bool(row.dates)
    items = parsed.items
    # The reference stands for one thing, in a sentence that states the rest (its figures are
    # checked on their own).
    unstated = [i for i in range(len(items)) if i not in m.hits and items[i].num is None]
    # Two things when both are names ("on his Gillingham debut, against Ipswich").
    allowed = 2 if all(items[i].kind == "name" for i in unstated) else 1
    if not unstated or len(unstated) > allowed or len(m.hits) < 2 * len(unstated):
        return
    found: list[int] = []
    for idx in unstated:
        item = items[idx]
        if item.code is not None or (item.date is not None and own_dates):
            return
        if not any(_item_hit(item, u.rows[0], ctx) is not None for u in before):
            return
        found.append(idx)
    for idx in found:
        m.hits[idx] = Hit(0, ref.start(), ref.end(), None)


def _bound(
    idx: int,
    r: int,
    per_row: list[dict[int, tuple[int, int, str | None]]],
    rows: list[Row],
    items: list[Item],
) -> bool:
    """In a table an item counts only beside another of the sentence's items in its row, in
    the column of one in another row, or under a row label naming its kind."""
    found = per_row[r]
    if len(found) >= 2:
        return True
    # An item of a list whose heading ("my favorite things:") states the rest of the sentence.
    head = rows[0]
    listed = per_row[0] and any(per_row[1:])
    if listed and head.text[head.start : head.end].rstrip().endswith(":"):
        return True
    # A note under a table ("Note: all figures are for the year ended March 31, 2022") is
    # about every row.
    row_text = rows[r].words[0][0] if rows[r].words else ""
    if row_text in _NOTE_WORDS and items[idx].kind == "date":
        return True
    item = items[idx]
    for alts in item.stems:
        category = CATEGORIES.get(next(iter(sorted(alts))), "")
        if any(CATEGORIES.get(a) for a in alts):
            category = next(CATEGORIES[a] for a in alts if a in CATEGORIES)
        if category and stem(category) in rows[r].stems:
            return True
    c1 = _cell(rows[r], found[idx][0])
    if c1 is None:
        return False
    for r2, other in enumerate(per_row):
        if r2 == r:
            continue
        for idx2, (a2, _, _) in other.items():
            if idx2 == idx:
                continue
            c2 = _cell(rows[r2], a2)
            if c2 is not None and _aligned(rows[r], c1, rows[r2], c2):
                return True
    return False


def _align_values(
    parsed: Parsed, m: UnitMatch, per_row: list[dict[int, tuple[int, int, str | None]]]
) -> None:
    """A table value found in a column other than its name's is not stated for that name; the
    value in the name's column is what the document says instead."""
    rows = m.unit.rows
    names = [
        (i, r, f[i][0]) for r, f in enumerate(per_row) for i in f if parsed.items[i].kind == "name"
    ]
    for idx, item in enumerate(parsed.items):
        if item.num is None:
            continue
        rows_with_attr = [
            r
            for r, row in enumerate(rows)
            if any(
                k and alternatives(k) & row.stems for k in (item.num.noun, *item.num.attr.split())
            )
        ]
        for ni, nr, npos in names:
            nc = _cell(rows[nr], npos)
            if nc is None:
                continue
            for r in rows_with_attr or ([m.hits[idx].row] if idx in m.hits else []):
                row = rows[r]
                target = [
                    n
                    for n in row.nums
                    if (c := _cell(row, n.start)) is not None and _aligned(rows[nr], nc, row, c)
                ]
                if not target or r == nr:
                    continue
                doc = target[0]
                if matches(item.num, doc):
                    m.hits[idx] = Hit(r, doc.start, doc.end, doc.raw)
                    m.hits.setdefault(ni, Hit(nr, npos, npos + len(parsed.items[ni].text)))
                elif same_kind(item.num, doc):
                    m.hits.pop(idx, None)
                    m.conflicts[idx] = Hit(r, doc.start, doc.end, doc.raw)
                return


def _find_conflicts(parsed: Parsed, m: UnitMatch) -> None:
    for idx, item in enumerate(parsed.items):
        if idx in m.hits or idx in m.conflicts:
            continue
        sums = 0
        if item.num is not None and item.num.currency:
            sums = sum(n.currency == item.num.currency for r in m.unit.rows for n in r.nums)
        for r, row in enumerate(m.unit.rows):
            if item.code is not None:
                # Another code of the same length (another phone number) in the same unit.
                for c in row.codes:
                    if len(c.digits) == len(item.code.digits) and c.digits != item.code.digits:
                        m.conflicts[idx] = Hit(r, c.start, c.end, c.raw)
                        break
            elif item.num is not None:
                claim_num = item.num
                rivals = [
                    doc
                    for doc in row.nums
                    if _same_quantity(claim_num, doc, row, sums) and not matches(claim_num, doc)
                ]
                if rivals:
                    # The one counting the same noun, else the nearest in value.
                    doc = min(
                        rivals,
                        key=lambda d: (
                            not (claim_num.noun and d.noun == claim_num.noun),
                            distance(claim_num, Hit(r, d.start, d.end), m),
                        ),
                    )
                    m.conflicts[idx] = Hit(r, doc.start, doc.end, doc.raw)
            elif item.date is not None:
                # A date the claim states itself elsewhere ("as of June 2023") is no rival.
                own = [it.date for it in parsed.items if it.date is not None and it is not item]
                d = _other_date(
                    item.date, [x for x in row.dates if not any(date_matches(o, x) for o in own)]
                )
                if d is not None and _date_conflict(item.date, d, parsed, m):
                    m.conflicts[idx] = Hit(r, d.start, d.end, d.raw)
            if idx in m.conflicts:
                break


def _other_date(claim: Date, dates: list[Date]) -> Date | None:
    """The one date of the same precision as the claim's (a day, a month or a year)."""
    if any(date_matches(claim, d) for d in dates):
        return None
    same = [
        d
        for d in dates
        if (d.day is None) == (claim.day is None) and (d.month is None) == (claim.month is None)
    ]
    return same[0] if len(same) == 1 else None


def _date_conflict(claim: Date, doc: Date, parsed: Parsed, m: UnitMatch) -> bool:
    """A different date in a sentence that states everything else the claim says."""
    if date_matches(claim, doc):
        return False
    items = parsed.items
    others = [i for i, it in enumerate(items) if not it.subject and it.date is None]
    missing = [i for i in others if i not in m.hits]
    # Everything else is stated here (one ordinary word aside, if something else is).
    if others and (
        not missing
        or (
            len(others) >= 2
            and len(missing) == 1
            and items[missing[0]].kind == "term"
            and not items[missing[0]].hard
        )
    ):
        return True
    # Or the sentence's words are, worded a little differently: at least three of them stated,
    # fewer missing, and those common words but one ("first flagged ... back in 2003" for
    # "designated ... in 1997").
    stated = [i for i in others if i in m.hits and items[i].kind == "term"]
    uncommon = [i for i in missing if not light(items[i].text)]
    return (
        len(stated) >= 3
        and len(missing) < len(stated)
        and all(items[i].kind == "term" for i in missing)
        and len(uncommon) <= 1
    )


def _subject_found(item: Item, ctx: Context) -> bool:
    for p, an in zip(ctx.passages, ctx.analysed, strict=True):
        label = label_stems(p.label)
        if all(alts & (an.stems | label) for alts in item.stems):
            return True
    return False


def check_one(sentence: str, ctx: Context, cited: Sequence[int]) -> Claim:
    parsed = parse_claim(sentence, ctx.capitalised, ctx.lower)
    order = sorted(
        range(len(ctx.passages)),
        key=lambda i: (ctx.passages[i].n not in cited, i),
    )
    wanted = {a for it in parsed.items for alts in it.stems for a in alts}
    wanted |= {k for k, v in ctx.abbr.items() if v & wanted}
    figures = any(it.kind in ("number", "date") for it in parsed.items)
    matches_: list[UnitMatch] = []
    for i in order:
        for unit in ctx.analysed[i].units:
            # A unit that shares no word with the sentence can still state its figure (a
            # table row of numbers, a phone number on a line of its own).
            if not (unit.stems & wanted) and not (
                figures and _DIGIT.search(ctx.analysed[i].text, unit.start, unit.end)
            ):
                continue
            m = UnitMatch(ctx.passages[i], ctx.analysed[i], unit)
            _match_unit(parsed, m, ctx)
            if m.hits or m.conflicts:
                matches_.append(m)
    subject_ok = {i: _subject_found(it, ctx) for i, it in enumerate(parsed.items) if it.subject}
    main = {
        i
        for i, it in enumerate(parsed.items)
        if it.kind == "name" and not it.subject and _main_name(it, ctx)
    }
    best = max(matches_, key=lambda m: m.score) if matches_ else None
    main = {i for i in main if best is not None and _in(parsed.items[i], best.an)}
    titled: set[int] = set()
    if best is not None:
        # The document's own name says what it is about ("norwich-city.txt").
        label = label_stems(best.passage.label)
        titled = {
            i
            for i, it in enumerate(parsed.items)
            if it.kind == "name" and it.stems and all(alts & label for alts in it.stems)
        }
    return decide(sentence, parsed, matches_, subject_ok, main, titled)


def _in(item: Item, an: Analysed) -> bool:
    return all(alts & an.stems for alts in item.stems)


def _main_name(item: Item, ctx: Context) -> bool:
    """Named in at least half of the passages: what the documents are about."""
    n = sum(_in(item, an) for an in ctx.analysed)
    return len(ctx.analysed) >= 2 and 2 * n >= len(ctx.analysed)


def check_claims(
    sentences: Sequence[str],
    passages: Sequence[Passage],
    cited: Sequence[Sequence[int]] | None = None,
) -> list[Claim]:
    """One Claim per sentence, in order; `cited[i]` are the passage numbers sentence i cites,
    which are tried first."""
    plist = list(passages)
    analysed = [analyse(p.text) for p in plist]
    ctx = Context(
        plist,
        analysed,
        abbreviations([a.text for a in analysed]),
        set().union(*(a.capitalised for a in analysed)),
        set().union(*(a.lower for a in analysed)),
    )
    ctx.lower_stems = {stem(w) for w in ctx.lower}
    out = []
    for i, sentence in enumerate(sentences):
        c = list(cited[i]) if cited is not None and i < len(cited) else []
        out.append(check_one(sentence, ctx, c))
    return out
