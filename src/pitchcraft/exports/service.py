"""Export a finished job: the file's bytes, type and name."""

from __future__ import annotations

from dataclasses import dataclass

from pitchcraft.exports import markdown, word
from pitchcraft.exports.common import filename, finished
from pitchcraft.refine.schemas import ResultOut

FORMATS = ("md", "docx")
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@dataclass(frozen=True)
class Exported:
    content: bytes
    media_type: str
    filename: str


def export(result: ResultOut, fmt: str) -> Exported:
    r = finished(result)
    if fmt == "docx":
        return Exported(word.render(r), DOCX, filename(r, "docx"))
    return Exported(markdown.render(r).encode(), "text/markdown; charset=utf-8", filename(r, "md"))
