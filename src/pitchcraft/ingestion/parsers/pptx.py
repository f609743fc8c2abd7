"""PPTX with python-pptx: per slide the text of every shape (groups nested to any depth,
tables as rows of " | " cells, placeholders, SmartArt), then the slide's notes.

page = slide number, section = the slide's title. Shapes are read top to bottom, left to
right. A part that cannot be read is skipped with a note rather than failing the deck.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pptx
from lxml import etree  # type: ignore[import-untyped]
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER

from pitchcraft.ingestion.archive import check_ooxml_zip
from pitchcraft.ingestion.cleanup import clean_line, clean_text, has_text
from pitchcraft.ingestion.types import Block, ParsedDocument, ParseFailure

_A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
_DGM_URI = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
_R_DM = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}dm"
_TITLES = {PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.VERTICAL_TITLE}
_MAX_DIAGRAM_BYTES = 20 * 1024 * 1024


def parse(path: Path, *, ocr: bool = False) -> ParsedDocument:
    check_ooxml_zip(path, "PPTX")
    try:
        presentation = pptx.Presentation(str(path))
        slides = list(presentation.slides)
    except Exception as exc:
        raise ParseFailure("damaged or truncated PPTX file") from exc
    blocks: list[Block] = []
    unreadable: list[int] = []
    for number, slide in enumerate(slides, start=1):
        try:
            blocks.extend(_slide_blocks(slide, number))
        except Exception:
            unreadable.append(number)
    if not blocks:
        if unreadable:
            raise ParseFailure("damaged PPTX file: no slide could be read")
        raise ParseFailure("no extractable text")
    notes = []
    if unreadable:
        listed = ", ".join(str(n) for n in unreadable[:10])
        notes.append(f"slides that could not be read and were skipped: {listed}")
    return ParsedDocument(blocks=blocks, pages=len(slides), notes=notes)


def _slide_blocks(slide: Any, number: int) -> list[Block]:
    title = _title(slide)
    blocks = [Block(text=t, page=number, section=title) for t in _shape_texts(slide.shapes)]
    notes = _notes(slide)
    if notes:
        blocks.append(Block(text=notes, page=number, section=title))
    return blocks


def _title(slide: Any) -> str | None:
    for shape in slide.placeholders:
        try:
            kind = shape.placeholder_format.type
        except Exception:  # noqa: S112 - a placeholder without a readable type is not the title
            continue
        if kind in _TITLES and shape.has_text_frame:
            text = clean_line(" ".join(shape.text_frame.text.split()))
            if text:
                return text
    return None


def _position(shape: Any) -> tuple[int, int]:
    try:
        return (int(shape.top or 0), int(shape.left or 0))
    except Exception:
        return (0, 0)


def _shape_texts(shapes: Iterable[Any]) -> Iterator[str]:
    for shape in sorted(shapes, key=_position):
        try:
            kind = shape.shape_type
        except Exception:
            kind = None
        if kind == MSO_SHAPE_TYPE.GROUP:
            yield from _shape_texts(shape.shapes)
            continue
        if getattr(shape, "has_text_frame", False):
            text = _text_frame(shape.text_frame)
        elif getattr(shape, "has_table", False):
            text = _table(shape.table)
        else:
            text = _smartart(shape)
        if text:
            yield text


def _text_frame(frame: Any) -> str:
    lines = [clean_line("".join(_runs(p))) for p in frame.paragraphs]
    return "\n".join(line for line in lines if line)


def _runs(paragraph: Any) -> Iterator[str]:
    """Text of runs, fields and line breaks in a paragraph."""
    for child in paragraph._p.iterchildren():
        tag = child.tag
        if tag in (_A + "r", _A + "fld"):
            t = child.find(_A + "t")
            if t is not None and t.text:
                yield t.text
        elif tag == _A + "br":
            yield " "


def _table(table: Any) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            if cell.is_spanned:
                continue
            cells.append(" ".join(_text_frame(cell.text_frame).split("\n")))
        line = " | ".join(cells).strip(" |")
        if line:
            rows.append(line)
    return "\n".join(rows)


def _smartart(shape: Any) -> str:
    """Text of a SmartArt diagram, kept in the diagram's data part."""
    element = shape._element
    data = element.find(f".//{_A}graphicData")
    if data is None or data.get("uri") != _DGM_URI:
        return ""
    rel_ids = element.find(".//{*}relIds")
    rid = rel_ids.get(_R_DM) if rel_ids is not None else None
    if not rid:
        return ""
    try:
        part = shape.part.related_part(rid)
        blob = part.blob
        if len(blob) > _MAX_DIAGRAM_BYTES:
            return ""
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        root = etree.fromstring(blob, parser=parser)
    except Exception:
        return ""
    texts: list[str] = []
    for p in root.iter(_A + "p"):
        line = clean_line("".join(t.text or "" for t in p.iter(_A + "t")))
        if line:
            texts.append(line)
    return "\n".join(texts)


def _notes(slide: Any) -> str:
    if not slide.has_notes_slide:
        return ""
    frame = slide.notes_slide.notes_text_frame
    if frame is None:
        return ""
    text = clean_text(frame.text)
    return text if has_text(text) else ""
