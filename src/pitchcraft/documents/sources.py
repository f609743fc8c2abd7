"""Sources that open where they stand: a passage's original file, its page as a picture with
the passage highlighted, or (for documents without pages) the passage among its neighbours.

Every method takes the user first and finds the document through `Documents.get`, so a
document of another user is NotFound, as one that never existed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import filetype  # type: ignore[import-untyped]

from pitchcraft.core.errors import AppError, NotFound
from pitchcraft.documents import preview
from pitchcraft.documents.models import Document
from pitchcraft.documents.preview.office import NEEDS_LIBREOFFICE
from pitchcraft.documents.service import Documents
from pitchcraft.documents.storage import FileStore
from pitchcraft.ingestion.parsers.ppt import find_soffice
from pitchcraft.ingestion.parsers.spreadsheet import table_rows
from pitchcraft.ingestion.sandbox import run_sandboxed
from pitchcraft.ingestion.types import ParseFailure
from pitchcraft.vectors.base import MAX_PASSAGES, Hit, VectorIndex

MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "ppt": "application/vnd.ms-powerpoint",
    "text": "text/plain",
    "markdown": "text/markdown",
    "html": "text/html",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}
OCTET_STREAM = "application/octet-stream"
SPREADSHEET_KINDS = ("xlsx", "csv")
MAX_TABLE_ROWS = 200  # rows the source viewer's table shows at most
DEFAULT_RADIUS = 2
MAX_RADIUS = 5
MAX_HIGHLIGHT_CHARS = 5000
# How much of a stored snippet is enough to recognise its passage (a long one may be trimmed).
_SNIPPET_HEAD = 300
_SPACES = re.compile(r"\s+")


class NoPages(AppError):
    """The document has no pages to show (a Word, text, Markdown or HTML file)."""

    status = 422
    code = "document_has_no_pages"


class PreviewFailed(AppError):
    """The stored file could not be drawn: damaged, password-protected, too slow, too big."""

    status = 422
    code = "preview_failed"


@dataclass(frozen=True)
class Original:
    """An uploaded file as it was received."""

    path: Path
    filename: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Neighbour:
    chunk_index: int
    text: str
    focus: bool
    page: int | None
    section: str | None


@dataclass(frozen=True)
class InContext:
    document_id: str
    filename: str
    chunk_index: int
    passages: list[Neighbour]


@dataclass(frozen=True)
class RowsTable:
    """Rows of a spreadsheet as the source viewer shows them: (row number, cells)."""

    sheet: str | None
    header: list[str] | None
    rows: list[tuple[int, list[str]]]


@dataclass
class Sources:
    documents: Documents
    store: FileStore
    index: Callable[[], VectorIndex]
    soffice: str | None = None  # SOFFICE_PATH; unset means `soffice` on PATH, if any
    timeout_s: float = 60.0
    memory_mb: int = 2048

    def document(self, user_id: int, document_id: str) -> Document:
        return self.documents.get(user_id, document_id)

    def original(self, user_id: int, document_id: str) -> Original:
        doc = self.documents.get(user_id, document_id)
        path = self._path(doc)
        return Original(
            path=path, filename=doc.filename, media_type=media_type(doc, path), size=doc.size
        )

    def original_bytes(self, user_id: int, document_id: str) -> bytes:
        return self.original(user_id, document_id).path.read_bytes()

    def page_image(
        self,
        user_id: int,
        document_id: str,
        page: int,
        highlight: str | None = None,
        *,
        width: int = 1200,
    ) -> bytes:
        """Page `page` (1-based) as a PNG, `highlight` marked where it is found on it.

        NotFound: no such document (or another user's), or no such page. NoPages: the kind
        has none. PreviewFailed: the file cannot be drawn. Rendering runs sandboxed, with a
        time and memory limit, as parsing does."""
        doc = self.documents.get(user_id, document_id)
        if doc.file_type not in preview.PAGED_KINDS:
            raise NoPages(
                f"{doc.filename} has no pages to show; open the passage in its context instead."
            )
        if page < 1:
            raise _no_page(page)
        # LibreOffice as the parser finds it: the configured binary, else one on PATH.
        soffice = find_soffice(self.soffice) if doc.file_type in ("pptx", "ppt") else None
        if doc.file_type == "ppt" and soffice is None:
            # Not a missing page: the slide exists, this server cannot draw it.
            raise PreviewFailed(f"{doc.filename}: {NEEDS_LIBREOFFICE}.")
        path = self._path(doc)
        text = (highlight or "").strip()[:MAX_HIGHLIGHT_CHARS] or None
        try:
            return preview.render_sandboxed(
                path,
                doc.file_type,
                page,
                text,
                soffice=soffice,
                width=width,
                timeout_s=self.timeout_s,
                memory_mb=self.memory_mb,
            )
        except preview.PageNotFound as exc:
            raise _no_page(page, str(exc)) from exc
        except preview.PreviewError as exc:
            raise PreviewFailed(f"This page of {doc.filename} cannot be shown: {exc}.") from exc

    def in_context(
        self, user_id: int, document_id: str, chunk_index: int, radius: int = DEFAULT_RADIUS
    ) -> InContext:
        """Passage `chunk_index` with up to `radius` neighbours on each side, in document
        order; text a neighbour shares with the next one (the chunks' overlap) shown once."""
        doc = self.documents.get(user_id, document_id)
        radius = max(0, min(MAX_RADIUS, radius))
        wanted = range(max(0, chunk_index - radius), chunk_index + radius + 1)
        hits = self.index().passages(user_id, doc.id, wanted) if chunk_index >= 0 else []
        run = _contiguous(hits, chunk_index)
        if not run:
            raise NotFound(
                f"{doc.filename} has no passage {chunk_index}.", code="passage_not_found"
            )
        focus = next(i for i, h in enumerate(run) if h.chunk_index == chunk_index)
        shown = preview.numbered_in_context([h.text for h in run], focus, radius)
        return InContext(
            document_id=doc.id,
            filename=doc.filename,
            chunk_index=chunk_index,
            passages=[
                Neighbour(run[i].chunk_index, text, is_focus, run[i].page, run[i].section)
                for i, text, is_focus in shown
            ],
        )

    def rows_table(
        self, user_id: int, document_id: str, sheet: str | None, first: int, last: int
    ) -> RowsTable:
        """Rows `first`..`last` of a spreadsheet's sheet (at most MAX_TABLE_ROWS), with its
        header, read from the stored file in the parsing sandbox (time and memory limits).

        NotFound: no such document, or it is no spreadsheet. PreviewFailed: unreadable."""
        doc = self.documents.get(user_id, document_id)
        if doc.file_type not in SPREADSHEET_KINDS:
            raise NotFound(f"{doc.filename} is no spreadsheet.", code="not_a_spreadsheet")
        path = self._path(doc)
        last = max(first, min(last, first + MAX_TABLE_ROWS - 1))
        try:
            header, rows = run_sandboxed(
                table_rows,
                path,
                doc.file_type,
                sheet,
                first,
                last,
                timeout_s=self.timeout_s,
                memory_mb=self.memory_mb,
                name="table-rows",
            )
        except ParseFailure as exc:
            raise PreviewFailed(f"The rows of {doc.filename} cannot be shown: {exc}.") from exc
        return RowsTable(sheet=sheet, header=header, rows=rows)

    def find_chunk(self, user_id: int, document_id: str, snippet: str) -> int | None:
        """The chunk index of the passage a stored snippet was taken from (sources saved
        before they carried one), or None when no passage holds it."""
        doc = self.documents.get(user_id, document_id)
        head = _plain(snippet.strip().removesuffix("…"))[:_SNIPPET_HEAD].strip()
        if not head:
            return None
        index = self.index()
        for start in range(0, max(doc.chunks, 0), MAX_PASSAGES):
            stop = min(doc.chunks, start + MAX_PASSAGES)
            for hit in index.passages(user_id, doc.id, range(start, stop)):
                if head in _plain(hit.text):
                    return hit.chunk_index
        return None

    def _path(self, doc: Document) -> Path:
        path = self.store.path(doc.storage_key) if doc.storage_key else None
        if path is None or not path.is_file():
            raise NotFound(
                f"The file of {doc.filename} is not stored (it was refused when uploaded).",
                code="file_not_found",
            )
        return path


def media_type(doc: Document, path: Path) -> str:
    """The file's media type by its detected kind; images by their own signature."""
    if doc.file_type == "image":
        try:
            guess = filetype.guess(str(path))
        except OSError:
            guess = None
        mime = str(guess.mime) if guess is not None else ""
        return mime if mime.startswith("image/") else OCTET_STREAM
    return MEDIA_TYPES.get(doc.file_type, OCTET_STREAM)


def _no_page(page: int, detail: str = "") -> NotFound:
    reason = f" ({detail})" if detail else ""
    return NotFound(f"There is no page {page} in this document{reason}.", code="page_not_found")


def _contiguous(hits: list[Hit], chunk_index: int) -> list[Hit]:
    """The hits in an unbroken run of chunk indexes around `chunk_index` (none without it)."""
    by_index = {h.chunk_index: h for h in hits}
    if chunk_index not in by_index:
        return []
    first = last = chunk_index
    while first - 1 in by_index:
        first -= 1
    while last + 1 in by_index:
        last += 1
    return [by_index[i] for i in range(first, last + 1)]


def _plain(text: str) -> str:
    return _SPACES.sub(" ", text).casefold()
