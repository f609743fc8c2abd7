"""The tar archive: entries written with their size and sha256 (sparse files as their
non-zero runs), a whole archive checked against its manifest, and entries written back to
disk through temp names, remembering what to undo."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import tarfile
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, BinaryIO, Protocol

from pitchcraft.ops.backup.format import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    BackupError,
)

BLOCK = 1 << 16
_ZERO = bytes(BLOCK)


# -- sparse files: Qdrant Edge preallocates 32 MB files that hold a few KB ------------------


def _extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """Regions that may hold data: everything but the holes the filesystem reports."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole from here on
                return
            yield pos, size - pos  # the filesystem cannot tell: read everything
            return
        if start >= size:
            return
        try:
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:
            end = size
        if end <= start:
            end = size
        yield start, end - start
        pos = end


def _data_runs(fd: int, size: int) -> list[tuple[int, int]]:
    """(offset, length) of the non-zero blocks of a file, adjacent ones merged."""
    runs: list[tuple[int, int]] = []
    for start, length in _extents(fd, size):
        offset, end = start, start + length
        while offset < end:
            n = min(BLOCK, end - offset)
            data = os.pread(fd, n, offset)
            if not data:
                break
            if data != _ZERO[: len(data)]:
                if runs and runs[-1][0] + runs[-1][1] == offset:
                    runs[-1] = (runs[-1][0], runs[-1][1] + len(data))
                else:
                    runs.append((offset, len(data)))
            offset += len(data)
    return runs


class Vanished(Exception):
    """A file or directory disappeared while it was being copied."""


def _copy_sparse(src: Path, dst: Path) -> None:
    """Copy one file, leaving holes where the source has zeros."""
    try:
        fd = os.open(src, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise Vanished(str(src)) from exc
    try:
        size = os.fstat(fd).st_size
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for offset, length in _extents(fd, size):
                pos, end = offset, offset + length
                while pos < end:
                    data = os.pread(fd, min(BLOCK, end - pos), pos)
                    if not data:
                        break
                    if data != _ZERO[: len(data)]:
                        _pwrite_all(out, data, pos)
                    pos += len(data)
            os.ftruncate(out, size)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def copy_tree_sparse(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise Vanished(str(src))
    for folder, dirs, files in os.walk(src):
        rel = Path(folder).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for name in files:
            _copy_sparse(Path(folder) / name, dst / rel / name)
        dirs.sort()
    if not src.is_dir():
        raise Vanished(str(src))


# -- writing the archive ---------------------------------------------------------------------


class _HashingReader:
    def __init__(self, raw: _Readable) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _RunsReader:
    """The non-zero runs of a file, back to back."""

    def __init__(self, fd: int, runs: list[tuple[int, int]]) -> None:
        self.fd = fd
        self.runs = list(runs)
        self.pos = 0  # within the current run

    def read(self, n: int = -1) -> bytes:
        while self.runs:
            offset, length = self.runs[0]
            if self.pos >= length:
                self.runs.pop(0)
                self.pos = 0
                continue
            want = length - self.pos if n < 0 else min(n, length - self.pos)
            data = os.pread(self.fd, want, offset + self.pos)
            if not data:
                raise Vanished("file shrank while it was archived")
            self.pos += len(data)
            return data
        return b""


class ArchiveWriter:
    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.entries: list[dict[str, Any]] = []
        self.mtime = int(time.time())

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o600, self.mtime
        return info

    def add_open(self, name: str, fh: _Readable, size: int, **extra: Any) -> int:
        reader = _HashingReader(fh)
        self.tar.addfile(self._info(name, size), reader)
        self.entries.append({"path": name, "size": size, "sha256": reader.sha.hexdigest(), **extra})
        return size

    def add_file(self, name: str, path: Path, **extra: Any) -> int:
        with path.open("rb") as fh:
            return self.add_open(name, fh, os.fstat(fh.fileno()).st_size, **extra)

    def add_sparse(self, name: str, path: Path) -> int:
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            runs = _data_runs(fd, size)
            stored = sum(length for _, length in runs)
            self.add_open(
                name,
                _RunsReader(fd, runs),
                stored,
                sparse={"size": size, "runs": [list(r) for r in runs]},
            )
            return stored
        finally:
            os.close(fd)

    def add_bytes(self, name: str, data: bytes) -> None:
        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))


def tar_writer(sink: BinaryIO, *, compress: bool, seekable: bool) -> tarfile.TarFile:
    if compress:
        return tarfile.open(fileobj=sink, mode="w:gz", compresslevel=6)
    return tarfile.open(fileobj=sink, mode="w" if seekable else "w|")


# -- reading and checking an archive ---------------------------------------------------------


def safe_name(member: tarfile.TarInfo) -> str:
    name = member.name
    pure = PurePosixPath(name)
    if (
        pure.is_absolute()
        or ".." in pure.parts
        or name != pure.as_posix()
        or not (member.isfile() or member.isdir())
    ):
        raise BackupError(f"The archive holds an unexpected entry {name!r}; refusing it.")
    return name


def _hash_stream(fh: IO[bytes]) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    while chunk := fh.read(1 << 20):
        sha.update(chunk)
        size += len(chunk)
    return size, sha.hexdigest()


def open_archive(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path} is not a readable backup archive: {exc}") from exc


def verify_archive(path: Path) -> dict[str, Any]:
    """Read the whole archive and check every entry against the manifest; return it."""
    found: dict[str, tuple[int, str]] = {}
    raw_manifest: bytes | None = None
    try:
        with open_archive(path) as tar:
            for member in tar:
                name = safe_name(member)
                if member.isdir():
                    continue
                fh = tar.extractfile(member)
                assert fh is not None
                if name == MANIFEST:
                    raw_manifest = fh.read(MAX_MANIFEST_BYTES + 1)
                    if len(raw_manifest) > MAX_MANIFEST_BYTES:
                        raise BackupError(f"The manifest of {path} is implausibly large.")
                else:
                    found[name] = _hash_stream(fh)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BackupError(f"{path} is damaged or incomplete: {exc}") from exc
    if raw_manifest is None:
        raise BackupError(
            f"{path} has no {MANIFEST}: it is incomplete (the backup was interrupted) or not a "
            "Pitchcraft backup."
        )
    try:
        manifest = json.loads(raw_manifest)
        entries = {str(e["path"]): (int(e["size"]), str(e["sha256"])) for e in manifest["entries"]}
        kind = manifest["database"]["kind"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"The manifest of {path} is damaged: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Pitchcraft backup.")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise BackupError(
            f"{path} was written by a newer Pitchcraft (archive format "
            f"{manifest.get('format_version')}); restore it with that release."
        )
    if kind not in ("sqlite", "postgresql"):
        raise BackupError(f"The manifest of {path} names an unknown database kind {kind!r}.")
    for name, (size, digest) in entries.items():
        got = found.get(name)
        if got is None:
            raise BackupError(f"{path} is incomplete: {name} is missing.")
        if got != (size, digest):
            raise BackupError(
                f"{path} is damaged: {name} does not match its checksum in the manifest. "
                "Nothing was restored."
            )
    extra = sorted(set(found) - set(entries))
    if extra:
        raise BackupError(f"{path} holds entries its manifest does not list: {extra[0]}")
    return dict(manifest)


# -- writing entries back to disk ------------------------------------------------------------


class Undo:
    """What restore wrote, so that a failure leaves the target as empty as it found it."""

    def __init__(self) -> None:
        self.files: list[Path] = []
        self.dirs: list[Path] = []
        self.actions: list[Any] = []

    def mkdir(self, path: Path) -> None:
        missing = []
        probe = path
        while not probe.exists():
            missing.append(probe)
            probe = probe.parent
        path.mkdir(parents=True, exist_ok=True)
        self.dirs.extend(reversed(missing))

    def run(self) -> None:
        for action in reversed(self.actions):
            with contextlib.suppress(Exception):
                action()
        for f in reversed(self.files):
            with contextlib.suppress(OSError):
                f.unlink(missing_ok=True)
        for d in sorted(self.dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def write_member(
    fh: IO[bytes], dest: Path, entry: dict[str, Any], undo: Undo, touched: set[Path]
) -> None:
    """Write one entry to dest through a temp name, checking its checksum again."""
    undo.mkdir(dest.parent)
    temp = dest.with_name(f".{dest.name}.restore-{uuid.uuid4().hex[:8]}")
    undo.files.append(temp)
    sha, written = hashlib.sha256(), 0
    sparse = entry.get("sparse")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        if sparse:
            for offset, length in sparse["runs"]:
                left = int(length)
                pos = int(offset)
                while left:
                    data = fh.read(min(left, 1 << 20))
                    if not data:
                        raise BackupError(f"{entry['path']} ended early in the archive.")
                    sha.update(data)
                    _pwrite_all(fd, data, pos)
                    pos += len(data)
                    left -= len(data)
                    written += len(data)
            os.ftruncate(fd, int(sparse["size"]))
        else:
            while data := fh.read(1 << 20):
                sha.update(data)
                _pwrite_all(fd, data, written)
                written += len(data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if (written, sha.hexdigest()) != (int(entry["size"]), entry["sha256"]):
        raise BackupError(f"{entry['path']} changed since it was checked; nothing was restored.")
    os.replace(temp, dest)
    undo.files.append(dest)
    touched.add(dest.parent)
