"""Answers that carry a user's file or a page picture, for the API and the pages alike."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import quote

from fastapi.responses import FileResponse, Response

from pitchcraft.documents.sources import MEDIA_TYPES, OCTET_STREAM, Original

# Cached by the browser only (a user's material), briefly: a document can be deleted.
# A user's file or page image stays in no cache (shared computer, proxy, back button).
PREVIEW_CACHE = "no-store"
# A downloaded HTML file must not run as a page of this site if it is ever opened inline.
_DOWNLOAD_CSP = "default-src 'none'; sandbox"
# What the plain `filename` keeps; not `=` or `;`, which careless parsers split on.
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9 !#$&+,.@^_`{}~()\[\]-]")

PNG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        "description": "The page as a PNG, the passage highlighted where it is found",
    }
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        # Every media type a stored file is served with (images by their own signature).
        "content": {media: _BINARY for media in (*MEDIA_TYPES.values(), "image/*", OCTET_STREAM)},
        "description": "The file as uploaded, with its own media type, as an attachment",
    }
}


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII `filename` any client can read (quotes, slashes, control and other
    characters replaced), and `filename*` with the exact name in UTF-8 when they differ."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    # Accents dropped (Résumé → Resume), anything else not plain ASCII replaced.
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_name = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    ascii_name = _UNSAFE_ASCII.sub("_", ascii_name).strip(" .")
    stem, dot, ext = ascii_name.rpartition(".")
    if dot and stem and not ext.strip("_"):
        ascii_name, ext, dot = stem, "", ""
    if not ascii_name or (dot and not stem.strip("_ ")) or not ascii_name.strip("_ ."):
        ascii_name = f"download.{ext}" if dot and ext.strip("_") else "download"
    header = f'{disposition}; filename="{ascii_name}"'
    if name and name != ascii_name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def file_response(original: Original) -> FileResponse:
    return FileResponse(
        original.path,
        media_type=original.media_type,
        headers={
            "Content-Disposition": content_disposition(original.filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": _DOWNLOAD_CSP,
            "Cache-Control": "no-store",
        },
    )


def png_response(png: bytes) -> Response:
    return Response(
        png,
        media_type="image/png",
        headers={"Cache-Control": PREVIEW_CACHE, "X-Content-Type-Options": "nosniff"},
    )
