"""Safety checks on ZIP-based documents (DOCX, PPTX) before anything unpacks them."""

from __future__ import annotations

import zipfile
from pathlib import Path

from pitchcraft.ingestion.types import ParseFailure

MAX_UNPACKED_BYTES = 1 << 30  # 1 GiB for the whole package
MAX_RATIO = 200  # compression ratio, for members large enough to matter
RATIO_CHECK_ABOVE = 10 * 1024 * 1024
MAX_MEMBERS = 100_000

ZIP_BOMB = "compressed content is too large to unpack safely (a zip bomb?)"


def check_ooxml_zip(path: Path, label: str) -> None:
    """Refuse a package that is not a readable ZIP or would unpack to an absurd size.

    Only the central directory is read; nothing is decompressed. `label` is "DOCX" or "PPTX".
    """
    damaged = f"damaged or truncated {label} file"
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise ParseFailure(damaged) from exc
    if not members:
        raise ParseFailure(damaged)
    if len(members) > MAX_MEMBERS:
        raise ParseFailure(ZIP_BOMB)
    total = 0
    for info in members:
        total += info.file_size
        if total > MAX_UNPACKED_BYTES:
            raise ParseFailure(ZIP_BOMB)
        if info.file_size > RATIO_CHECK_ABOVE and info.file_size > MAX_RATIO * max(
            info.compress_size, 1
        ):
            raise ParseFailure(ZIP_BOMB)
