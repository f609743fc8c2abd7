"""Data at rest belongs to the account that runs the app: folders 0700, files 0600.

The process umask makes everything the app, SQLite and Qdrant Edge create private from the
start; `repair_modes` fixes an install made before that (or files copied in by hand), and
`exposed_paths` is what `pitchcraft doctor` reports.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from pitchcraft.core.files import fsync_dir
from pitchcraft.settings import Settings

PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
# Group and other bits: any of them lets another local account in.
_SHARED_BITS = 0o077


def restrict_umask() -> int:
    """Make every file and folder this process creates private; returns the old umask."""
    return os.umask(PRIVATE_UMASK)


def _walk(roots: Iterable[Path]) -> Iterator[tuple[Path, os.stat_result]]:
    walked: list[Path] = []
    for root in sorted({r.expanduser().resolve() for r in roots}, key=lambda p: len(p.parts)):
        if not root.exists() or any(root == w or w in root.parents for w in walked):
            continue  # inside a folder walked already
        walked.append(root)
        stack = [root]
        while stack:
            path = stack.pop()
            try:
                info = path.lstat()
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISLNK(info.st_mode):
                continue  # never follow a link out of the data location
            yield path, info
            if stat.S_ISDIR(info.st_mode):
                with contextlib.suppress(OSError):
                    stack.extend(path.iterdir())


def exposed_paths(roots: Iterable[Path]) -> list[tuple[Path, int]]:
    """Folders and files under `roots` that another local account may read or enter, with
    their modes."""
    return [
        (path, stat.S_IMODE(info.st_mode))
        for path, info in _walk(roots)
        if stat.S_IMODE(info.st_mode) & _SHARED_BITS
    ]


def repair_modes(roots: Iterable[Path]) -> list[Path]:
    """Take the group and other bits off everything under `roots` that has them; returns
    what was changed (files owned by another account are left, and not listed)."""
    changed = []
    for path, info in _walk(roots):
        mode = stat.S_IMODE(info.st_mode)
        if not mode & _SHARED_BITS or info.st_uid != os.geteuid():
            continue
        try:
            path.chmod(mode & ~_SHARED_BITS)
        except OSError:
            continue
        changed.append(path)
    return changed


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new 0600 file at `path`, crash-safely (temp name, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # an old temp file keeps its mode through O_TRUNC
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_dir(path.parent)


def private_roots(settings: Settings) -> list[Path]:
    """What must be private: every data folder (and DATA_DIR when they are inside it), and
    the folder of the generated token secret."""
    roots = list(settings.data_paths().values())
    if any(settings.data_dir.resolve() in p.resolve().parents for p in roots):
        roots.append(settings.data_dir)
    if not settings.jwt_secret:
        roots.append(settings.token_secret_file.parent)
    return roots
