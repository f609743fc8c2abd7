"""Deleted text leaves the disk: after a document is deleted and the purge that follows a
batch of deletes has run, no file in the data folder holds its passages (SECURITY.md,
"Deletion"). The purge is triggered here directly instead of waiting for its timer."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from pitchcraft.vectors.base import IndexPoint, SparseVec, VectorIndex
from pitchcraft.vectors.purge import Purger
from pitchcraft.vectors.qdrant_edge import EdgeIndex
from pitchcraft.vectors.qdrant_server import ServerIndex
from tests.conftest import app_on, auth, register
from tests.docs_helpers import upload, wait_final

GONE = "Zorblaxian"  # a word no library or model file holds
KEPT = "Quendelmarsh"


def files_holding(root: Path, word: str) -> list[Path]:
    """Every file under root whose bytes contain `word` (as `grep -rl` would find it)."""
    needle = word.encode()
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    found.append(path)
            except FileNotFoundError:
                continue
    return found


def points(document_id: str, word: str, n: int, dim: int = 8) -> list[IndexPoint]:
    return [
        IndexPoint(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{document_id}/{i}")),
            dense=[float((i + k) % 5 + 1) for k in range(dim)],
            sparse=SparseVec(indices=[i + 1], values=[1.0]),
            document_id=document_id,
            filename=f"{document_id}.txt",
            page=1,
            section=None,
            chunk_index=i,
            text=f"Passage {i} about the {word} launch plan and its pricing.",
        )
        for i in range(n)
    ]


def make_index(kind: str, root: Path) -> VectorIndex:
    if kind == "edge":
        return EdgeIndex(root / "qdrant", 8)
    # qdrant-client's in-process mode, on disk, standing in for a Qdrant server
    return ServerIndex(QdrantClient(path=str(root / "qdrant-local")), 8)


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_purge_removes_deleted_payloads_from_the_vector_store(kind: str, tmp_path: Path) -> None:
    index = make_index(kind, tmp_path)
    try:
        index.upsert(1, points("kept", KEPT, 40))
        index.upsert(1, points("gone", GONE, 40))
        assert files_holding(tmp_path, GONE), "the passages must be on disk to begin with"
        index.delete_document(1, "gone")
        purger = Purger(lambda: index, delay_s=3600)
        purger.mark(1)
        assert purger.run_now() == [1]
        assert files_holding(tmp_path, GONE) == []
        # What was kept is whole and still searchable.
        assert index.count(1) == 40 and index.document_ids(1) == {"kept"}
        hits = index.search(
            1, dense=points("kept", KEPT, 1)[0].dense, sparse=SparseVec([1], [1.0]), limit=3
        )
        assert hits and all(h.document_id == "kept" for h in hits)
        assert files_holding(tmp_path, KEPT)
        # Writes go on as before on the rewritten shard.
        index.upsert(1, points("later", "Later", 3))
        assert index.count(1) == 43
    finally:
        index.close()


def test_an_interrupted_rewrite_leaves_the_old_shard(tmp_path: Path) -> None:
    """A crash between moving the old shard aside and putting the new one in its place:
    the next open puts the old one back (its deleted text waits for the next purge)."""
    index = EdgeIndex(tmp_path / "qdrant", 8)
    index.upsert(1, points("kept", KEPT, 5))
    index.close()
    live = tmp_path / "qdrant" / "user_1_documents"
    retired = live.with_name(live.name + ".retired")
    half_built = live.with_name(live.name + ".rewrite")
    live.rename(retired)
    shutil.copytree(retired, half_built)
    reopened = EdgeIndex(tmp_path / "qdrant", 8)
    try:
        assert reopened.count(1) == 5
        assert not retired.exists() and not half_built.exists()
    finally:
        reopened.close()


def test_the_purger_batches_deletes_and_retries_a_failure() -> None:
    now = [0.0]
    calls: list[int] = []
    after: list[bool] = []

    class Flaky:
        fail = True

        def purge_deleted(self, user_id: int) -> None:
            if self.fail:
                self.fail = False
                raise OSError("disk busy")
            calls.append(user_id)

    flaky = Flaky()
    purger = Purger(
        lambda: flaky, delay_s=60, after=lambda: after.append(True), clock=lambda: now[0]
    )  # type: ignore[arg-type,return-value]
    try:
        purger.mark(7)
        now[0] = 30
        purger.mark(7)  # the same batch: due 60 s after this one
        purger.run_due()
        assert calls == [] and purger.pending() == {7}
        now[0] = 90
        purger.run_due()  # fails: kept for another try
        assert calls == [] and purger.pending() == {7}
        now[0] = 200
        purger.run_due()
        assert calls == [7] and purger.pending() == set() and after
    finally:
        purger.close()


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_deleted_documents_text_leaves_the_data_folder(database: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    gone_name = "Zorblaxian-briefing.txt"
    gone_text = " ".join(
        f"The {GONE} rollout step {i} ships the {GONE} console to partners." for i in range(60)
    )
    kept_text = " ".join(f"The {KEPT} catalogue lists product {i}." for i in range(60))
    with app_on(database, data, vector_purge_delay_s=3600) as client:
        token = register(client)
        gone, kept = upload(
            client, token, (gone_name, gone_text.encode()), ("kept.txt", kept_text.encode())
        )
        assert wait_final(client, token, gone["id"])["status"] == "indexed"
        assert wait_final(client, token, kept["id"])["status"] == "indexed"
        assert files_holding(data, GONE), "the text must be on disk to begin with"

        r = client.delete(f"/api/v1/documents/{gone['id']}", headers=auth(token))
        assert r.status_code in (200, 204), r.text
        purger: Purger = client.app.state.container.purger  # type: ignore[attr-defined]
        assert purger.pending(), "a delete must schedule a purge"
        purger.run_now()

        assert files_holding(data, GONE) == []
        assert files_holding(data, "Zorblaxian-briefing") == []  # nor its name
        assert files_holding(data, KEPT), "the other document is untouched"
        r = client.get("/api/v1/documents", headers=auth(token))
        assert [d["id"] for d in r.json()] == [kept["id"]]
