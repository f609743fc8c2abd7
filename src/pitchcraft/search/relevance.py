"""Whether a search result is relevant at all: a score on an absolute scale, and the floor.

The fused score ranks the candidates of one search but says nothing about how well any of
them fits: a query of keyboard mash still has a best BM25 match and five nearest dense
neighbours. A passage's relevance is

    cosine(query, passage) + sum of w over matched words / (sum of w over all words + 1)

the cosine of their MiniLM vectors (`Hit.similarity`, from the index) plus the share of the
query's content words the passage contains, each word w weighted by its rarity in the
user's own collection (vectors/rarity.py: 1 for a word in at most one passage, near 0 for
one in nearly every passage; the + 1 is one more word as rare as can be, so that a
one-word query does not earn a whole point by one word). With every word rare it is
matched / (n + 1). Both parts are needed: a paraphrase shares few words but sits close in
meaning, and a German question is far from English-trained MiniLM's idea of any passage
but shares its exact terms. The weights matter where a large document shares common words
with an unrelated question ("red", "wine", "dark", "north" in a 619-page novel, against a
cooking or houseplant question). For a text of several claims (a refine job searches with
the whole marketing text) the share is that of the sentence the passage matches best.

A passage the multilingual list found (vectors/fusion.py) also has its e5 cosine
(`Hit.multi_similarity`): a German question and the English passage answering it share no
words and sit far apart for MiniLM, so a passage is also relevant when its e5 cosine, put
on the floor's scale (`multi_on_floor_scale`), reaches the floor on its own. But e5's
cosines are compressed and barely tell an answer from noise (0.79-0.90 for both on a
collection of ~4,000 passages), so only a cosine above any off-topic query's counts alone
(E5_AT_FLOOR); shared words are not added to it, since a common word plus e5's high
baseline let an unrelated passage through ("bottles of water and blankets delivered"
against a note that mentions "fuzzy blankets": e5 0.81). Cross-lingual answers below it
are found (ranked by the fused lists) but cut by the floor: the price of saying "nothing
relevant" for off-topic questions in every language.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from pitchcraft.vectors.base import Hit

# Calibrated with `python -m bench.floor` (bench/README.md): corpus indexed as shipped, top 5
# candidates. The 28 answers the 30 dev questions find score 0.57-1.40 (lowest: rd-004,
# "swear words that elves, Qunari and Tevinters shout", cosine 0.30 + 3 fairly common words
# of 8); the 13 the 20 extra questions (bench/data/search-questions-extra.jsonl) find, from
# 0.56. The best candidate of each of the 48 off-topic and nonsense queries of
# bench/data/search-offtopic.jsonl scores 0.21-0.63; the four above 0.53 share real words
# with the novel ("wine stains", "survive", "colorless green"). The floor sits 0.04 below
# the lowest dev answer and keeps 44 of the 48 out (23 of the 24 holdout queries); the
# unweighted share kept 38 out at 0.5 and 42 at 0.55. At 0.6 a dev answer is lost.
RELEVANCE_FLOOR = 0.53
# e5 (multilingual-e5-small) cosine of a query and a passage that counts as reaching the
# floor on its own, and how much one point of e5 cosine is worth above it. e5's cosines barely
# separate answers from noise (`bench.floor --multilingual`: the corpus plus the French and
# Spanish documents): the best candidates of off-topic and nonsense queries reach 0.79-0.893
# ("?!?!?!" against a slide title), the answers to the 32 multilingual questions 0.79-0.90.
# For an English question MiniLM and its words judge well, so e5 alone counts only above every
# off-topic cosine seen (at 0.85 it let 9 of 48 English off-topic queries through, not 4, and
# 6 of 24 held-out ones, not 0). For a question in another language MiniLM and shared words
# judge poorly and e5 is the one reliable signal: at 0.85 no off-topic query in German,
# French or Spanish got through that the other parts did not already let through.
E5_AT_FLOOR = 0.90
E5_AT_FLOOR_OTHER_LANGUAGE = 0.85
E5_SCALE = 4.0

_WORD = re.compile(r"[^\W_]+")
# A word of at least this many letters also matches a passage word with the same start
# ("forge" ~ "forged", "Fotos" ~ "Foto"): no stemmer serves English and German alike.
_PREFIX = 5
# A query's sentences are judged apart from this many content words up (query_words).
_SENTENCE_WORDS = 3
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

# Function words of English, German, French and Spanish (folded: accents dropped):
# matching them is no evidence of a topic. Left out where they are English content words
# ("son", "sin", "era", "hay"); French elisions ("l'", "d'") are words of their own.
_ENGLISH_WORDS = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not of off on once only or other our ours out
    over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up very was we were what when where which
    while who whom why will with would you your yours may might must shall get got let lets
    much many any anything something thing things one ones way ways there s t don doesn now
    isn aren wasn weren won can cannot tell show find give use used using need needs
    """
_OTHER_WORDS = """
    aber alle allem allen aller alles als also am an auch auf aus bei bin bis bist da damit
    dann das dass dem den der des dessen die dies diese diesem diesen dieser dieses doch dort
    du durch ein eine einem einen einer eines er es etwas euch euer für gegen hat hatte
    hatten hier hin hinter ich ihm ihn ihnen ihr ihre im in ist ja jede jedem jeden jeder
    jedes jener kann kein keine können könnte man manche mein meine mich mir mit muss nach
    nicht nichts noch nun nur ob oder ohne sehr sein seine sich sie sind so soll sollte
    sondern über um und uns unser unter vom von vor war waren warum was weil welche welchem
    welchen welcher welches wenn wer werden wie wieder will wir wird wo woher wohin zu zum
    zur zwischen gibt wurde wurden worden hat haben
    a au aux avec ce ces cet cette comme comment combien dans de des du elle elles en est et
    eux faire fait faut il ils je la le les leur leurs lui mais me meme mes moi mon ne nos
    notre nous on ont ou pas peut peuvent pourquoi qu quand que quel quelle quelles quels
    qui quoi sa sans se ses si sont sur ta te tes toi tous tout toute toutes tu un une vos
    votre vous y doit doivent etre avoir etait ete depuis lorsqu al algo como con cual
    cuales cuando cuanto cuanta cuantos cuantas de del donde el ella ellas ellos en es esa
    ese eso esta este esto estos estas fue ha hace hacer la las le les lo los mas me mi muy
    no nos o para pero por porque puede pueden que quien quienes se ser si sobre su sus te
    tiene tienen todo todos tu un una unos unas y ya debe pour c d j l m n
    """


# Folding is most of the cost of judging a search's passages (~140 words each, twice per
# search) and words repeat: a bounded memo keeps it off the per-search path.
@lru_cache(maxsize=1 << 16)
def fold(word: str) -> str:
    """Lower-cased, accents dropped ("Straße" = "strasse", "résumé" = "resume"), as BM25
    tokens are."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


ENGLISH_WORDS = frozenset(fold(w) for w in _ENGLISH_WORDS.split())
STOPWORDS = ENGLISH_WORDS | frozenset(fold(w) for w in _OTHER_WORDS.split())
_OTHER_ONLY = STOPWORDS - ENGLISH_WORDS


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
    have, starts = _vocabulary(passage)
    return sum(1 for w in words if w in have or _stem(w) in starts)


# A search reads each candidate's vocabulary twice (prefix_partners, then the floor), and
# the best passages come back for similar queries. Callers must not modify the result.
@lru_cache(maxsize=256)
def _vocabulary(passage: str) -> tuple[frozenset[str], dict[str, list[str]]]:
    """The passage's folded words, and those of `_PREFIX` letters up by their start."""
    have = frozenset(map(fold, _WORD.findall(unicodedata.normalize("NFKC", passage))))
    starts: dict[str, list[str]] = {}
    for w in have:
        if len(w) >= _PREFIX:
            starts.setdefault(w[:_PREFIX], []).append(w)
    return have, starts


def _stem(word: str) -> str | None:
    return word[:_PREFIX] if len(word) >= _PREFIX else None


def prefix_partners(groups: Sequence[list[str]], passages: Iterable[str]) -> set[str]:
    """The passage words that a query word matches only by its start ("forge" ~
    "forged"): the rarity of such a match is the passage word's."""
    words = {w for g in groups for w in g}
    out: set[str] = set()
    for passage in passages:
        have, starts = _vocabulary(passage)
        for w in words:
            if w not in have and (stem := _stem(w)) is not None:
                out.update(starts.get(stem, ()))
    return out


def lexical(
    groups: Sequence[list[str]], passage: str, rarity: Mapping[str, float] | None = None
) -> float:
    """The best share of one sentence's content words the passage contains, each word
    weighted by its rarity in the user's collection (1 when not known): matched / (n + 1)
    when every word is as rare as can be."""
    known: Mapping[str, float] = rarity or {}

    def weight(word: str) -> float:
        return known.get(word, 1.0)

    have, starts = _vocabulary(passage)
    best = 0.0
    for group in groups:
        found = 0.0
        for w in group:
            if w in have:
                found += weight(w)
            elif (stem := _stem(w)) is not None and stem in starts:
                found += max(weight(v) for v in starts[stem])
        best = max(best, found / (sum(weight(w) for w in group) + 1))
    return best


def multi_on_floor_scale(
    cosine: float, floor: float = RELEVANCE_FLOOR, at_floor: float = E5_AT_FLOOR
) -> float:
    """An e5 cosine as the MiniLM cosine it is worth for the floor."""
    return floor + (cosine - at_floor) * E5_SCALE


def foreign_query(query: str) -> bool:
    """Whether the query has more German, French or Spanish function words than English
    ones (no function words at all: English, the stricter reading)."""
    words = [fold(w) for w in _WORD.findall(unicodedata.normalize("NFKC", query))]
    english = sum(1 for w in words if w in ENGLISH_WORDS)
    other = sum(1 for w in words if w in _OTHER_ONLY)
    return other > english


def e5_at_floor(query: str) -> float:
    """The e5 cosine that reaches the floor alone for this query: lower for a question in
    German, French or Spanish (`foreign_query`)."""
    return E5_AT_FLOOR_OTHER_LANGUAGE if foreign_query(query) else E5_AT_FLOOR


def relevance(
    groups: Sequence[list[str]],
    hit: Hit,
    rarity: Mapping[str, float] | None = None,
    e5_floor: float = E5_AT_FLOOR,
) -> float | None:
    """The passage's relevance to a query of these content words (`query_words`); None
    when the index did not report the hit's similarity. `e5_floor`: `e5_at_floor(query)`."""
    if hit.similarity is None:
        return None
    score = hit.similarity + lexical(groups, hit.text, rarity)
    if hit.multi_similarity is not None:
        score = max(score, multi_on_floor_scale(hit.multi_similarity, at_floor=e5_floor))
    return score


def above_floor(
    groups: Sequence[list[str]],
    hits: Iterable[Hit],
    floor: float = RELEVANCE_FLOOR,
    rarity: Mapping[str, float] | None = None,
    e5_floor: float = E5_AT_FLOOR,
) -> list[Hit]:
    """The hits relevant to the query, in their order. A hit without a similarity (an index
    that does not report one) is kept: there is nothing to judge it by."""
    kept = []
    for hit in hits:
        score = relevance(groups, hit, rarity, e5_floor)
        if score is None or score >= floor:
            kept.append(hit)
    return kept
