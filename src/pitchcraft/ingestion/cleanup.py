"""Small text clean-ups shared by the parsers."""

from __future__ import annotations

import re

import ftfy

# Control characters (except tab and newline), C1 controls, soft hyphens, BOMs and zero-width
# spaces; the replacement character (a glyph without a Unicode mapping) becomes a space.
_JUNK = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000\ufffd\ue000-\uf8ff]+")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
_BLANK_RUNS = re.compile(r"\n{3,}")
# Table-of-contents leaders: ". . . . ." or "........".
_LEADERS = re.compile(r"(?:\s*[.\u2026\u00b7]){4,}")


def clean_line(text: str) -> str:
    """One line without control characters, with single spaces, trimmed."""
    if text.isprintable() and "  " not in text and "\ufffd" not in text:
        return text.strip()  # the common case, without the regular expressions
    text = _JUNK.sub("", text)
    return _SPACES.sub(" ", text).strip()


def drop_leaders(text: str) -> str:
    """Remove dot leaders (as in a table of contents) from a line."""
    if "..." not in text and ". ." not in text and "\u2026" not in text and "\u00b7" not in text:
        return text
    return _LEADERS.sub(" ", text).strip()


def clean_text(text: str) -> str:
    """Multi-line text: unified line breaks, clean lines, at most one blank line in a row."""
    text = _LINE_BREAKS.sub("\n", text)
    lines = [clean_line(line) for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def has_text(text: str) -> bool:
    return bool(text) and not text.isspace()


def repair_mojibake(text: str) -> str:
    """Text that was decoded with the wrong encoding somewhere upstream put right with
    ftfy: UTF-8 read as cp1252 and saved again turns the dash of "1997-2004" (an en dash)
    into "a-circumflex" and two C1 control characters. Only the encoding is repaired:
    quotes, ligatures, widths, HTML entities and the Unicode normal form stay as written.
    Runs before `clean_text`, which would drop the C1 characters the repair needs."""
    return ftfy.fix_text(
        text,
        unescape_html=False,
        uncurl_quotes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        fix_line_breaks=False,
        normalization=None,
    )
