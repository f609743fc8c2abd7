"""Text drawn in a box with Pillow, word by word, so that each word's box is known and a
passage can be highlighted on the lines that show it. Used for slides drawn without
LibreOffice."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from PIL import ImageDraw

from pitchcraft.documents.preview.base import Box, Font, font
from pitchcraft.documents.preview.match import Word

TEXT_RGB = (34, 34, 34)
_LINE = 1.2  # line height, in font sizes
_PARA_GAP = 0.2  # extra space after a paragraph, in font sizes
_SHRINK = 0.85  # one step of shrinking text that overflows its box
_MIN_SCALE = 0.45


@dataclass(frozen=True)
class Para:
    """A paragraph to draw: its text (as the parser extracted it) and how it looks."""

    text: str
    size: float  # font size in pixels
    bold: bool = False
    align: str = "left"  # "left", "center" or "right"
    indent: float = 0.0  # pixels
    bullet: bool = False


@dataclass
class _Line:
    para: int
    words: list[str]
    widths: list[float]
    joins: list[bool]  # a piece of a word broken to fit, continued on the next line
    size: int
    bold: bool
    first: bool  # the paragraph's first line (where its bullet goes)

    @property
    def height(self) -> float:
        return self.size * _LINE


@dataclass
class Layout:
    lines: list[_Line]
    height: float


def layout(paras: Sequence[Para], width: float, scale: float = 1.0) -> Layout:
    """The paragraphs wrapped to `width` pixels at `scale` times their font size."""
    lines: list[_Line] = []
    height = 0.0
    for index, para in enumerate(paras):
        size = max(4, round(para.size * scale))
        face = font(size, para.bold)
        space = face.getlength(" ")
        room = max(width - para.indent * scale, size * 2.0)
        words = para.text.split()
        current = _Line(index, [], [], [], size, para.bold, True)
        used = 0.0
        for word in words:
            pieces = _pieces(word, face, room)
            for k, piece in enumerate(pieces):
                w = face.getlength(piece)
                if current.words and used + space + w > room:
                    lines.append(current)
                    height += current.height
                    current = _Line(index, [], [], [], size, para.bold, False)
                    used = 0.0
                used += (space if current.words else 0.0) + w
                current.words.append(piece)
                current.widths.append(w)
                current.joins.append(k < len(pieces) - 1)
        lines.append(current)  # an empty paragraph still takes a line
        height += current.height + size * _PARA_GAP
    return Layout(lines, height)


def _pieces(word: str, face: Font, room: float) -> list[str]:
    """A word too wide for the box cut into pieces that fit (a long URL, say)."""
    if face.getlength(word) <= room:
        return [word]
    pieces: list[str] = []
    current = ""
    for ch in word:
        if current and face.getlength(current + ch) > room:
            pieces.append(current)
            current = ""
        current += ch
    if current:
        pieces.append(current)
    return pieces


def fit_layout(paras: Sequence[Para], width: float, height: float) -> tuple[Layout, float]:
    """The layout, with text shrunk (as PowerPoint's autofit does) while it overflows the
    box, down to a limit; and the scale used."""
    scale = 1.0
    result = layout(paras, width, scale)
    while result.height > height and scale * _SHRINK >= _MIN_SCALE:
        scale *= _SHRINK
        result = layout(paras, width, scale)
    return result, scale


def draw_layout(
    draw: ImageDraw.ImageDraw,
    paras: Sequence[Para],
    result: Layout,
    scale: float,
    box: Box,
    anchor: str,
    key: Hashable,
) -> list[Word]:
    """Draw the laid-out text in `box` ("top", "middle" or "bottom" anchored); the words
    drawn, each line keyed by (`key`, line number)."""
    x0, y0, x1, y1 = box
    if anchor == "middle":
        y = y0 + (y1 - y0 - result.height) / 2
    elif anchor == "bottom":
        y = y1 - result.height
    else:
        y = y0
    y = max(y, y0) if result.height <= y1 - y0 else y0
    words: list[Word] = []
    for number, line in enumerate(result.lines):
        para = paras[line.para]
        face = font(line.size, line.bold)
        space = face.getlength(" ")
        indent = para.indent * scale
        total = sum(line.widths) + space * max(0, len(line.words) - 1)
        if para.align == "center":
            x = x0 + indent + (x1 - x0 - indent - total) / 2
        elif para.align == "right":
            x = x1 - total
        else:
            x = x0 + indent
        top = y + line.size * (_LINE - 1) / 2
        if para.bullet and line.first and line.words:
            draw.text((x - line.size * 0.8, top), "\u2022", font=face, fill=TEXT_RGB)
        for word, w, joins in zip(line.words, line.widths, line.joins, strict=True):
            draw.text((x, top), word, font=face, fill=TEXT_RGB)
            words.append(Word(word, (x, y, x + w, y + line.height), (key, number), joins))
            x += w + space
        y += line.height
        if number + 1 == len(result.lines) or result.lines[number + 1].para != line.para:
            y += line.size * _PARA_GAP
    return words
