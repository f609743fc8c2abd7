"""Whether a search result is relevant at all: a score on an absolute scale, and the floor.

The fused score ranks the candidates of one search but says nothing about how well any of
them fits: a query of keyboard mash still has a best BM25 match and five nearest dense
neighbours. A passage's relevance is

    cosine(query, passage) + matched / (n + 1)

the cosine of their MiniLM vectors (`Hit.similarity`, from the index) plus the share of the
query's n content words the passage contains (matched of n; the + 1 keeps a one-word query
from earning a whole point by one common word). Both parts are needed: a paraphrase shares
few words but sits close in meaning, and a German question is far from English-trained
MiniLM's idea of any passage but shares its exact terms. For a text of several claims (a
refine job searches with the whole marketing text) the share is that of the sentence the
passage matches best.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from pitchcraft.vectors.base import Hit

# Calibrated with `python -m bench.floor` (bench/README.md): corpus indexed as shipped, top 5
# candidates. The 28 answers the 30 dev questions find score 0.59-1.47 (lowest: "web page
# with a small two-by-two grid labelled by row and cell", cosine 0.37 + 2 of 8 words). The
# best candidate of each of the 48 off-topic and nonsense queries of
# bench/data/search-offtopic.jsonl scores 0.21-0.69; with no real word in them (keyboard
# mash, invented words) at most 0.39. The two overlap: a cooking or gardening question
# shares common words ("wine", "red", "dark", "north") with a 619-page fantasy novel. The
# floor is set for recall, 0.09 below the lowest answer, and keeps 38 of the 48 out (18 of
# the 24 holdout queries); 0.55 keeps 42 out with half the margin, 0.6 loses an answer.
RELEVANCE_FLOOR = 0.5

_WORD = re.compile(r"[^\W_]+")
# A word of at least this many letters also matches a passage word with the same start
# ("forge" ~ "forged", "Fotos" ~ "Foto"): no stemmer serves English and German alike.
_PREFIX = 5
# A query's sentences are judged apart from this many content words up (query_words).
_SENTENCE_WORDS = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# Function words of English and German: matching them is no evidence of a topic.
_FUNCTION_WORDS = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours may might must shall get got let lets
    much many any anything something thing things one ones way ways there s t don doesn now
    isn aren wasn weren won can cannot tell show find give use used using need needs
    aber alle allem allen aller alles als also am an auch auf aus bei bin bis bist da damit
    dann das dass dem den der des dessen die dies diese diesem diesen dieser dieses doch dort
    du durch ein eine einem einen einer eines er es etwas euch euer für gegen hat hatte
    hatten hier hin hinter ich ihm ihn ihnen ihr ihre im in ist ja jede jedem jeden jeder
    jedes jener kann kein keine können könnte man manche mein meine mich mir mit muss nach
    nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so soll sollte
    sondern über um und uns unser unter vom von vor war waren warum was weil welche welchem
    welchen welcher welches wenn wer werden wie wieder will wir wird wo woher wohin zu zum
    zur zwischen gibt wurde wurden worden hat haben
    """


def fold(word: str) -> str:
    """Lower-cased, accents dropped ("Straße" = "strasse", "résumé" = "resume"), as BM25
    tokens are."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


STOPWORDS = frozenset(fold(w) for w in _FUNCTION_WORDS.split())


def content_words(text: str) -> list[str]:
    """The distinct words of `text` that name something: folded, function words dropped."""
    out: dict[str, None] = {}
    for word in _WORD.findall(unicodedata.normalize("NFKC", text)):
        folded = fold(word)
        if folded not in STOPWORDS:
            out.setdefault(folded, None)
    return list(out)


def query_words(text: str) -> list[list[str]]:
    """The content words of a query, one list per sentence of at least
    `_SENTENCE_WORDS` of them (shorter sentences join the one before, or the next): a
    passage that speaks to one claim of a marketing text is relevant to it, but the share
    of the whole text's words it contains shrinks with every other claim. A question is
    one sentence: one list, all its words."""
    groups: list[list[str]] = []
    waiting: list[str] = []  # the words of short sentences before the first long one
    for sentence in _SENTENCE_END.split(text):
        words = content_words(sentence)
        target = groups[-1] if groups and len(words) < _SENTENCE_WORDS else None
        if target is None and len(words) < _SENTENCE_WORDS:
            target = waiting
        if target is not None:
            target.extend(w for w in words if w not in target)
            continue
        groups.append([*waiting, *(w for w in words if w not in waiting)])
        waiting = []
    return groups or [waiting]


def matched(words: Iterable[str], passage: str) -> int:
    """How many of the (content) `words` occur in the passage, or start one of its words."""
    return _count(words, *_vocabulary(passage))


def _vocabulary(passage: str) -> tuple[set[str], set[str]]:
    have = {fold(w) for w in _WORD.findall(unicodedata.normalize("NFKC", passage))}
    return have, {w[:_PREFIX] for w in have if len(w) >= _PREFIX}


def _count(words: Iterable[str], have: set[str], starts: set[str]) -> int:
    return sum(1 for w in words if w in have or (len(w) >= _PREFIX and w[:_PREFIX] in starts))


def lexical(groups: Sequence[list[str]], passage: str) -> float:
    """The best share of one sentence's content words the passage contains, matched/(n+1)."""
    vocabulary = _vocabulary(passage)
    return max((_count(g, *vocabulary) / (len(g) + 1) for g in groups), default=0.0)


def relevance(groups: Sequence[list[str]], hit: Hit) -> float | None:
    """The passage's relevance to a query of these content words (`query_words`); None
    when the index did not report the hit's similarity."""
    if hit.similarity is None:
        return None
    return hit.similarity + lexical(groups, hit.text)


def above_floor(
    groups: Sequence[list[str]], hits: Iterable[Hit], floor: float = RELEVANCE_FLOOR
) -> list[Hit]:
    """The hits relevant to the query, in their order. A hit without a similarity (an index
    that does not report one) is kept: there is nothing to judge it by."""
    kept = []
    for hit in hits:
        score = relevance(groups, hit)
        if score is None or score >= floor:
            kept.append(hit)
    return kept
