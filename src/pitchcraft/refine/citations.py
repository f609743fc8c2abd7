"""Make every [n] in a model's answer point at a listed source.

Models cite `[2]`, `[1, 3]`, `[2-4]` or `[5]` when only four passages exist. Valid numbers
keep the prompt's numbering, so the answer, the sources and the claim ledger name a passage
by the same number; each is written as its own `[n]`, and numbers that match no passage are
dropped with the space before them.
"""

from __future__ import annotations

import re

_DASHES = "\u2013\u2014-"  # en dash, em dash, hyphen
_CITATION = re.compile(rf"(\s?)\[(\s*\d{{1,4}}(?:\s*[,;{_DASHES}]\s*\d{{1,4}})*\s*)\]")
_NUMBER = re.compile(r"\d+")
_RANGE = re.compile(rf"(\d+)\s*[{_DASHES}]\s*(\d+)")
_MAX_RANGE = 50


def _numbers(inside: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"[,;]", inside):
        bounds = _RANGE.fullmatch(part.strip())
        if bounds:
            low, high = int(bounds.group(1)), int(bounds.group(2))
            if low <= high and high - low <= _MAX_RANGE:
                numbers.extend(range(low, high + 1))
            continue
        numbers.extend(int(n) for n in _NUMBER.findall(part))
    return numbers


def clean_citations(answer: str, count: int) -> tuple[str, list[int]]:
    """(answer with only valid citations, one `[n]` each; the numbers in first-cited order)."""
    order: list[int] = []

    def replace(match: re.Match[str]) -> str:
        space, inside = match.group(1), match.group(2)
        valid = sorted({n for n in _numbers(inside) if 1 <= n <= count})
        if not valid:
            return ""
        order.extend(n for n in valid if n not in order)
        return space + "".join(f"[{n}]" for n in valid)

    return _CITATION.sub(replace, answer), order


def citations_in(sentence: str) -> tuple[str, list[int]]:
    """(the sentence without its citations; the passage numbers it cites, in order)."""
    cited: list[int] = []

    def drop(match: re.Match[str]) -> str:
        cited.extend(n for n in _numbers(match.group(2)) if n not in cited)
        return ""

    return " ".join(_CITATION.sub(drop, sentence).split()), cited


def without_citations(text: str) -> str:
    """The text with its `[n]` markers taken out, line breaks and spacing kept."""
    return _CITATION.sub("", text)
