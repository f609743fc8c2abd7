"""What the two streaming multipart readers share (uploads to disk, the CSRF token check):
header collection per part and the parser wiring."""

from __future__ import annotations

from python_multipart.multipart import MultipartParser

# A part needs two or three headers; more is a malformed or hostile body.
MAX_HEADERS = 16
_CALLBACKS = (
    "on_part_begin",
    "on_part_data",
    "on_part_end",
    "on_header_field",
    "on_header_value",
    "on_header_end",
    "on_headers_finished",
    "on_end",
)


class PartHeaders:
    """python-multipart header callbacks: `self.headers` holds the current part's headers
    (lower-cased names) once `on_headers_finished` is called."""

    def __init__(self) -> None:
        self.headers: dict[str, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_part_begin(self) -> None:
        self.headers = {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self.headers[name] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()


def parser(boundary: bytes, reader: PartHeaders) -> MultipartParser:
    """A streaming parser that calls the reader's `on_*` methods."""
    return MultipartParser(
        boundary,
        callbacks={name: getattr(reader, name) for name in _CALLBACKS},  # type: ignore[arg-type]
        max_header_count=MAX_HEADERS,
    )
