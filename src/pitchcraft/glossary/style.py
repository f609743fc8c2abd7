"""Style findings: where a text uses a word the glossary avoids or bans.

Matching is case-insensitive, on whole words (a term never matches inside a longer word),
multi-word terms allow any run of spaces or a line break between their words, and a term
also matches its plural (-s, -es, -y → -ies). A word to use written with another
capitalisation ("Layoutparser" for "LayoutParser") is a finding too, except a capital first
letter at the start of a sentence. All terms are one regular expression, so checking costs
one pass over the text however long the glossary is.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from pitchcraft.glossary.rules import Glossary

AVOID, BANNED = "avoid", "banned"
MAX_FINDINGS = 200
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")

_OPENERS = " \t\"'\u201c\u2018("  # quote marks and brackets before a word


@dataclass(frozen=True)
class Finding:
    kind: str  # avoid | banned
    term: str  # as the text writes it
    suggestion: str | None
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Entry:
    kind: str  # avoid | banned | use
    term: str
    suggestion: str | None


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _forms(term: str) -> list[str]:
    """The term and its plurals, casefolded."""
    base = _key(term)
    out = [base, base + "s", base + "es"]
    if base.endswith("y") and len(base) > 2:
        out.append(base[:-1] + "ies")
    return out


def _pattern(term: str) -> str:
    words = [re.escape(w) for w in term.split()]
    last = term.split()[-1]
    plural = r"(?:s|es)?"
    if last.endswith(("y", "Y")) and len(last) > 2:
        words[-1] = f"(?:{re.escape(last)}{plural}|{re.escape(last[:-1])}ies)"
    else:
        words[-1] += plural
    return r"\s+".join(words)


@dataclass(frozen=True)
class _Matcher:
    regex: re.Pattern[str] | None
    entries: dict[str, _Entry]


@lru_cache(maxsize=64)
def _matcher(glossary: Glossary) -> _Matcher:
    entries: dict[str, _Entry] = {}
    phrases: list[str] = []

    def add(phrase: str, entry: _Entry) -> None:
        for form in _forms(phrase):
            entries.setdefault(form, entry)
        phrases.append(phrase)

    for b in glossary.banned:
        add(b, _Entry(BANNED, b, None))
    for t in glossary.terms:
        for a in t.avoid:
            if a.casefold() != t.use.casefold():
                add(a, _Entry(AVOID, a, t.use))
        add(t.use, _Entry("use", t.use, t.use))
    if not phrases:
        return _Matcher(None, entries)
    # Longest first, so "cloud platform" wins over "cloud" where both are listed.
    alternation = "|".join(_pattern(p) for p in sorted(set(phrases), key=len, reverse=True))
    regex = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)
    return _Matcher(regex, entries)


def _sentence(text: str, start: int, end: int) -> str:
    left = 0
    for m in _SENTENCE_END.finditer(text, 0, start):
        left = m.end()
    right_m = _SENTENCE_END.search(text, end)
    right = right_m.end() if right_m else len(text)
    return " ".join(text[left:right].split())


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(_OPENERS)
    return not before or before[-1] in ".!?\n:•-"


def _exact_forms(use: str) -> set[str]:
    base = " ".join(use.split())
    out = {base, base + "s", base + "es"}
    if base.endswith("y") and len(base) > 2:
        out.add(base[:-1] + "ies")
    return out


def _case_differs(written: str, use: str, at_sentence_start: bool) -> bool:
    exact = _exact_forms(use)
    if written in exact:
        return False
    lowered = written[:1].lower() + written[1:]
    return not (at_sentence_start and use[:1].islower() and lowered in exact)


def findings(text: str, glossary: Glossary) -> list[Finding]:
    """Each avoided or banned word in `text`, in order, with its sentence."""
    m = _matcher(glossary)
    if m.regex is None or not text:
        return []
    out: list[Finding] = []
    for match in m.regex.finditer(text):
        written = " ".join(match.group(0).split())
        entry = m.entries.get(written.casefold())
        if entry is None:
            continue
        if entry.kind == "use":
            if not _case_differs(written, entry.term, _sentence_start(text, match.start())):
                continue
            kind = AVOID
        else:
            kind = entry.kind
        sentence = _sentence(text, match.start(), match.end())
        out.append(Finding(kind, written, entry.suggestion, sentence))
        if len(out) >= MAX_FINDINGS:
            break
    return out
