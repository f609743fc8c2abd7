"""The persistence guard: data goes only where it outlives the process and the container."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pitchcraft.core import persistence
from pitchcraft.core.migrate import head_revision
from pitchcraft.core.persistence import (
    DataNotPersistent,
    Mount,
    check_path,
    ensure_persistent,
    in_container,
    mount_of,
    parse_mountinfo,
)
from pitchcraft.settings import Settings
from tests.conftest import ServerProcess, free_port

SETTINGS = ("DB_PATH", "STORAGE_PATH", "QDRANT_PATH")
VOLUMES = {
    "DB_PATH": "backend_db",
    "STORAGE_PATH": "backend_storage",
    "QDRANT_PATH": "qdrant_storage",
}
PITCHCRAFT = Path(sys.executable).with_name("pitchcraft")


def escape(path: str) -> str:
    """How the kernel writes a path into mountinfo."""
    return (
        path.replace("\\", "\\134")
        .replace(" ", "\\040")
        .replace("\t", "\\011")
        .replace("\n", "\\012")
    )


def docker_mountinfo(app: str = "/app", root_fstype: str = "overlay") -> str:
    """/proc/self/mountinfo of `docker compose up` with the three named volumes under `app`.

    Modelled on a real container: an overlay2 root, the usual proc/dev/sys mounts, Docker's
    masked paths, /dev/shm as tmpfs, resolv.conf/hostname/hosts bind-mounted from the host
    disk, the named volumes on the host's ext4, and a bind mount with a space in its name.
    """
    a = escape(app)
    vol = "/var/lib/docker/volumes/pitchcraft_{}/_data"
    return "\n".join(
        [
            f"1180 1003 0:283 / / rw,relatime master:1 - {root_fstype} overlay rw,"
            "lowerdir=/var/lib/docker/overlay2/l/3QKXM6Y2RJ:/var/lib/docker/overlay2/l/Z7HBU4XQ,"
            "upperdir=/var/lib/docker/overlay2/9f1c0e/diff,"
            "workdir=/var/lib/docker/overlay2/9f1c0e/work,nouserxattr",
            "1181 1180 0:286 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw",
            "1182 1180 0:287 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755",
            "1183 1182 0:288 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts "
            "rw,gid=5,mode=620,ptmxmode=666",
            "1184 1180 0:289 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro",
            "1185 1184 0:290 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup ro",
            "1186 1182 0:285 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw",
            "1187 1182 0:291 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k",
            f"1188 1180 254:1 {vol.format('backend_db')} {a}/db rw,relatime master:2 - ext4 "
            "/dev/vda1 rw,discard",
            f"1189 1180 254:1 {vol.format('backend_storage')} {a}/storage rw,relatime "
            "shared:7 master:2 - ext4 /dev/vda1 rw,discard",
            f"1190 1180 254:1 {vol.format('qdrant_storage')} {a}/qdrant rw,relatime - ext4 "
            "/dev/vda1 rw,discard",
            "1191 1180 254:1 /var/lib/docker/containers/5e2a/resolv.conf /etc/resolv.conf "
            "rw,relatime - ext4 /dev/vda1 rw,discard",
            "1192 1180 254:1 /var/lib/docker/containers/5e2a/hostname /etc/hostname "
            "rw,relatime - ext4 /dev/vda1 rw,discard",
            "1193 1180 254:1 /var/lib/docker/containers/5e2a/hosts /etc/hosts rw,relatime "
            "- ext4 /dev/vda1 rw,discard",
            f"1194 1180 254:1 /srv/pitch\\040craft/exports {a}/my\\040exports rw,relatime "
            "- ext4 /dev/vda1 rw,discard",
            "1004 1181 0:286 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw",
            "1005 1181 0:292 / /proc/kcore rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755",
            "1006 1184 0:293 / /sys/firmware ro,relatime - tmpfs tmpfs ro",
            "",
        ]
    )


# A development VM or sandbox: a real ext4 root disk (which may still carry /.dockerenv).
HOST_MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
"""


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


# --- parse_mountinfo -----------------------------------------------------------------------


def test_parse_mountinfo_reads_mount_point_fstype_and_source() -> None:
    mounts = parse_mountinfo(docker_mountinfo())
    assert len(mounts) == 18
    by_point = {m.mount_point: m for m in mounts}
    assert by_point["/"] == Mount("/", "overlay", "overlay")
    assert by_point["/app/db"] == Mount("/app/db", "ext4", "/dev/vda1")
    # Optional fields (shared:N master:N) before the separator do not shift the columns.
    assert by_point["/app/storage"] == Mount("/app/storage", "ext4", "/dev/vda1")
    assert by_point["/dev/shm"] == Mount("/dev/shm", "tmpfs", "shm")
    assert by_point["/sys/fs/cgroup"].fstype == "cgroup2"


def test_parse_mountinfo_unescapes_octal_in_mount_points() -> None:
    mounts = parse_mountinfo(docker_mountinfo())
    assert "/app/my exports" in {m.mount_point for m in mounts}
    assert not any("\\040" in m.mount_point for m in mounts)
    odd = parse_mountinfo(
        "1 0 8:1 / /mnt/a\\011b\\134c\\040d rw - ext4 /dev/sda1 rw\n"
        # An escaped backslash followed by digits stays a backslash and digits.
        "2 0 8:1 / /mnt/x\\134040y rw - ext4 /dev/sda1 rw\n"
    )
    assert [m.mount_point for m in odd] == ["/mnt/a\tb\\c d", "/mnt/x\\040y"]


def test_parse_mountinfo_skips_lines_it_cannot_read() -> None:
    text = "\n".join(
        [
            "",
            "garbage without a separator",
            "1 0 8:1 / - ext4",  # too few fields on both sides
            "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw",
        ]
    )
    assert parse_mountinfo(text) == [Mount("/", "ext4", "/dev/vda")]


# --- mount_of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "mount_point", "fstype"),
    [
        ("/app/db", "/app/db", "ext4"),
        ("/app/db/pitchcraft.db", "/app/db", "ext4"),
        ("/app/qdrant/collections/docs/segment", "/app/qdrant", "ext4"),
        ("/app/other", "/", "overlay"),
        ("/app", "/", "overlay"),
        ("/app/dbx/file", "/", "overlay"),  # a shared prefix is not containment
        ("/dev/shm/pitchcraft", "/dev/shm", "tmpfs"),
        ("/app/my exports/report.pdf", "/app/my exports", "ext4"),
        ("/", "/", "overlay"),
    ],
)
def test_mount_of_picks_the_longest_containing_mount(
    path: str, mount_point: str, fstype: str
) -> None:
    mount = mount_of(Path(path), parse_mountinfo(docker_mountinfo()))
    assert mount is not None
    assert (mount.mount_point, mount.fstype) == (mount_point, fstype)


def test_mount_of_later_mount_on_the_same_point_wins() -> None:
    mounts = [
        Mount("/", "overlay", "overlay"),
        Mount("/data", "ext4", "a"),
        Mount("/data", "tmpfs", "b"),
    ]
    mount = mount_of(Path("/data/x"), mounts)
    assert mount is not None and mount.fstype == "tmpfs"


def test_mount_of_without_mounts_is_none() -> None:
    assert mount_of(Path("/app/db"), []) is None


# --- check_path ----------------------------------------------------------------------------


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    """A real directory standing in for /app, so check_path can create and write in it."""
    app = (tmp_path / "app").resolve()
    for name in ("db", "storage", "qdrant"):
        (app / name).mkdir(parents=True)
    return app


def test_a_named_volume_in_a_container_persists(app_dir: Path) -> None:
    mounts = parse_mountinfo(docker_mountinfo(str(app_dir)))
    report = check_path("DB_PATH", app_dir / "db", container=True, mounts=mounts, create=True)
    assert report.writable and report.persistent
    assert report.problem is None
    assert f"volume mounted at {app_dir / 'db'}" in report.where
    assert report.free_bytes is not None and report.free_bytes > 0


def test_the_container_root_filesystem_does_not_persist(app_dir: Path) -> None:
    mounts = parse_mountinfo(docker_mountinfo(str(app_dir)))
    other = app_dir / "other"
    report = check_path("STORAGE_PATH", other, container=True, mounts=mounts, create=True)
    assert report.writable and not report.persistent
    assert "container's own filesystem" in report.where
    assert report.problem is not None
    assert f"STORAGE_PATH={other}" in report.problem
    assert f'"backend_storage:{other}"' in report.problem
    assert "ALLOW_EPHEMERAL_DATA=true" in report.problem


def test_the_same_root_filesystem_persists_outside_a_container(app_dir: Path) -> None:
    mounts = parse_mountinfo(docker_mountinfo(str(app_dir)))
    report = check_path("DB_PATH", app_dir / "other", container=False, mounts=mounts, create=True)
    assert report.persistent and report.problem is None
    assert report.where == "local disk, filesystem / (overlay)"


@pytest.mark.parametrize("container", [True, False])
def test_tmpfs_never_persists(tmp_path: Path, container: bool) -> None:
    shm = tmp_path.resolve() / "shm"
    mounts = [Mount("/", "ext4", "/dev/vda"), Mount(str(shm), "tmpfs", "shm")]
    report = check_path("QDRANT_PATH", shm / "q", container=container, mounts=mounts, create=True)
    assert report.writable and not report.persistent
    assert report.where == f"memory-backed tmpfs at {shm}"
    assert report.problem is not None and "qdrant_storage:" in report.problem


def test_check_path_classifies_paths_it_does_not_create() -> None:
    """The real /app layout, classified without touching the disk."""
    mounts = parse_mountinfo(docker_mountinfo())
    on_volume = check_path("DB_PATH", Path("/app/db"), container=True, mounts=mounts, create=False)
    on_root = check_path("DB_PATH", Path("/app/other"), container=True, mounts=mounts, create=False)
    assert on_volume.persistent and not on_root.persistent
    if not Path("/app").exists():
        assert not on_volume.writable
        assert on_volume.problem == "DB_PATH=/app/db does not exist"


def test_a_path_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    target = tmp_path.resolve() / "afile" / "db"
    report = check_path("DB_PATH", target, container=False, mounts=[], create=True)
    assert not report.writable
    assert report.problem == f"DB_PATH={target} cannot be created: Not a directory"


# --- in_container --------------------------------------------------------------------------


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point CONTAINER_MARKERS at a file the test controls (absent until it touches it)."""
    path = tmp_path / ".dockerenv"
    monkeypatch.setattr(persistence, "CONTAINER_MARKERS", (path, tmp_path / ".containerenv"))
    monkeypatch.delenv("container", raising=False)
    return path


@pytest.mark.parametrize("root_fstype", ["overlay", "fuse.fuse-overlayfs", "aufs"])
def test_auto_detects_a_container_by_marker_and_overlay_root(
    marker: Path, root_fstype: str
) -> None:
    marker.touch()
    mounts = parse_mountinfo(docker_mountinfo(root_fstype=root_fstype))
    assert in_container(settings(container_mode="auto"), mounts)


def test_auto_a_marker_alone_on_an_ext4_root_is_not_a_container(marker: Path) -> None:
    marker.touch()
    assert not in_container(settings(container_mode="auto"), parse_mountinfo(HOST_MOUNTINFO))


def test_auto_an_overlay_root_without_a_marker_is_not_a_container(marker: Path) -> None:
    assert not in_container(settings(container_mode="auto"), parse_mountinfo(docker_mountinfo()))


def test_auto_podman_environment_variable_counts_as_a_marker(
    marker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("container", "podman")
    assert in_container(settings(container_mode="auto"), parse_mountinfo(docker_mountinfo()))


def test_auto_with_unreadable_mounts_is_not_a_container(marker: Path) -> None:
    marker.touch()
    assert not in_container(settings(container_mode="auto"), [])


def test_explicit_container_mode_overrides_detection(marker: Path) -> None:
    marker.touch()
    docker, host = parse_mountinfo(docker_mountinfo()), parse_mountinfo(HOST_MOUNTINFO)
    assert in_container(settings(container_mode="yes"), host)
    assert in_container(settings(container_mode="yes"), [])
    assert not in_container(settings(container_mode="no"), docker)


# --- ensure_persistent (in process, with a simulated container) ----------------------------


def fake_container(monkeypatch: pytest.MonkeyPatch, app: Path, volumes: tuple[str, ...]) -> None:
    """Pretend to be a container whose overlay root has volumes at app/<name>."""
    mounts = [Mount("/", "overlay", "overlay")]
    mounts += [Mount(str(app / v), "ext4", "/dev/vda1") for v in volumes]
    monkeypatch.setattr(persistence, "read_mounts", lambda: mounts)


def app_settings(app: Path, **values: Any) -> Settings:
    return settings(
        container_mode="yes",
        db_path=app / "db",
        storage_path=app / "storage",
        qdrant_path=app / "qdrant",
        **values,
    )


def test_ensure_persistent_accepts_three_volumes(
    monkeypatch: pytest.MonkeyPatch, app_dir: Path
) -> None:
    fake_container(monkeypatch, app_dir, ("db", "storage", "qdrant"))
    reports = ensure_persistent(app_settings(app_dir))
    assert [r.setting for r in reports] == list(SETTINGS)
    assert all(r.persistent and r.writable for r in reports)


def test_ensure_persistent_names_only_the_unmounted_path(
    monkeypatch: pytest.MonkeyPatch, app_dir: Path
) -> None:
    fake_container(monkeypatch, app_dir, ("db", "storage"))
    with pytest.raises(DataNotPersistent) as err:
        ensure_persistent(app_settings(app_dir))
    message = str(err.value)
    assert message.startswith("Refusing to start:")
    assert f"QDRANT_PATH={app_dir / 'qdrant'}" in message
    assert "qdrant_storage:" in message
    assert "DB_PATH" not in message and "STORAGE_PATH" not in message


def test_ensure_persistent_allows_ephemeral_data_when_asked(
    monkeypatch: pytest.MonkeyPatch, app_dir: Path
) -> None:
    fake_container(monkeypatch, app_dir, ())
    reports = ensure_persistent(app_settings(app_dir, allow_ephemeral_data=True))
    assert not any(r.persistent for r in reports)


def test_ensure_persistent_never_allows_an_unwritable_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "afile").touch()
    fake_container(monkeypatch, tmp_path, ())
    s = settings(container_mode="no", allow_ephemeral_data=True, data_dir=tmp_path / "afile")
    with pytest.raises(DataNotPersistent, match="cannot be created: Not a directory"):
        ensure_persistent(s)


def test_postgres_has_no_db_path_to_check(monkeypatch: pytest.MonkeyPatch, app_dir: Path) -> None:
    fake_container(monkeypatch, app_dir, ("storage", "qdrant"))
    s = app_settings(app_dir, database_url="postgresql://u@db:5432/pitchcraft")
    assert [r.setting for r in ensure_persistent(s)] == ["STORAGE_PATH", "QDRANT_PATH"]


# --- real processes ------------------------------------------------------------------------


def process_env(**values: str) -> dict[str, str]:
    """The current environment without any Pitchcraft setting, plus `values`."""
    names = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    env.update(LOG_LEVEL="INFO", **values)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd is a fresh directory, so no stray `.env` file is read.
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def serve(port: int) -> list[str]:
    return [sys.executable, "-m", "pitchcraft", "serve", "--port", str(port)]


@pytest.mark.slow
def test_serve_refuses_to_start_in_a_container_without_volumes(tmp_path: Path) -> None:
    data = tmp_path.resolve() / "data"
    started = time.monotonic()
    proc = run(serve(free_port()), process_env(CONTAINER_MODE="yes", DATA_DIR=str(data)), tmp_path)
    elapsed = time.monotonic() - started
    assert proc.returncode > 0, proc.stderr
    assert elapsed < 60, f"took {elapsed:.0f}s to refuse"
    assert "Refusing to start" in proc.stderr
    for setting, volume in VOLUMES.items():
        path = data / setting.removesuffix("_PATH").lower()
        assert f"{setting}={path}" in proc.stderr
        assert f'"{volume}:{path}"' in proc.stderr
        assert f"`{volume}:`" in proc.stderr
    assert "ALLOW_EPHEMERAL_DATA=true" in proc.stderr
    # Refused before anything was written: no database file where it would be lost.
    assert not (data / "db" / "pitchcraft.db").exists()
    assert "Uvicorn running" not in proc.stderr


@pytest.mark.slow
def test_serve_starts_with_ephemeral_data_allowed(tmp_path: Path) -> None:
    env = process_env(
        CONTAINER_MODE="yes", ALLOW_EPHEMERAL_DATA="true", DATA_DIR=str(tmp_path / "data")
    )
    server = ServerProcess(env, tmp_path / "server.log")
    server.env = env  # exactly this environment, without the test runner's settings
    try:
        server.start()
        r = httpx.get(f"{server.url}/health", timeout=5)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ok"
        assert "container's own filesystem" in server.log()
    finally:
        if server.proc is not None:
            server.stop()


@pytest.mark.slow
def test_serve_refuses_an_unwritable_data_path(tmp_path: Path) -> None:
    # Tests run as root, which chmod does not stop; nothing can create a directory in a file.
    (tmp_path / "afile").write_text("a regular file")
    data = tmp_path.resolve() / "afile" / "data"
    proc = run(serve(free_port()), process_env(CONTAINER_MODE="no", DATA_DIR=str(data)), tmp_path)
    assert proc.returncode > 0, proc.stderr
    assert "Refusing to start" in proc.stderr
    for setting in SETTINGS:
        path = data / setting.removesuffix("_PATH").lower()
        assert f"{setting}={path} cannot be created: Not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_doctor_reports_a_good_local_setup(tmp_path: Path) -> None:
    data = tmp_path.resolve() / "data"
    env = process_env(CONTAINER_MODE="no", DATA_DIR=str(data))
    migrated = run([str(PITCHCRAFT), "migrate"], env, tmp_path)
    assert migrated.returncode == 0, migrated.stderr

    proc = run([str(PITCHCRAFT), "doctor"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "FAIL" not in out
    assert "environment: host" in out
    for setting in SETTINGS:
        line = next(x for x in out.splitlines() if x.startswith(f"[ok  ] {setting}:"))
        assert str(data / setting.removesuffix("_PATH").lower()) in line
        assert "persists" in line and "DOES NOT PERSIST" not in line
        assert "writable" in line and "GiB free" in line
    assert f"database: sqlite reachable at {data / 'db' / 'pitchcraft.db'}" in out
    assert f"schema: at {head_revision()} (latest)" in out


@pytest.mark.slow
def test_doctor_on_a_fresh_directory_names_the_pending_schema(tmp_path: Path) -> None:
    env = process_env(CONTAINER_MODE="no", DATA_DIR=str(tmp_path / "data"))
    proc = run([str(PITCHCRAFT), "doctor"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"schema: at empty, latest is {head_revision()}" in proc.stdout


@pytest.mark.slow
def test_doctor_fails_when_data_does_not_persist(tmp_path: Path) -> None:
    env = process_env(CONTAINER_MODE="yes", DATA_DIR=str(tmp_path / "data"))
    proc = run([str(PITCHCRAFT), "doctor"], env, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "environment: container" in proc.stdout
    for setting, volume in VOLUMES.items():
        assert f"[FAIL] {setting}:" in proc.stdout
        assert f"`{volume}:`" in proc.stdout
    assert proc.stdout.count("DOES NOT PERSIST") == 3


@pytest.mark.slow
def test_doctor_reports_an_unwritable_data_path_without_crashing(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("a regular file")
    env = process_env(CONTAINER_MODE="no", DATA_DIR=str(tmp_path / "afile" / "data"))
    proc = run([str(PITCHCRAFT), "doctor"], env, tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "NOT writable" in proc.stdout
    assert "[FAIL] database: cannot be opened" in proc.stdout
