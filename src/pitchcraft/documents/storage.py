"""Uploaded files on disk, under STORAGE_PATH/{user_id}/, written crash-safely."""

from __future__ import annotations

import contextlib
import os
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

from pitchcraft.core.files import fsync_dir

PART_SUFFIX = ".part"
MAX_FILENAME = 255
# Bidirectional overrides and isolates can make "invoice‮fdp.exe" display as "invoiceexe.pdf".
_BIDI = {chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]}


def clean_filename(raw: str) -> str:
    """A display name: no directories, NUL, control or bidi characters, at most 255 chars."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(
        ch
        for ch in name
        if ch not in _BIDI and unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co"}
    )
    name = " ".join(name.split()).strip(" .")
    if not name:
        return "untitled"
    if len(name) > MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_FILENAME - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_FILENAME]
    return name


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def user_dir(self, user_id: int) -> Path:
        path = self.root / str(user_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def new_temp(self, user_id: int) -> Path:
        return self.user_dir(user_id) / f".upload-{uuid.uuid4().hex}{PART_SUFFIX}"

    def path(self, key: str) -> Path:
        full = (self.root / key).resolve()
        if self.root not in full.parents:
            raise ValueError(f"storage key outside the store: {key!r}")
        return full

    def commit(self, temp: Path, key: str) -> Path:
        """Make a fully written temp file permanent under key: fsync, rename, fsync the dir."""
        with temp.open("rb+") as fh:
            os.fsync(fh.fileno())
        final = self.path(key)
        os.replace(temp, final)
        fsync_dir(final.parent)
        return final

    def delete(self, key: str) -> None:
        if key:
            self.path(key).unlink(missing_ok=True)

    def delete_user(self, user_id: int) -> None:
        folder = self.root / str(user_id)
        if folder.is_dir():
            for child in folder.iterdir():
                if child.is_file():
                    child.unlink(missing_ok=True)

    def remove_user(self, user_id: int) -> None:
        """Every file of a user, temp files included, and their folder."""
        self.delete_user(user_id)
        folder = self.root / str(user_id)
        # Not there, or an upload wrote a file since (its own clean-up removes it).
        with contextlib.suppress(OSError):
            folder.rmdir()

    def keys(self) -> Iterator[tuple[str, Path]]:
        """Every stored file as (key, path), temp files included."""
        if not self.root.is_dir():
            return
        for user_dir in self.root.iterdir():
            if user_dir.is_dir():
                for f in user_dir.iterdir():
                    if f.is_file():
                        yield f"{user_dir.name}/{f.name}", f
