"""What kind of document a file is, decided from its content (the name is only a hint).

Kinds: "pdf", "docx", "pptx", "ppt", "image", "text", "markdown", "html", "xlsx", "csv".
Anything else raises ParseFailure with a reason a person understands.
"""

from __future__ import annotations

import codecs
import mmap
import re
import struct
import zipfile
from pathlib import Path

import filetype  # type: ignore[import-untyped]

from pitchcraft.ingestion.parsers.text import bom_encoding, decode, utf16_without_bom
from pitchcraft.ingestion.types import ParseFailure

KINDS = ("pdf", "docx", "pptx", "ppt", "image", "text", "markdown", "html", "xlsx", "csv")
_TABLE_EXTENSIONS = (".csv", ".tsv", ".tab")

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_SAMPLE = 64 * 1024
_IMAGE_MIMES = {
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/bmp",
}
# filetype's names for what it recognises, as a person would say them.
_DESCRIPTIONS = {
    "application/x-executable": "executable",
    "application/x-msdownload": "executable",
    "application/wasm": "executable",
    "application/x-sqlite3": "SQLite database",
    "application/rtf": "RTF document: save it as .docx or PDF",
    "application/postscript": "PostScript",
    "application/epub+zip": "EPUB e-book",
    "application/msword": "legacy Word .doc: save it as .docx",
    "application/vnd.ms-excel": "legacy Excel .xls",
    "application/font-woff": "font",
    "application/font-sfnt": "font",
    "application/x-shockwave-flash": "Flash",
    "application/dicom": "DICOM image",
}
_ARCHIVES = {
    "application/gzip", "application/x-tar", "application/x-rar-compressed",
    "application/x-7z-compressed", "application/x-bzip2", "application/x-xz",
    "application/zstd", "application/x-lz4", "application/x-lzip", "application/x-lzop",
    "application/x-compress", "application/x-brotli", "application/vnd.ms-cab-compressed",
    "application/x-rpm", "application/x-deb", "application/x-unix-archive",
}  # fmt: skip
_HTML_START = re.compile(
    r"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TAGS = re.compile(r"<(?:html|head|body|p|div|span|table|h[1-6]|br|a\s|ul|ol|li)\b", re.I)
_OLE_STREAMS = {
    "PowerPoint Document": "ppt",
    "WordDocument": "legacy Word .doc: save it as .docx",
    "Workbook": "legacy Excel .xls: save it as .xlsx",
    "Book": "legacy Excel .xls: save it as .xlsx",
    "EncryptedPackage": "password-protected Office document",
    "__properties_version1.0": "Outlook message",
}


def detect(path: Path, filename: str) -> str:
    """The kind of document in `path`; `filename` (as uploaded) only breaks ties."""
    ext = Path(filename).suffix.lower()
    with path.open("rb") as fh:
        head = fh.read(_SAMPLE)
    if not head:
        raise ParseFailure("empty document")
    if head.startswith(b"%PDF") or (b"%PDF-" in head[:1024] and _ends_like_pdf(path)):
        return "pdf"
    if head.startswith(_ZIP_MAGICS):
        return _zip_kind(path, head, ext)
    if head.startswith(_OLE_MAGIC):
        return _ole_kind(path, ext)
    if bom_encoding(head) is not None:
        return _text_kind(decode(head), ext)
    guess = filetype.guess(head)
    if guess is not None:
        mime = str(guess.mime)
        if mime in _IMAGE_MIMES:
            return "image"
        raise ParseFailure(f"unsupported file type ({_describe(mime, str(guess.extension))})")
    if not _looks_like_text(head):
        raise ParseFailure("unsupported file type (binary data)")
    return _text_kind(decode(head), ext)


def _ends_like_pdf(path: Path) -> bool:
    """A PDF header after some leading junk counts when the file also ends like a PDF."""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 2048))
        return b"%%EOF" in fh.read()


def _describe(mime: str, extension: str) -> str:
    if mime in _DESCRIPTIONS:
        return _DESCRIPTIONS[mime]
    if mime in _ARCHIVES:
        return f"compressed archive .{extension}"
    if mime.startswith("image/"):
        return f"image .{extension}: save it as PNG or JPEG"
    for prefix, word in (("audio/", "audio"), ("video/", "video")):
        if mime.startswith(prefix):
            return f"{word} .{extension}"
    return f".{extension}"


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        if utf16_without_bom(head) is None:
            return False
        text = decode(head[: len(head) // 2 * 2])
    else:
        try:  # UTF-8, allowing a character cut off at the end of the sample
            text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            text = decode(head)
    if not text:
        return False
    controls = sum(
        1 for c in text if (ord(c) < 32 and c not in "\t\n\r\f") or 0x7F <= ord(c) < 0xA0
    )
    return controls <= len(text) * 0.01


def _text_kind(text: str, ext: str) -> str:
    start = text[:4096]
    if _HTML_START.match(start):
        return "html"
    if ext in (".htm", ".html", ".xhtml") and _HTML_TAGS.search(start):
        return "html"
    if ext in (".md", ".markdown"):
        return "markdown"
    if ext in _TABLE_EXTENSIONS:
        return "csv"
    return "text"


def _zip_kind(path: Path, head: bytes, ext: str) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            mimetype = _small_member(zf, "mimetype")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        # No readable central directory (a truncated upload?): judge by the local headers.
        if b"word/" in head or ext == ".docx":
            return "docx"
        if b"ppt/" in head or ext == ".pptx":
            return "pptx"
        if b"xl/" in head or ext in (".xlsx", ".xlsm"):
            return "xlsx"
        raise ParseFailure("unsupported file type (damaged ZIP archive)") from None
    if "[Content_Types].xml" in names:
        if any(n.startswith("word/") for n in names):
            return "docx"
        if any(n.startswith("ppt/") for n in names):
            return "pptx"
        if any(n.startswith("xl/") for n in names):
            if "xl/workbook.bin" in names:
                raise ParseFailure(
                    "unsupported file type (Excel binary workbook .xlsb: save it as .xlsx)"
                )
            return "xlsx"
        raise ParseFailure("unsupported file type (Office Open XML package)")
    if mimetype == "application/vnd.oasis.opendocument.spreadsheet":
        raise ParseFailure(
            "unsupported file type (OpenDocument spreadsheet: save it as .xlsx or .csv)"
        )
    if mimetype.startswith("application/vnd.oasis.opendocument"):
        raise ParseFailure("unsupported file type (OpenDocument: save it as .docx, .pptx or PDF)")
    if mimetype == "application/epub+zip":
        raise ParseFailure("unsupported file type (EPUB e-book)")
    raise ParseFailure("unsupported file type (ZIP archive)")


def _small_member(zf: zipfile.ZipFile, name: str) -> str:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return ""
    if info.file_size > 200:
        return ""
    try:
        return zf.read(info).decode("ascii", errors="replace").strip()
    except Exception:
        return ""


def _ole_kind(path: Path, ext: str) -> str:
    names = _ole_stream_names(path)
    for stream, verdict in _OLE_STREAMS.items():
        if stream in names:
            if verdict == "ppt":
                return "ppt"
            raise ParseFailure(f"unsupported file type ({verdict})")
    # No directory entry found (a truncated upload?): the extension breaks the tie.
    if ext in (".ppt", ".pps", ".pot"):
        return "ppt"
    if ext in (".doc", ".dot"):
        raise ParseFailure("unsupported file type (legacy Word .doc: save it as .docx)")
    if ext in (".xls", ".xlt"):
        raise ParseFailure("unsupported file type (legacy Excel .xls)")
    raise ParseFailure("unsupported file type (Microsoft compound file)")


def _ole_stream_names(path: Path) -> set[str]:
    """Names in the directory of an OLE2 compound file (legacy Office formats).

    Directory entries are 128 bytes, aligned to 128 in the file, starting with the name in
    UTF-16LE and holding its byte length (terminator included) at offset 64. Each name we
    care about is searched for at such positions, which avoids parsing the sector chains.
    """
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return _scan_ole_names(data)


def _scan_ole_names(data: mmap.mmap) -> set[str]:
    found: set[str] = set()
    for name in _OLE_STREAMS:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        start = 512
        while True:
            pos = data.find(encoded, start)
            if pos < 0:
                break
            if pos % 128 == 0 and len(data) >= pos + 66:
                (length,) = struct.unpack_from("<H", data, pos + 64)
                if length == len(encoded):
                    found.add(name)
                    break
            start = pos + 1
    return found
