"""How the pages show times, sizes, file kinds, sources and citations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from markupsafe import Markup, escape

from pitchcraft.refine.schemas import Source

_CITATION = re.compile(r"\[(\d{1,3})\]")

KIND_LABELS = {
    "pdf": "PDF",
    "docx": "Word",
    "pptx": "PowerPoint",
    "ppt": "PowerPoint (.ppt)",
    "image": "Image",
    "text": "Text",
    "markdown": "Markdown",
    "html": "HTML",
    "xlsx": "Excel",
    "csv": "CSV",
}


def kind_label(kind: str, filename: str = "") -> str:
    """What a file is, for people; a file refused before it was read goes by its extension."""
    if kind in KIND_LABELS:
        return KIND_LABELS[kind]
    _, dot, ext = filename.rpartition(".")
    return ext.upper() if dot and 0 < len(ext) <= 5 and ext.isalnum() else "Unknown type"


def human_size(n: int) -> str:
    """1 byte, 169 bytes, 13.1 KB, 245 KB, 1.8 MB, 42 MB."""
    if n < 1024:
        return f"{n} byte" + ("" if n == 1 else "s")
    for unit, scale in (("KB", 1024), ("MB", 1024**2), ("GB", 1024**3)):
        value = n / scale
        if value < 1024 or unit == "GB":
            text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
    raise AssertionError("unreachable")


def utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime | None) -> str:
    d = utc(dt)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ") if d else ""


def when(dt: datetime | None) -> str:
    """`3 May 2025, 14:05:09 UTC`: the same for everyone, whatever their time zone."""
    d = utc(dt)
    return f"{d.day} {d.strftime('%b %Y, %H:%M:%S')} UTC" if d else ""


def took(start: datetime | None, end: datetime | None) -> str:
    a, b = utc(start), utc(end)
    if a is None or b is None:
        return ""
    seconds = max(0.0, (b - a).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def cite(text: str, numbers: Sequence[int]) -> Markup:
    """The text, escaped, with each [n] that names a listed source linked to it."""
    known = set(numbers)
    out: list[str] = []
    last = 0
    for m in _CITATION.finditer(text):
        out.append(str(escape(text[last : m.start()])))
        n = int(m.group(1))
        if n in known:
            out.append(f'<a class="cite" href="#source-{n}">[{n}]</a>')
        else:
            out.append(str(escape(m.group(0))))
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))  # noqa: S704 (every piece is escaped above)


def where(source: Source) -> str:
    """`deck.pptx, slide 4` (the stored label), or one made from the file and page."""
    if source.label:
        return source.label
    if source.page is not None:
        unit = "slide" if source.filename.lower().endswith((".pptx", ".ppt")) else "page"
        return f"{source.filename}, {unit} {source.page}"
    return source.filename or "unknown source"


def mark(text: str, quote: str | None) -> tuple[Markup, bool]:
    """The text, escaped, with the first place that reads as `quote` (whatever the case and
    spacing) in <mark>; and whether it was found."""
    words = (quote or "").split()
    if not words:
        return Markup(escape(text)), False  # noqa: S704 (escaped)
    pattern = r"\s+".join(re.escape(w) for w in words)
    found = re.search(pattern, text, flags=re.IGNORECASE)
    if found is None:
        return Markup(escape(text)), False  # noqa: S704 (escaped)
    before, hit, after = text[: found.start()], found.group(0), text[found.end() :]
    return Markup(f"{escape(before)}<mark>{escape(hit)}</mark>{escape(after)}"), True  # noqa: S704
