"""Plain text and Markdown: encoding detection, Markdown headings as sections."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from charset_normalizer import from_bytes

from pitchcraft.ingestion.cleanup import clean_text, has_text, repair_mojibake
from pitchcraft.ingestion.types import Block, ParsedDocument, ParseFailure

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Single-byte encodings that charset-normalizer often proposes for short Western text whose
# letters read the same in cp1252 (the usual legacy encoding of such text).
_WESTERN = {"cp1250", "cp1252", "cp1257", "latin_1", "iso8859_15", "iso8859_2", "mac_roman"}
# Markdown: ATX headings ("## Title") start sections; fenced code is left as it is.
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def utf16_without_bom(data: bytes) -> str | None:
    """ "utf-16-le"/"utf-16-be" when every other byte is mostly zero (Latin text in UTF-16)."""
    sample = data[:4096]
    half = len(sample) // 2
    if half < 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd > 0.4 * half and even < 0.05 * half:
        return "utf-16-le"
    if even > 0.4 * half and odd < 0.05 * half:
        return "utf-16-be"
    return None


def decode(data: bytes) -> str:
    """Text from bytes: BOM, then UTF-8, then charset-normalizer's guess, then cp1252/latin-1."""
    found = bom_encoding(data)
    if found is not None:
        encoding, skip = found
        return data[skip:].decode(encoding, errors="replace")
    utf16 = utf16_without_bom(data)
    if utf16 is not None:
        return data.decode(utf16, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding not in _WESTERN:
        try:
            return data.decode(best.encoding)
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _paragraphs(lines: list[str]) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line)
        elif current:
            out.append("\n".join(current))
            current = []
    if current:
        out.append("\n".join(current))
    return out


def parse(path: Path, *, ocr: bool = False, markdown: bool = False) -> ParsedDocument:
    text = clean_text(repair_mojibake(decode(path.read_bytes())))
    if not has_text(text):
        raise ParseFailure("empty document")
    if not markdown:
        return ParsedDocument(blocks=[Block(text=p) for p in _paragraphs(text.split("\n"))])
    blocks: list[Block] = []
    section: str | None = None
    pending: list[str] = []
    in_fence = False

    def flush() -> None:
        blocks.extend(Block(text=p, section=section) for p in _paragraphs(pending))
        pending.clear()

    for line in text.split("\n"):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading and heading.group(2):
            flush()
            section = heading.group(2)
            blocks.append(Block(text=section, section=section))
        else:
            pending.append(line)
    flush()
    return ParsedDocument(blocks=blocks)
