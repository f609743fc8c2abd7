"""Images: one page, the image itself (upright per its EXIF orientation, first frame of an
animation), scaled down to the asked width. A passage is not highlighted: the parser read it
with OCR, and finding it again would mean running OCR for every preview."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, ImageOps

from pitchcraft.documents.preview.base import MAX_WIDTH, MIN_WIDTH, PageNotFound, PreviewError, fit

# As the parser allows: larger images are refused before anything is decoded.
_MAX_PIXELS = 120_000_000


def render(path: Path, page: int, width: int) -> Image.Image:
    if page != 1:
        raise PageNotFound(f"page {page} is not in this image (it has 1)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as source:
                if source.width * source.height > _MAX_PIXELS:
                    raise PreviewError("image is too large to preview")
                return _scaled(source, width)
        except (PreviewError, MemoryError):
            raise
        except Exception as exc:
            raise PreviewError("damaged or unreadable image") from exc


def _scaled(source: Image.Image, width: int) -> Image.Image:
    target = max(MIN_WIDTH, min(MAX_WIDTH, width, source.width))  # never scaled up
    # JPEG decodes at 1/2, 1/4 or 1/8 of its size at once where that is still large enough
    # (both ways: the EXIF orientation may turn it).
    source.draft("RGB", (target, target))
    try:
        upright = ImageOps.exif_transpose(source)
    except Exception:  # a broken EXIF block: the image as stored
        upright = source
    scale = fit(upright.width, upright.height, target)
    size = (max(1, round(upright.width * scale)), max(1, round(upright.height * scale)))
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, (0, 0), rgba)
    else:
        flat = upright.convert("RGB")
    return flat.resize(size, Image.Resampling.LANCZOS) if flat.size != size else flat
