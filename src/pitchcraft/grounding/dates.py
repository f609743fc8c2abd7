"""Dates in the shapes documents and copy write them: "29th August, 2022", "June 2021",
"January 23, 2023", "2021-22", "since 1997"."""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
# German, French and Spanish month names, as written and without accents.
for _i, _names in enumerate(
    [
        "januar janvier enero",
        "februar février fevrier febrero",
        "märz maerz marz mars marzo",
        "avril abril",
        "mai mayo",
        "juni juin junio",
        "juli juillet julio",
        "août aout agosto",
        "septembre septiembre",
        "oktober octobre octubre",
        "novembre noviembre",
        "dezember décembre decembre diciembre",
    ]
):
    for _m in _names.split():
        MONTHS.setdefault(_m, _i + 1)
_MONTH = r"(?P<{g}>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"(?P<{g}>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<{g}>1[6-9]\d\d|20\d\d)"
_PATTERNS = [
    # 29th August, 2022 / 26 June 1968
    _DAY.format(g="d")
    + r"\.?\s+(?:of\s+|de\s+)?"
    + _MONTH.format(g="m")
    + r",?\s+(?:de\s+)?"
    + _YEAR.format(g="y"),
    # January 23, 2023
    _MONTH.format(g="m") + r"\s+" + _DAY.format(g="d") + r",?\s+" + _YEAR.format(g="y"),
    # 2022-08-29
    _YEAR.format(g="y") + r"-(?P<m2>[01]\d)-(?P<d2>[0-3]\d)",
    # June 2021
    _MONTH.format(g="m") + r",?\s+" + _YEAR.format(g="y"),
    # 2021-22, 2021/22 (a fiscal year), then a bare year
    _YEAR.format(g="y") + r"(?:[-\u2013/](?:(?:19|20)(?=\d\d(?!\d)))?(?P<y2>\d\d)(?!\d))?",
]


@dataclass(frozen=True)
class Date:
    year: int
    month: int | None
    day: int | None
    raw: str
    start: int
    end: int
    until: int | None = None  # the second year of "2021-22"


def _compile() -> list[re.Pattern[str]]:
    return [re.compile(r"(?<![\w.,])" + p + r"(?![\d])", re.IGNORECASE) for p in _PATTERNS]


_COMPILED = _compile()


def find_dates(text: str) -> list[Date]:
    """Dates in `text`, most specific first where shapes overlap."""
    out: list[Date] = []
    taken: list[tuple[int, int]] = []
    for rx in _COMPILED:
        for m in rx.finditer(text):
            a, b = m.span()
            if any(a < e and b > s for s, e in taken):
                continue
            g = m.groupdict()
            month = MONTHS[g["m"].lower()] if g.get("m") else None
            if g.get("m2"):
                month = int(g["m2"])
            day = int(g["d"]) if g.get("d") else (int(g["d2"]) if g.get("d2") else None)
            until = None
            if g.get("y2"):
                until = int(g["y"][:2] + g["y2"])
                if until <= int(g["y"]):
                    # "2004-2" is not a fiscal year; keep the year alone.
                    b = m.start("y") + 4
                    until = None
            out.append(Date(int(g["y"]), month, day, text[a:b], a, b, until))
            taken.append((a, b))
    out.sort(key=lambda d: d.start)
    return out


def date_matches(claim: Date, doc: Date) -> bool:
    """The document's date states the claim's (a claim may be less specific)."""
    if claim.until is not None:
        # A season or fiscal year ("1996-97") is not stated by one of its years.
        return doc.year == claim.year and doc.until == claim.until
    years = {doc.year} | ({doc.until} if doc.until else set())
    if claim.year not in years:
        return False
    if claim.month is not None and claim.month != doc.month:
        return False
    return claim.day is None or claim.day == doc.day
