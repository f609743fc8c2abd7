"""A sentence's checkable content: numbers, dates, names and content words, by clause."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pitchcraft.grounding.codes import Code, find_codes
from pitchcraft.grounding.dates import MONTHS, Date, find_dates
from pitchcraft.grounding.lexicon import (
    FRAMING,
    HARD_WORDS,
    HEDGES,
    HONORIFICS,
    NEGATIONS,
    NUMBER_WORDS,
    SCALES,
    STOPWORDS,
    alternatives,
    fold,
    words,
)
from pitchcraft.grounding.numbers import CURRENCY_WORD, Num, find_numbers, strip_markers
from pitchcraft.grounding.text import repair

# Clause boundaries; a comma only when a lower-case word follows ("Doylestown, PA" is one).
_CLAUSE_BREAK = re.compile(
    r"[,]\s(?=[a-z])|[;:\u2014\u2013]\s|\s(?:and|but|while|whereas|with|which|who|that)\s"
)
_UNIT_WORDS = frozenset({"percent", "cent", "per", "x", "times"} | set(SCALES))


# A name from code: words joined by dots or underscores, or a call ("add_paragraph()").
_IDENTIFIER = re.compile(
    r"(?<![\w.])_*[A-Za-z][A-Za-z0-9]*(?:[._]+[A-Za-z_][A-Za-z0-9_]*)+(?:\(\))?|"
    r"(?<![\w.])[A-Za-z_][A-Za-z0-9_]*\(\)|"
    # Letters and digits in one word name a thing ("BM25", "S4C", "A5").
    r"(?<![\w.])[A-Za-z]+\d+[A-Za-z0-9]*(?!\w)"
)
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]?")


_DOC_MODIFIER = re.compile(
    r"(?<!['\u2019])\b([a-z][\w-]*)[\s-]+(?:document|documents|slide|slides|page|pages|deck|presentation|"
    r"brochure|memo)\b"
)


@dataclass
class Item:
    """One thing to find: a number, a date, a name or a content word."""

    kind: str  # "number" | "date" | "name" | "term"
    text: str
    start: int
    end: int
    clause: int
    hard: bool = False
    subject: bool = False
    stems: tuple[frozenset[str], ...] = ()  # per word, the stems that state it
    num: Num | None = None
    date: Date | None = None
    code: Code | None = None  # a phone number or id: its digits must match exactly
    joined: frozenset[str] | None = None  # "day-to-day" may be written "daytoday"
    literal: str | None = None  # an identifier from code ("_TextFrame.text"), matched as written
    phrase: int = 0  # adjacent content words form a phrase; its last word is its head

    @property
    def weight(self) -> float:
        if self.kind in ("number", "date"):
            return 3.0
        if self.kind == "name" or self.hard:
            return 2.0
        return 1.0


@dataclass
class Parsed:
    text: str  # repaired
    items: list[Item]
    negated: bool


def _bare(word: str) -> str:
    return word[:-2] if word.endswith("'s") else word


def _clause_of(breaks: list[int], pos: int) -> int:
    return sum(1 for b in breaks if b <= pos)


def parse_claim(
    sentence: str, capitalised: set[str] | None = None, lower: set[str] | None = None
) -> Parsed:
    """Items of a sentence; `capitalised`/`lower` say how the documents write words, which
    tells a name from a capitalised first word ("Appointing trustees is...")."""
    text = repair(sentence).strip()
    clean = strip_markers(text)
    breaks = [m.start() for m in _CLAUSE_BREAK.finditer(text)]
    dates = find_dates(clean)
    codes = find_codes(clean, [(d.start, d.end) for d in dates])
    nums = find_numbers(
        clean, [(d.start, d.end) for d in dates] + [(c.start, c.end) for c in codes]
    )
    items: list[Item] = []
    taken: list[tuple[int, int]] = []
    for c in codes:
        items.append(Item("number", c.raw, c.start, c.end, _clause_of(breaks, c.start), code=c))
        taken.append((c.start, c.end))
    for lm in _IDENTIFIER.finditer(text):
        raw = lm.group().rstrip(".")
        if _ABBREVIATION.fullmatch(raw) or not (
            any(ch.islower() for ch in raw) or any(ch.isdigit() for ch in raw)
        ):
            continue
        a, b = lm.start(), lm.start() + len(raw)
        items.append(Item("name", raw, a, b, _clause_of(breaks, a), literal=raw))
        taken.append((a, b))
    for d in dates:
        items.append(Item("date", d.raw, d.start, d.end, _clause_of(breaks, d.start), date=d))
        taken.append((d.start, d.end))
    for n in nums:
        items.append(Item("number", n.raw, n.start, n.end, _clause_of(breaks, n.start), num=n))
        taken.append((n.start, n.end))
        if n.currency and not n.noun:
            # "a hundred dollars": the currency word is read with the number ("$100"); find_numbers
            # leaves it as the noun only where it may be something else ("10 pounds").
            cur = CURRENCY_WORD.match(clean, n.end)
            if cur:
                taken.append(cur.span(1))

    # A hedge of several words before a number ("close to £1 million") is no content.
    number_starts = {n.start for n in nums}
    for hedge in (h for h in HEDGES if " " in h):
        for hm in re.finditer(r"\b" + re.escape(hedge) + r"\s+", clean, re.IGNORECASE):
            after = clean[hm.end() : hm.end() + 2]
            if hm.end() in number_starts or after[:1] in "£$€₹":
                taken.append((hm.start(), hm.end()))

    # What kind of document it is ("our test document", "the web page") is framing too.
    for dm in _DOC_MODIFIER.finditer(text):
        taken.append(dm.span(1))

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in taken)

    wl = words(text)
    negated = False
    phrase = 0
    prev_term_end: int | None = None
    i = 0
    while i < len(wl):
        w, a, b = wl[i]
        low = fold(w)
        if low in NEGATIONS or low.endswith("n't"):
            negated = True
        # A word glued to a number's end is its unit ("5kg", "5년"), read with the number.
        glued = any(n.end == a and n.raw[-1:].isdigit() for n in nums)
        if glued or not free(a, b) or low in MONTHS or low in NUMBER_WORDS or low in HEDGES:
            prev_term_end = None
            i += 1
            continue
        capital = w[:1].isupper() and (a > 0 or low not in STOPWORDS | FRAMING)
        # A sentence's first word is a name only if the documents write it as one.
        if (
            capital
            and i == 0
            and not w.isupper()
            and not re.search(r"[A-Z]", w[1:])
            and _bare(low) not in (capitalised or set())
            and (_bare(low) in (lower or set()) or low.endswith(("ing", "ly")))
        ):
            capital = False
        if capital and low not in STOPWORDS and low not in FRAMING and low not in HARD_WORDS:
            # A name: a run of capitalised words ("Vatican City", "Norwich City F.C.").
            j = i
            while (
                j + 1 < len(wl)
                and wl[j + 1][0][:1].isupper()
                and free(*wl[j + 1][1:])
                and fold(wl[j + 1][0]) not in STOPWORDS | FRAMING
            ):
                gap = text[wl[j][2] : wl[j + 1][1]]
                # "Mukesh D. Ambani": an initial's full stop does not end the name.
                if re.search(r"[,;:.]", gap) and not (len(wl[j][0]) == 1 and gap.strip() == "."):
                    break
                j += 1
            prev_term_end = None
            parts = [x[0] for x in wl[i : j + 1] if fold(x[0]) not in HONORIFICS]
            if not parts:
                i = j + 1
                continue
            stems = tuple(alternatives(p) for p in parts)
            items.append(
                Item(
                    "name",
                    " ".join(parts),
                    a,
                    wl[j][2],
                    _clause_of(breaks, a),
                    stems=stems,
                )
            )
            i = j + 1
            continue
        hard = low in HARD_WORDS or low.endswith("-ever")
        if hard or (
            low not in STOPWORDS
            and low not in FRAMING
            and low not in _UNIT_WORDS
            and len(low) > 1
            and low not in NEGATIONS
        ):
            items.append(
                Item(
                    "term",
                    w,
                    a,
                    b,
                    _clause_of(breaks, a),
                    hard=hard,
                    stems=tuple(alternatives(p) for p in w.split("-") if p)
                    if "-" in w and not hard
                    else (alternatives(w),),
                    joined=alternatives(w) | alternatives(w.replace("-", "")) if "-" in w else None,
                    phrase=phrase
                    if prev_term_end is not None and re.fullmatch(r"[\s-]*", text[prev_term_end:a])
                    else phrase + 1,
                )
            )
            phrase = items[-1].phrase
            prev_term_end = b
            i += 1
            continue
        prev_term_end = None
        i += 1
    items.sort(key=lambda it: it.start)
    names = [it for it in items if it.kind == "name"]
    if names:
        # The sentence's subject (usually the company or product) may be named in one passage
        # and its facts stated in another.
        first = names[0]
        if first.start < len(text) // 2 or len(names) == 1:
            first.subject = True
    return Parsed(text, items, negated)
