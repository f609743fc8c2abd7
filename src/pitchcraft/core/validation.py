"""Input types shared by the API schemas."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_chars(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _no_control_chars(value: str) -> str:
    # PostgreSQL cannot store NUL in text, and no human-typed value contains these.
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    return value


CleanStr = Annotated[str, AfterValidator(_no_control_chars)]


def strip_control_chars(value: str) -> str:
    """Typed text as a form sends it: line breaks as \\n (browsers send \\r\\n from a
    textarea), tabs kept, other control characters (a form feed copied out of a PDF, a NUL)
    removed."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
