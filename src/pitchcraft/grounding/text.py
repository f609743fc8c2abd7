"""Text shapes: mojibake repair with offsets back to the original, sentence splitting, and the
units (sentences, table blocks) a claim's content must co-occur in."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

import ftfy

from pitchcraft.grounding.codes import Code, find_codes
from pitchcraft.grounding.dates import MONTHS, Date, find_dates
from pitchcraft.grounding.lexicon import fold, stem, words
from pitchcraft.grounding.numbers import Num, find_numbers, strip_markers

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "no",
        "nos",
        "vs",
        "etc",
        "inc",
        "ltd",
        "co",
        "corp",
        "fig",
        "figs",
        "eg",
        "ie",
        "approx",
        "est",
        "dept",
        "univ",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "al",
        "p",
        "pp",
        "vol",
        "ed",
        "eds",
        "rev",
        "gen",
        "col",
        "lt",
        "sr",
        "jr",
        "u.s",
        "e.g",
        "i.e",
    ]
)
_BULLET = re.compile(r"^\s*(?:[^\w\s]{1,2}(?=\s)|[-*•·▪◦‣\u2013]|\d{1,2}[.)]|[a-z][.)])\s+")
_SENT_END = re.compile(r"(?<=[.!?])[\"\u201d\u2019)\]]*\s+(?=[\"\u201c\u2018(\[]?[A-Z0-9])")
_TABLE_LINE_MAX = 70


# What is left of UTF-8 read as Latin-1 once a parser has dropped the C1 control characters:
# "1990\u00e21993" was "1990\u20131993", "\u00c2\u00a3" was "\u00a3".
_DASH_RESIDUE = re.compile(r"(?<=[\d\s])\u00e2(?=[\d\s])")
_A_RESIDUE = re.compile(r"\u00c2(?=[\u00a0-\u00bf])")


def repair(text: str) -> str:
    """Mojibake and odd Unicode fixed; ASCII passes through untouched."""
    if text.isascii():
        return text
    fixed = ftfy.fix_text(text)
    fixed = _DASH_RESIDUE.sub("\u2013", fixed)
    return _A_RESIDUE.sub("", fixed)


def _split_prose(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans of one paragraph, not breaking after abbreviations or initials."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENT_END.finditer(text):
        before = text[start : m.start()]
        last = re.search(r"([\w.]+)[.!?][\"\u201d\u2019)\]]*$", before)
        if last:
            word = last.group(1).lower()
            initialism = re.fullmatch(r"(?:[a-z]\.)+[a-z]", word)  # "F.C.", "U.S."
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()) or initialism:
                continue
        if before.strip():
            spans.append((offset + start, offset + m.start()))
        start = m.end()
    if text[start:].strip():
        spans.append((offset + start, offset + len(text.rstrip())))
    return spans


def split_sentences(text: str) -> list[str]:
    """Marketing text → sentences: bullets and line breaks end an item, abbreviations and
    decimals do not end a sentence, wrapped lines are joined."""
    text = repair(text).replace("\r\n", "\n").replace("\r", "\n")
    items: list[str] = []
    current = ""
    for raw in text.split("\n"):
        line = raw.strip()
        bullet = _BULLET.match(raw)
        if not line:
            if current:
                items.append(current)
            current = ""
            continue
        if bullet:
            if current:
                items.append(current)
            current = raw[bullet.end() :].strip()
            continue
        joins = current and (
            line[0].islower() or not current.rstrip().endswith((".", "!", "?", ":"))
        )
        if joins and not (len(current) < 60 and not current.endswith(",") and line[0].isupper()):
            current = f"{current} {line}"
        else:
            if current:
                items.append(current)
            current = line
    if current:
        items.append(current)
    out: list[str] = []
    for item in items:
        for a, b in _split_prose(item):
            sentence = item[a:b].strip()
            if re.search(r"\w", sentence):
                out.append(sentence)
    return out


@dataclass
class Row:
    """A table row or a sentence. Numbers, dates and cells are read on first use: most rows
    share no word with a sentence being checked and are never looked at closely."""

    start: int
    end: int
    stems: set[str]
    words: list[tuple[str, int, int]]  # (stem, start, end) in the repaired text
    names: set[str]  # stems of capitalised words inside sentences
    text: str = field(repr=False, default="")  # the whole repaired passage
    clean: str = field(repr=False, default="")  # the same with reference markers blanked
    table: bool = False

    @cached_property
    def dates(self) -> list[Date]:
        a = self.start
        found = find_dates(self.clean[a : self.end])
        return [Date(d.year, d.month, d.day, d.raw, d.start + a, d.end + a, d.until) for d in found]

    @cached_property
    def codes(self) -> list[Code]:
        a = self.start
        skip = [(d.start - a, d.end - a) for d in self.dates]
        found = find_codes(self.clean[a : self.end], skip)
        return [Code(c.raw, c.digits, c.start + a, c.end + a) for c in found]

    @cached_property
    def heading_stems(self) -> set[str]:
        """Words of the text just above a table row (its heading): what its figures count."""
        if not self.table:
            return set()
        heading = self.text[max(0, self.start - 800) : self.start]
        return {stem(w) for w, _, _ in words(heading)}

    @cached_property
    def nums(self) -> list[Num]:
        a = self.start
        skip = [(d.start - a, d.end - a) for d in self.dates]
        local = find_numbers(self.clean[a : self.end], skip)
        scale = _header_scale(self.text[max(0, a - 800) : a]) if self.table else 1.0
        return [
            Num(
                **{
                    **n.__dict__,
                    "start": n.start + a,
                    "end": n.end + a,
                    # Under a "Population (millions)" heading 8.9 may be 8.9 million.
                    "alts": n.alts + tuple(v * scale for v in n.alts)
                    if scale != 1.0 and not n.rounded and not n.unit
                    else n.alts,
                }
            )
            for n in local
        ]

    @cached_property
    def cells(self) -> list[tuple[int, int]]:
        """Spans of the row's entries, for column alignment."""
        return _cells(self.text, self.start, self.end, self.nums) if self.table else []


_HEADER_SCALE = re.compile(
    r"\((?:in\s+)?(thousands?|millions?|billions?|crores?|lakhs?)\)|\bin\s+(thousands|millions|billions|crores|lakhs)\b",
    re.IGNORECASE,
)


def _header_scale(before: str) -> float:
    """The scale a table's heading gives its figures ("(millions)", "in crores"), else 1."""
    found = list(_HEADER_SCALE.finditer(before))
    if not found:
        return 1.0
    m = found[-1]
    word = (m.group(1) or m.group(2)).lower().rstrip("s")
    return {"thousand": 1e3, "million": 1e6, "billion": 1e9, "crore": 1e7, "lakh": 1e5}[word]


@dataclass
class Unit:
    """A passage sentence, or a block of table rows read together."""

    start: int
    end: int
    rows: list[Row]
    table: bool
    stems: set[str] = field(default_factory=set)


@dataclass
class Analysed:
    original: str
    text: str  # repaired
    units: list[Unit]
    offsets: list[int] | None  # repaired index → original index, None when unchanged
    stems: set[str]
    capitalised: set[str] = field(default_factory=set)  # folded words written as names
    lower: set[str] = field(default_factory=set)  # folded words written in lower case

    def to_original(self, a: int, b: int) -> tuple[int, int]:
        if self.offsets is None:
            return a, b
        return self.offsets[a], self.offsets[min(b, len(self.offsets) - 1)]


def _offset_map(original: str, fixed: str) -> list[int]:
    """Repaired index → original index (a repaired run maps to the start of what it replaced)."""
    out = [0] * (len(fixed) + 1)
    matcher = difflib.SequenceMatcher(None, fixed, original, autojunk=False)
    for tag, i1, i2, j1, _j2 in matcher.get_opcodes():
        for k in range(i1, i2):
            out[k] = j1 + (k - i1) if tag == "equal" else j1
    out[len(fixed)] = len(original)
    return out


def _repair_mapped(original: str) -> tuple[str, list[int] | None]:
    """The repaired text and its offsets into the original; repaired line by line, so only
    the few lines that change are aligned (aligning a whole passage is slow)."""
    if original.isascii():
        return original, None
    fixed_lines: list[str] = []
    offsets: list[int] = []
    pos = 0
    for line in original.splitlines(keepends=True):
        fixed = repair(line)
        if fixed == line:
            offsets.extend(range(pos, pos + len(line)))
        else:
            offsets.extend(pos + k for k in _offset_map(line, fixed)[:-1])
        fixed_lines.append(fixed)
        pos += len(line)
    offsets.append(len(original))
    text = "".join(fixed_lines)
    return text, (None if text == original else offsets)


def _word_list(text: str, a: int, b: int) -> list[tuple[str, int, int]]:
    """Stemmed words of text[a:b]; a word broken by a hyphen at a line end ("ef- ficient") is
    joined again."""
    raw = [(w, s + a, e + a) for w, s, e in words(text[a:b])]
    out: list[tuple[str, int, int]] = []
    i = 0
    while i < len(raw):
        w, s, e = raw[i]
        if i + 1 < len(raw):
            nw, ns, ne = raw[i + 1]
            gap = text[e:ns]
            if re.fullmatch(r"-\s+", gap) and nw[:1].islower() and w[-1:].islower():
                out.append((stem(w + nw), s, ne))
                i += 2
                continue
        for part in re.split(r"[-']", w) if "-" in w else []:
            if part:
                out.append((stem(part), s, e))
        out.append((stem(w), s, e))
        i += 1
    return out


def _cells(text: str, a: int, b: int, nums: list[Num]) -> list[tuple[int, int]]:
    """Entries of a table row in order: numbers, and runs of words between separators."""
    spans = [(n.start, n.end) for n in nums]
    line = text[a:b]
    for m in re.finditer(r"[^|\d\U0001F000-\U0001FFFF\u2600-\u27BF`]+", line):
        seg_a, seg_b = m.start() + a, m.end() + a
        if any(seg_a < e and seg_b > s for s, e in spans):
            continue
        chunk = text[seg_a:seg_b]
        if re.search(r"[^\W\d_]", chunk):
            lead = len(chunk) - len(chunk.lstrip())
            spans.append((seg_a + lead, seg_a + len(chunk.rstrip())))
    # Separate capitalised names that only spaces divide ("Germany Austria France").
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        seg = text[s:e]
        if re.fullmatch(r"(?:[A-Z][\w.'-]*\s*)+", seg) and "|" not in seg:
            parts = list(re.finditer(r"[A-Z][\w.'-]*(?:\s+(?:City|Town|Republic|States))?", seg))
            if len(parts) > 1:
                out.extend((s + p.start(), s + p.end()) for p in parts)
                continue
        out.append((s, e))
    return out


def _row(text: str, clean: str, a: int, b: int, table: bool) -> Row:
    wl = _word_list(text, a, b)
    names = set()
    for w, s, _ in words(text[a:b]):
        before = text[a : a + s].rstrip()
        # An acronym is a name too ("ORQA"), unless the whole row is written in capitals.
        acronym = w.isupper() and 2 <= len(w) <= 6 and not text[a:b].isupper()
        if (
            w[:1].isupper()
            and (not w.isupper() or acronym)
            and before
            and before[-1] not in '.!?:;"\u201c'
            and fold(w) not in MONTHS
        ):
            names.add(stem(w))
    return Row(a, b, {w for w, _, _ in wl}, wl, names, text, clean, table)


def _next_line(text: str, lines: list[tuple[int, int]], i: int) -> str:
    return text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else ""


def _is_table_line(line: str, following: str = "") -> bool:
    """A short line that ends no sentence: a table row, a heading, a label. A line broken
    mid-word or mid-sentence (the next starts in lower case) is prose."""
    s = line.strip()
    if "|" in s:
        return True
    if s.endswith("-") or following.strip()[:1].islower():
        return False
    return len(s) < _TABLE_LINE_MAX and not s.endswith((".", "!", "?", ";", ",", ":"))


_SHORT = 40


def _fragment_runs(units: list[Unit]) -> list[Unit]:
    """Runs of short prose fragments read together as well ("The Crazy Ones" / "October 14,
    1998", "The misfits. The rebels."): one statement broken over lines or into fragments."""
    out: list[Unit] = []
    run: list[Unit] = []
    for u in [*units, None]:
        if u is not None and not u.table and u.end - u.start <= _SHORT:
            run.append(u)
            continue
        for k in range(0, max(len(run) - 1, 0), 3):
            part = run[k : k + 6]
            if len(part) >= 2:
                out.append(
                    Unit(part[0].start, part[-1].end, [r for x in part for r in x.rows], False)
                )
        run = []
    return out


@lru_cache(maxsize=512)
def analyse(original: str) -> Analysed:
    """Split a passage into units; cached, as every sentence is checked against it."""
    text, offsets = _repair_mapped(original)
    clean = strip_markers(text)
    units: list[Unit] = []
    lines: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        if line.strip():
            lines.append((pos, pos + len(line)))
        pos += len(line) + 1
    i = 0
    while i < len(lines):
        a, b = lines[i]
        if _is_table_line(text[a:b], _next_line(text, lines, i)):
            j = i
            while j + 1 < len(lines) and _is_table_line(
                text[lines[j + 1][0] : lines[j + 1][1]], _next_line(text, lines, j + 1)
            ):
                if text[lines[j + 1][0]].islower():
                    break
                j += 1
            block = lines[i : j + 1]
            if i > 0 and text[lines[i - 1][0] : lines[i - 1][1]].rstrip().endswith(":"):
                # A list under its heading: "These are a few of my favorite things:".
                block = [lines[i - 1], *block]
            for k in range(0, len(block), 8):
                window = block[max(0, k - 2) : k + 10]
                rows = [_row(text, clean, s, e, True) for s, e in window]
                units.append(Unit(window[0][0], window[-1][1], rows, True))
                if k + 10 >= len(block):
                    break
            i = j + 1
            continue
        # Prose: join wrapped lines until one ends a sentence and the next does not continue it.
        j = i
        while j + 1 < len(lines):
            cur = text[lines[j][0] : lines[j][1]].rstrip()
            nxt = text[lines[j + 1][0] : lines[j + 1][1]].lstrip()
            if nxt[:1].islower() or (not cur.endswith((".", "!", "?", ":")) and len(cur) >= 50):
                j += 1
                continue
            break
        pa, pb = lines[i][0], lines[j][1]
        for s, e in _split_prose(text[pa:pb], pa):
            units.append(Unit(s, e, [_row(text, clean, s, e, False)], False))
        i = j + 1
    units += _fragment_runs(units)
    all_stems: set[str] = set()
    for u in units:
        u.stems = set().union(*(r.stems for r in u.rows))
        all_stems |= u.stems
    capitalised, lower = set(), set()
    for w, a, _ in words(text):
        if w[:1].islower():
            lower.add(fold(w).removesuffix("'s"))
            continue
        before = text[max(0, a - 3) : a].rstrip(" \t\"'\u201c\u2018")
        if before and before[-1] not in ".!?\n":
            capitalised.add(fold(w).removesuffix("'s"))
    return Analysed(original, text, units, offsets, all_stems, capitalised, lower)


_ABBR_DEF = re.compile(r"\(\s*([A-Z][A-Za-z]{1,7})\s*\)")


def abbreviations(texts: list[str]) -> dict[str, set[str]]:
    """Abbreviations the documents define ("deep learning (DL)", "Document Image Analysis
    (DIA)") → the stems of the words they stand for."""
    out: dict[str, set[str]] = {}
    for text in texts:
        for m in _ABBR_DEF.finditer(text):
            abbr = m.group(1)
            caps = [c.lower() for c in abbr if c.isupper()]
            if len(caps) < 2:
                continue
            before = re.findall(r"[A-Za-z]+", text[max(0, m.start() - 80) : m.start()])
            content = [w for w in before if w.lower() not in ("of", "and", "for", "the", "in")]
            chosen = content[-len(caps) :]
            if len(chosen) == len(caps) and [w[0].lower() for w in chosen] == caps:
                out[stem(abbr)] = {stem(w) for w in chosen}
    return out


def quote_span(an: Analysed, a: int, b: int, focus: list[tuple[int, int]]) -> str:
    """A verbatim quote (8-300 chars) of the original text around `focus`, within [a, b)."""
    if focus:
        fa = min(s for s, _ in focus)
        fb = max(e for _, e in focus)
    else:
        fa, fb = a, b
    if b - a > 300:
        # Keep the matched words, with as much of their unit around them as fits.
        room = max(0, 300 - (fb - fa))
        a = max(a, fa - room // 2)
        b = min(b, max(fb, a + 300))
        if b - a > 300:
            a, b = fa, min(fb, fa + 300)
    oa, ob = an.to_original(a, b)
    quote = an.original[oa:ob].strip()
    if len(quote) < 8:
        oa = max(0, oa - 20)
        ob = min(len(an.original), ob + 20)
        quote = an.original[oa:ob].strip()
    return quote[:300].strip()
