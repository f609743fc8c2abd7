"""Input types shared by the API schemas."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A lone UTF-16 surrogate (JSON lets a client send "\\ud800"): no UTF-8 text can hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")
NOT_UTF8 = "must be valid Unicode text (it holds an unpaired surrogate that UTF-8 cannot encode)"


def has_surrogates(value: str) -> bool:
    return _SURROGATE.search(value) is not None


def replace_surrogates(value: str) -> str:
    """Text already stored with a lone surrogate, made showable (U+FFFD in its place)."""
    return _SURROGATE.sub("\ufffd", value)


def encodable(value: str) -> str:
    if has_surrogates(value):
        raise ValueError(NOT_UTF8)
    return value


def has_control_chars(value: str) -> bool:
    return _CONTROL.search(value) is not None


def _no_control_chars(value: str) -> str:
    # PostgreSQL cannot store NUL in text, and no human-typed value contains these.
    encodable(value)
    if has_control_chars(value):
        raise ValueError("must not contain control characters")
    return value


CleanStr = Annotated[str, AfterValidator(_no_control_chars)]
# Any text that can be stored and shown (control characters allowed, e.g. in a password).
TextStr = Annotated[str, AfterValidator(encodable)]


def strip_control_chars(value: str) -> str:
    """Typed text as a form sends it: line breaks as \\n (browsers send \\r\\n from a
    textarea), tabs kept, other control characters (a form feed copied out of a PDF, a NUL)
    removed."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
