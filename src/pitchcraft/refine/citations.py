"""Make every [n] in a model's answer point at a listed source.

Models cite `[2]`, `[1, 3]`, `[2-4]` or `[5]` when only four passages exist. Valid numbers
are renumbered in order of first citation (so the answer reads [1], [2], …); numbers that
match no passage are dropped with the space before them.
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
    """(answer with valid, renumbered citations; the old numbers in first-cited order)."""
    order: list[int] = []

    def replace(match: re.Match[str]) -> str:
        space, inside = match.group(1), match.group(2)
        valid = [n for n in _numbers(inside) if 1 <= n <= count]
        if not valid:
            return ""
        new: list[int] = []
        for n in valid:
            if n not in order:
                order.append(n)
            k = order.index(n) + 1
            if k not in new:
                new.append(k)
        return space + "".join(f"[{k}]" for k in sorted(new))

    return _CITATION.sub(replace, answer), order
