"""Answers that can always be sent: text stored before input was checked may hold a lone
UTF-16 surrogate, which UTF-8 cannot encode; it is shown as U+FFFD instead of failing the
whole page or answer."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse
from markupsafe import Markup

from pitchcraft.core.validation import has_surrogates, replace_surrogates


class SafeJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        text = json.dumps(
            content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
        )
        return replace_surrogates(text).encode("utf-8")


def showable(value: Any) -> Any:
    """Jinja's `finalize`: every value a page prints passes here."""
    if isinstance(value, str) and has_surrogates(value):
        cleaned = replace_surrogates(value)
        # Already-escaped markup stays markup: only surrogates were replaced in it.
        return Markup(cleaned) if isinstance(value, Markup) else cleaned  # noqa: S704
    return value
