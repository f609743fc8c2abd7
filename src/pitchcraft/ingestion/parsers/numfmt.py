"""A spreadsheet cell's value as a person sees it in the sheet: its number format applied.

Claims are checked against the documents' wording, so "12.5%" must stay "12.5%" rather than
become 0.125, and "$1,299.00" must not become 1299. This covers what marketing sheets use:
fixed decimals, thousands separators, percentages, currency symbols and literal text
(`[$€-407] #,##0.00`, `0.0%`, `#,##0 "users"`), sections for negative numbers, scientific
notation. Anything else (fractions, conditions it cannot read) falls back to the General
format. Dates and times are shown in ISO form, which no reader misreads.
"""

from __future__ import annotations

import datetime as dt
import re

_BRACKET = re.compile(r"\[[^\]]*\]")
_CURRENCY = re.compile(r"\[\$([^\]-]*)(?:-[0-9A-Fa-f]+)?\]")
# The digit placeholders of one number: 0, # and ? with grouping commas and one point.
_NUMBER = re.compile(r"[0#?][0#?,]*(?:\.[0#?]*)?|\.[0#?]+")
_SCIENTIFIC = re.compile(r"([0#?.,]+)[Ee][+-]([0#?]+)")


def format_value(value: object, number_format: str | None) -> str:
    """`value` (as openpyxl reads it) the way the sheet shows it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes" if not value.second else "seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat(timespec="minutes" if not value.second else "seconds")
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, int | float):
        try:
            return format_number(float(value), number_format or "General", whole=type(value) is int)
        except (ValueError, OverflowError):
            return general(float(value))
    return str(value)


def general(value: float) -> str:
    """Excel's General format: up to 11 significant characters, no trailing zeros."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.10g}"
    return text.replace("e+", "E+").replace("e-", "E-")


def format_number(value: float, fmt: str, *, whole: bool = False) -> str:
    sections = _sections(fmt)
    if not sections or sections[0].strip().lower() in ("general", ""):
        return str(int(value)) if whole else general(value)
    section = sections[0]
    sign = "-" if value < 0 else ""
    if value < 0 and len(sections) > 1 and sections[1].strip():
        section, sign, value = sections[1], "", -value  # the section shows its own sign
    elif value == 0 and len(sections) > 2 and sections[2].strip():
        section = sections[2]
    elif value < 0:
        value = -value
    if "/" in _literal_free(section):  # fractions: not worth imitating
        return sign + general(value)
    return sign + _apply(value, section)


def _sections(fmt: str) -> list[str]:
    """The format's ';'-separated sections (a ';' in quotes or after '\\' is literal)."""
    sections, current, quoted, escaped = [], [], False, False
    for ch in fmt:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            quoted = not quoted
        elif ch == ";" and not quoted:
            sections.append("".join(current))
            current = []
        else:
            current.append(ch)
    sections.append("".join(current))
    return sections


def _literal_free(section: str) -> str:
    return re.sub(r'"[^"]*"|\\.', "", _BRACKET.sub("", section))


def _apply(value: float, section: str) -> str:
    """Literal text around one number pattern; the number formatted as the pattern says."""
    section = _CURRENCY.sub(lambda m: _quote(m.group(1)), section)
    section = _BRACKET.sub("", section)  # colours, conditions, locales
    out: list[str] = []
    pattern: list[str] = []
    placed = False
    i = 0
    percent = section.count("%") - section.count('"%"') - section.count("\\%")
    scaled = value * (100 ** max(0, percent))
    while i < len(section):
        ch = section[i]
        if ch == '"':
            end = section.find('"', i + 1)
            end = len(section) if end < 0 else end
            out.append(section[i + 1 : end])
            i = end + 1
            continue
        if ch == "\\" and i + 1 < len(section):
            out.append(section[i + 1])
            i += 2
            continue
        if ch == "_":  # a space as wide as the next character
            out.append(" ")
            i += 2
            continue
        if ch == "*":  # fill with the next character: nothing to fill in plain text
            i += 2
            continue
        if ch == "@":
            out.append(general(value))
            i += 1
            continue
        if ch in "0#?." and not placed:
            sci = _SCIENTIFIC.match(section, i)
            match = sci or _NUMBER.match(section, i)
            if match:
                pattern.append(match.group(0))
                out.append(_number(scaled, match.group(0), scientific=sci is not None))
                placed = True
                i = match.end()
                # Commas right after the pattern divide by a thousand each.
                continue
        if ch == "," and placed:
            i += 1
            continue
        out.append(ch)
        i += 1
    if not placed:
        return "".join(out) or general(value)
    return "".join(out).strip()


def _quote(text: str) -> str:
    return '"' + text.replace('"', "") + '"'


def _number(value: float, pattern: str, *, scientific: bool) -> str:
    if scientific:
        mantissa = pattern.split("E")[0].split("e")[0]
        decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        text = f"{value:.{decimals}E}"
        mant, exp = text.split("E")
        return f"{mant}E{exp[0]}{exp[1:].lstrip('0').rjust(2, '0')}"
    integer, _, fraction = pattern.partition(".")
    trailing = len(integer) - len(integer.rstrip(","))
    value = value / (1000**trailing)
    integer = integer.rstrip(",")
    grouping = "," in integer
    most = len(fraction)
    least = fraction.count("0")
    text = f"{value:,.{most}f}" if grouping else f"{value:.{most}f}"
    if most > least:
        whole, _, frac = text.partition(".")
        frac = frac[:least] + frac[least:].rstrip("0")
        text = f"{whole}.{frac}" if frac else whole
    if integer.strip(",") and set(integer.replace(",", "")) <= {"#"} and text.startswith("0."):
        text = text[1:]  # "#.00" shows 0.5 as ".50"
    if not integer.strip(",") and text.startswith("0"):
        text = text[1:]
    return text
