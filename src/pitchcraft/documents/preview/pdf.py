"""PDF pages with PyMuPDF: the page drawn at the asked width, the passage found among the
page's words (`match`) and highlighted line by line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pymupdf as _pymupdf
from PIL import Image

from pitchcraft.documents.preview.base import PageNotFound, PreviewError, fit, paint_highlights
from pitchcraft.documents.preview.match import Word, find, line_boxes

# PyMuPDF is only partly annotated: use it untyped rather than sprinkle ignores.
pymupdf: Any = _pymupdf

# As the parser reads text: ligatures expanded, text outside the page ignored.
_FLAGS = pymupdf.TEXT_MEDIABOX_CLIP

pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


def _open(path: Path) -> Any:
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as exc:
        raise PreviewError("damaged or truncated PDF") from exc
    if doc.needs_pass and not doc.authenticate(""):
        doc.close()
        raise PreviewError("password-protected PDF")
    if doc.page_count == 0:
        doc.close()
        raise PreviewError("damaged or truncated PDF")
    return doc


def page_count(path: Path) -> int:
    with _open(path) as doc:
        return int(doc.page_count)


def render(path: Path, page: int, highlight: str | None, width: int) -> Image.Image:
    """Page `page` (1-based) of the PDF, `highlight` marked where it is found."""
    with _open(path) as doc:
        count = int(doc.page_count)
        if not 1 <= page <= count:
            raise PageNotFound(f"page {page} is not in this PDF (it has {count})")
        try:
            pdf_page = doc.load_page(page - 1)
        except Exception as exc:
            raise PreviewError(f"page {page} of this PDF could not be read") from exc
        return render_page(pdf_page, highlight, width)


def render_page(page: Any, highlight: str | None, width: int) -> Image.Image:
    rect = page.rect
    scale = fit(float(rect.width), float(rect.height), width)
    try:
        pix = page.get_pixmap(
            matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csRGB, alpha=False
        )
    except Exception as exc:
        raise PreviewError("this PDF page could not be drawn") from exc
    image = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    if highlight and highlight.strip():
        words = page_words(page, scale)
        boxes = line_boxes(words, find(words, highlight))
        if boxes:
            image = paint_highlights(image, boxes, pad=max(1.0, scale * 0.5))
    return image


def page_words(page: Any, scale: float) -> list[Word]:
    """The page's words in content order, with boxes in output pixels."""
    try:
        raw = page.get_text("words", flags=_FLAGS, sort=False)
    except Exception:
        return []  # an unreadable text layer: the page is still worth showing
    # Text coordinates ignore the page's rotation; the drawing does not.
    matrix = page.rotation_matrix * pymupdf.Matrix(scale, scale)
    words: list[Word] = []
    for x0, y0, x1, y1, text, block, line, _ in raw:
        box = pymupdf.Rect(x0, y0, x1, y1) * matrix
        words.append(Word(text, (box.x0, box.y0, box.x1, box.y1), (block, line)))
    return words
