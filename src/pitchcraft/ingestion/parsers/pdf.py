"""PDF with PyMuPDF: text blocks per page in reading order (columns detected), OCR for pages
without a text layer, sections from the document outline."""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf as _pymupdf

from pitchcraft.ingestion.cleanup import clean_line, drop_leaders
from pitchcraft.ingestion.layout import reading_order
from pitchcraft.ingestion.types import Block, ParsedDocument, ParseFailure

# PyMuPDF is only partly annotated: use it untyped rather than sprinkle ignores.
pymupdf: Any = _pymupdf

# Ligatures expanded, whitespace normalised, text outside the page ignored, unmapped glyphs
# as U+FFFD (dropped later) rather than as arbitrary code points.
_FLAGS = pymupdf.TEXT_MEDIABOX_CLIP
# A page with fewer non-space characters than this, and images over this share of it, is
# taken for a scan (OCR'd when OCR is on; the OCR text is kept only if it is longer).
_SCANNED_BELOW = 50
_SCANNED_COVER = 0.3
_OCR_DPI = 200
_OCR_MAX_SIDE = 2000

pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


@dataclass
class _Line:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


@dataclass
class _Box:
    x0: float
    y0: float
    x1: float
    y1: float
    lines: list[_Line]


def parse(path: Path, *, ocr: bool) -> ParsedDocument:
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:
        raise ParseFailure("damaged or truncated PDF") from exc
    with doc:
        if doc.needs_pass and not doc.authenticate(""):
            raise ParseFailure("password-protected PDF")
        if doc.page_count == 0:
            raise ParseFailure("damaged or truncated PDF")
        return _parse_doc(doc, ocr=ocr)


def _parse_doc(doc: Any, *, ocr: bool) -> ParsedDocument:
    headings = _outline(doc)
    section: str | None = None
    blocks: list[Block] = []
    ocr_pages: list[int] = []
    skipped_scans: list[int] = []
    ocr_failed: list[int] = []
    unreadable: list[int] = []
    for number in range(1, doc.page_count + 1):
        try:
            page = doc.load_page(number - 1)
            texts = _page_texts(page)
            scanned = _looks_scanned(page, texts)
        except Exception:
            unreadable.append(number)
            continue
        if scanned and not ocr:
            skipped_scans.append(number)
        elif scanned:
            try:
                recognised = _ocr_page(page)
            except (MemoryError, ParseFailure):  # ParseFailure: the OCR budget is spent
                raise
            except Exception:
                recognised = []
                ocr_failed.append(number)
            if sum(map(len, recognised)) > sum(map(len, texts)):
                texts = recognised
                ocr_pages.append(number)
        pending = list(headings.get(number, ()))
        for text in texts:
            if pending:
                hit = _match_heading(text, pending)
                if hit is not None:
                    section = pending[hit]
                    del pending[: hit + 1]
            blocks.append(Block(text=text, page=number, section=section))
        if pending:
            section = pending[-1]

    if len(unreadable) == doc.page_count or (not blocks and doc.is_repaired):
        raise ParseFailure("damaged or truncated PDF")
    if not blocks:
        if skipped_scans:
            raise ParseFailure("no extractable text (scanned pages need OCR, which is off)")
        if ocr and any(page.get_images() for page in doc):
            raise ParseFailure("no extractable text (none found with OCR either)")
        raise ParseFailure("no extractable text")
    notes: list[str] = []
    for pages, what in (
        (ocr_pages, "had no text layer and {} read with OCR"),
        (skipped_scans, "had no text layer and {} skipped (OCR is off)"),
        (ocr_failed, "had no text layer and could not be read with OCR"),
        (unreadable, "could not be read and {} skipped"),
    ):
        if pages:
            count = "1 page" if len(pages) == 1 else f"{len(pages)} pages"
            notes.append(f"{count} {what.format('was' if len(pages) == 1 else 'were')}")
    if doc.is_repaired:
        notes.append("the file was damaged and has been repaired; some text may be missing")
    return ParsedDocument(blocks=blocks, pages=doc.page_count, notes=notes)


def _looks_scanned(page: Any, texts: list[str]) -> bool:
    """Almost no text, and images over a good part of the page: a scan without a text layer."""
    if sum(len(t) - t.count(" ") for t in texts) >= _SCANNED_BELOW or not page.get_images():
        return False
    area = float(abs(page.rect))
    covered = sum(
        float(abs(pymupdf.Rect(info["bbox"]) & page.rect)) for info in page.get_image_info()
    )
    return area > 0 and covered >= _SCANNED_COVER * area


def _page_texts(page: Any) -> list[str]:
    """The page's text blocks in reading order; text running sideways comes last."""
    data: dict[str, Any] = page.get_text("dict", flags=_FLAGS)
    boxes: list[_Box] = []
    sideways: list[str] = []
    for block in data.get("blocks", ()):
        if block.get("type") != 0:
            continue
        lines: list[_Line] = []
        for line in block.get("lines", ()):
            text = drop_leaders(clean_line("".join(s.get("text", "") for s in line["spans"])))
            if not text:
                continue
            dx, dy = line.get("dir", (1.0, 0.0))
            if abs(dy) > 0.2 or dx < 0:
                sideways.append(text)
                continue
            x0, y0, x1, y1 = line["bbox"]
            lines.append(_Line(x0, y0, x1, y1, text))
        if lines:
            boxes.append(
                _Box(
                    min(ln.x0 for ln in lines),
                    min(ln.y0 for ln in lines),
                    max(ln.x1 for ln in lines),
                    max(ln.y1 for ln in lines),
                    lines,
                )
            )
    if not boxes:
        return [" ".join(sideways)] if sideways else []
    unit = statistics.median(ln.y1 - ln.y0 for b in boxes for ln in b.lines) or 10.0
    texts: list[str] = []
    for box in reading_order(boxes, unit=unit):
        text = _box_text(box, unit)
        if texts and _hyphenated(texts[-1], text):
            texts[-1] = texts[-1][:-1] + text  # a word split across two blocks
        elif text:
            texts.append(text)
    if sideways:
        texts.append(" ".join(sideways))
    return [t for t in texts if t]


def _box_text(box: _Box, unit: float) -> str:
    """Lines on one visual row are cells (" | " across wide gaps); rows of a box that has cells
    are kept as lines, otherwise the rows are a paragraph, re-joined across hyphenation."""
    rows: list[list[_Line]] = []
    for ln in box.lines:
        if rows:
            prev = rows[-1][-1]
            centre = (ln.y0 + ln.y1) / 2
            if prev.y0 <= centre <= prev.y1 and ln.x0 >= prev.x1 - 0.5 * unit:
                rows[-1].append(ln)
                continue
        rows.append([ln])
    tabular = False
    row_texts: list[str] = []
    for row in rows:
        text = row[0].text
        for prev, ln in itertools.pairwise(row):
            if ln.x0 - prev.x1 > 2.5 * unit:
                text = f"{text} | {ln.text}"
                tabular = True
            else:
                text = f"{text} {ln.text}"
        row_texts.append(text)
    if tabular:
        return "\n".join(row_texts)
    return join_lines(row_texts)


def join_lines(lines: list[str]) -> str:
    """Lines of a paragraph joined with spaces; words split by a hyphen at a line end rejoined."""
    parts: list[str] = []
    for line in lines:
        if parts and _hyphenated(parts[-1], line):
            parts[-1] = parts[-1][:-1]
            parts.append(line)
        else:
            if parts:
                parts.append(" ")
            parts.append(line)
    return "".join(parts)


def _hyphenated(before: str, after: str) -> bool:
    """`before` ends in the first half of a word hyphenated at a line end, `after` has the rest."""
    return len(before) > 1 and before.endswith("-") and before[-2].isalpha() and after[:1].islower()


def _ocr_page(page: Any) -> list[str]:
    from pitchcraft.ingestion.parsers.image import ocr_paragraphs

    rect = page.rect
    longest = max(rect.width, rect.height)
    if longest <= 0:
        return []
    zoom = min(_OCR_DPI / 72, _OCR_MAX_SIDE / longest)
    pix = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csRGB, alpha=False)
    if pix.width < 16 or pix.height < 16:
        return []
    rgb = np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width, pix.n)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return ocr_paragraphs(bgr)


# --- sections from the outline ---------------------------------------------------------------

_KEY = re.compile(r"[\W_]+")


def _outline(doc: Any) -> dict[int, list[str]]:
    """Outline titles by the page they start on, down to a depth that is not too fine-grained
    (a heading for every paragraph would make every chunk tiny)."""
    try:
        toc = doc.get_toc(simple=True)
    except Exception:
        return {}
    entries = [(int(e[0]), str(e[1]).strip(), int(e[2])) for e in toc if str(e[1]).strip()]
    depth = 0
    for level in (1, 2, 3):
        if sum(1 for e in entries if e[0] <= level) <= max(12, doc.page_count):
            depth = level
    by_page: dict[int, list[str]] = {}
    for level, title, page in entries:
        if level <= depth and page >= 1:
            by_page.setdefault(page, []).append(title)
    return by_page


def _key(text: str) -> str:
    return _KEY.sub("", text[:300].lower())


def _match_heading(text: str, pending: list[str]) -> int | None:
    """Which pending outline title this block starts with, numbering aside ("1 Foo", "Foo")."""
    keys = set(_keys(text))
    for i, title in enumerate(pending):
        for candidate in _keys(title):
            if len(candidate) >= 3 and any(key.startswith(candidate) for key in keys):
                return i
    return None


def _keys(text: str) -> Iterator[str]:
    key = _key(text)
    yield key
    unnumbered = key.lstrip("0123456789")
    if unnumbered != key:
        yield unnumbered
