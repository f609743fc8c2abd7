"""A file as it arrives: already streamed to a temporary file in the user's storage."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class IncomingFile:
    filename: str
    size: int = 0
    temp: Path | None = None
    refused: str | None = None
    sha256: str = ""
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)
