"""How a slide's text looks, as far as the slide itself says: sizes of runs or paragraphs,
bold, alignment, outline levels and bullets, vertical anchoring, autofit's font scale.

Styles inherited from the layout, master and theme are not resolved (python-pptx does not);
typical sizes for the placeholder type stand in for them, and text that overflows its box is
shrunk when drawn. The text of each paragraph is the parser's, so the words drawn are the
words indexed.
"""

from __future__ import annotations

from typing import Any

from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.enum.text import MSO_ANCHOR, PP_ALIGN

from pitchcraft.documents.preview.textbox import Para
from pitchcraft.ingestion.cleanup import clean_line
from pitchcraft.ingestion.parsers.pptx import _runs

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_EMU_PER_PT = 12700
_LEVEL_INDENT = 342900  # EMU per outline level (0.375 in)
_TABLE_PT = 16.0

_TITLES = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}
_BODIES = {
    PP_PLACEHOLDER.BODY,
    PP_PLACEHOLDER.OBJECT,
    PP_PLACEHOLDER.VERTICAL_BODY,
    PP_PLACEHOLDER.VERTICAL_OBJECT,
}
_SMALL = {
    PP_PLACEHOLDER.DATE,
    PP_PLACEHOLDER.FOOTER,
    PP_PLACEHOLDER.SLIDE_NUMBER,
    PP_PLACEHOLDER.HEADER,
}
_ANCHORS = {MSO_ANCHOR.TOP: "top", MSO_ANCHOR.MIDDLE: "middle", MSO_ANCHOR.BOTTOM: "bottom"}
_ALIGNS = {
    PP_ALIGN.LEFT: "left",
    PP_ALIGN.JUSTIFY: "left",
    PP_ALIGN.JUSTIFY_LOW: "left",
    PP_ALIGN.CENTER: "center",
    PP_ALIGN.DISTRIBUTE: "center",
    PP_ALIGN.THAI_DISTRIBUTE: "center",
    PP_ALIGN.RIGHT: "right",
}


def text_defaults(shape: Any) -> tuple[float, str, str, bool]:
    """(size in points, vertical anchor, alignment, bulleted) typical for the shape's kind."""
    kind = None
    if getattr(shape, "is_placeholder", False):
        try:
            kind = shape.placeholder_format.type
        except Exception:
            kind = None
        if kind in _TITLES:
            return 36.0, "middle", "left", False
        if kind == PP_PLACEHOLDER.CENTER_TITLE:
            return 40.0, "middle", "center", False
        if kind == PP_PLACEHOLDER.SUBTITLE:
            return 22.0, "top", "center", False
        if kind in _BODIES:
            return 22.0, "top", "left", True
        if kind in _SMALL:
            return 11.0, "middle", "left", False
        return 18.0, "top", "left", False
    try:
        auto_shape = shape.shape_type == MSO_SHAPE_TYPE.AUTO_SHAPE
    except Exception:
        auto_shape = False
    if auto_shape:  # text in a drawn shape is centred in PowerPoint unless it says otherwise
        return 18.0, "middle", "center", False
    return 18.0, "top", "left", False


def frame_paras(frame: Any, scale: float, pt: float, align: str, bullets: bool) -> list[Para]:
    """The frame's paragraphs as they are to be drawn; `scale` is pixels per EMU."""
    factor = _autofit_scale(frame)
    paras: list[Para] = []
    for paragraph in frame.paragraphs:
        text = clean_line("".join(_runs(paragraph)))
        try:
            level = max(0, min(8, int(paragraph.level)))
        except Exception:
            level = 0
        size_pt = _size_pt(paragraph) or max(pt - 2 * level, 10.0)
        size = size_pt * _EMU_PER_PT * scale * factor
        bullet = bool(text) and _bulleted(paragraph, bullets)
        indent = level * _LEVEL_INDENT * scale + (size if bullet else 0.0)
        paras.append(Para(text, size, _bold(paragraph), _align(paragraph) or align, indent, bullet))
    return paras


def cell_paras(frame: Any, scale: float) -> list[Para]:
    return frame_paras(frame, scale, _TABLE_PT, "left", False)


def frame_anchor(frame: Any, default: str) -> str:
    """ "top", "middle" or "bottom" for a text frame or table cell."""
    try:
        return _ANCHORS.get(frame.vertical_anchor, default)
    except Exception:
        return default


def _size_pt(paragraph: Any) -> float | None:
    sizes: list[float] = []
    try:
        sizes.extend(r.font.size.pt for r in paragraph.runs if r.font.size is not None)
        if not sizes and paragraph.font.size is not None:
            sizes.append(paragraph.font.size.pt)
    except Exception:
        sizes = []
    if not sizes:
        end = paragraph._p.find(f"{_A}endParaRPr")
        raw = end.get("sz") if end is not None else None
        if raw is not None and raw.isdigit():
            sizes.append(int(raw) / 100)
    if not sizes:
        return None
    return max(4.0, min(200.0, max(sizes)))


def _bold(paragraph: Any) -> bool:
    try:
        return any(r.font.bold for r in paragraph.runs) or bool(paragraph.font.bold)
    except Exception:
        return False


def _align(paragraph: Any) -> str | None:
    try:
        return _ALIGNS.get(paragraph.alignment)
    except Exception:
        return None


def _bulleted(paragraph: Any, default: bool) -> bool:
    props = paragraph._p.find(f"{_A}pPr")
    if props is not None:
        if props.find(f"{_A}buNone") is not None:
            return False
        if props.find(f"{_A}buChar") is not None or props.find(f"{_A}buAutoNum") is not None:
            return True
    return default


def _autofit_scale(frame: Any) -> float:
    """normAutofit's fontScale ("62500" or "62.5%"): PowerPoint's own shrink of the text."""
    try:
        body = frame._txBody.find(f"{_A}bodyPr")
        fit = body.find(f"{_A}normAutofit") if body is not None else None
        raw = fit.get("fontScale") if fit is not None else None
        if raw is None:
            return 1.0
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw) / 100_000
    except (AttributeError, ValueError):
        return 1.0
    return value if 0.1 <= value <= 1.0 else 1.0
