"""Cut a parsed document into passages to embed.

Consecutive blocks of the same page (or slide) and section are packed into chunks of about
`size` characters; a block too long for one chunk is split at paragraph, then line, then
sentence, then word boundaries (a hard cut only for a run of text without any). Consecutive
chunks of one page and section share about `overlap` characters. A chunk never spans two
pages or two sections, so each carries its page and section. Linear in the text's length.

Spreadsheet rows (blocks with `rows`) are packed whole, without overlap: a chunk is a run of
consecutive rows of one sheet, so its source reads "sheet "Plans", rows 2-31". Only a single
row longer than a chunk is cut, and each of its pieces still names that row.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pitchcraft.ingestion.types import Block, Chunk, ParsedDocument

# A chunk may grow to this multiple of `size` to avoid leaving a short one behind.
_STRETCH = 1.2
# Below this share of `size`, a chunk keeps taking pieces up to the stretched size.
_FILL = 0.8

_LEVELS = (
    re.compile(r"\n\s*\n"),  # paragraphs
    re.compile(r"\n"),  # lines
    re.compile("(?<=[.!?\u2026:;])\\s+|(?<=[\u3002\uff01\uff1f])"),  # sentences (also CJK)
    re.compile(r"\s+"),  # words
)


@dataclass(frozen=True)
class _Piece:
    text: str
    sep: str  # what joins it to the piece before it: "\n" or " "


def chunk(doc: ParsedDocument, *, size: int = 1000, overlap: int = 150) -> list[Chunk]:
    size = max(size, 50)
    overlap = max(0, min(overlap, size // 3))
    chunks: list[Chunk] = []
    if any(b.rows is not None for b in doc.blocks):
        return _row_chunks(doc.blocks, size)
    for page, section, texts in _groups(doc.blocks):
        for text in _pack(texts, size, overlap):
            chunks.append(Chunk(index=len(chunks), text=text, page=page, section=section))
    return chunks


def _row_chunks(blocks: list[Block], size: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    run: list[Block] = []
    length = 0

    def close() -> None:
        if run:
            first, last = run[0].rows or (0, 0), run[-1].rows or (0, 0)
            text = "\n".join(b.text for b in run)
            chunks.append(Chunk(len(chunks), text, None, run[0].section, (first[0], last[1])))
            run.clear()

    stretched = int(size * _STRETCH)
    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        if len(text) > stretched:  # one row longer than a chunk: alone, in pieces
            close()
            length = 0
            for piece in _split(text, size, "\n"):
                chunks.append(
                    Chunk(len(chunks), piece.text.strip(), None, block.section, block.rows)
                )
            continue
        if run and (run[0].section != block.section or length + 1 + len(text) > size):
            close()
            length = 0
        run.append(Block(text, block.page, block.section, block.rows))
        length += len(text) + (1 if length else 0)
    close()
    return chunks


def _groups(blocks: list[Block]) -> Iterator[tuple[int | None, str | None, list[str]]]:
    """Runs of consecutive blocks with the same page and section (empty blocks dropped).

    A section that is nothing but its heading (a chapter title right before its first
    subsection) goes with the section after it on the same page rather than alone.
    """
    runs: list[tuple[int | None, str | None, list[str]]] = []
    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        if runs and (runs[-1][0], runs[-1][1]) == (block.page, block.section):
            runs[-1][2].append(text)
        else:
            runs.append((block.page, block.section, [text]))
    carried: list[str] = []
    for i, (page, section, texts) in enumerate(runs):
        texts = carried + texts
        carried = []
        heading_only = len(texts) == 1 and texts[0] == section
        if heading_only and i + 1 < len(runs) and runs[i + 1][0] == page:
            carried = texts
            continue
        yield page, section, texts


def _pack(texts: list[str], size: int, overlap: int) -> Iterator[str]:
    stretched = int(size * _STRETCH)
    total = sum(len(t) for t in texts) + len(texts) - 1
    if total <= stretched:
        yield "\n".join(texts)
        return
    pieces = [p for t in texts for p in _split(t, size - overlap, "\n")]
    current: list[str] = []
    length = 0
    fresh = False  # holds text beyond the overlap carried from the previous chunk
    for i, piece in enumerate(pieces):
        added = len(piece.text) + (len(piece.sep) if current else 0)
        last = i == len(pieces) - 1
        limit = stretched if (length < size * _FILL or last) else size
        if fresh and length + added > limit:
            text = "".join(current)
            yield text
            tail = _tail(text, overlap)
            current, length, fresh = ([tail], len(tail), False) if tail else ([], 0, False)
            added = len(piece.text) + (len(piece.sep) if current else 0)
        current.append((piece.sep if current else "") + piece.text)
        length += added
        fresh = True
    if fresh:
        yield "".join(current)


def _split(text: str, limit: int, sep: str, level: int = 0) -> list[_Piece]:
    """`text` in pieces of at most `limit` characters, cut at the coarsest boundary that works."""
    if len(text) <= limit:
        return [_Piece(text, sep)]
    if level == len(_LEVELS):
        return [
            _Piece(text[i : i + limit], sep if i == 0 else "") for i in range(0, len(text), limit)
        ]
    pattern = _LEVELS[level]
    pieces: list[_Piece] = []
    buffer: list[str] = []
    buffer_len = 0
    buffer_sep = sep
    parts: list[tuple[str, str]] = []  # (separator before it, part)
    start, before = 0, ""
    for match in pattern.finditer(text):
        if match.start() > start:
            parts.append((before, text[start : match.start()]))
        start, before = match.end(), match.group()
    parts.append((before, text[start:]))
    first = True
    for raw_sep, part in parts:
        if not part.strip():
            continue
        joiner = sep if first else ("\n" if "\n" in raw_sep else " ")
        first = False
        if len(part) > limit:
            if buffer:
                pieces.append(_Piece("".join(buffer), buffer_sep))
                buffer, buffer_len = [], 0
            pieces.extend(_split(part, limit, joiner, level + 1))
            continue
        if buffer and buffer_len + len(joiner) + len(part) > limit:
            pieces.append(_Piece("".join(buffer), buffer_sep))
            buffer, buffer_len = [], 0
        if buffer:
            buffer.append(joiner + part)
            buffer_len += len(joiner) + len(part)
        else:
            buffer, buffer_len, buffer_sep = [part], len(part), joiner
    if buffer:
        pieces.append(_Piece("".join(buffer), buffer_sep))
    return pieces


def _tail(text: str, overlap: int) -> str:
    """The last `overlap` characters or so of `text`, starting at a word."""
    if overlap <= 0:
        return ""
    if len(text) <= overlap:
        return text
    tail = text[-overlap:]
    if not text[-overlap - 1].isspace():
        cut = re.search(r"\s", tail)
        if cut is not None and cut.end() < len(tail):
            tail = tail[cut.end() :]
    return tail.strip()
