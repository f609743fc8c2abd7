"""A write-only file that hands over what was written to it, so `zipfile` can produce an
archive piece by piece for a streamed response."""

from __future__ import annotations

import io


class ZipSink(io.RawIOBase):
    """Not seekable: `zipfile` then writes each entry's sizes after its data (a data
    descriptor) instead of going back to patch its header."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if data:
            self._parts.append(bytes(data))
            self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def take(self) -> bytes:
        """What was written since the last call."""
        out = b"".join(self._parts)
        self._parts.clear()
        return out
