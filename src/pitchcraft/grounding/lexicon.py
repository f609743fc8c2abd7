"""Word lists: what is not content, what must not be dropped, and what means the same."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from wordfreq import zipf_frequency

from pitchcraft.grounding.irregular import IRREGULAR


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words: never checked.
STOPWORDS = _set(
    """
a an the and or but nor so yet of to in on at by for from with without into onto over under
about above below between among through during before after since until upon within across per
via as than then that this these those there here which who whom whose what when where why how
is are was were be been being am do does did done has have had having will would shall should
can could may might must it its it's itself they them their theirs he him his she her hers i me
my mine you your yours yourself we us our ours ourselves also just very too more most much many
some any such both either neither each other another own same not no if because while whilst
though although however thus therefore still even only all every s t up out off down again
further once one ones
"""
)

# German, French and Spanish function words: documents and copy in those languages are checked
# on their content words too. Left out where they are English content words ("war", "man").
STOPWORDS = STOPWORDS | _set(
    """
der das den dem des ein eine einer eines einem einen und oder aber auch nicht kein keine
ist sind waren wird werden wurde wurden haben hatte sein seine ihr ihre mit von vom zu
zum zur im in am an auf aus bei nach über unter für durch um als wie so dass daß es er sie wir
ich du sich auf noch nur schon sehr mehr bis ab
le la les un une des du de d l et ou mais aussi ne pas est sont était été être a ont avait avec
pour par sur dans au aux en ce cette ces sa ses leur leurs qui que quoi dont où il elle ils
elles nous vous on se très tout tous toute toutes
el los las unos unas del al y o pero también no es era fue ser está están ha han había
con para por sobre en este esta estos estas su sus que quien cuyo donde él ella ellos ellas
nosotros se más muy todo todos toda todas lo
"""
)

# Marketing framing and light verbs: the sentence's wrapping, not what it states.
FRAMING = _set(
    """
document documents slide slides page pages deck presentation paper brochure memo notes webpage
reads asks lists mentions describes explains states
our we us you your team company's customers client clients today now proud pleased happy offer
offers offering provide provides provided providing include includes included including make
makes made making get gets got give gives given take takes took use uses used using help helps
helped helping let lets see sees saw know knows known come comes came go goes went bring brings
brought keep keeps kept put puts set sets show shows showed shown feature features featuring
deliver delivers delivering say says said tell tells told report reports reported way ways
thing things lot lots really truly simply new great amazing trusted spent spend spends stood
stands reached reaches recorded totalled totaled amounted worth valued notes note states
stated mentions mentioned according confirms confirmed lists listed memo besides thankfully
fortunately unfortunately importantly notably moreover additionally furthermore indeed
together currently proudly called named dubbed overall altogether meanwhile
"""
)

# Claims of rank, exclusivity or totality: a sentence that has one cannot be fully supported
# by a passage that lacks it (and "all five" is not "four of the five").
HARD_WORDS = _set(
    """
record first only largest biggest best leading top most highest lowest fastest smallest unique
sole all every always never entire whole fully guaranteed number-one world's world first-ever
ever greatest oldest newest longest youngest strongest cheapest richest earliest latest last
sole exclusive
"""
)

NEGATIONS = _set(
    """
not no never nor without failed fail fails unable cannot can't didn't doesn't don't isn't
wasn't weren't aren't won't hasn't haven't hadn't missed lacks lack lacked neither none
"""
)

# Groups of words that state the same thing (after stemming).
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("euro", "eur", "€", "euros"),
    ("dollar", "usd", "$"),
    ("rupee", "inr", "₹", "rs"),
    ("percent", "%", "per cent", "pct"),
    ("population", "inhabitant", "people", "resident", "citizen"),
    ("company", "corporation", "firm", "business", "enterprise"),
    ("largest", "biggest"),
    ("employee", "staff", "worker", "workforce"),
    ("revenue", "turnover", "sale"),
    ("profit", "earning"),
    ("found", "establish", "founded", "established"),
    ("born", "birth"),
    ("job", "employment"),
    ("begin", "start", "began", "started", "commence"),
    ("end", "finish", "ended", "conclude"),
    ("buy", "purchase", "acquire", "bought"),
    ("launch", "introduce", "launched", "introduced", "release"),
    ("goal", "score", "scored"),
    ("beat", "defeat", "won", "win", "victory", "overcame", "beaten", "defeated"),
    ("lost", "lose", "loss"),
    ("supporter", "fan"),
    ("tall", "height"),
    ("appoint", "appointment"),
    ("supervise", "supervision"),
    ("appearance", "app", "cap"),
    ("join", "sign", "joined", "signed"),
    ("elect", "induct", "elected", "inducted"),
    ("hour", "hr"),
    ("truck", "lorry"),
    ("laptop", "notebook", "computer"),
    ("open-source", "opensource"),
    ("library", "toolkit", "package", "framework"),
    # Everyday verbs and adjectives a paraphrase swaps.
    ("make", "build", "create", "produce", "manufacture", "made", "built"),
    ("use", "utilize", "employ", "leverage", "used"),
    ("help", "assist", "aid"),
    ("show", "demonstrate", "indicate", "reveal", "shown"),
    ("need", "require", "requirement"),
    ("give", "provide", "offer", "supply", "gave", "given"),
    ("get", "obtain", "receive", "got"),
    ("big", "large", "huge", "major"),
    ("small", "little", "minor"),
    ("fast", "quick", "rapid", "swift"),
    ("increase", "grow", "growth", "rise", "boost", "grew", "rose"),
    ("decrease", "reduce", "reduction", "cut", "decline", "drop"),
    ("customer", "client"),
    ("choose", "select", "pick", "chose", "chosen"),
    ("allow", "let", "permit", "enable"),
    ("improve", "enhance", "improvement"),
    ("protect", "secure", "safeguard", "protection"),
    ("include", "contain", "comprise", "feature"),
    ("kind", "type", "sort"),
    ("aim", "goal", "objective", "target"),
    ("country", "nation"),
    ("world", "global", "worldwide"),
    ("area", "region"),
)

# Titles written before names; not names of their own.
HONORIFICS = _set("shri sri smt mr mrs ms dr prof sir dame lord lady st")

# Opposites: a passage stating one where the sentence says the other contradicts it.
ANTONYM_PAIRS: tuple[tuple[str, str], ...] = (
    ("common", "rare"),
    ("mandatory", "optional"),
    ("required", "optional"),
    ("increase", "decrease"),
    ("rise", "fall"),
    ("gain", "loss"),
    ("profit", "loss"),
    ("first", "last"),
    ("largest", "smallest"),
    ("highest", "lowest"),
    ("before", "after"),
    ("larger", "smaller"),
    ("more", "less"),
    ("win", "lose"),
    ("won", "lost"),
    ("easy", "difficult"),
    ("public", "private"),
    ("male", "female"),
    ("strong", "weak"),
    ("fast", "slow"),
    ("cheap", "expensive"),
    ("young", "old"),
    ("success", "failure"),
    ("allowed", "forbidden"),
    ("legal", "illegal"),
    ("safe", "dangerous"),
)


# Values of one attribute that exclude each other: "at least weekly" where the document says
# "at least monthly" states another schedule.
EXCLUSIVE_GROUPS: tuple[tuple[str, ...], ...] = (
    (
        "hourly",
        "daily",
        "weekly",
        "biweekly",
        "fortnightly",
        "monthly",
        "quarterly",
        "annually",
        "yearly",
        "annual",
    ),
    ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    ("north", "south", "east", "west"),
    ("internal", "external"),
    ("domestic", "international", "foreign"),
    ("minimum", "maximum"),
    ("first", "subsequent"),
    (
        "marble",
        "bronze",
        "gold",
        "golden",
        "silver",
        "iron",
        "steel",
        "wood",
        "wooden",
        "stone",
        "glass",
        "coal",
        "plastic",
        "copper",
        "granite",
        "concrete",
        "brick",
        "aluminium",
        "aluminum",
    ),
    (
        "red",
        "green",
        "blue",
        "yellow",
        "orange",
        "purple",
        "pink",
        "black",
        "white",
        "brown",
        "grey",
        "gray",
    ),
    ("weekend", "week", "month", "year", "today", "tomorrow", "yesterday"),
    ("initial", "subsequent"),
    ("online", "offline"),
    ("open", "closed"),
    ("free", "paid"),
)


def _build_antonyms() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for a, b in ANTONYM_PAIRS:
        out.setdefault(stem(a), set()).add(stem(b))
        out.setdefault(stem(b), set()).add(stem(a))
    for group in EXCLUSIVE_GROUPS:
        stems = {stem(w) for w in group}
        for s in stems:
            out.setdefault(s, set()).update(stems - {s})
    return {k: frozenset(v) for k, v in out.items()}


# A value word implies the attribute a table row names: "uses the euro" is stated by a
# row labelled "Currency".
CATEGORIES: dict[str, str] = {
    "euro": "currency",
    "dollar": "currency",
    "rupee": "currency",
    "rupia": "currency",
    "pound": "currency",
    "yen": "currency",
}

# Number words up to a hundred (and "dozen"); "one" is left out, it is mostly a pronoun.
_UNITS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
]
_UNITS += ["fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(_UNITS) if w != "one"}
for _i, _w in enumerate(_TENS):
    NUMBER_WORDS[_w] = 20 + 10 * _i
    for _j in range(1, 10):
        NUMBER_WORDS[f"{_w}-{_UNITS[_j]}"] = 20 + 10 * _i + _j
NUMBER_WORDS["hundred"] = 100
NUMBER_WORDS["one hundred"] = 100
NUMBER_WORDS["a hundred"] = 100
NUMBER_WORDS["dozen"] = 12
NUMBER_WORDS["a dozen"] = 12

SCALES: dict[str, float] = {
    "thousand": 1e3,
    "k": 1e3,
    "lakh": 1e5,
    "lakhs": 1e5,
    "lac": 1e5,
    "million": 1e6,
    "mn": 1e6,
    "crore": 1e7,
    "crores": 1e7,
    "cr": 1e7,
    "billion": 1e9,
    "bn": 1e9,
    "trillion": 1e12,
    "tn": 1e12,
}

HEDGES: dict[str, str] = {
    # A stated limit ("up to 120 days", "a maximum of five years") names the limit itself: a
    # smaller limit in the document is a different limit, not a case of it. Listed first, so
    # "no more than" is read before "more than".
    "up to": "cap",
    "at most": "cap",
    "within": "cap",
    "maximum of": "cap",
    "a maximum of": "cap",
    "no more than": "cap",
    "not more than": "cap",
    "no longer than": "cap",
    "not to exceed": "cap",
    "not exceeding": "cap",
    "not later than": "cap",
    "no later than": "cap",
    "about": "approx",
    "around": "approx",
    "approximately": "approx",
    "approx": "approx",
    "roughly": "approx",
    "nearly": "approx",
    "almost": "approx",
    "some": "approx",
    "circa": "approx",
    "~": "approx",
    "close to": "approx",
    "over": "over",
    "more than": "over",
    "above": "over",
    "at least": "over",
    "upwards of": "over",
    "exceeding": "over",
    "in excess of": "over",
    "under": "under",
    "less than": "under",
    "below": "under",
    "fewer than": "under",
    "crossed": "over",
    "exceeded": "over",
    "topped": "over",
    "surpassed": "over",
}

_WORD_RE = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*|[€$₹%]", re.UNICODE)


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """Lower-case without accents ("Zürich" → "zurich")."""
    if word.isascii():
        return word.lower()
    nfkd = unicodedata.normalize("NFKD", word.lower().replace("\u2019", "'"))
    return "".join(c for c in nfkd if not unicodedata.combining(c))


_SPELLING_OUR = re.compile(r"(?<=[a-z]{2})our(?=[a-z]*$)(?<!hour)")
_SPELLING_ISE = re.compile(r"(?<=[a-z]{3})is(e|ed|es|ing|ation|ations)$")
_SPELLING_TRE = re.compile(r"(?<=[a-z]{3})tre$")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light stem, enough to make "processes", "processing" and "processed" meet."""
    w = fold(word)
    if w.endswith("'s"):
        w = w[:-2]
    w = IRREGULAR.get(w, w)
    if len(w) <= 3:
        return w
    if len(w) > 5:
        # British and American spellings meet: favourite/favorite, capitalisation/-ization.
        w = _SPELLING_OUR.sub("or", w)
        w = _SPELLING_ISE.sub(r"iz\1", w)
        w = _SPELLING_TRE.sub("ter", w)
    for suffix, repl in (
        ("ies", "y"),
        ("sses", "ss"),
        ("ing", ""),
        ("ied", "y"),
        ("ed", ""),
        ("es", "e"),
        ("s", ""),
    ):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: len(w) - len(suffix)] + repl
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def _build_synonyms() -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for group in SYNONYM_GROUPS:
        stems = frozenset(stem(w) for w in group)
        for s in stems:
            out[s] = out.get(s, frozenset()) | stems
    return out


SYNONYMS = _build_synonyms()
ANTONYMS = _build_antonyms()


def alternatives(word: str) -> frozenset[str]:
    """The stems that state the same thing as `word`."""
    s = stem(word)
    return SYNONYMS.get(s, frozenset({s}))


def words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for each word or currency/percent sign of `text`."""
    return [(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


# Words at least this common in English (Zipf scale: 5 is once in 100,000 words) carry little of
# a claim on their own: "built", "earlier", "product", "sent".
LIGHT_ZIPF = 4.7


@lru_cache(maxsize=65536)
def light(word: str) -> bool:
    """A word so common that a sentence may use it where the document does not."""
    w = fold(word)
    if w.endswith("'s"):
        w = w[:-2]
    return w not in _ASPECT and zipf_frequency(w, "en", wordlist="small") >= LIGHT_ZIPF


# Common, yet what a claim turns on: whether a thing has happened, and when.
_ASPECT = frozenset(
    [
        "already",
        "yet",
        "still",
        "now",
        "currently",
        "recently",
        "soon",
        "never",
        "always",
        "ever",
        "again",
        "new",
        "no",
        "not",
    ]
)
