"""The sample library: a few small bundled documents and an example text, so that a
newcomer without documents at hand can try the main job. Added samples are the user's
ordinary documents (listed, deletable, cleared at sign-in like any other)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from pitchcraft.documents.incoming import IncomingFile
from pitchcraft.documents.models import Document
from pitchcraft.documents.service import Documents

SAMPLES = Path(__file__).with_name("samples")
SAMPLE_FILES = (
    "beacon-brochure.pdf",
    "beacon-datasheet.pdf",
    "beacon-3.0-launch.pptx",
    "beacon-prices.xlsx",
)


def example_text() -> str:
    """Marketing copy about the samples' product, two of its figures wrong on purpose."""
    return (SAMPLES / "example.txt").read_text(encoding="utf-8").strip()


def add_samples(documents: Documents, user_id: int) -> list[Document]:
    """Copy the sample files into the user's storage and queue them, as an upload would."""
    incoming: list[IncomingFile] = []
    try:
        for name in SAMPLE_FILES:
            source = SAMPLES / name
            temp = documents.store.new_temp(user_id)
            with source.open("rb") as src, temp.open("wb") as out:
                shutil.copyfileobj(src, out)
            data = temp.read_bytes()
            incoming.append(
                IncomingFile(
                    filename=name,
                    size=len(data),
                    temp=temp,
                    sha256=hashlib.sha256(data).hexdigest(),
                )
            )
    except BaseException:
        for f in incoming:
            if f.temp is not None:
                f.temp.unlink(missing_ok=True)
        raise
    return documents.accept(user_id, incoming)
