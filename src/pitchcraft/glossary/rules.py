"""A glossary as a value: its checks (what a request may hold) and its text in the prompt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pitchcraft.core.errors import Invalid
from pitchcraft.core.validation import has_control_chars

MAX_TERMS = 500
MAX_AVOID_PER_TERM = 20
MAX_BANNED = 500
MAX_WORDS = 2000  # every `use`, `avoid` and `banned` entry together
MAX_TERM_CHARS = 80


@dataclass(frozen=True)
class Term:
    use: str
    avoid: tuple[str, ...] = ()


@dataclass(frozen=True)
class Glossary:
    terms: tuple[Term, ...] = ()
    banned: tuple[str, ...] = ()
    updated_at: Any = field(default=None, compare=False)

    @property
    def empty(self) -> bool:
        return not self.terms and not self.banned

    def as_dict(self) -> dict[str, Any]:
        return {
            "terms": [{"use": t.use, "avoid": list(t.avoid)} for t in self.terms],
            "banned": list(self.banned),
        }


def _bad(message: str) -> Invalid:
    return Invalid(message, code="invalid_glossary")


def _word(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise _bad(f"{where} must be text.")
    word = " ".join(raw.split())
    if not word:
        raise _bad(f"{where} is empty; remove it or write the word.")
    if len(word) > MAX_TERM_CHARS:
        raise _bad(f"{where} is longer than {MAX_TERM_CHARS} characters: {word[:40]!r}….")
    if has_control_chars(word):
        raise _bad(f"{where} contains control characters.")
    if not any(ch.isalnum() for ch in word):
        raise _bad(f"{where} ({word!r}) has no letter or digit to match.")
    return word


def parse(terms: Sequence[Mapping[str, Any]], banned: Sequence[Any]) -> Glossary:
    """The glossary a request describes, or Invalid naming the first problem (its place
    in the list, so a long glossary can be fixed)."""
    if len(terms) > MAX_TERMS:
        raise _bad(f"A glossary holds at most {MAX_TERMS} terms; this one has {len(terms):,}.")
    if len(banned) > MAX_BANNED:
        raise _bad(f"A glossary bans at most {MAX_BANNED} words; this one lists {len(banned):,}.")
    total = len(terms) + len(banned) + sum(len(t.get("avoid") or []) for t in terms)
    if total > MAX_WORDS:
        raise _bad(f"A glossary holds at most {MAX_WORDS:,} words in all; this one has {total:,}.")
    out: list[Term] = []
    owner: dict[str, str] = {}  # casefolded word -> where it is listed

    def claim(word: str, where: str, *, exact: bool = False) -> None:
        # A capitalisation variant is its own entry: it cannot clash with the folded words.
        key = "=" + word if exact else word.casefold()
        if key in owner:
            raise _bad(f"{where} ({word!r}) is already listed as {owner[key]}.")
        owner[key] = where

    for i, raw in enumerate(terms, start=1):
        use = _word(raw.get("use"), f"Term {i}'s word to use")
        claim(use, f"term {i}'s word to use")
        avoid_raw = raw.get("avoid") or []
        if not isinstance(avoid_raw, list | tuple):
            raise _bad(f"Term {i}'s words to avoid must be a list.")
        if len(avoid_raw) > MAX_AVOID_PER_TERM:
            raise _bad(f"Term {i} lists more than {MAX_AVOID_PER_TERM} words to avoid.")
        avoid: list[str] = []
        for j, a in enumerate(avoid_raw, start=1):
            word = _word(a, f"Term {i}'s word to avoid no. {j}")
            if word == use:
                raise _bad(f"Term {i} avoids its own word {use!r}.")
            # A different capitalisation of the word to use is a fine thing to avoid.
            if word.casefold() == use.casefold():
                claim(word, f"term {i}'s word to avoid", exact=True)
            else:
                claim(word, f"term {i}'s word to avoid")
            avoid.append(word)
        out.append(Term(use, tuple(avoid)))
    bans: list[str] = []
    for k, b in enumerate(banned, start=1):
        word = _word(b, f"Banned word no. {k}")
        claim(word, f"banned word no. {k}")
        bans.append(word)
    return Glossary(tuple(out), tuple(bans))


def from_stored(data: Mapping[str, Any] | None) -> Glossary:
    """A stored or snapshotted glossary; it was checked when saved."""
    data = data or {}
    terms = tuple(
        Term(str(t.get("use", "")), tuple(str(a) for a in t.get("avoid") or []))
        for t in data.get("terms") or []
        if isinstance(t, dict) and t.get("use")
    )
    banned = tuple(str(b) for b in data.get("banned") or [] if b)
    return Glossary(terms, banned)


def prompt_text(glossary: Glossary) -> str:
    """The `{{glossary}}` placeholder's value."""
    if glossary.empty:
        return "(no brand glossary: no words to prefer or avoid)"
    lines: list[str] = []
    for t in glossary.terms:
        if t.avoid:
            never = ", ".join(f"“{a}”" for a in t.avoid)
            lines.append(f"- Write “{t.use}”, never {never}.")
        else:
            lines.append(f"- Write “{t.use}” exactly so.")
    if glossary.banned:
        lines.append("- Never use: " + ", ".join(f"“{b}”" for b in glossary.banned) + ".")
    return "\n".join(lines)
