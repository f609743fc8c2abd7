"""Whether a search result is relevant at all: a score on an absolute scale, and the floor.

The fused score ranks the candidates of one search but says nothing about how well any of
them fits: a query of keyboard mash still has a best BM25 match and five nearest dense
neighbours. A passage's relevance is

    cosine(query, passage) + matched / (n + 1)

the cosine of their MiniLM vectors (`Hit.similarity`, from the index) plus the share of the
query's n content words the passage contains (matched of n; the + 1 keeps a one-word query
from earning a whole point by one common word). Both parts are needed: a paraphrase shares
few words but sits close in meaning, and a German question is far from English-trained
MiniLM's idea of any passage but shares its exact terms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

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

# Function words of English and German: matching them is no evidence of a topic.
_FUNCTION_WORDS = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours may might must shall get got let lets
    much many any anything something thing things one ones way ways there s t don doesn
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


def matched(words: Iterable[str], passage: str) -> int:
    """How many of the (content) `words` occur in the passage, or start one of its words."""
    have = {fold(w) for w in _WORD.findall(unicodedata.normalize("NFKC", passage))}
    starts = {w[:_PREFIX] for w in have if len(w) >= _PREFIX}
    return sum(1 for w in words if w in have or (len(w) >= _PREFIX and w[:_PREFIX] in starts))


def relevance(words: list[str], hit: Hit) -> float | None:
    """The passage's relevance to a query of content `words`; None when the index did not
    report the hit's similarity."""
    if hit.similarity is None:
        return None
    return hit.similarity + matched(words, hit.text) / (len(words) + 1)


def above_floor(words: list[str], hits: Iterable[Hit], floor: float = RELEVANCE_FLOOR) -> list[Hit]:
    """The hits relevant to the query, in their order. A hit without a similarity (an index
    that does not report one) is kept: there is nothing to judge it by."""
    kept = []
    for hit in hits:
        score = relevance(words, hit)
        if score is None or score >= floor:
            kept.append(hit)
    return kept
