"""Phone numbers and similar codes: strings of digits that match only exactly."""

from __future__ import annotations

import re
from dataclasses import dataclass

# "(202) 512-4800", "202-512-4800", "202.512.4800": digit groups joined by separators, read as
# one code, never as separate quantities. Groups joined by spaces alone are left out: that is
# how a flattened table row runs its numbers together.
_CODE = re.compile(
    r"(?<![\w.,])(?:\+\d{1,3}[\s.-]?)?"
    r"(?:\(\d{2,5}\)\s?\d{2,5}(?:[\s.-]\d{2,5})+"
    r"|\d{2,5}(?:[.-]\d{2,5}){2,})"
    r"(?![\w,]|\.\d)"
)


@dataclass(frozen=True)
class Code:
    raw: str
    digits: str
    start: int
    end: int


def find_codes(text: str, skip: list[tuple[int, int]] | None = None) -> list[Code]:
    """Codes with at least seven digits (shorter runs are scores, ranges and dates)."""
    out = []
    for m in _CODE.finditer(text):
        a, b = m.span()
        digits = re.sub(r"\D", "", m.group())
        if len(digits) < 7 or any(a < e and b > s for s, e in skip or []):
            continue
        # "1.234.567" and "1-234-567" are thousands groups: a quantity, not a code.
        if all(len(g) == 3 for g in re.split(r"[\s.()-]+", m.group().strip("()+"))[1:]):
            continue
        out.append(Code(m.group(), digits, a, b))
    return out
