"""One parser per format; `parse_file` picks it by the detected kind.

Parser modules are imported when first needed, so importing this package (for example by
`detect`) stays cheap; the sandbox's forkserver imports them all up front.
"""

from __future__ import annotations

from pathlib import Path

from pitchcraft.ingestion.types import ParsedDocument, ParseFailure

DEFAULT_MAX_ROWS = 20_000  # SPREADSHEET_MAX_ROWS

PARSER_MODULES = (
    "pitchcraft.ingestion.parsers.pdf",
    "pitchcraft.ingestion.parsers.docx",
    "pitchcraft.ingestion.parsers.pptx",
    "pitchcraft.ingestion.parsers.ppt",
    "pitchcraft.ingestion.parsers.image",
    "pitchcraft.ingestion.parsers.text",
    "pitchcraft.ingestion.parsers.html",
    "pitchcraft.ingestion.parsers.spreadsheet",
)
_TEXT_KINDS = {"text", "markdown", "html", "csv"}


def parse_file(
    path: Path,
    kind: str,
    *,
    ocr: bool,
    soffice: str | None,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ParsedDocument:
    """Parse `path` as `kind` (from `detect`); ParseFailure says why a document can't be read."""
    doc = _dispatch(path, kind, ocr=ocr, soffice=soffice, max_rows=max_rows)
    blocks = [b for b in doc.blocks if b.text.strip()]
    if not blocks:
        raise ParseFailure("empty document" if kind in _TEXT_KINDS else "no extractable text")
    doc.blocks = blocks
    return doc


def _dispatch(
    path: Path, kind: str, *, ocr: bool, soffice: str | None, max_rows: int
) -> ParsedDocument:
    if kind == "pdf":
        from pitchcraft.ingestion.parsers import pdf

        return pdf.parse(path, ocr=ocr)
    if kind == "docx":
        from pitchcraft.ingestion.parsers import docx

        return docx.parse(path, ocr=ocr)
    if kind == "pptx":
        from pitchcraft.ingestion.parsers import pptx

        return pptx.parse(path, ocr=ocr)
    if kind == "ppt":
        from pitchcraft.ingestion.parsers import ppt

        return ppt.parse(path, ocr=ocr, soffice=soffice)
    if kind == "image":
        from pitchcraft.ingestion.parsers import image

        return image.parse(path, ocr=ocr)
    if kind in ("text", "markdown"):
        from pitchcraft.ingestion.parsers import text

        return text.parse(path, ocr=ocr, markdown=kind == "markdown")
    if kind == "html":
        from pitchcraft.ingestion.parsers import html

        return html.parse(path, ocr=ocr)
    if kind == "xlsx":
        from pitchcraft.ingestion.parsers import spreadsheet

        return spreadsheet.parse_xlsx(path, max_rows=max_rows)
    if kind == "csv":
        from pitchcraft.ingestion.parsers import spreadsheet

        return spreadsheet.parse_csv(path, max_rows=max_rows)
    raise ParseFailure(f"unsupported file type ({kind})")
