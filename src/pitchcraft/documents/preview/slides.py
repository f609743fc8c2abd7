"""PPTX slides drawn with Pillow, for when LibreOffice is not there to draw them properly.

A white slide at the deck's aspect ratio; every shape at its place (groups with their child
offsets and scales, to any depth); the text the parser indexed drawn in its shape's box,
wrapped, at an approximate size (run sizes where the file says, else typical sizes for the
placeholder type), shrunk while it overflows; tables cell by cell; pictures as themselves;
charts and other objects as labelled boxes. What the layout and master add (backgrounds,
logos, footers) is left out. Colours are kept only as light tints, and text is always dark,
so everything stays readable. The speaker notes, which the parser indexes too,
go in a band below the slide. The words are collected in the parser's order, so a passage is
found on them the way it is on a PDF page.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pptx
from PIL import Image, ImageDraw
from pptx.enum.shapes import MSO_SHAPE_TYPE

from pitchcraft.documents.preview.base import (
    MAX_HEIGHT,
    Box,
    PageNotFound,
    PreviewError,
    fit,
    font,
    paint_highlights,
)
from pitchcraft.documents.preview.match import Word, find, line_boxes
from pitchcraft.documents.preview.slidetext import (
    cell_paras,
    frame_anchor,
    frame_paras,
    text_defaults,
)
from pitchcraft.documents.preview.textbox import TEXT_RGB, Para, draw_layout, fit_layout, layout
from pitchcraft.ingestion.archive import check_ooxml_zip

# The parser's own readers, so that the words drawn are the words it indexed.
from pitchcraft.ingestion.parsers.pptx import _notes, _position, _smartart
from pitchcraft.ingestion.types import ParseFailure

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_P = "{http://schemas.openxmlformats.org/presentationml/2006/main}"
_DEFAULT_SLIDE = (9144000, 6858000)  # 10 by 7.5 in, when the deck does not say
_MAX_PICTURE_PIXELS = 60_000_000
_OUTLINE = (150, 150, 150)
_BOX_FILL = (242, 242, 242)
_THEME_TINT = (222, 231, 243)  # a fill from the theme, whose colour is not resolved
_TINT = 0.3  # share of a shape's own colour in its fill
_NOTES_KEY = ((sys.maxsize, sys.maxsize, sys.maxsize),)  # the parser reads notes last


@dataclass(frozen=True)
class _Xf:
    """Child coordinates of a group → slide EMU: x · sx + tx."""

    sx: float = 1.0
    sy: float = 1.0
    tx: float = 0.0
    ty: float = 0.0

    def point(self, x: float, y: float) -> tuple[float, float]:
        return self.tx + self.sx * x, self.ty + self.sy * y


def open_deck(path: Path) -> tuple[Any, list[Any]]:
    try:
        check_ooxml_zip(path, "PPTX")
    except ParseFailure as exc:
        raise PreviewError(str(exc)) from exc
    try:
        deck = pptx.Presentation(str(path))
        slides = list(deck.slides)
    except Exception as exc:
        raise PreviewError("damaged or truncated PPTX file") from exc
    return deck, slides


def page_count(path: Path) -> int:
    return len(open_deck(path)[1])


def slide_size(deck: Any) -> tuple[int, int]:
    width, height = deck.slide_width, deck.slide_height
    if not width or not height:
        return _DEFAULT_SLIDE
    return int(width), int(height)


def render(path: Path, page: int, highlight: str | None, width: int) -> Image.Image:
    deck, slides = open_deck(path)
    if not 1 <= page <= len(slides):
        raise PageNotFound(f"slide {page} is not in this presentation (it has {len(slides)})")
    slide_w, slide_h = slide_size(deck)
    scale = fit(slide_w, slide_h, width)
    size = (round(slide_w * scale), round(slide_h * scale))
    canvas = _Canvas(Image.new("RGB", size, "white"), scale)
    slide = slides[page - 1]
    canvas.shapes(slide.shapes, _Xf(), ())
    canvas.frame()
    with contextlib.suppress(Exception):  # notes that cannot be read: the slide without them
        canvas.notes(_notes(slide))
    image = canvas.image
    if highlight and highlight.strip():
        words = canvas.words()
        boxes = line_boxes(words, find(words, highlight))
        if boxes:
            image = paint_highlights(image, boxes)
    return image


class _Canvas:
    def __init__(self, image: Image.Image, scale: float) -> None:
        self.image = image
        self.draw = ImageDraw.Draw(image)
        self.scale = scale  # pixels per EMU
        # (parser order, words of one shape): drawing goes in z-order, the parser does not
        self.units: list[tuple[tuple[Any, ...], list[Word]]] = []
        self.cursor = 0.05 * image.height  # where the next shape without a position goes

    def words(self) -> list[Word]:
        return [w for _, words in sorted(self.units, key=lambda u: u[0]) for w in words]

    def shapes(self, shapes: Iterable[Any], xf: _Xf, key: tuple[Any, ...]) -> None:
        for z, shape in enumerate(shapes):
            try:
                self.shape(shape, xf, (*key, (*_position(shape), z)))
            except MemoryError:
                raise
            except Exception:  # noqa: S112 - one odd shape must not cost the whole slide
                continue

    def shape(self, shape: Any, xf: _Xf, key: tuple[Any, ...]) -> None:
        try:
            kind = shape.shape_type
        except Exception:
            kind = None
        if kind == MSO_SHAPE_TYPE.GROUP:
            self.shapes(shape.shapes, _group_xf(shape, xf), key)
            return
        box = self.box(shape, xf)
        if getattr(shape, "has_text_frame", False):
            if box is not None:
                self.geometry(shape, box)
            pt, anchor, align, bullets = text_defaults(shape)
            paras = frame_paras(shape.text_frame, self.scale, pt, align, bullets)
            self.text(paras, box, frame_anchor(shape.text_frame, anchor), key, shape.text_frame)
        elif getattr(shape, "has_table", False):
            self.table(shape.table, box or self.free_box(), key)
        elif getattr(shape, "has_chart", False):
            self.label(box, "Chart", _chart_title(shape))
        elif getattr(type(shape), "image", None) is not None:  # a picture, without reading it
            self.picture(shape, box)
        elif kind == MSO_SHAPE_TYPE.LINE:
            self.line(shape, xf)
        elif kind == MSO_SHAPE_TYPE.FREEFORM and box is not None:
            self.geometry(shape, box)
        else:
            lines = [line for line in _smartart(shape).split("\n") if line]
            if lines:
                size = 14 * 12700 * self.scale
                paras = [Para(line, size, align="center") for line in lines]
                self.label(box, "", "")
                self.text(paras, box, "middle", key, None)
            elif box is not None and kind != MSO_SHAPE_TYPE.AUTO_SHAPE:
                self.label(box, _object_name(kind), "")
            elif box is not None:
                self.geometry(shape, box)

    def box(self, shape: Any, xf: _Xf) -> Box | None:
        try:
            left, top, width, height = shape.left, shape.top, shape.width, shape.height
        except Exception:
            return None
        if left is None or top is None or width is None or height is None:
            return None
        x0, y0 = xf.point(left, top)
        x1, y1 = xf.point(left + width, top + height)
        s = self.scale
        return (min(x0, x1) * s, min(y0, y1) * s, max(x0, x1) * s, max(y0, y1) * s)

    def free_box(self, height: float | None = None) -> Box:
        """A full-width box below what was placed this way before: for shapes that have no
        position of their own (nor one inherited from their layout)."""
        w, h = self.image.size
        top = self.cursor
        bottom = top + (height if height is not None else h * 0.2)
        self.cursor = bottom + 0.02 * h
        return (0.05 * w, top, 0.95 * w, bottom)

    def text(
        self,
        paras: list[Para],
        box: Box | None,
        anchor: str,
        key: tuple[Any, ...],
        frame: Any,
    ) -> None:
        if not any(p.text for p in paras):
            return
        inset = _insets(frame, self.scale)
        if box is None:
            width = self.image.width * 0.9 - inset[0] - inset[2]
            needed = layout(paras, width).height + inset[1] + inset[3]
            box = self.free_box(needed)
        inner = (box[0] + inset[0], box[1] + inset[1], box[2] - inset[2], box[3] - inset[3])
        if inner[2] - inner[0] < 4:
            inner = (inner[0], inner[1], inner[0] + 4, inner[3])
        wrap = frame is None or frame.word_wrap is not False
        width = inner[2] - inner[0] if wrap else self.image.width - inner[0]
        result, factor = fit_layout(paras, width, max(inner[3] - inner[1], 1.0))
        if not wrap:
            inner = (inner[0], inner[1], max(inner[2], inner[0] + width), inner[3])
        words = draw_layout(self.draw, paras, result, factor, inner, anchor, key)
        self.units.append((key, words))

    def geometry(self, shape: Any, box: Box) -> None:
        fill = _fill(shape)
        outline = _OUTLINE if _is_drawn_shape(shape) else None
        if fill is None and outline is None:
            return
        x0, y0, x1, y1 = box
        if x1 - x0 < 1 or y1 - y0 < 1:
            self.draw.line((x0, y0, x1, y1), fill=_OUTLINE, width=1)
            return
        geometry = shape._element.find(f".//{_A}prstGeom")
        name = geometry.get("prst") if geometry is not None else "rect"
        if name == "ellipse":
            self.draw.ellipse(box, fill=fill, outline=outline)
        elif name in ("roundRect", "snipRoundRect", "round2SameRect"):
            radius = min(x1 - x0, y1 - y0) * 0.15
            self.draw.rounded_rectangle(box, radius=radius, fill=fill, outline=outline)
        else:
            self.draw.rectangle(box, fill=fill, outline=outline)

    def line(self, shape: Any, xf: _Xf) -> None:
        """A connector or line, from its start to its end (flips included)."""
        try:
            ends = (shape.begin_x, shape.begin_y, shape.end_x, shape.end_y)
        except Exception:
            return
        x0, y0 = xf.point(ends[0], ends[1])
        x1, y1 = xf.point(ends[2], ends[3])
        s = self.scale
        self.draw.line((x0 * s, y0 * s, x1 * s, y1 * s), fill=_OUTLINE, width=2)

    def label(self, box: Box | None, what: str, title: str) -> None:
        """A light box standing for something not drawn (a chart, a video), named."""
        if box is None or box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return
        self.draw.rectangle(box, fill=_BOX_FILL, outline=(200, 200, 200))
        caption = " · ".join(part for part in (what, title) if part)
        if caption:
            size = max(8, min(round((box[3] - box[1]) / 8), round(self.image.width / 50)))
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            self.draw.text(centre, caption[:80], font=font(size), fill=(120, 120, 120), anchor="mm")

    def picture(self, shape: Any, box: Box | None) -> None:
        if box is None:
            return
        x0, y0, x1, y1 = (round(v) for v in box)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(shape.image.blob)) as source:
                    if source.width * source.height > _MAX_PICTURE_PIXELS:
                        raise PreviewError("picture too large")
                    source.draft("RGB", (x1 - x0, y1 - y0))
                    picture = source.convert("RGBA")
            picture = picture.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
            self.image.paste(picture, (x0, y0), picture)
        except MemoryError:
            raise
        except Exception:  # a format Pillow cannot read (EMF, say), or a broken one
            self.label(box, "Picture", "")

    def table(self, table: Any, box: Box, key: tuple[Any, ...]) -> None:
        rows, cols = list(table.rows), list(table.columns)
        if not rows or not cols:
            return
        widths = [max(0, int(c.width or 0)) for c in cols]
        if not sum(widths):
            widths = [1] * len(cols)
        xs = [box[0]]
        for w in widths:  # the columns' proportions over the frame's width
            xs.append(xs[-1] + (box[2] - box[0]) * w / sum(widths))
        heights = [max(0, int(r.height or 0)) * self.scale for r in rows]
        cells: list[tuple[int, int, Any, list[Para]]] = []
        for r, row in enumerate(rows):
            for c, cell in enumerate(row.cells):
                if cell.is_spanned or c >= len(cols):
                    continue
                paras = cell_paras(cell.text_frame, self.scale)
                cells.append((r, c, cell, paras))
                span_w = min(cell.span_width if cell.is_merge_origin else 1, len(cols) - c)
                if not (cell.is_merge_origin and cell.span_height > 1):
                    inset = _insets(cell, self.scale)
                    room = xs[c + span_w] - xs[c] - inset[0] - inset[2]
                    needed = layout(paras, max(room, 4.0)).height + inset[1] + inset[3]
                    heights[r] = max(heights[r], needed)  # rows grow to fit, as in PowerPoint
        ys = [box[1]]
        for h in heights:
            ys.append(ys[-1] + h)
        words: list[Word] = []
        for r, c, cell, paras in cells:
            span_w = min(cell.span_width if cell.is_merge_origin else 1, len(cols) - c)
            span_h = min(cell.span_height if cell.is_merge_origin else 1, len(rows) - r)
            rect = (xs[c], ys[r], xs[c + span_w], ys[r + span_h])
            fill = _THEME_TINT if r == 0 and table.first_row else "white"
            self.draw.rectangle(rect, fill=fill, outline=(170, 170, 170))
            inset = _insets(cell, self.scale)
            inner = (rect[0] + inset[0], rect[1] + inset[1], rect[2] - inset[2], rect[3] - inset[3])
            result, factor = fit_layout(paras, max(inner[2] - inner[0], 4.0), math.inf)
            anchor = frame_anchor(cell, "top")
            words += draw_layout(self.draw, paras, result, factor, inner, anchor, (key, r, c))
        self.units.append((key, words))

    def frame(self) -> None:
        """A thin border, so that a white slide stands out from a white page."""
        w, h = self.image.size
        self.draw.rectangle((0, 0, w - 1, h - 1), outline=(200, 200, 200))

    def notes(self, text: str) -> None:
        if not text:
            return
        width, height = self.image.size
        size = max(12, round(width / 64))
        margin = size
        paras = [Para(line, size) for line in text.split("\n")]
        result = layout(paras, width - 2 * margin)
        label_h = size * 1.6
        room = MAX_HEIGHT - height - label_h - 2 * margin
        while result.lines and result.height > room:  # a band within the height limit
            dropped = result.lines.pop()
            result.height -= dropped.height
        if not result.lines:
            return
        band = round(label_h + result.height + 2 * margin)
        image = Image.new("RGB", (width, height + band), (246, 246, 246))
        image.paste(self.image, (0, 0))
        draw = ImageDraw.Draw(image)
        draw.text((margin, height + margin), "Speaker notes", font=font(size, True), fill=TEXT_RGB)
        top = height + margin + label_h
        box = (float(margin), top, float(width - margin), top + result.height)
        words = draw_layout(draw, paras, result, 1.0, box, "top", "notes")
        self.image, self.draw = image, draw
        self.units.append((_NOTES_KEY, words))


def _group_xf(group: Any, xf: _Xf) -> _Xf:
    """The transform for a group's children: its child extent mapped onto its own box."""
    props = group._element.find(f"{_P}grpSpPr")
    xfrm = props.find(f"{_A}xfrm") if props is not None else None
    if xfrm is None:
        return xf

    def pair(tag: str, names: tuple[str, str]) -> tuple[float, float] | None:
        element = xfrm.find(f"{_A}{tag}")
        if element is None:
            return None
        return float(element.get(names[0], 0)), float(element.get(names[1], 0))

    off, ext = pair("off", ("x", "y")), pair("ext", ("cx", "cy"))
    ch_off, ch_ext = pair("chOff", ("x", "y")), pair("chExt", ("cx", "cy"))
    if off is None:
        return xf
    ch_off = ch_off or off
    sx = ext[0] / ch_ext[0] if ext and ch_ext and ch_ext[0] else 1.0
    sy = ext[1] / ch_ext[1] if ext and ch_ext and ch_ext[1] else 1.0
    # child x → parent x: off.x + (x - chOff.x) · sx; then the parent's own transform
    return _Xf(
        sx=xf.sx * sx,
        sy=xf.sy * sy,
        tx=xf.tx + xf.sx * (off[0] - ch_off[0] * sx),
        ty=xf.ty + xf.sy * (off[1] - ch_off[1] * sy),
    )


def _insets(frame: Any, scale: float) -> tuple[float, float, float, float]:
    """Left, top, right, bottom margins of a text frame or table cell, in pixels."""
    defaults = (91440, 45720, 91440, 45720)  # PowerPoint's: 0.1 in, 0.05 in
    values: list[float] = []
    for name, default in zip(
        ("margin_left", "margin_top", "margin_right", "margin_bottom"), defaults, strict=True
    ):
        try:
            value = getattr(frame, name) if frame is not None else None
        except Exception:
            value = None
        values.append(max(0, int(value if value is not None else default)) * scale)
    return (values[0], values[1], values[2], values[3])


def _fill(shape: Any) -> tuple[int, int, int] | None:
    """A light tint of the shape's fill, or None where it has none."""
    from pptx.enum.dml import MSO_FILL

    try:
        fill = shape.fill
        kind = fill.type
    except Exception:
        return None
    if kind == MSO_FILL.SOLID:
        try:
            rgb = fill.fore_color.rgb
        except Exception:
            return _THEME_TINT
        return _tint((int(rgb[0]), int(rgb[1]), int(rgb[2])))
    if kind in (MSO_FILL.GRADIENT, MSO_FILL.PATTERNED, MSO_FILL.PICTURE, MSO_FILL.TEXTURED):
        return _THEME_TINT
    if kind is None:  # no fill of its own: the shape's style may give one
        ref = shape._element.find(f"{_P}style/{_A}fillRef")
        if ref is not None and ref.get("idx", "0") != "0":
            return _THEME_TINT
    return None


def _tint(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    r, g, b = (round(255 * (1 - _TINT) + v * _TINT) for v in rgb)
    return (r, g, b)


def _is_drawn_shape(shape: Any) -> bool:
    """An autoshape or line (outlined), not a text box or placeholder (text only)."""
    try:
        kind = shape.shape_type
    except Exception:
        return False
    return kind in (MSO_SHAPE_TYPE.AUTO_SHAPE, MSO_SHAPE_TYPE.LINE, MSO_SHAPE_TYPE.FREEFORM)


def _chart_title(shape: Any) -> str:
    try:
        chart = shape.chart
        if chart.has_title:
            return str(chart.chart_title.text_frame.text).strip()[:60]
    except Exception:
        return ""
    return ""


def _object_name(kind: Any) -> str:
    names: dict[Any, str] = {
        MSO_SHAPE_TYPE.MEDIA: "Media",
        MSO_SHAPE_TYPE.EMBEDDED_OLE_OBJECT: "Embedded object",
        MSO_SHAPE_TYPE.LINKED_OLE_OBJECT: "Linked object",
        MSO_SHAPE_TYPE.DIAGRAM: "Diagram",
    }
    return names.get(kind, "Object")
