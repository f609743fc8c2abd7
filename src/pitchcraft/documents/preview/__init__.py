"""Previews of where a passage comes from: a source's page as a PNG, the passage highlighted.

By kind (as `pitchcraft.ingestion.detect` names it):

- "pdf": the page drawn by PyMuPDF; the passage found among the page's words (`match`:
  tolerant to reading order, hyphenation, ligatures, case, punctuation, a trailing "…") and
  highlighted line by line.
- "pptx": with a LibreOffice binary (`soffice`), the deck converted to PDF and the slide's
  page rendered as above; without one, or when that fails, the slide drawn with Pillow
  (`slides`): shapes at their places, their text wrapped in their boxes, the lines showing
  the passage highlighted, speaker notes in a band below.
- "ppt": only with LibreOffice (converted to .pptx as the parser does, then as above);
  without it, PageNotFound says the preview needs LibreOffice (the page cannot be shown, and
  an image saying so would pass for the slide).
- "image": page 1 only, the image itself scaled down; no highlight (it would need OCR).
- "docx", "text", "markdown", "html": no pages, PageNotFound; `passage_in_context` shows a
  passage among its neighbours instead.

`render_page` works in this process (for tests and trusted files; PyMuPDF is not safe to use
from several threads at once); `render_sandboxed` is for uploads: the same rendering in a child
process with a time and memory limit, as parsing is.
Output is at most MAX_WIDTH wide and MAX_HEIGHT high; absurd page shapes are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pitchcraft.documents.preview import image, office, pdf, slides
from pitchcraft.documents.preview.base import (
    HIGHLIGHT_RGB,
    MAX_HEIGHT,
    MAX_WIDTH,
    PageNotFound,
    PreviewError,
    highlight_mask,
    is_highlight,
    to_png,
)
from pitchcraft.ingestion.sandbox import run_sandboxed
from pitchcraft.ingestion.types import ParseFailure

__all__ = [
    "HIGHLIGHT_RGB",
    "MAX_HEIGHT",
    "MAX_WIDTH",
    "PAGED_KINDS",
    "PageNotFound",
    "PreviewError",
    "highlight_mask",
    "is_highlight",
    "numbered_in_context",
    "page_count",
    "passage_in_context",
    "render_page",
    "render_sandboxed",
]

PAGED_KINDS = ("pdf", "pptx", "ppt", "image")
_MAX_HIGHLIGHT = 20_000  # characters of a passage worth sending to the child (~20 passages)
# Neighbouring passages share up to ~150 characters (chunking's overlap); a shorter common
# stretch is taken for coincidence.
_MIN_OVERLAP = 20
_MAX_OVERLAP = 400


def page_count(path: Path, kind: str, *, soffice: str | None = None) -> int | None:
    """Pages (slides) in the file; None where the format has none, or where they cannot be
    counted (a .ppt without LibreOffice). PreviewError for a file that cannot be read."""
    if kind == "pdf":
        return pdf.page_count(path)
    if kind == "pptx":
        return slides.page_count(path)
    if kind == "ppt":
        binary = office.soffice_binary(soffice)
        return office.ppt_page_count(path, binary, office.CONVERT_TIMEOUT_S)
    if kind == "image":
        return 1
    return None


def render_page(
    path: Path,
    kind: str,
    page: int,
    highlight: str | None = None,
    *,
    soffice: str | None = None,
    width: int = 1200,
    convert_timeout_s: float = office.CONVERT_TIMEOUT_S,
) -> bytes:
    """Page `page` (1-based) of the file as a PNG about `width` pixels wide, with `highlight`
    (a passage of it) marked where it is found; a passage not found leaves the page plain.

    PageNotFound: no such page, or the kind has none. PreviewError: the file cannot be shown.
    """
    if kind not in PAGED_KINDS:
        raise PageNotFound(f"a {_describe(kind)} has no pages to show")
    if page < 1:
        raise PageNotFound(f"there is no page {page}: pages are numbered from 1")
    if kind == "pdf":
        picture = pdf.render(path, page, highlight, width)
    elif kind == "pptx":
        binary = office.soffice_binary(soffice)
        if binary is not None:
            picture = office.render_pptx(path, page, highlight, width, binary, convert_timeout_s)
        else:
            picture = slides.render(path, page, highlight, width)
    elif kind == "ppt":
        binary = office.soffice_binary(soffice)
        picture = office.render_ppt(path, page, highlight, width, binary, convert_timeout_s)
    else:
        picture = image.render(path, page, width)
    return to_png(picture)


def render_sandboxed(
    path: Path,
    kind: str,
    page: int,
    highlight: str | None = None,
    *,
    soffice: str | None = None,
    width: int = 1200,
    timeout_s: float = 60.0,
    memory_mb: int = 2048,
) -> bytes:
    """`render_page` in a sandboxed child: past `timeout_s` or `memory_mb` (on top of what
    the child starts with) it is stopped and PreviewError says so; a crash is a PreviewError
    too. LibreOffice, when used, runs under the same limits (it needs a generous
    `memory_mb`; where it fails, slides are drawn with Pillow)."""
    if kind not in PAGED_KINDS:
        raise PageNotFound(f"a {_describe(kind)} has no pages to show")
    # Conversion gets most of the time, leaving some for the Pillow drawing if it fails.
    convert_timeout_s = timeout_s * 0.7
    try:
        status, payload = run_sandboxed(
            _render_child,
            str(path),
            kind,
            page,
            highlight[:_MAX_HIGHLIGHT] if highlight else highlight,
            soffice,
            width,
            convert_timeout_s,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            name=f"preview-{kind}",
        )
    except ParseFailure as exc:  # the sandbox's own outcomes: too slow, too big, a crash
        raise PreviewError(f"the page could not be shown: {exc}") from exc
    if status == "png" and isinstance(payload, bytes):
        return payload
    if status == "missing":
        raise PageNotFound(str(payload))
    raise PreviewError(str(payload))


def _render_child(
    path: str,
    kind: str,
    page: int,
    highlight: str | None,
    soffice: str | None,
    width: int,
    convert_timeout_s: float,
) -> tuple[str, bytes | str]:
    """In the sandboxed child: the outcome as a value, since the sandbox would turn any
    exception into a plain failure and PageNotFound must stay itself."""
    try:
        png = render_page(
            Path(path),
            kind,
            page,
            highlight,
            soffice=soffice,
            width=width,
            convert_timeout_s=convert_timeout_s,
        )
    except PageNotFound as exc:
        return "missing", str(exc)
    except PreviewError as exc:
        return "error", str(exc)
    return "png", png


def passage_in_context(
    passages: Sequence[str], index: int, radius: int = 1
) -> list[tuple[str, bool]]:
    """Passage `index` among up to `radius` neighbours on each side, as (text, is_focus), for
    documents without pages. Text a neighbour shares with the passage next to it (chunking's
    overlap) is left out of the neighbour, so nothing reads twice; the focus stays whole."""
    return [(text, focus) for _, text, focus in numbered_in_context(passages, index, radius)]


def numbered_in_context(
    passages: Sequence[str], index: int, radius: int = 1
) -> list[tuple[int, str, bool]]:
    """`passage_in_context` with each passage's position in `passages`, for callers that
    show where each one comes from."""
    if not 0 <= index < len(passages):
        raise IndexError(f"passage {index} out of range (there are {len(passages)})")
    radius = max(0, radius)
    first, last = max(0, index - radius), min(len(passages), index + radius + 1)
    out: list[tuple[int, str, bool]] = [(index, passages[index], True)]
    for i in range(index - 1, first - 1, -1):  # outwards, each against the one after it
        text = passages[i]
        shared = _overlap(text, passages[i + 1])
        out.insert(0, (i, text[: len(text) - shared].rstrip(), False))
    for i in range(index + 1, last):
        text = passages[i]
        shared = _overlap(passages[i - 1], text)
        out.append((i, text[shared:].lstrip(), False))
    return [(i, text, focus) for i, text, focus in out if focus or text]


def _overlap(before: str, after: str) -> int:
    """Length of the longest end of `before` that `after` starts with (0 if too short)."""
    for size in range(min(len(before), len(after), _MAX_OVERLAP), _MIN_OVERLAP - 1, -1):
        if before.endswith(after[:size]):
            return size
    return 0


def _describe(kind: str) -> str:
    names = {
        "docx": "Word document",
        "text": "text file",
        "markdown": "Markdown file",
        "html": "HTML page",
    }
    return names.get(kind, f"{kind} file")
