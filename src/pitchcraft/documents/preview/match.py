"""Find a passage's words on a drawn page.

The passage comes from the project's parser, the words from the page as drawn: reading order
(columns, tables), line breaks, hyphenation, ligatures, case and punctuation all differ, and
a passage shown to a person may be cut short with "…". Both sides become normalised tokens
(NFKC, case-folded, letters and digits only; a word hyphenated at its end joined to the next,
as the parser joins "ef-" + "ficient"), and the passage is located as the longest runs of
tokens it shares with the page, in any order. Short runs count only near long ones, so that
"of the" elsewhere on the page stays unmarked.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from pitchcraft.documents.preview.base import Box
from pitchcraft.ingestion.cleanup import clean_line

_HYPHENS = ("-", "\u2010", "\u2011")
_CUT_MARKS = ("\u2026", "...")
# Runs of at least _ANCHOR tokens locate the passage; shorter ones (down to _MIN_RUN) only
# fill in near them. Passages shorter than that must match whole.
_ANCHOR = 5
_MIN_RUN = 3
# A token this frequent on the page (a word in a table of numbers, say) starts no run of its
# own, which bounds the work on pathological pages; it is still matched inside runs.
_MAX_SPOTS = 400
_MAX_PASSAGE_CHARS = 20_000


@dataclass(frozen=True)
class Word:
    """A word as drawn: its text, its box in output pixels, and its line (words of a line
    share `line` and follow each other in reading order)."""

    text: str
    box: Box
    line: Hashable
    joins_next: bool = False  # the first part of a word broken across lines to fit its box


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if ch.isalnum())


def _hyphenated(raw: str) -> bool:
    return len(raw) > 1 and raw.endswith(_HYPHENS) and raw[-2].isalpha()


def _tokens(pieces: Iterable[tuple[str, int, bool]]) -> list[tuple[str, tuple[int, ...]]]:
    """(raw piece, owner, joins the next) → (token, owners): punctuation-only pieces dropped;
    a piece ending in a hyphen, or marked, joined to the next one (the token then has both
    owners)."""
    out: list[tuple[str, tuple[int, ...]]] = []
    pending: tuple[str, tuple[int, ...]] | None = None
    for raw, owner, joins in pieces:
        token = norm(raw)
        if not token:
            continue
        owners: tuple[int, ...] = (owner,)
        if pending is not None:
            token, owners = pending[0] + token, pending[1] + owners
            pending = None
        if joins or _hyphenated(raw):
            pending = (token, owners)
        else:
            out.append((token, owners))
    if pending is not None:
        out.append(pending)
    return out


def _page_tokens(words: Sequence[Word]) -> list[tuple[str, tuple[int, ...]]]:
    # clean_line as the parser applies it: unmapped glyphs and private-use characters become
    # spaces, so "e\ufffdcient" is the two tokens the passage has.
    pieces: list[tuple[str, int, bool]] = []
    for i, word in enumerate(words):
        parts = clean_line(word.text).split()
        pieces.extend(
            (part, i, word.joins_next and k == len(parts) - 1) for k, part in enumerate(parts)
        )
    return _tokens(pieces)


def _passage_tokens(passage: str) -> list[str]:
    text = passage[:_MAX_PASSAGE_CHARS].strip()
    for mark in _CUT_MARKS:
        text = text.removeprefix(mark).removesuffix(mark)
    return [token for token, _ in _tokens((piece, 0, False) for piece in text.split())]


def find(words: Sequence[Word], passage: str) -> set[int]:
    """Indices of the words in `words` that show `passage` (empty if it is not there)."""
    quote = _passage_tokens(passage)
    page = _page_tokens(words)
    if not quote or not page:
        return set()
    page_text = [token for token, _ in page]
    used = bytearray(len(page))
    for i, j, n in _runs(quote, page_text):
        used[j : j + n] = b"\x01" * n
        # The passage's first and last tokens may be cut (a passage trimmed with "…", or
        # split inside a word without spaces): a suffix or prefix of the page's token counts.
        if i == 1 and j > 0 and not used[j - 1] and page_text[j - 1].endswith(quote[0]):
            used[j - 1] = 1
        end = j + n
        last = i + n == len(quote) - 1 and end < len(page)
        if last and not used[end] and page_text[end].startswith(quote[-1]):
            used[end] = 1
    return {owner for k, flag in enumerate(used) if flag for owner in page[k][1]}


def _runs(quote: list[str], page: list[str]) -> list[tuple[int, int, int]]:
    """Chosen runs (passage index, page index, length): longest first, each using tokens of
    the passage and of the page not used by a longer one."""
    spots: dict[str, list[int]] = defaultdict(list)
    for j, token in enumerate(page):
        spots[token].append(j)
    candidates: list[tuple[int, int, int]] = []
    for i, token in enumerate(quote):
        places = spots.get(token, [])
        if len(places) > _MAX_SPOTS:
            continue
        for j in places:
            before = quote[i - 1] if i else None
            extends = before is not None and j > 0 and before == page[j - 1]
            if extends and len(spots[quote[i - 1]]) <= _MAX_SPOTS:
                continue  # inside a longer run, which is a candidate of its own
            n = 1
            while i + n < len(quote) and j + n < len(page) and quote[i + n] == page[j + n]:
                n += 1
            candidates.append((n, i, j))
    if not candidates:
        return []
    anchor_len = min(len(quote), _ANCHOR)
    min_len = min(len(quote), _MIN_RUN)
    _, i0, j0 = max(candidates, key=lambda c: (c[0], -c[2]))
    # Equal runs in several places (a phrase repeated on the page): the one in line with the
    # longest run wins.
    candidates.sort(key=lambda c: (-c[0], abs((c[2] - c[1]) - (j0 - i0)), c[2]))
    used_quote = bytearray(len(quote))
    used_page = bytearray(len(page))
    chosen: list[tuple[int, int, int]] = []
    low = high = -1
    for n, i, j in candidates:
        if n < min_len:
            break
        start, length = _free_stretch(used_quote, used_page, i, j, n)
        if length < min_len:
            continue
        at = j + start
        if length < anchor_len and not (chosen and low - len(quote) <= at <= high + len(quote)):
            continue
        used_quote[i + start : i + start + length] = b"\x01" * length
        used_page[at : at + length] = b"\x01" * length
        chosen.append((i + start, at, length))
        low = at if low < 0 else min(low, at)
        high = max(high, at + length)
    return chosen


def _free_stretch(
    used_quote: bytearray, used_page: bytearray, i: int, j: int, n: int
) -> tuple[int, int]:
    """The longest part (offset, length) of a run that uses no token used before."""
    best = (0, 0)
    k = 0
    while k < n:
        if used_quote[i + k] or used_page[j + k]:
            k += 1
            continue
        start = k
        while k < n and not used_quote[i + k] and not used_page[j + k]:
            k += 1
        if k - start > best[1]:
            best = (start, k - start)
    return best


def line_boxes(words: Sequence[Word], matched: set[int]) -> list[Box]:
    """One box per stretch of matched words on a line. Punctuation between two matched words
    is covered; a word of the line that is not in the passage ends the stretch."""
    boxes: list[Box] = []
    current: list[float] | None = None
    line: Hashable = object()
    for index, word in enumerate(words):
        if word.line != line:
            if current is not None:
                boxes.append((current[0], current[1], current[2], current[3]))
            current, line = None, word.line
        if index in matched:
            x0, y0, x1, y1 = word.box
            if current is None:
                current = [x0, y0, x1, y1]
            else:
                current = [
                    min(current[0], x0),
                    min(current[1], y0),
                    max(current[2], x1),
                    max(current[3], y1),
                ]
        elif current is not None and norm(word.text):
            boxes.append((current[0], current[1], current[2], current[3]))
            current = None
    if current is not None:
        boxes.append((current[0], current[1], current[2], current[3]))
    return boxes
