"""What every format's preview shares: errors, output size limits, the highlight colour and
how it is painted, fonts, PNG encoding."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFont

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in output pixels
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

HIGHLIGHT_RGB = (255, 214, 0)
# Share of the pure colour in a highlighted pixel; the rest is the page multiplied by the
# colour, so dark text stays dark and white paper becomes exactly HIGHLIGHT_RGB.
_PURE = 0.3
# HIGHLIGHT_RGB has no blue, so every highlighted pixel has none, and on grey paper its
# green/red ratio is the colour's own.
_GREEN_PER_RED = HIGHLIGHT_RGB[1] / HIGHLIGHT_RGB[0]

MAX_WIDTH = 2000
MIN_WIDTH = 64
MAX_HEIGHT = 3 * MAX_WIDTH
# A page that would come out thinner than this (in pixels) at the allowed sizes is refused.
_MIN_SIDE = 16

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_fonts = threading.local()


class PreviewError(Exception):
    """The page cannot be shown; the message says why, for a person."""


class PageNotFound(PreviewError):
    """No such page: out of range, or the format has no pages (or none that can be shown)."""


def is_highlight(pixel: Sequence[int]) -> bool:
    """Whether an RGB(A) pixel is the highlight over light paper."""
    r, g, b = int(pixel[0]), int(pixel[1]), int(pixel[2])
    return r >= 150 and b <= 40 and abs(g - r * _GREEN_PER_RED) <= 0.06 * r


def highlight_mask(image: Image.Image) -> npt.NDArray[np.bool_]:
    """`is_highlight` for every pixel of `image`, as a (height, width) array."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mask: npt.NDArray[np.bool_] = (
        (r >= 150) & (b <= 40) & (np.abs(g - r * _GREEN_PER_RED) <= 0.06 * r)
    )
    return mask


def paint_highlights(image: Image.Image, boxes: Iterable[Box], pad: float = 1.0) -> Image.Image:
    """`image` with the boxes (grown by `pad` pixels) highlighted; overlaps blended once."""
    rgb = np.array(image.convert("RGB"))
    height, width = rgb.shape[:2]
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        left, top = max(0, math.floor(x0 - pad)), max(0, math.floor(y0 - pad))
        right, bottom = min(width, math.ceil(x1 + pad)), min(height, math.ceil(y1 + pad))
        if right > left and bottom > top:
            mask[top:bottom, left:right] = True
    if not mask.any():
        return image
    colour = np.array(HIGHLIGHT_RGB, dtype=np.float32)
    lit = rgb[mask].astype(np.float32) * (colour / 255.0) * (1 - _PURE) + colour * _PURE
    rgb[mask] = np.clip(np.rint(lit), 0, 255).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def fit(page_width: float, page_height: float, width: int) -> float:
    """Pixels per page unit for a page `width` pixels wide (clamped to what is allowed), less
    if the height would pass MAX_HEIGHT; absurd page shapes are refused."""
    if not (math.isfinite(page_width) and math.isfinite(page_height)):
        raise PreviewError("the page has no usable size")
    if page_width <= 0 or page_height <= 0:
        raise PreviewError("the page has no usable size")
    target = max(MIN_WIDTH, min(MAX_WIDTH, int(width)))
    scale = target / page_width
    if page_height * scale > MAX_HEIGHT:
        scale = MAX_HEIGHT / page_height
    if page_width * scale < _MIN_SIDE or page_height * scale < _MIN_SIDE:
        raise PreviewError("the page is too long and narrow to preview")
    return scale


def to_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", compress_level=6)
    return out.getvalue()


def font(size: int, bold: bool = False) -> Font:
    """DejaVu Sans at `size` pixels, or Pillow's own font where DejaVu is not installed."""
    # One cache per thread: a FreeType face must not be used by two threads at once.
    cache: dict[tuple[int, bool], Font] | None = getattr(_fonts, "cache", None)
    if cache is None:
        cache = _fonts.cache = {}
    size = max(4, size)
    found = cache.get((size, bold))
    if found is None:
        if len(cache) > 256:
            cache.clear()
        found = cache[(size, bold)] = _load_font(size, bold)
    return found


def _load_font(size: int, bold: bool) -> Font:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(str(_FONT_DIR / name), size)
    except OSError:
        return ImageFont.load_default(size)
