"""The persistence guard: data directories exist, are writable, and outlive the container."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from pitchcraft.settings import Settings

MOUNTINFO = Path("/proc/self/mountinfo")
CONTAINER_MARKERS = (Path("/.dockerenv"), Path("/run/.containerenv"))
# The writable layer of a container's root filesystem: gone when the container is removed.
# FUSE filesystems appear in mountinfo as "fuse.<subtype>": rootless Podman's root is
# "fuse.fuse-overlayfs", never a bare "fuse-overlayfs".
CONTAINER_ROOT_FSTYPES = {"overlay", "overlayfs", "aufs", "fuse.fuse-overlayfs", "vfs"}
# Memory-backed filesystems lose everything on restart, container or not.
VOLATILE_FSTYPES = {"tmpfs", "ramfs"}

COMPOSE_VOLUMES = {
    "DB_PATH": "backend_db",
    "STORAGE_PATH": "backend_storage",
    "QDRANT_PATH": "qdrant_storage",
}


class DataNotPersistent(RuntimeError):
    pass


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str
    source: str


@dataclass(frozen=True)
class PathReport:
    setting: str
    path: Path
    writable: bool
    persistent: bool
    where: str
    free_bytes: int | None
    problem: str | None


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return (
        field.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
    )


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 2:
            continue
        mounts.append(Mount(_unescape(fields[4]), tail[0], tail[1]))
    return mounts


def read_mounts() -> list[Mount]:
    try:
        return parse_mountinfo(MOUNTINFO.read_text())
    except OSError:
        return []


def mount_of(path: Path, mounts: list[Mount]) -> Mount | None:
    """The mount a path lives on: the longest mount point that contains it (last one wins)."""
    best: Mount | None = None
    target = str(path)
    for m in mounts:
        mp = m.mount_point
        inside = target == mp or target.startswith(mp.rstrip("/") + "/") or mp == "/"
        if inside and (best is None or len(mp) >= len(best.mount_point)):
            best = m
    return best


def in_container(settings: Settings, mounts: list[Mount]) -> bool:
    if settings.container_mode != "auto":
        return settings.container_mode == "yes"
    if not (any(p.exists() for p in CONTAINER_MARKERS) or os.environ.get("container")):  # noqa: SIM112 - podman's name
        return False
    root = mount_of(Path("/"), mounts)
    # A marker file alone is not enough: some sandboxes and VMs carry /.dockerenv on a
    # real disk. A container's writable layer is an overlay-style root filesystem.
    return root is not None and root.fstype in CONTAINER_ROOT_FSTYPES


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_path(
    setting: str, path: Path, *, container: bool, mounts: list[Mount], create: bool
) -> PathReport:
    resolved = path.expanduser().resolve()
    problem: str | None = None
    writable = False
    if create:
        try:
            resolved.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            problem = f"{setting}={resolved} cannot be created: {exc.strerror or exc}"
    if problem is None and resolved.is_dir():
        probe = resolved / f".write-test-{uuid.uuid4().hex}"
        try:
            with probe.open("wb") as fh:
                fh.write(b"ok")
                fh.flush()
                os.fsync(fh.fileno())
            probe.unlink()
            writable = True
        except OSError as exc:
            problem = f"{setting}={resolved} is not writable: {exc.strerror or exc}"
    elif problem is None:
        problem = f"{setting}={resolved} does not exist"

    mount = mount_of(resolved, mounts)
    free = None
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(_nearest_existing(resolved)).free

    fstype = mount.fstype if mount else "unknown"
    if mount is not None and mount.fstype in VOLATILE_FSTYPES:
        persistent, where = False, f"memory-backed {fstype} at {mount.mount_point}"
    elif container and (mount is None or mount.mount_point == "/"):
        persistent, where = False, "the container's own filesystem (lost when it is recreated)"
    elif container and mount is not None:
        persistent, where = True, f"volume mounted at {mount.mount_point} ({fstype})"
    else:
        mp = mount.mount_point if mount else "?"
        persistent, where = True, f"local disk, filesystem {mp} ({fstype})"

    if not persistent and problem is None:
        volume = COMPOSE_VOLUMES.get(setting, "pitchcraft_data")
        problem = (
            f"{setting}={resolved} is on {where}; data written there would be lost. "
            f"Mount a volume there, e.g. in compose.yaml under the backend service: "
            f'`volumes: ["{volume}:{resolved}"]` (and declare `{volume}:` under top-level '
            "`volumes:`), or set ALLOW_EPHEMERAL_DATA=true for a throwaway instance."
        )
    return PathReport(setting, resolved, writable, persistent, where, free, problem)


def inspect_paths(settings: Settings, *, create: bool = True) -> list[PathReport]:
    mounts = read_mounts()
    container = in_container(settings, mounts)
    return [
        check_path(name, path, container=container, mounts=mounts, create=create)
        for name, path in settings.data_paths().items()
    ]


def ensure_persistent(settings: Settings) -> list[PathReport]:
    """Create and check every data directory; raise DataNotPersistent naming each problem."""
    reports = inspect_paths(settings, create=True)
    problems = []
    for r in reports:
        if not r.writable:
            problems.append(r.problem or f"{r.setting}={r.path} is not writable")
        elif not r.persistent and not settings.allow_ephemeral_data:
            problems.append(r.problem or f"{r.setting}={r.path} does not persist")
    if problems:
        raise DataNotPersistent("Refusing to start:\n  - " + "\n  - ".join(problems))
    return reports
