"""HTML with BeautifulSoup (lxml): visible text, headings as sections, tables as rows."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup
from bs4.element import Comment, Doctype, NavigableString, ProcessingInstruction, Tag

from pitchcraft.ingestion.cleanup import clean_line, has_text, repair_mojibake
from pitchcraft.ingestion.parsers.text import bom_encoding, decode
from pitchcraft.ingestion.types import Block, ParsedDocument, ParseFailure

_INVISIBLE = {"script", "style", "noscript", "template", "head", "svg", "canvas", "iframe"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Elements that start a new block of text.
_BLOCK_TAGS = {
    "address", "article", "aside", "blockquote", "body", "dd", "details", "dialog", "div",
    "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "summary", "ul", "br", "caption", "html",
}  # fmt: skip


class _Walker:
    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.section: str | None = None
        self.inline: list[str] = []

    def flush(self) -> None:
        text = clean_line(" ".join(self.inline))
        self.inline.clear()
        if text:
            self.blocks.append(Block(text=text, section=self.section))

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment | Doctype | ProcessingInstruction):
                continue
            if isinstance(child, NavigableString):
                self.inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            name = (child.name or "").lower()
            if name in _INVISIBLE:
                continue
            if name in _HEADINGS:
                self.flush()
                heading = clean_line(child.get_text(" "))
                if heading:
                    self.section = heading
                    self.blocks.append(Block(text=heading, section=heading))
            elif name == "table":
                self.flush()
                self.table(child)
            elif name in _BLOCK_TAGS:
                self.flush()
                self.walk(child)
                self.flush()
            else:
                self.walk(child)

    def table(self, table: Tag) -> None:
        rows: list[str] = []
        caption = table.find("caption")
        if isinstance(caption, Tag):
            text = clean_line(caption.get_text(" "))
            if text:
                rows.append(text)
        for tr in table.find_all("tr"):
            if not isinstance(tr, Tag) or tr.find_parent("table") is not table:
                continue  # rows of nested tables come with their cell's text
            cells = [
                clean_line(cell.get_text(" "))
                for cell in tr.find_all(["td", "th"], recursive=False)
                if isinstance(cell, Tag)
            ]
            line = " | ".join(c for c in cells if c)
            if line:
                rows.append(line)
        if rows:
            self.blocks.append(Block(text="\n".join(rows), section=self.section))


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)


def _decode_html(data: bytes) -> str:
    """BOM or UTF-8 first; then the charset the page declares; then the usual guessing."""
    if bom_encoding(data) is None:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            declared = _META_CHARSET.search(data[:4096])
            if declared:
                try:
                    return data.decode(declared.group(1).decode("ascii"))
                except (LookupError, UnicodeDecodeError):
                    pass
    return decode(data)


def parse(path: Path, *, ocr: bool = False) -> ParsedDocument:
    soup = BeautifulSoup(repair_mojibake(_decode_html(path.read_bytes())), "lxml")
    for tag in soup.find_all(list(_INVISIBLE)):
        if isinstance(tag, Tag) and tag.name != "head":
            tag.decompose()
    walker = _Walker()
    title = soup.find("title")
    root = soup.body or soup
    walker.walk(root)
    walker.flush()
    blocks = walker.blocks
    if not blocks and isinstance(title, Tag) and has_text(title.get_text()):
        blocks = [Block(text=clean_line(title.get_text(" ")))]
    if not blocks:
        raise ParseFailure("empty document")
    return ParsedDocument(blocks=blocks)
