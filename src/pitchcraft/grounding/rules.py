"""Rules that take back what co-occurrence alone would grant: a name in someone else's slot,
numbers about another tally, negated words, opposite words."""

from __future__ import annotations

import re

from pitchcraft.grounding.extract import Parsed
from pitchcraft.grounding.lexicon import ANTONYMS, FRAMING, HARD_WORDS, NEGATIONS, STOPWORDS, stem
from pitchcraft.grounding.state import Context, Hit, UnitMatch

# Capitalised in a heading or a table row, yet no one's name.
COMMON_STEMS = frozenset(stem(w) for w in STOPWORDS | FRAMING | HARD_WORDS)


# A preposition between a word and the name it takes: "born in", "signed for the".
_SLOT_GAP = re.compile(r"\s+(?:in|at|for|from|to|by|with|of|on)\s+(?:the\s+)?")


def void_unanchored(parsed: Parsed, m: UnitMatch) -> None:
    """Several numbers, none stated here and all different: this sentence is about some
    other tally ("41 goals in 100 games for Leicester" against "202 goals in 647")."""
    numbers = [i for i, it in enumerate(parsed.items) if it.num is not None and not it.num.ordinal]
    wrong = [i for i in numbers if i in m.conflicts]
    if len(wrong) >= 2 and not any(i in m.hits for i in numbers):
        for i in numbers:
            m.conflicts.pop(i, None)


def check_slots(parsed: Parsed, m: UnitMatch, ctx: Context) -> None:
    """A name must fill the slot the sentence puts it in: "born in Barmouth" is not stated by
    "born in Bangor, ..., and grew up in Barmouth"; there Bangor fills the slot."""
    if m.unit.table:
        return
    items = parsed.items
    text = m.an.text
    for n_idx, item in enumerate(items):
        if item.kind != "name" or item.subject or n_idx not in m.hits:
            continue
        before = [
            i
            for i, it in enumerate(items)
            if it.kind == "term" and it.end <= item.start and i in m.hits
        ]
        if not before:
            continue
        p_idx = max(before, key=lambda i: items[i].end)
        gap = parsed.text[items[p_idx].end : item.start]
        if not _SLOT_GAP.fullmatch(gap):
            continue  # not "born in X" / "played for X"
        p_hit, n_hit = m.hits[p_idx], m.hits[n_idx]
        if n_hit.start <= p_hit.end:
            continue
        between = text[p_hit.end : n_hit.start]
        rivals = [
            w
            for w in re.finditer(r"[A-Z][^\W\d_]+", between)
            if stem(w.group()) not in ctx.lower_stems and stem(w.group()) not in COMMON_STEMS
        ]
        if not rivals:
            continue
        after_rival = between[rivals[0].end() :]
        words_after = [w for w in re.findall(r"[a-z][a-z'-]+", after_rival) if w not in STOPWORDS]
        if not words_after:
            continue  # a list: "played for Watford, Huddersfield and Norwich"
        m.hits.pop(n_idx)
        if _SLOT_GAP.fullmatch(between[: rivals[0].start()]):
            start = p_hit.end + rivals[0].start()
            m.conflicts[n_idx] = Hit(
                p_hit.row, start, start + len(rivals[0].group()), rivals[0].group()
            )


_LIMIT = re.compile(
    r"\b(?:not to exceed|not exceeding|no more than|not more than|no less than|not less than|"
    r"no later than|not later than|no longer than|no fewer than|not fewer than)\b"
)


def negation_before(m: UnitMatch, hit: Hit) -> bool:
    """A negation within five words before the hit, in its clause."""
    row = m.unit.rows[hit.row]
    before = m.an.text[max(row.start, hit.start - 40) : hit.start].lower()
    before = re.split(r"[,;:()]", before)[-1]
    # A limit is no negation: "not to exceed 120 days", "no more than five".
    before = _LIMIT.sub(" ", before)
    tokens = re.findall(r"[a-z']+", before)[-5:]
    return any(map(_negates, tokens))


def _negates(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")


def _tokens(text: str) -> list[str]:
    """Lower-cased words, limits ("no more than") blanked: they are no negations."""
    return re.findall(r"[a-z']+", _LIMIT.sub(" ", text.lower()))


def states_negation(text: str) -> bool:
    """Any negation in the text ("not", "failed", "without"), limits aside ("no more than")."""
    return any(map(_negates, _tokens(text)))


def negated_words(text: str) -> set[str]:
    """The stems of the words a negation governs: the first word after each "not", "never",
    "failed to"... that is not a function word ("not considered mandatory" -> considered)."""
    tokens = _tokens(text)
    out: set[str] = set()
    for i, w in enumerate(tokens):
        if _negates(w):
            after = [t for t in tokens[i + 1 : i + 4] if t not in STOPWORDS and t not in NEGATIONS]
            if after:
                out.add(stem(after[0]))
    return out


def states_unnegated(word_stem: str, text: str) -> bool:
    """The text has a word of this stem that no negation governs."""
    tokens = _tokens(text)
    for i, w in enumerate(tokens):
        if stem(w) == word_stem:
            # "not encouraged" before it, or "requires no password" after it.
            near = [*tokens[max(0, i - 3) : i], *tokens[i + 1 : i + 3]]
            if not any(map(_negates, near)):
                return True
    return False


_OBLIGED = re.compile(
    r"\b(?:must|required|requires?|mandatory|obligatory|compulsory|obliged|obligated|"
    r"(?:has|have|had) to)\b"
)
_OPTIONAL = re.compile(
    r"\b(?:encouraged|optional|voluntary|voluntarily|recommended|suggested|advised|urged|"
    r"may|discretion|discretionary)\b"
)


def states_obligation(text: str) -> bool:
    """The text says something must be done ("required", "mandatory", "has to"), not
    negated ("not considered mandatory" says the opposite)."""
    return bool(_OBLIGED.search(text.lower())) and not states_negation(text)


def states_option(text: str) -> bool:
    """The text leaves it to the reader ("encouraged", "optional", "may"), or negates an
    obligation ("not mandatory", "need not")."""
    lowered = text.lower()
    return bool(_OPTIONAL.search(lowered)) or (
        bool(_OBLIGED.search(lowered) or re.search(r"\bneed\b", lowered)) and states_negation(text)
    )


def negated_near(m: UnitMatch, parsed: Parsed) -> bool:
    """Every content item is stated here, and most of them negated ("just missed out on
    promotion"); one negated word among many stated ones may be a side remark."""
    content = [i for i, it in enumerate(parsed.items) if not it.subject]
    negated = [i for i in content if i in m.negated_hits]
    return 2 * len(negated) >= len(content) > 0 and all(
        i in m.hits or i in m.negated_hits for i in content
    )


def opposites(parsed: Parsed, m: UnitMatch) -> None:
    """Content words whose opposite the unit states ("rare" for "common")."""
    for idx, item in enumerate(parsed.items):
        if item.kind != "term" or idx in m.hits or len(item.stems) != 1:
            continue
        opposite = set().union(*(ANTONYMS.get(a, frozenset()) for a in item.stems[0]))
        if not opposite:
            continue
        for r, row in enumerate(m.unit.rows):
            for s, a, b in row.words:
                if s in opposite:
                    m.opposites[idx] = Hit(r, a, b, m.an.text[a:b])
                    break
            if idx in m.opposites:
                break
