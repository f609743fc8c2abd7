"""Images (JPEG, PNG, GIF, TIFF, WEBP, BMP): text recognition with RapidOCR.

RapidOCR ships its ONNX models inside the package, so nothing is downloaded. The engine is
created on first use and kept for the life of the process. `ocr_paragraphs` is also used
for PDF pages that have no text layer.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from pitchcraft.ingestion.cleanup import clean_line
from pitchcraft.ingestion.layout import reading_order
from pitchcraft.ingestion.types import Block, ParsedDocument, ParseFailure

OCR_OFF = "image: text recognition (OCR) is turned off on this server"
# Larger images are scaled down before recognition; beyond this many pixels they are refused.
_MAX_SIDE = 4000
_MAX_PIXELS = 120_000_000
_MIN_SCORE = 0.5

_engine: Any = None
_engine_lock = threading.Lock()

Image = npt.NDArray[np.uint8]


@dataclass
class _OcrBudget:
    """OCR work allowed in this process (a parse child reads one document): 0 is no cap."""

    max_pages: int = 0
    max_seconds: float = 0
    pages: int = 0
    seconds: float = 0.0

    def before(self) -> None:
        if self.max_pages and self.pages >= self.max_pages:
            raise ParseFailure(
                f"needs OCR on more than {self.max_pages} pages or images, the limit per "
                "document (OCR_MAX_PAGES)"
            )
        self.pages += 1

    def after(self, seconds: float) -> None:
        self.seconds += seconds
        if self.max_seconds and self.seconds > self.max_seconds:
            raise ParseFailure(
                f"OCR took more than {self.max_seconds:g} s, the limit per document "
                f"(OCR_MAX_SECONDS), after {self.pages} pages or images"
            )


_budget = _OcrBudget()


def limit_ocr(*, max_pages: int, max_seconds: float) -> None:
    """Cap the OCR work of what this process reads from now on (0: no cap)."""
    global _budget
    _budget = _OcrBudget(max_pages=max_pages, max_seconds=max_seconds)


def _get_engine() -> Any:
    global _engine
    with _engine_lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]

            threads = max(1, min(4, os.cpu_count() or 1))
            _engine = RapidOCR(
                intra_op_num_threads=threads,
                inter_op_num_threads=1,
                # Detect at the image's own scale (at most 2000 px): the default scales the
                # short side up to 736 px, which makes a one-line banner ten times slower.
                det_limit_type="max",
                det_limit_side_len=2000,
            )
        return _engine


@dataclass
class _Line:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str

    @property
    def height(self) -> float:
        return self.y1 - self.y0


@dataclass
class _Para:
    lines: list[_Line] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return min(ln.x0 for ln in self.lines)

    @property
    def y0(self) -> float:
        return min(ln.y0 for ln in self.lines)

    @property
    def x1(self) -> float:
        return max(ln.x1 for ln in self.lines)

    @property
    def y1(self) -> float:
        return max(ln.y1 for ln in self.lines)


def recognise(image: Image) -> list[_Line]:
    """Text lines found in a BGR image, in no particular order."""
    if image.shape[0] < 8 or image.shape[1] < 8:
        return []
    scale = 1.0
    longest = max(image.shape[0], image.shape[1])
    if longest > _MAX_SIDE:
        import cv2

        scale = _MAX_SIDE / longest
        size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
        image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    engine = _get_engine()
    _budget.before()
    started = time.monotonic()
    result, _ = engine(image)
    _budget.after(time.monotonic() - started)
    lines: list[_Line] = []
    for box, text, score in result or []:
        text = clean_line(str(text))
        if not text or float(score) < _MIN_SCORE:
            continue
        xs = [float(p[0]) / scale for p in box]
        ys = [float(p[1]) / scale for p in box]
        lines.append(_Line(min(xs), min(ys), max(xs), max(ys), text))
    return lines


def ocr_paragraphs(image: Image) -> list[str]:
    """Paragraphs of text recognised in a BGR image, in reading order."""
    lines = recognise(image)
    if not lines:
        return []
    # Text running vertically, or scraps in the outer margins (a stamp up the side of a page),
    # is out of the flow of the text: it comes last.
    width = float(image.shape[1])
    upright: list[_Line] = []
    aside: list[_Line] = []
    for ln in lines:
        vertical = ln.height > 1.5 * (ln.x1 - ln.x0) and len(ln.text) > 2
        marginal = ln.x1 < 0.08 * width or ln.x0 > 0.92 * width
        (aside if vertical or marginal else upright).append(ln)
    if not upright:
        upright, aside = aside, []
    unit = statistics.median(ln.height for ln in upright)
    paras = _paragraphs(_merge_same_line(upright, unit), unit)
    out = [_para_text(p) for p in reading_order(paras, unit=unit)]
    if aside:
        out.append(" ".join(ln.text for ln in sorted(aside, key=lambda ln: (ln.x0, ln.y0))))
    return [t for t in out if t]


def _merge_same_line(lines: list[_Line], unit: float) -> list[_Line]:
    """Join boxes that sit on one visual line close together (OCR sometimes splits a line)."""
    ordered = sorted(lines, key=lambda ln: (ln.y0 + ln.y1) / 2)
    rows: list[list[_Line]] = []
    for ln in ordered:
        centre = (ln.y0 + ln.y1) / 2
        if rows:
            last = rows[-1]
            row_centre = statistics.fmean((x.y0 + x.y1) / 2 for x in last)
            if abs(centre - row_centre) < 0.5 * unit:
                last.append(ln)
                continue
        rows.append([ln])
    merged: list[_Line] = []
    for row in rows:
        row.sort(key=lambda ln: ln.x0)
        current = row[0]
        for ln in row[1:]:
            if ln.x0 - current.x1 < 1.5 * unit:
                current = _Line(
                    current.x0,
                    min(current.y0, ln.y0),
                    max(current.x1, ln.x1),
                    max(current.y1, ln.y1),
                    f"{current.text} {ln.text}",
                )
            else:
                merged.append(current)
                current = ln
        merged.append(current)
    return merged


def _paragraphs(lines: list[_Line], unit: float) -> list[_Para]:
    """Group lines that follow each other closely and overlap horizontally."""
    paras: list[_Para] = []
    for ln in sorted(lines, key=lambda ln: (ln.y0, ln.x0)):
        best: _Para | None = None
        best_gap = 0.0
        for para in paras:
            last = para.lines[-1]
            gap = ln.y0 - last.y1
            overlap = min(ln.x1, last.x1) - max(ln.x0, last.x0)
            narrower = min(ln.x1 - ln.x0, last.x1 - last.x0)
            close = -0.5 * unit <= gap <= 0.8 * unit and overlap >= 0.3 * narrower
            if close and (best is None or gap < best_gap):
                best, best_gap = para, gap
        if best is None:
            paras.append(_Para([ln]))
        else:
            best.lines.append(ln)
    return paras


def _para_text(para: _Para) -> str:
    text = ""
    for ln in para.lines:
        if not text:
            text = ln.text
        elif text.endswith("-") and len(text) > 1 and text[-2].isalpha() and ln.text[0].islower():
            text = text[:-1] + ln.text
        else:
            text = f"{text} {ln.text}"
    return text


def load_image(path: Path) -> Image:
    """Decode an image file to a BGR array (EXIF orientation applied)."""
    import cv2
    from PIL import Image as PILImage

    too_large = f"image is too large to read (at most {_MAX_PIXELS // 1_000_000} megapixels)"
    try:  # the size from the header, before anything is decoded
        with PILImage.open(path) as probe:
            width, height = probe.size
    except PILImage.DecompressionBombError as exc:
        raise ParseFailure(too_large) from exc
    except Exception:  # PIL cannot size it; OpenCV may still decode it
        width = height = 0
    if width * height > _MAX_PIXELS:
        raise ParseFailure(too_large)
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ParseFailure("damaged or unreadable image")
    return np.asarray(image, dtype=np.uint8)


def parse(path: Path, *, ocr: bool) -> ParsedDocument:
    if not ocr:
        raise ParseFailure(OCR_OFF)
    paragraphs = ocr_paragraphs(load_image(path))
    if not paragraphs:
        raise ParseFailure("no extractable text (no text was recognised in the image)")
    return ParsedDocument(
        blocks=[Block(text=p) for p in paragraphs],
        pages=None,
        notes=["the text was read with OCR"],
    )
