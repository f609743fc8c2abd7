"""The copy's length against its channel's limit.

Characters are counted as the reader will see them: the review's `[n]` citation markers are
not part of the published copy, so they are not counted (Python counts code points, as X
and most forms do for Latin text)."""

from __future__ import annotations

import unicodedata
from typing import Any

from pitchcraft.refine.citations import without_citations


def published(text: str) -> str:
    return unicodedata.normalize("NFC", without_citations(text).strip())


def chars(text: str) -> int:
    return len(published(text))


def length(text: str, max_chars: int | None, *, counted: int | None = None) -> dict[str, Any]:
    """{"chars", "max_chars", "over_by"}; `over_by` is 0 within the limit or without one."""
    n = chars(text) if counted is None else counted
    return {
        "chars": n,
        "max_chars": max_chars,
        "over_by": max(0, n - max_chars) if max_chars else 0,
    }
