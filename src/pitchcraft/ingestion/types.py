"""What parsers produce and what chunking makes of it."""

from __future__ import annotations

from dataclasses import dataclass, field


class ParseFailure(Exception):
    """A document that cannot be indexed; the message is shown to the person who uploaded it.

    Examples: "password-protected PDF", "empty document", "no extractable text".
    """


@dataclass(frozen=True)
class Block:
    """A run of text in reading order: a paragraph, a table rendered as text, a slide's notes.

    `page` is the 1-based PDF page or PPTX slide (None where the format has no pages);
    `section` is the nearest heading above it, when the format has headings (a
    spreadsheet's sheet name); `rows` the first and last spreadsheet row it holds.
    """

    text: str
    page: int | None = None
    section: str | None = None
    rows: tuple[int, int] | None = None


@dataclass
class ParsedDocument:
    blocks: list[Block]
    # Pages or slides in the file, None where the format has none.
    pages: int | None = None
    # Notes for the person, e.g. "3 pages had no text and were read with OCR".
    notes: list[str] = field(default_factory=list)

    @property
    def char_count(self) -> int:
        return sum(len(b.text) for b in self.blocks)


@dataclass(frozen=True)
class Chunk:
    """A passage to embed and index."""

    index: int
    text: str
    page: int | None
    section: str | None
    rows: tuple[int, int] | None = None  # a spreadsheet's first and last row in the chunk
