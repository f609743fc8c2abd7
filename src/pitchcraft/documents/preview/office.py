"""Slides drawn by LibreOffice: the deck converted to PDF and the slide's page rendered like
any PDF page.

Each conversion runs in a temporary directory of its own, with a private LibreOffice profile
(concurrent conversions do not collide), in a process group of its own (a timeout kills all of
it; in the sandbox, the child's kill reaches it too). Slide numbers are the parser's: LibreOffice
leaves hidden slides out of a PDF, so the page is the slide's number among the visible ones; a
hidden slide, a page count that does not add up or a failed conversion falls back to the
Pillow drawing (`slides`). A .ppt is first converted to .pptx, as the parser does, so that its
slides are numbered as they were indexed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from pitchcraft.documents.preview import pdf, slides
from pitchcraft.documents.preview.base import PageNotFound, PreviewError
from pitchcraft.ingestion.parsers.ppt import _run as run_soffice
from pitchcraft.ingestion.types import ParseFailure

CONVERT_TIMEOUT_S = 60.0
NEEDS_LIBREOFFICE = (
    "previews of legacy .ppt slides need LibreOffice on the server; save the deck as .pptx"
)


class _ConversionFailed(Exception):
    pass


def soffice_binary(soffice: str | None) -> str | None:
    """The configured LibreOffice binary if it can be run, else None (never a PATH search:
    no binary configured means no LibreOffice)."""
    return shutil.which(soffice) if soffice else None


@contextmanager
def _converted(path: Path, binary: str, kind: str, target: str, timeout_s: float) -> Iterator[Path]:
    """`path` (a `kind` file) converted to `target` ("pdf", "pptx"), for the `with` block."""
    if timeout_s <= 0:
        raise _ConversionFailed("no time left")
    with tempfile.TemporaryDirectory(prefix="pitchcraft-preview-") as tmp:
        work = Path(tmp)
        # A plain name with the right extension: stored uploads have none, and LibreOffice
        # names its output after its input.
        source = work / f"deck.{kind}"
        shutil.copyfile(path, source)
        out_dir = work / "out"
        out_dir.mkdir()
        command = [
            binary,
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            target,
            "--outdir",
            str(out_dir),
            str(source),
        ]
        try:
            run_soffice(command, timeout_s, cwd=work)
        except ParseFailure as exc:  # its messages speak of .ppt parsing: ours are our own
            raise _ConversionFailed(str(exc)) from exc
        result = out_dir / f"deck.{target}"
        if not result.is_file() or result.stat().st_size == 0:
            raise _ConversionFailed("no output")
        yield result


def render_pptx(
    path: Path, page: int, highlight: str | None, width: int, binary: str, timeout_s: float
) -> Image.Image:
    """The slide drawn by LibreOffice, or by Pillow where that does not work out."""
    _, deck_slides = slides.open_deck(path)
    count = len(deck_slides)
    if not 1 <= page <= count:
        raise PageNotFound(f"slide {page} is not in this presentation (it has {count})")
    hidden = [s._element.get("show") in ("0", "false") for s in deck_slides]
    if not hidden[page - 1]:
        number = page - sum(hidden[: page - 1])
        try:
            with _converted(path, binary, "pptx", "pdf", timeout_s) as converted:
                return _pdf_slide(converted, number, hidden.count(False), highlight, width)
        except (_ConversionFailed, PreviewError):
            pass
    return slides.render(path, page, highlight, width)


def _pdf_slide(
    converted: Path, number: int, visible: int, highlight: str | None, width: int
) -> Image.Image:
    if pdf.page_count(converted) != visible:
        raise _ConversionFailed("the PDF does not have one page per visible slide")
    return pdf.render(converted, number, highlight, width)


def render_ppt(
    path: Path, page: int, highlight: str | None, width: int, binary: str | None, timeout_s: float
) -> Image.Image:
    if binary is None:
        raise PageNotFound(NEEDS_LIBREOFFICE)
    deadline = time.monotonic() + timeout_s
    try:
        with _converted(path, binary, "ppt", "pptx", timeout_s) as deck:
            left = deadline - time.monotonic()
            return render_pptx(deck, page, highlight, width, binary, left)
    except _ConversionFailed as exc:
        raise PreviewError("this .ppt deck could not be converted for a preview") from exc


def ppt_page_count(path: Path, binary: str | None, timeout_s: float) -> int | None:
    if binary is None:
        return None
    try:
        with _converted(path, binary, "ppt", "pptx", timeout_s) as deck:
            return slides.page_count(deck)
    except (_ConversionFailed, PreviewError):
        return None
