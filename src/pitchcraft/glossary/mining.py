"""Product and feature names in a user's documents, offered as glossary entries.

A name is a word the documents write with capitals inside it (LayoutParser, PowerPoint,
iPhone) or capitalised in mid-sentence again and again (Qdrant), and not a common English
word. The form the documents use most is the one to use; the other spellings they contain
("Layoutparser") are the ones to avoid."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pitchcraft.documents.models import INDEXED
from pitchcraft.documents.service import Documents
from pitchcraft.grounding.lexicon import STOPWORDS
from pitchcraft.vectors.base import MAX_PASSAGES, VectorIndex

_WORD = re.compile(r"(?<![\w-])[^\W\d_][\w]*(?:[-.][A-Za-z0-9]+)*(?![\w-])")
_CAMEL = re.compile(r"^[^\W\d_]+[a-z0-9][A-Z]|^[a-z]+[A-Z]")
MIN_COUNT = 2
MAX_SUGGESTIONS = 25

_OPENERS = " \t\"'\u201c\u2018("  # quote marks and brackets before a word


@dataclass(frozen=True)
class Suggestion:
    use: str
    avoid: tuple[str, ...]
    count: int


def _mid_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(_OPENERS)
    return bool(before) and before[-1] not in ".!?\n:•-*#|"


def suggest(texts: Iterable[str], known: Iterable[str] = ()) -> list[Suggestion]:
    """Names seen at least twice, the most frequent first; `known` (words already in the
    glossary) are left out."""
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    capitalised_mid: Counter[str] = Counter()
    lower_seen: Counter[str] = Counter()
    for text in texts:
        for m in _WORD.finditer(text):
            word = m.group(0)
            key = word.casefold()
            forms[key][word] += 1
            if word.islower():
                lower_seen[key] += 1
            elif word[:1].isupper() and _mid_sentence(text, m.start()):
                capitalised_mid[key] += 1
    skip = {k.casefold() for k in known}
    out: list[Suggestion] = []
    for key, seen in forms.items():
        if key in skip or key in STOPWORDS or len(key) < 3:
            continue
        total = sum(seen.values())
        use = seen.most_common(1)[0][0]
        if total < MIN_COUNT or use.isupper() or use.islower():
            continue
        camel = bool(_CAMEL.match(use))
        proper = capitalised_mid[key] >= MIN_COUNT and lower_seen[key] == 0
        if not (camel or proper):
            continue
        avoid = tuple(w for w, _ in seen.most_common() if w != use and not w.isupper())
        out.append(Suggestion(use, avoid, total))
    out.sort(key=lambda s: (-s.count, s.use.casefold()))
    return out[:MAX_SUGGESTIONS]


MAX_CHUNKS = 3000  # passages read per request, over all the user's documents


def document_texts(documents: Documents, index: VectorIndex, user_id: int) -> list[str]:
    """The passages of the user's indexed documents, up to MAX_CHUNKS."""
    texts: list[str] = []
    for doc in documents.list(user_id):
        if doc.status != INDEXED or not doc.chunks:
            continue
        wanted = list(range(min(doc.chunks, MAX_CHUNKS - len(texts))))
        for at in range(0, len(wanted), MAX_PASSAGES):
            hits = index.passages(user_id, doc.id, wanted[at : at + MAX_PASSAGES])
            texts.extend(h.text for h in hits)
        if len(texts) >= MAX_CHUNKS:
            break
    return texts
