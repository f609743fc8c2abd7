"""Numbers as values: separators, footnote digits, scales, units, hedges and number words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pitchcraft.grounding.lexicon import FRAMING, HEDGES, NUMBER_WORDS, SCALES, STOPWORDS, stem

# A run of digits with the separators numbers are written with (space only before 3 digits).
_RUN = re.compile(
    r"(?<![\w.,\-/])(?<![A-Za-z]-)"
    r"(\d{1,3}(?:[ \u00a0\u202f\u2009]\d{3})+(?![\d,.]\d)|\d(?:[\d,.]*\d)?)"
)
# Reference markers: "[84]", "[11, 37]", "President.2", "pillars.3".
_MARKERS = re.compile(
    r"\[\d{1,3}(?:\s*[,\u2013-]\s*\d{1,3})*\]|(?<=[a-z][.,;:)\"\u201d\u2019])\d{1,2}\b"
)
_A_SCALE = re.compile(
    r"\b(half a|a quarter of a|a|one)(?=\s+(?:thousand|million|billion|trillion)\b)", re.IGNORECASE
)
_WORD_NUM = re.compile(
    r"\b(?:a |one )?("
    + "|".join(sorted(map(re.escape, NUMBER_WORDS), key=len, reverse=True))
    + r")\b",
    re.IGNORECASE,
)
_NUMBER_WORD_SET = frozenset(w for w in NUMBER_WORDS if " " not in w)
_SCALE_WORDS = "|".join(sorted(map(re.escape, SCALES), key=len, reverse=True))
# After a number: a unit, one or two scale words ("lakh crore"), a rate.
_AFTER = re.compile(
    r"\s*(%|per\s?cent\b|percent\b|x\b|\u00d7|times\b)?\s*"
    r"(?:(" + _SCALE_WORDS + r")\b(?:\s+(" + _SCALE_WORDS + r")\b)?)?"
    r"\s*((?:(?:per|a|an|each|every)\s+|/\s*)(?:second|minute|hour|day|week|month|year|annum)\b"
    r"|/(?:s|h|yr)\b)?",
    re.IGNORECASE,
)
# A currency written after the number ("a hundred dollars", "500 crore rupees").
CURRENCY_WORD = re.compile(r"\s*(rupees?|dollars?|euros?|pounds?|inr|usd|eur|gbp)\b", re.I)
_SHORT_SCALE = re.compile(r"(mn|bn|m|b|k)\b", re.IGNORECASE)
# Words after a number that say when or how, not what it counts ("£275,000 ahead of").
_NOT_NOUNS = frozenset(
    [
        "ahead",
        "ago",
        "apiece",
        "overall",
        "alone",
        "back",
        "away",
        "earlier",
        "later",
        "apart",
        "altogether",
        "annually",
        "yearly",
        "monthly",
        "weekly",
        "daily",
        "respectively",
        "instead",
        "already",
    ]
)
# Words between a number and what it counts ("30 million new subscribers").
_QUANTITY_ADJECTIVES = frozenset(
    [
        "new",
        "additional",
        "extra",
        "total",
        "active",
        "unique",
        "different",
        "separate",
        "full",
        "whole",
        "more",
        "fewer",
    ]
)
# The rupee sign often comes out of PDFs as a backtick.
_CURRENCY_SIGNS = {"`": "INR", "\u20b9": "INR", "$": "USD", "\u20ac": "EUR", "\u00a3": "GBP"}
_ORDINAL = re.compile(r"(?:st|nd|rd|th)\b")
# A score or result: "2-1", "4\u20133 on aggregate" (not a year range, which dates take).
_SCORE = re.compile(r"(?<![\w.,\-/])(\d{1,2})\s?[-\u2013]\s?(\d{1,2})(?![\w.,\-/]|\.\d)")
_FEET = re.compile(r"\b(\d)\s?(?:ft|feet|foot|')\s?(\d{1,2})\s?(?:in|inches|\"|'')(?!\w)")
_SCORE_BEFORE = re.compile(
    r"\b(?:won|win|lost|lose|beat|beating|defeat\w*|drew|draw|score\w*)\W+\w*\W*$"
)
_SCORE_AFTER = re.compile(
    r"\W*(?:win|victory|defeat|loss|draw|on aggregate|aggregate|home|away|against)"
)
_NOUN = re.compile(r"\s*(?:[(\-\u2013]?\s*)?([^\W\d_][\w'-]*)(?:\s+([^\W\d_][\w'-]*))?", re.UNICODE)


@dataclass(frozen=True)
class Num:
    value: float
    alts: tuple[float, ...]  # every reading of the digits (ambiguous separators)
    raw: str  # as written, with its unit
    start: int
    end: int
    unit: str  # "%", "x", "" (a count) — a rate adds "/t"
    noun: str  # stem of the word it counts ("bottles" → "bottl"), "" if none
    hedge: str  # "", "approx", "over", "under", "cap" (a stated limit: "up to 120 days")
    precision: float  # the step the writer rounded to (83 million → 1e6)
    attr: str = ""  # stems of the words naming the quantity before it ("population of 453")
    rounded: bool = False  # written with a scale word ("83 million"), so it may be rounded
    currency: str = ""  # "INR", "GBP", ... when the number is an amount of money
    ordinal: bool = False  # "45th": names which one, counts nothing
    head: str = ""  # stem of the word after the noun when the two make one ("league goals")


def strip_markers(text: str) -> str:
    """Blank out reference markers, keeping offsets."""
    return _MARKERS.sub(lambda m: " " * len(m.group()), text)


def _readings(digits: str) -> tuple[list[float], float]:
    """All plausible values of a digit run, and the precision of the first."""
    s = re.sub(r"[ \u00a0\u202f\u2009]", "", digits)
    if "," in s and "." in s:
        dec = "." if s.rfind(".") > s.rfind(",") else ","
        th = "," if dec == "." else "."
        integer, _, frac = s.replace(th, "").partition(dec)
        return [float(f"{integer}.{frac}")], 10.0 ** -len(frac)
    for sep in (",", "."):
        if sep not in s:
            continue
        groups = s.split(sep)
        head, tail = groups[0], groups[1:]
        if (
            1 <= len(head) <= 3
            and all(len(g) in (2, 3) for g in tail[:-1])
            and len(tail[-1]) in (3, 4)
            and (len(tail) > 1 or len(tail[-1]) == 3 or sep == ",")
        ):
            if len(tail[-1]) == 4:
                # A footnote digit glued to the number: "83,190,5562" is 83,190,556 + note 2.
                joined = head + "".join(tail[:-1]) + tail[-1][:3]
                return [float(joined), float(head + "".join(tail))], 1.0
            whole = float(head + "".join(tail))
            if len(tail) == 1 and (sep == "." or len(tail[0]) != 3):
                return [float(f"{head}.{tail[0]}"), whole], 10.0 ** -len(tail[0])
            return [whole], 1.0
        if len(groups) == 2:
            return [float(f"{head}.{tail[0]}")], 10.0 ** -len(tail[0])
        return [float(g) for g in groups if g], 1.0
    return [float(s)], _round_step(s)


def _round_step(s: str) -> float:
    """83000 was likely rounded to the thousand; 83190 to one."""
    stripped = s.rstrip("0")
    return float(10 ** (len(s) - len(stripped))) if stripped else 1.0


def _hedge_before(text: str, start: int) -> str:
    before = text[max(0, start - 20) : start].lower().rstrip(" `₹$€£~")
    if text[max(0, start - 1) : start] == "~":
        return "approx"
    for phrase, kind in HEDGES.items():
        if before.endswith(phrase) and (
            len(before) == len(phrase) or not before[-len(phrase) - 1].isalnum()
        ):
            return kind
    return ""


def _finish(text: str, start: int, end: int, values: list[float], precision: float) -> Num:
    """The unit, scale, rate, noun and hedge around a number at text[start:end]."""
    ordinal = _ORDINAL.match(text, end)
    if ordinal:
        end = ordinal.end()
    is_ordinal = ordinal is not None
    m = _AFTER.match(text, end)
    unit, scale, rate = "", 1.0, ""
    stop = end
    short = _SHORT_SCALE.match(text, end)
    if short and text[max(0, start - 1) : start] in _CURRENCY_SIGNS:
        # "£1.3m", "$2bn", "€40k": a sum of money with its scale glued on.
        scale = {"m": 1e6, "mn": 1e6, "bn": 1e9, "b": 1e9, "k": 1e3}[short.group(1).lower()]
        stop = short.end(1)
        m = None
    if m:
        if m.group(1):
            u = m.group(1).lower()
            unit = "%" if u.startswith("%") or "cent" in u else "x"
            stop = m.end(1)
        if m.group(2):
            scale = SCALES[m.group(2).lower()]
            stop = m.end(2)
        if m.group(3):
            scale *= SCALES[m.group(3).lower()]
            stop = m.end(3)
        if m.group(4):
            rate = "/t"
            stop = m.end(4)
    if text[max(0, start - 1) : start] == "%":
        unit = "%"
    noun = head = ""
    n = _NOUN.match(text, stop)
    if n and not rate:
        for k, g in enumerate((n.group(1), n.group(2))):
            if g and g.lower() in _NOT_NOUNS:
                break
            if g and g.lower() not in STOPWORDS and g.lower() not in _QUANTITY_ADJECTIVES:
                noun = stem(g)
                second = n.group(2)
                if k == 0 and second and second.lower() not in STOPWORDS:
                    head = stem(second)
                break
            if g and g.lower() in STOPWORDS and g.lower() not in ("the", "a", "an", "other"):
                break
        noun_end = n.end(1)
        if noun:
            after = re.match(r"\s*(?:per|a|an|each|/)\s*(\w+)", text[noun_end:])
            if after and after.group(1).lower() in (
                "second",
                "minute",
                "hour",
                "day",
                "week",
                "month",
                "year",
            ):
                rate = "/t"
    raw_start = start - 1 if text[max(0, start - 1) : start] in _CURRENCY_SIGNS and start else start
    currency = _CURRENCY_SIGNS.get(text[raw_start : raw_start + 1], "")
    if not currency:
        word = CURRENCY_WORD.match(text, stop)
        if word:
            currency = word.group(1).lower()[:3].replace("inr", "rup").replace("usd", "dol")
            currency = {"rup": "INR", "dol": "USD", "eur": "EUR", "pou": "GBP", "gbp": "GBP"}[
                currency
            ]
            # "a hundred dollars" is "$100": the currency word is the currency, not what the
            # number counts ("pounds" may be a weight, and stays what it counts).
            if noun and currency != "GBP" and word.group(1).lower().startswith(noun):
                noun = ""
    scaled = [v * scale for v in values]
    return Num(
        value=scaled[0],
        alts=tuple(scaled),
        raw=text[raw_start:stop].strip(),
        start=raw_start,
        end=stop,
        unit=unit + rate,
        noun=noun,
        head=head,
        hedge=_hedge_before(text, raw_start),
        precision=precision * scale,
        rounded=scale > 1,
        attr=_attr_before(text, raw_start),
        currency=currency,
        ordinal=is_ordinal,
    )


def _attr_before(text: str, start: int) -> str:
    """The nearest content words before a number (up to two, space-separated), within a few
    words: "population of 453", "EXPORTS 2,54,970 crore", "exported goods worth ..."."""
    before = re.findall(r"[^\W\d_][\w'-]*", text[max(0, start - 40) : start])
    out: list[str] = []
    for w in reversed(before[-4:]):
        low = w.lower()
        if low not in STOPWORDS and low not in HEDGES and low not in FRAMING:
            out.append(stem(w))
    return " ".join(out[:2])


def find_numbers(text: str, skip: list[tuple[int, int]] | None = None) -> list[Num]:
    """The numbers stated in `text` (already stripped of markers), outside `skip` spans."""
    spans = list(skip or [])
    out: list[Num] = []

    def free(a: int, b: int) -> bool:
        return all(b <= s or a >= e for s, e in spans)

    digits = any(c.isdigit() for c in text)
    # Cheap checks first: most rows have no digits, or no number words.
    spelled = bool(_NUMBER_WORD_SET & set(re.findall(r"[a-z]+(?:-[a-z]+)?", text.lower())))
    for m in _FEET.finditer(text) if digits else ():
        a, b = m.span()
        if free(a, b):
            inches = float(int(m.group(1)) * 12 + int(m.group(2)))
            num = _finish(text, a, b, [inches], 1.0)
            out.append(Num(**{**num.__dict__, "unit": "in"}))
            spans.append((a, b))
    for m in _SCORE.finditer(text) if digits else ():
        a, b = m.span()
        if not free(a, b):
            continue
        before = text[max(0, a - 16) : a].lower()
        after = text[b : b + 16].lower()
        if not (_SCORE_BEFORE.search(before) or _SCORE_AFTER.match(after)):
            continue
        first, second = int(m.group(1)), int(m.group(2))
        # Scores are compared as a pair, either way round ("lost 3-4" is "lost 4-3").
        value = float(max(first, second) * 1000 + min(first, second))
        num = _finish(text, a, b, [value], 1.0)
        out.append(Num(**{**num.__dict__, "unit": "score"}))
        spans.append((num.start, num.end))
    for m in _RUN.finditer(text) if digits else ():
        a, b = m.span(1)
        if not free(a, b):
            continue
        values, precision = _readings(m.group(1))
        if not values:
            continue
        num = _finish(text, a, b, values, precision)
        out.append(num)
        spans.append((num.start, num.end))
    for m in _A_SCALE.finditer(text):
        # "a thousand", "half a million": the scale word is read by _finish.
        a, b = m.start(), m.end(1)
        if not free(a, m.end()):
            continue
        value = {"half a": 0.5, "a quarter of a": 0.25}.get(m.group(1).lower(), 1.0)
        out.append(_finish(text, a, b, [value], value / 4))
        spans.append((a, out[-1].end))
    for m in _WORD_NUM.finditer(text) if spelled else ():
        a, b = m.span()
        if not free(a, b):
            continue
        if m.group(1)[:1].isupper() and re.search(r"[A-Z][\w.]*\s+$", text[max(0, a - 30) : a]):
            continue  # part of a name: "Division Three", "Formula One"
        value = float(NUMBER_WORDS[m.group(1).lower()])
        out.append(_finish(text, a, b, [value], 1.0))
        spans.append((a, b))
    out.sort(key=lambda n: n.start)
    return _ranges(text, out)


def _ranges(text: str, nums: list[Num]) -> list[Num]:
    """In "16-17%" or "5 to 10 hours" the first number has the second one's unit and noun."""
    out = list(nums)
    for k in range(len(out) - 1):
        a, b = out[k], out[k + 1]
        if (
            not a.unit
            and not a.noun
            and re.fullmatch(r"\s*(?:[-\u2013]|to)\s*", text[a.end : b.start])
        ):
            out[k] = Num(**{**a.__dict__, "unit": b.unit, "noun": b.noun})
    return out


def same_kind(claim: Num, doc: Num) -> bool:
    """Both percentages, both multipliers, both rates or both counts."""
    return claim.unit == doc.unit


def matches(claim: Num, doc: Num) -> bool:
    """Does the document's number state the claim's number (hedges and rounding allowed)?"""
    if not same_kind(claim, doc):
        return False
    if claim.currency and doc.currency and claim.currency != doc.currency:
        return False
    if claim.currency and not doc.currency and not comparable(claim, doc):
        return False  # "under £1 million" is not stated by "41 goals"
    for c in claim.alts:
        for d in doc.alts:
            if _close(c, d, claim):
                return True
    return False


def _close(c: float, d: float, claim: Num) -> bool:
    if claim.hedge == "over":
        return d >= c and d <= c * 1.5 + claim.precision
    if claim.hedge == "under":
        return d <= c and d >= c * 0.25
    if abs(c - d) < 1e-9 * max(1.0, abs(d)):
        return True
    if claim.hedge == "approx":
        # "around six pillars" is six: a small count has no room to be rounded.
        step = 0.0 if claim.precision <= 1 and abs(c) < 20 else claim.precision
        return abs(c - d) <= max(step, 0.05 * abs(d))
    # An unhedged round number stands for the exact one ("83 million" for 83,190,556).
    if claim.rounded:
        return abs(c - d) <= claim.precision / 2
    return False


def comparable(claim: Num, doc: Num) -> bool:
    """Close enough in size to be two readings of one quantity (not a page number beside a
    turnover)."""
    for a in (abs(x) for x in claim.alts or (claim.value,)):
        for b in (abs(x) for x in doc.alts or (doc.value,)):
            if a == b or (min(a, b) > 0 and max(a, b) / min(a, b) <= 50):
                return True
    return False


def conflicts(claim: Num, doc: Num) -> bool:
    """The same kind of quantity of the same thing, with a value the claim's does not match."""
    if not same_kind(claim, doc) or matches(claim, doc):
        return False
    return bool(claim.noun and doc.noun and claim.noun == doc.noun)
