"""`pitchcraft backup` / `pitchcraft restore`: a round trip through real servers on SQLite and
PostgreSQL, refusals, damaged archives, and backups taken while uploads and sign-ins run."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import psycopg.sql
import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient

from pitchcraft.core.db import Database
from pitchcraft.ops.backup import BackupError, create_backup, restore_backup
from pitchcraft.ops.backup import create as backup_create
from pitchcraft.ops.backup.format import MANIFEST
from pitchcraft.ops.backup.vectors import check_vectors
from pitchcraft.settings import Settings
from pitchcraft.vectors.base import IndexPoint, SparseVec
from pitchcraft.vectors.qdrant_server import ServerIndex
from pitchcraft.web.app import create_app
from tests.conftest import (
    CORPUS,
    PG_URL,
    PgSchema,
    ServerProcess,
    auth,
    make_settings,
    register,
)
from tests.docs_helpers import upload, wait_final

pytestmark = pytest.mark.timeout(600)

EMAIL, PASSWORD = "owner@example.com", "owner-pass-1"
OTHER, OTHER_PASSWORD = "other@example.com", "other-pass-2"
TEMPLATE = "Make this sharper for {{backgrounds}}:\n{{marketing_text}}\n\nSources:\n{{context}}"
TEXT = "Iwan Roberts scored goals for Norwich City; the memo asks staff to keep records."
CORPUS_FILES = ("text/norwich-city.txt", "pdf/fake-memo.pdf")


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pitchcraft", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _wait_job(client: httpx.Client, token: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while True:
        r = client.get(f"/api/v1/rag/results/{job_id}", headers=auth(token))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        assert time.monotonic() < deadline, f"job stuck: {body}"
        time.sleep(0.2)


def _state(client: httpx.Client, token: str, job_id: str) -> dict[str, Any]:
    """Everything a user sees that a backup must keep."""
    h = auth(token)
    me = client.get("/api/v1/auth/me", headers=h)
    assert me.status_code == 200, me.text
    search = client.post(
        "/api/v1/search", headers=h, json={"query": "Iwan Roberts Norwich City goals"}
    )
    assert search.status_code == 200, search.text
    hits = search.json()["results"]
    return {
        "me": me.json(),
        "documents": client.get("/api/v1/documents", headers=h).json(),
        "top_hit": {k: hits[0][k] for k in ("document_id", "filename", "page", "snippet", "score")},
        # Fused (RRF) scores tie now and then, and ties may come back in another order.
        "scores": sorted(x["score"] for x in hits),
        "jobs": client.get("/api/v1/jobs", headers=h).json(),
        "job": client.get(f"/api/v1/rag/results/{job_id}", headers=h).json(),
        "template": client.get("/api/v1/rag/prompt-template", headers=h).json(),
    }


def _manifest(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive) as tar:
        fh = tar.extractfile(MANIFEST)
        assert fh is not None
        manifest: dict[str, Any] = json.load(fh)
        return manifest


@pytest.fixture
def fresh_schema(database_url: str | None) -> Iterator[PgSchema | None]:
    """A second, empty PostgreSQL schema to restore into (None on SQLite)."""
    if database_url is None:
        yield None
        return
    schema = PgSchema()
    schema.create()
    try:
        yield schema
    finally:
        schema.drop()


@pytest.mark.slow
def test_round_trip_while_the_server_runs(
    tmp_path: Path,
    server_env: dict[str, str],
    start_server: Callable[[dict[str, str]], ServerProcess],
    database_url: str | None,
    fresh_schema: PgSchema | None,
) -> None:
    env = {**server_env, "CLEAR_DOCUMENTS_ON_LOGIN": "false"}
    first = start_server(env)
    with httpx.Client(base_url=first.url, timeout=60) as c:
        token = register(c, EMAIL, PASSWORD)
        register(c, OTHER, OTHER_PASSWORD)
        entries = upload(
            c, token, *[(Path(f).name, (CORPUS / f).read_bytes()) for f in CORPUS_FILES]
        )
        assert [wait_final(c, token, e["id"])["status"] for e in entries] == ["indexed"] * 2
        # The state compared after the restore is a settled one: multilingual enrichment
        # (in the background, after indexing) has finished.
        deadline = time.monotonic() + 300
        while {
            d["multilingual"] for d in c.get("/api/v1/documents", headers=auth(token)).json()
        } != {"done"}:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        r = c.post("/api/v1/rag/prompt-template", headers=auth(token), json={"template": TEMPLATE})
        assert r.status_code == 200, r.text
        r = c.post(
            "/api/v1/rag/process",
            headers=auth(token),
            json={"marketing_text": TEXT, "backgrounds": ["SaaS"]},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        assert _wait_job(c, token, job_id)["status"] == "succeeded"
        before = _state(c, token, job_id)
    assert before["top_hit"]["filename"] == "norwich-city.txt"

    # The backup runs as its own process while the server is up (and owns the vector index).
    archive = tmp_path / "backup.tar"
    made = _cli(["backup", str(archive)], env, tmp_path)
    assert made.returncode == 0, made.stderr + made.stdout
    # Jobs: two ingestions, their two multilingual enrichments and the refine job.
    assert "2 users, 2 documents, 5 jobs, 1 prompt template" in made.stdout
    assert "1 user index(es) copied and checked" in made.stdout
    first.stop()

    manifest = _manifest(archive)
    assert manifest["database"]["kind"] == ("sqlite" if database_url is None else "postgresql")
    assert manifest["alembic_revision"]
    assert manifest["counts"] == {"users": 2, "documents": 2, "jobs": 5, "prompt_templates": 1}
    stored = {e["document_id"]: e for e in manifest["entries"] if "document_id" in e}
    by_name = {d["filename"]: d["id"] for d in before["documents"]}
    for f in CORPUS_FILES:
        entry = stored[by_name[Path(f).name]]
        assert entry["sha256"] == hashlib.sha256((CORPUS / f).read_bytes()).hexdigest()

    target = {**env, "DATA_DIR": str(tmp_path / "restored")}
    if fresh_schema is not None:
        target["DATABASE_URL"] = fresh_schema.url
    restored = _cli(["restore", str(archive)], target, tmp_path)
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert "1 user index(es) restored and checked" in restored.stdout
    assert "re-queued" not in restored.stdout

    second = start_server(target)
    with httpx.Client(base_url=second.url, timeout=60) as c:
        # The same token works: the generated signing secret came back with the database.
        after = _state(c, token, job_id)
        assert after == before
        assert {d["status"] for d in after["documents"]} == {"indexed"}
        for email, password in ((EMAIL, PASSWORD), (OTHER, OTHER_PASSWORD)):
            r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
            assert r.status_code == 200, r.text
        # New rows do not collide with restored ids (sequences were reset on PostgreSQL).
        register(c, "third@example.com", "third-pass-3")
    second.stop()

    if database_url is None:
        _damaged_vectors_are_requeued(target)


def _damaged_vectors_are_requeued(env: dict[str, str]) -> None:
    """A missing or damaged user index is dropped and its documents queued for indexing."""
    settings = make_settings(Path(env["DATA_DIR"]))
    shard = settings.qdrant_dir / "user_1_documents"
    segments = shard / "segments"
    for f in segments.rglob("*"):
        if f.is_file():
            f.write_bytes(b"\xff" * 64)
    db = Database(settings)
    try:
        summary, queued, warnings = check_vectors(settings, db)
        assert queued == 2 and "1 user(s) re-queued" in summary and not warnings
        assert not shard.exists()
        with db.engine.connect() as conn:
            statuses = conn.exec_driver_sql("SELECT status FROM documents").scalars().all()
            jobs = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'ingest' AND status = 'queued'"
            ).scalar()
        assert set(statuses) == {"queued"} and jobs == 2
    finally:
        db.dispose()


# -- without a server: small archives made in-process ---------------------------------------


def _source(tmp_path: Path, database_url: str | None, **overrides: Any) -> Settings:
    """A data location with two users and three queued documents (no ingestion)."""
    settings = make_settings(
        tmp_path / "source", database_url, worker_in_process=False, **overrides
    )
    with TestClient(create_app(settings)) as c:
        token = register(c, EMAIL, PASSWORD)
        other = register(c, OTHER, OTHER_PASSWORD)
        upload(c, token, ("a.txt", b"alpha " * 50), ("b.md", b"# beta\n\nbeta text"))
        upload(c, other, ("c.txt", b"gamma " * 40))
        r = c.post("/api/v1/rag/prompt-template", headers=auth(token), json={"template": TEMPLATE})
        assert r.status_code == 200, r.text
    return settings


def _target(tmp_path: Path, name: str, schema: PgSchema | None) -> Settings:
    return make_settings(tmp_path / name, schema.url if schema else None)


def _data_files(settings: Settings) -> list[Path]:
    return [
        p
        for root in (settings.storage_dir, settings.qdrant_dir)
        if root.exists()
        for p in root.rglob("*")
        if p.is_file()
    ]


def _user_count(settings: Settings) -> int | None:
    """Users in the target database, None when there is no Pitchcraft schema at all."""
    if settings.database_url is None:
        if not settings.sqlite_file.exists():
            return None
        with sqlite3.connect(settings.sqlite_file) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if "users" not in tables:
                return None
            return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])
    schema = settings.database_url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_URL.replace("+psycopg", ""), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            (schema, "users"),
        ).fetchone()
        if not exists:
            return None
        row = conn.execute(
            psycopg.sql.SQL("SELECT COUNT(*) FROM {}.users").format(psycopg.sql.Identifier(schema))
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_restore_refuses_a_target_that_holds_data(
    tmp_path: Path, database_url: str | None, fresh_schema: PgSchema | None
) -> None:
    source = _source(tmp_path, database_url)
    archive = tmp_path / "b.tar.gz"
    report = create_backup(source, archive)
    assert report.files == 3 and report.counts["users"] == 2
    assert report.vectors.startswith("0 user index(es)")

    target = _target(tmp_path, "target", fresh_schema)
    first = restore_backup(target, archive)
    assert first.counts == {"users": 2, "documents": 3, "jobs": 3, "prompt_templates": 1}
    assert first.files == 3
    files_before = sorted(_data_files(target))

    with pytest.raises(BackupError, match="not empty") as refused:
        restore_backup(target, archive)
    assert "holds data (2 users" in str(refused.value)
    assert sorted(_data_files(target)) == files_before
    assert _user_count(target) == 2

    # A stray file in STORAGE_PATH alone is enough to refuse (nothing merges silently).
    other = _target(tmp_path, "other", None)
    (other.storage_dir / "7").mkdir(parents=True)
    (other.storage_dir / "7" / "leftover.pdf").write_bytes(b"%PDF")
    with pytest.raises(BackupError, match=r"STORAGE_PATH=.* is not empty"):
        restore_backup(other, archive)
    assert not other.sqlite_file.exists()


def test_a_damaged_archive_is_refused_before_anything_is_written(
    tmp_path: Path, database_url: str | None, fresh_schema: PgSchema | None
) -> None:
    source = _source(tmp_path, database_url)
    archive = tmp_path / "b.tar"
    create_backup(source, archive)
    target = _target(tmp_path, "target", fresh_schema)

    # Flip one byte in the middle of a stored file.
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith("storage/"))
    damaged = tmp_path / "damaged.tar"
    shutil.copy(archive, damaged)
    with damaged.open("r+b") as fh:
        fh.seek(member.offset_data + member.size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(BackupError, match=f"{member.name} does not match its checksum"):
        restore_backup(target, damaged)

    # Cut short (an interrupted copy) and not an archive at all.
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(BackupError, match=r"incomplete|damaged"):
        restore_backup(target, truncated)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(BackupError, match=r"not a readable backup archive|incomplete"):
        restore_backup(target, junk)

    assert _data_files(target) == []
    assert _user_count(target) is None

    # The command line says so in one message, without a traceback, and exits non-zero.
    env = {"DATA_DIR": str(tmp_path / "target"), "CONTAINER_MODE": "no"}
    if fresh_schema is not None:
        env["DATABASE_URL"] = fresh_schema.url
    result = _cli(["restore", str(damaged)], env, tmp_path)
    assert result.returncode != 0
    assert "does not match its checksum" in result.stderr
    assert "Traceback" not in result.stderr
    assert _user_count(target) is None

    # The untouched archive still restores into the same target.
    assert restore_backup(target, archive).counts["documents"] == 3


def test_backup_command_errors_are_clear(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "nothing"), "CONTAINER_MODE": "no"}
    result = _cli(["backup", str(tmp_path / "x.tar")], env, tmp_path)
    assert result.returncode != 0
    assert "There is no database at" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.tar").exists()

    existing = tmp_path / "exists.tar"
    existing.write_bytes(b"keep me")
    result = _cli(["backup", str(existing)], env, tmp_path)
    assert result.returncode != 0 and "already exists" in result.stderr
    assert existing.read_bytes() == b"keep me"


def test_documents_deleted_or_lost_during_a_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that disappears after the database snapshot: deleted with its row (a sign-in
    clears documents) is left out consistently; lost while its row stays is reported."""
    source = _source(tmp_path, None)
    with sqlite3.connect(source.sqlite_file) as conn:
        rows = conn.execute("SELECT id, storage_key FROM documents ORDER BY filename").fetchall()
    (gone_id, gone_key), (lost_id, lost_key), _ = rows
    take_snapshot = backup_create.snapshot_sqlite

    def snapshot_then_delete(settings: Settings, staging: Path) -> Any:
        snap = take_snapshot(settings, staging)
        with sqlite3.connect(settings.sqlite_file) as conn:  # what clear_user does: row, file
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("DELETE FROM documents WHERE id = ?", (gone_id,))
        (settings.storage_dir / gone_key).unlink()
        (settings.storage_dir / lost_key).unlink()  # lost: the row stays
        return snap

    monkeypatch.setattr(backup_create, "snapshot_sqlite", snapshot_then_delete)
    archive = tmp_path / "b.tar"
    report = create_backup(source, archive)
    assert report.deleted == 1 and report.missing == [lost_key] and report.files == 1
    assert any("missing from STORAGE_PATH" in line for line in report.lines())

    target = _target(tmp_path, "target", None)
    restored = restore_backup(target, archive)
    assert restored.counts["documents"] == 2 and restored.counts["jobs"] == 2
    assert any(lost_key in w for w in restored.warnings)
    with sqlite3.connect(target.sqlite_file) as conn:
        ids = {r[0] for r in conn.execute("SELECT id FROM documents")}
        job_docs = {r[0] for r in conn.execute("SELECT document_id FROM jobs")}
    assert gone_id not in ids and lost_id in ids and gone_id not in job_docs


def _login(client: httpx.Client, email: str, password: str) -> str:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


@pytest.mark.slow
def test_backup_while_uploads_and_sign_ins_run(
    tmp_path: Path,
    server_env: dict[str, str],
    start_server: Callable[[dict[str, str]], ServerProcess],
    database_url: str | None,
) -> None:
    """Archives taken under load restore, and every restored document has its file."""
    env = {**server_env, "WORKER_IN_PROCESS": "false"}  # the race is files vs rows
    server = start_server(env)
    stop = threading.Event()
    errors: list[str] = []

    def churn() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                token = register(c, EMAIL, PASSWORD)
                register(c, OTHER, OTHER_PASSWORD)
                n = 0
                while not stop.is_set():
                    n += 1
                    upload(c, token, (f"a{n}.txt", f"upload {n} ".encode() * 200))
                    # Each sign-in clears that user's documents (the default): rows, then
                    # files, possibly between a backup's snapshot and its copy of the files.
                    other = _login(c, OTHER, OTHER_PASSWORD)
                    upload(c, other, (f"b{n}.md", b"# b" * 300))
                    if n % 3 == 0:
                        token = _login(c, EMAIL, PASSWORD)
        except Exception as exc:  # reported by the test below
            errors.append(repr(exc))

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    settings = make_settings(Path(env["DATA_DIR"]), env.get("DATABASE_URL"))
    archives: list[Path] = []
    try:
        deadline = time.monotonic() + 60
        while not (settings.storage_dir.exists() and len(_data_files(settings)) >= 4):
            assert time.monotonic() < deadline and not errors, errors
            time.sleep(0.1)
        for i in range(3):
            archive = tmp_path / f"busy-{i}.tar"
            report = create_backup(settings, archive)
            assert report.missing == []
            archives.append(archive)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not errors, errors
    server.stop()

    for i, archive in enumerate(archives):
        schema = PgSchema() if database_url else None
        if schema:
            schema.create()
        try:
            target = _target(tmp_path, f"restored-{i}", schema)
            result = restore_backup(target, archive)
            assert result.counts["users"] == 2
            keys = _storage_keys(target)
            assert len(keys) == result.counts["documents"] == result.files
            for key in keys:
                assert (target.storage_dir / key).is_file(), key
        finally:
            if schema:
                schema.drop()


def _storage_keys(settings: Settings) -> list[str]:
    db = Database(settings)
    try:
        with db.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT storage_key FROM documents").scalars()
            return [str(k) for k in rows]
    finally:
        db.dispose()


def test_an_archive_through_a_pipe(tmp_path: Path) -> None:
    """`backup -` and `restore -`: what `docker compose exec -T` streams in and out."""
    source = _source(tmp_path, None)
    out = io.BytesIO()
    report = create_backup(source, stream=out)
    assert report.path is None and report.files == 3
    target = _target(tmp_path, "target", None)
    restored = restore_backup(target, stream=io.BytesIO(out.getvalue()))
    assert restored.counts == {"users": 2, "documents": 3, "jobs": 3, "prompt_templates": 1}
    assert restored.archive == "standard input"
    # The spooled copy is gone: only the restored files are left in STORAGE_PATH.
    assert sorted(p.name for p in target.storage_dir.iterdir()) == ["1", "2"]


def test_vectors_on_a_qdrant_server_are_checked_and_requeued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With QDRANT_URL the archive holds no vectors; restore counts what the server has and
    re-queues every user whose indexed documents are not all there. (qdrant-client's local
    mode stands in for the server, as in test_vector_index.py.)"""
    source = _source(tmp_path, None, qdrant_url="http://127.0.0.1:9")
    archive = tmp_path / "b.tar"
    assert create_backup(source, archive).vectors.startswith("not included")
    manifest = _manifest(archive)
    assert manifest["vectors"] == {"backend": "qdrant-server", "included": False}
    assert not [e for e in manifest["entries"] if e["path"].startswith("qdrant/")]

    def server_index(_settings: Settings) -> ServerIndex:
        return ServerIndex(QdrantClient(path=str(tmp_path / "qdrant-server")), 4)

    monkeypatch.setattr("pitchcraft.vectors.build_index", server_index)
    target = make_settings(tmp_path / "target", None, qdrant_url="http://127.0.0.1:9")
    restored = restore_backup(target, archive)
    assert restored.queued == 0  # nothing was indexed yet: the queued jobs do it
    db = Database(target)
    try:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE documents SET status = 'indexed', chunks = 1")
            docs = conn.exec_driver_sql(
                "SELECT id, user_id, filename FROM documents ORDER BY filename"
            ).all()
        index = server_index(target)
        for doc_id, user_id, filename in docs:
            if filename != "b.md":  # user 1's second document has no vectors
                index.upsert(user_id, [_point(doc_id, filename)])
        index.close()
        summary, queued, warnings = check_vectors(target, db)
        assert (queued, warnings) == (2, [])
        assert summary == "1 user index(es) restored and checked; 1 user(s) re-queued for indexing"
        index = server_index(target)
        assert index.count(1) == 0 and index.count(2) == 1
        index.close()
    finally:
        db.dispose()


def _point(doc_id: str, filename: str) -> IndexPoint:
    return IndexPoint(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, doc_id)),
        dense=[0.1, 0.2, 0.3, 0.4],
        sparse=SparseVec([1], [1.0]),
        document_id=doc_id,
        filename=filename,
        page=None,
        section=None,
        chunk_index=0,
        text="text",
    )
