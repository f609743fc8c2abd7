"""DOCX with python-docx, reading the body XML directly in document order.

Paragraphs, headings (Heading N / Title styles or an outline level → the section of what
follows), tables (a row per line, cells joined with " | ", nested tables as lines after their
row), content controls, hyperlinks, text boxes. Walking the XML instead of python-docx's
paragraph objects keeps an 800-page document to a fraction of a second.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx

from pitchcraft.ingestion.archive import check_ooxml_zip
from pitchcraft.ingestion.cleanup import clean_line
from pitchcraft.ingestion.types import Block, ParsedDocument, ParseFailure

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_P, _TBL, _TR, _TC = _W + "p", _W + "tbl", _W + "tr", _W + "tc"
_T, _TAB, _BR, _CR = _W + "t", _W + "tab", _W + "br", _W + "cr"
_NB_HYPHEN, _SYM = _W + "noBreakHyphen", _W + "sym"
_TXBX = _W + "txbxContent"
_FALLBACK = _MC + "Fallback"
_DEL = _W + "del"
# Containers whose children are read as if they were in the parent.
_TRANSPARENT = {_W + "sdt", _W + "sdtContent", _W + "customXml", _W + "ins", _W + "smartTag"}
_HEADING_NAME = re.compile(r"^(heading\s*\d|title)$", re.IGNORECASE)


def parse(path: Path, *, ocr: bool = False) -> ParsedDocument:
    check_ooxml_zip(path, "DOCX")
    try:
        document = docx.Document(str(path))
        body = document.element.body
        headings = _heading_styles(document)
    except Exception as exc:
        raise ParseFailure("damaged or truncated DOCX file") from exc
    walker = _Walker(headings)
    walker.container(body)
    if not walker.blocks:
        raise ParseFailure("no extractable text")
    return ParsedDocument(blocks=walker.blocks, pages=None)


def _heading_styles(document: Any) -> set[str]:
    """Ids of paragraph styles that are headings: by name, or by an outline level (inherited)."""
    styles: dict[str, tuple[str, int | None, str | None]] = {}
    root = document.styles.element
    for style in root.iterchildren(_W + "style"):
        if style.get(_W + "type") != "paragraph":
            continue
        style_id = style.get(_W + "styleId")
        if not style_id:
            continue
        name_el = style.find(_W + "name")
        name = name_el.get(_W + "val", "") if name_el is not None else ""
        level_el = style.find(f"{_W}pPr/{_W}outlineLvl")
        level = _int(level_el.get(_W + "val")) if level_el is not None else None
        based_el = style.find(_W + "basedOn")
        based = based_el.get(_W + "val") if based_el is not None else None
        styles[style_id] = (name, level, based)

    def is_heading(style_id: str, depth: int = 0) -> bool:
        name, level, based = styles[style_id]
        if _HEADING_NAME.match(name.strip()):
            return True
        if level is not None:
            return 0 <= level <= 8
        return based in styles and depth < 10 and is_heading(based, depth + 1)

    return {sid for sid in styles if is_heading(sid)}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Walker:
    def __init__(self, headings: set[str]) -> None:
        self.headings = headings
        self.blocks: list[Block] = []
        self.section: str | None = None

    def container(self, element: Any) -> None:
        """Body, table cell, text box, content control: paragraphs and tables in order."""
        for child in element.iterchildren():
            tag = child.tag
            if tag == _P:
                self.paragraph(child)
            elif tag == _TBL:
                lines = list(self.table_lines(child))
                if lines:
                    self.blocks.append(Block(text="\n".join(lines), section=self.section))
            elif tag in _TRANSPARENT:
                self.container(child)

    def paragraph(self, p: Any) -> None:
        text = clean_line(_paragraph_text(p))
        if text:
            if self._is_heading(p):
                self.section = text
            self.blocks.append(Block(text=text, section=self.section))
        for box in _text_boxes(p):
            self.container(box)

    def _is_heading(self, p: Any) -> bool:
        ppr = p.find(_W + "pPr")
        if ppr is None:
            return False
        level = ppr.find(_W + "outlineLvl")
        if level is not None:
            lvl = _int(level.get(_W + "val"))
            return lvl is not None and 0 <= lvl <= 8
        style = ppr.find(_W + "pStyle")
        return style is not None and style.get(_W + "val") in self.headings

    def table_lines(self, tbl: Any) -> Iterator[str]:
        for tr in _children(tbl, _TR):
            cells: list[str] = []
            nested: list[str] = []
            for tc in _children(tr, _TC):
                if _continues_merge(tc):
                    continue
                parts: list[str] = []
                for child in _flatten(tc):
                    if child.tag == _P:
                        text = clean_line(_paragraph_text(child))
                        if text:
                            parts.append(text)
                    elif child.tag == _TBL:
                        nested.extend(self.table_lines(child))
                cells.append(" ".join(parts))
            line = " | ".join(cells).strip(" |")
            if line:
                yield line
            yield from nested


def _children(element: Any, tag: str) -> Iterator[Any]:
    """Children with `tag`, looking through content controls and similar wrappers."""
    for child in element.iterchildren():
        if child.tag == tag:
            yield child
        elif child.tag in _TRANSPARENT:
            yield from _children(child, tag)


def _flatten(element: Any) -> Iterator[Any]:
    for child in element.iterchildren():
        if child.tag in _TRANSPARENT:
            yield from _flatten(child)
        else:
            yield child


def _continues_merge(tc: Any) -> bool:
    merge = tc.find(f"{_W}tcPr/{_W}vMerge")
    return merge is not None and merge.get(_W + "val", "continue") == "continue"


def _paragraph_text(p: Any) -> str:
    """Text of the runs of a paragraph (hyperlinks, fields, insertions included; deletions,
    text boxes and compatibility fall-backs left out)."""
    parts: list[str] = []
    stack = [iter(p.iterchildren())]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
            continue
        tag = child.tag
        if not isinstance(tag, str) or tag in (_TXBX, _FALLBACK, _DEL):
            continue
        if tag == _T:
            parts.append(child.text or "")
        elif tag in (_TAB, _BR, _CR):
            parts.append(" ")
        elif tag == _NB_HYPHEN:
            parts.append("-")
        elif tag == _SYM:
            parts.append(" ")
        else:
            stack.append(iter(child.iterchildren()))
    return "".join(parts)


def _text_boxes(p: Any) -> Iterator[Any]:
    """Text boxes anchored in a paragraph: not the duplicate in a compatibility fall-back, not
    boxes inside other boxes (those are read with their box)."""
    for box in p.iter(_TXBX):
        ancestor = box.getparent()
        while ancestor is not None and ancestor is not p:
            if ancestor.tag in (_FALLBACK, _TXBX):
                break
            ancestor = ancestor.getparent()
        else:
            yield box
