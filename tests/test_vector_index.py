"""The VectorIndex contract, run on both adapters: Qdrant Edge on a temporary directory and
qdrant-client's in-process mode (the stand-in for a Qdrant server); then what only the
embedded index has: persistence, the shard lock between processes, optimisation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qdrant_edge

from pitchcraft.embedding.sparse import Bm25Encoder
from pitchcraft.settings import Settings
from pitchcraft.vectors import build_index
from pitchcraft.vectors.base import (
    Hit,
    IndexPoint,
    SparseVec,
    VectorIndex,
    VectorStoreLocked,
    collection_name,
)
from pitchcraft.vectors.fusion import DENSE_WEIGHT, SPARSE_WEIGHT, rrf_score
from pitchcraft.vectors.qdrant_edge import EdgeIndex
from pitchcraft.vectors.qdrant_server import ServerIndex
from tests.conftest import vector_index

DIM = 384
SRC = Path(__file__).resolve().parent.parent / "src"
BM25 = Bm25Encoder()


def unit(v: np.ndarray) -> list[float]:
    return [float(x) for x in (v / np.linalg.norm(v))]


def random_vectors(n: int, seed: int) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return [unit(rng.standard_normal(DIM)) for _ in range(n)]


def point(
    document_id: str,
    index: int,
    dense: Sequence[float],
    text: str | None = None,
    *,
    page: int | None = 1,
    section: str | None = "Intro",
    filename: str = "doc.pdf",
) -> IndexPoint:
    body = text if text is not None else f"chunk {index} of {document_id}"
    return IndexPoint(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{document_id}/{index}")),
        dense=dense,
        sparse=BM25.encode_document(body),
        document_id=document_id,
        filename=filename,
        page=page,
        section=section,
        chunk_index=index,
        text=body,
    )


def document(document_id: str, n: int, seed: int) -> list[IndexPoint]:
    return [point(document_id, i, v) for i, v in enumerate(random_vectors(n, seed))]


def query(
    index: VectorIndex, user_id: int, dense: Sequence[float], text: str = "", limit: int = 5
) -> list[Hit]:
    return index.search(user_id, dense=dense, sparse=BM25.encode_query(text), limit=limit)


@pytest.fixture(params=["edge", "server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    with vector_index(request.param, tmp_path, DIM) as made:
        yield made


# -- the contract, on both adapters ------------------------------------------------------


def test_upsert_count_and_idempotent_reupsert(index: VectorIndex) -> None:
    points = document("doc-a", 30, seed=1)
    index.upsert(7, points)
    assert index.count(7) == 30
    assert index.count(7, "doc-a") == 30
    assert index.count(7, "other") == 0
    # The same ids again, in two batches: overwritten, not duplicated.
    index.upsert(7, points[:10])
    index.upsert(7, points)
    assert index.count(7) == 30
    assert index.document_ids(7) == {"doc-a"}
    # Overwriting replaces the payload too.
    changed = point("doc-a", 0, points[0].dense, "rewritten text")
    index.upsert(7, [changed])
    hits = query(index, 7, list(points[0].dense), limit=1)
    assert hits[0].text == "rewritten text"
    index.upsert(7, [])  # nothing to do, no error
    assert index.count(7) == 30


def test_users_are_isolated(index: VectorIndex) -> None:
    vectors = random_vectors(2, seed=2)
    index.upsert(1, [point("mine", 0, vectors[0], "alpha secret of user one")])
    index.upsert(2, [point("theirs", 0, vectors[1], "beta secret of user two")])
    # User 1 searches with user 2's exact vector and words: still only user 1's point.
    hits = query(index, 1, vectors[1], "beta secret of user two", limit=10)
    assert [h.document_id for h in hits] == ["mine"]
    assert index.count(1) == 1 and index.count(2) == 1
    assert index.count(1, "theirs") == 0
    assert index.document_ids(1) == {"mine"}
    assert index.document_ids(2) == {"theirs"}
    index.delete_document(1, "theirs")  # not user 1's: nothing happens to user 2
    assert index.count(2) == 1


def test_delete_document_removes_only_that_document(index: VectorIndex) -> None:
    index.upsert(3, document("keep", 12, seed=3) + document("drop", 8, seed=4))
    assert index.document_ids(3) == {"keep", "drop"}
    index.delete_document(3, "drop")
    assert index.count(3) == 12
    assert index.count(3, "drop") == 0
    assert index.document_ids(3) == {"keep"}
    hits = query(index, 3, random_vectors(1, seed=4)[0], "chunk drop", limit=20)
    assert hits and {h.document_id for h in hits} == {"keep"}
    index.delete_document(3, "drop")  # again: no error
    index.delete_document(99, "drop")  # a user without a collection: no error


def test_delete_user(index: VectorIndex) -> None:
    index.upsert(4, document("a", 5, seed=5))
    index.upsert(5, document("b", 5, seed=6))
    index.delete_user(4)
    assert index.count(4) == 0
    assert index.document_ids(4) == set()
    assert query(index, 4, random_vectors(1, seed=5)[0], "chunk") == []
    assert index.count(5) == 5
    index.delete_user(4)  # again: no error
    index.upsert(4, document("c", 3, seed=7))  # the user starts afresh
    assert index.count(4) == 3
    assert index.document_ids(4) == {"c"}


def test_user_without_collection(index: VectorIndex) -> None:
    assert query(index, 42, random_vectors(1, seed=8)[0], "anything") == []
    assert index.count(42) == 0
    assert index.count(42, "doc") == 0
    assert index.document_ids(42) == set()
    index.optimize(42)
    index.delete_user(42)
    assert index.count(42) == 0


def test_hybrid_search_needs_both_sides(index: VectorIndex) -> None:
    """The query's dense vector points at a paraphrase that shares none of its words;
    the one passage with its rare keyword is far from it in dense space. Hybrid search
    must return both; dense alone ranks the keyword passage low."""
    rng = np.random.default_rng(9)
    q = unit(rng.standard_normal(DIM))
    qa = np.array(q)

    def near(cos: float) -> list[float]:
        noise = rng.standard_normal(DIM)
        noise -= noise.dot(qa) * qa
        return unit(cos * qa + np.sqrt(1 - cos**2) * noise / np.linalg.norm(noise))

    paraphrase = point("para", 0, near(0.97), "Costs for the newest handheld scanner model")
    keyword = point("kw", 0, near(0.05), "Datasheet: the Zorblax-9 ships in March")
    fillers = [
        # Numbered from 100: no filler shares the query's "9".
        point("filler", i, near(0.9 - i * 0.015), f"general notes about product number {100 + i}")
        for i in range(40)
    ]
    index.upsert(6, [*fillers, paraphrase, keyword])
    text = "zorblax-9 price"
    assert not set(BM25.encode_query(text).indices) & set(paraphrase.sparse.indices)

    dense_only = index.search(6, dense=q, sparse=SparseVec([], []), limit=10)
    assert dense_only[0].document_id == "para"
    assert "kw" not in [h.document_id for h in dense_only]

    hits = query(index, 6, q, text, limit=5)
    ids = [h.document_id for h in hits]
    assert "kw" in ids[:2] and "para" in ids[:2], ids
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)
    assert len(hits) == 5


def test_scores_descending_and_limit(index: VectorIndex) -> None:
    points = document("many", 60, seed=10)
    index.upsert(8, points)
    hits = query(index, 8, list(points[5].dense), "chunk 5 of many", limit=7)
    assert len(hits) == 7
    assert hits[0].chunk_index == 5  # first in both lists
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].score > hits[1].score
    assert query(index, 8, list(points[5].dense), "chunk", limit=0) == []


def _near_query(rng: np.random.Generator, q: Sequence[float], cos: float) -> list[float]:
    qa = np.array(q)
    noise = rng.standard_normal(DIM)
    noise -= noise.dot(qa) * qa
    return unit(cos * qa + np.sqrt(1 - cos**2) * noise / np.linalg.norm(noise))


def test_fusion_weights_and_scores(index: VectorIndex) -> None:
    """Both adapters fuse with the same weighted RRF: a passage second in both lists beats
    the first of either; BM25's first beats the dense first (BM25 weighs more); and the
    scores are exactly the RRF formula's."""
    rng = np.random.default_rng(21)
    q = unit(rng.standard_normal(DIM))
    dense_top = point("dense-top", 0, _near_query(rng, q, 0.95), "an overview of scanners")
    both = point("both", 0, _near_query(rng, q, 0.9), "the quixotic scanner costs less")
    bm25_top = point("bm25-top", 0, _near_query(rng, q, 0.1), "quixotic quixotic zorblax")
    fillers = [
        point("filler", i, _near_query(rng, q, 0.5 - i * 0.01), f"unrelated remark {100 + i}")
        for i in range(30)
    ]
    index.upsert(12, [*fillers, dense_top, both, bm25_top])
    hits = query(index, 12, q, "quixotic zorblax", limit=3)
    assert [h.document_id for h in hits] == ["both", "bm25-top", "dense-top"]
    # "both": rank 1 (0-based) in the dense list and in the BM25 list.
    assert hits[0].score == pytest.approx(rrf_score(1, DENSE_WEIGHT) + rrf_score(1, SPARSE_WEIGHT))
    # "dense-top": first in the dense list only.
    assert hits[2].score == pytest.approx(rrf_score(0, DENSE_WEIGHT))
    assert SPARSE_WEIGHT > DENSE_WEIGHT


def test_every_hit_carries_its_cosine_similarity(index: VectorIndex) -> None:
    """The relevance floor's absolute scale: a dense candidate's similarity is its dense
    score; a passage only BM25 found (far from the query in dense space) gets its cosine
    from the dense vector the adapter fetched with it."""
    rng = np.random.default_rng(33)
    q = unit(rng.standard_normal(DIM))
    close = _near_query(rng, q, 0.8)
    far = _near_query(rng, q, -0.3)
    fillers = [
        point("filler", i, _near_query(rng, q, 0.6 - i * 0.01), f"unrelated remark {100 + i}")
        for i in range(30)
    ]
    index.upsert(13, [*fillers, point("close", 0, close, "a note"), point("far", 0, far, "zyx")])
    hits = query(index, 13, q, "zyx", limit=40)
    by_doc = {h.document_id: h for h in hits}
    assert by_doc["close"].similarity == pytest.approx(0.8, abs=1e-3)
    assert by_doc["far"].similarity == pytest.approx(-0.3, abs=1e-3)  # from BM25 alone
    for h in hits:
        assert h.similarity is not None


def test_identical_and_near_identical_passages_are_collapsed(index: VectorIndex) -> None:
    """The same passage in two files (or an OCR'd copy with a few words misread) is returned
    once; the results after it are other passages. Short passages that differ in a number
    are different passages and are both kept."""
    rng = np.random.default_rng(22)
    q = unit(rng.standard_normal(DIM))
    words = [f"w{i}" for i in range(60)]
    passage = "Warranty terms " + " ".join(words)
    misread = "Warranty tenns " + " ".join(w if i % 15 else w + "x" for i, w in enumerate(words))
    points = [
        point("original", 0, _near_query(rng, q, 0.95), passage, filename="terms.pdf"),
        point("copy", 0, _near_query(rng, q, 0.94), passage, filename="terms (1).pdf"),
        point("scan", 0, _near_query(rng, q, 0.93), misread, filename="terms-scan.jpg"),
        point("price-a", 0, _near_query(rng, q, 0.92), "Plan A warranty costs 10 EUR"),
        point("price-b", 0, _near_query(rng, q, 0.91), "Plan B warranty costs 20 EUR"),
    ]
    points += [
        point("other", i, _near_query(rng, q, 0.6 - i * 0.01), f"another topic {100 + i}")
        for i in range(10)
    ]
    index.upsert(13, points)
    hits = query(index, 13, q, "warranty terms", limit=5)
    ids = [h.document_id for h in hits]
    assert len(hits) == 5
    assert len([i for i in ids if i in ("original", "copy", "scan")]) == 1, ids
    assert "price-a" in ids and "price-b" in ids, ids
    assert len({h.text for h in hits}) == 5
    # Asking for more never returns a second copy either.
    many = query(index, 13, q, "warranty terms", limit=15)
    assert len([h for h in many if h.document_id in ("original", "copy", "scan")]) == 1
    assert len(many) == 13


def test_payload_round_trip(index: VectorIndex) -> None:
    vectors = random_vectors(4, seed=11)
    texts = [
        "Größenverhältnisse der Straße — Qualität «geprüft»",
        "한국어 문서의 내용입니다",
        "نص عربي للتجربة",
        "emoji 🚀 and\nnewlines\tand tabs",
    ]
    points = [
        point(
            "uni", 0, vectors[0], texts[0], page=None, section=None, filename="Präsentation.pptx"
        ),
        point("uni", 1, vectors[1], texts[1], page=3, section="개요", filename="문서.pdf"),
        point("uni", 2, vectors[2], texts[2], page=0, section="", filename="ملف.docx"),
        point("uni", 3, vectors[3], texts[3], page=619, section="Ch. 7", filename="a b.txt"),
    ]
    index.upsert(9, points)
    for p in points:
        hit = query(index, 9, list(p.dense), p.text, limit=1)[0]
        assert (
            hit.document_id,
            hit.filename,
            hit.page,
            hit.section,
            hit.chunk_index,
            hit.text,
        ) == (
            p.document_id,
            p.filename,
            p.page,
            p.section,
            p.chunk_index,
            p.text,
        )
    first = query(index, 9, list(points[0].dense), limit=1)[0]
    assert first.page is None and first.section is None


def test_wrong_dimension_is_refused(index: VectorIndex) -> None:
    bad = point("bad", 0, [0.1] * (DIM - 1))
    with pytest.raises(ValueError, match="EMBEDDING_DIM"):
        index.upsert(10, [bad])
    assert index.count(10) == 0


def test_healthy_and_optimize(index: VectorIndex) -> None:
    assert isinstance(index.healthy(), str) and index.healthy()
    index.upsert(11, document("d", 50, seed=12))
    index.delete_document(11, "d")
    index.upsert(11, document("e", 20, seed=13))
    index.optimize(11)
    assert index.count(11) == 20
    assert index.document_ids(11) == {"e"}


def test_concurrent_use(index: VectorIndex) -> None:
    errors: list[BaseException] = []

    def work(user_id: int) -> None:
        try:
            for round_ in range(4):
                index.upsert(user_id, document(f"d{round_}", 10, seed=user_id * 10 + round_))
                query(index, user_id, random_vectors(1, seed=round_)[0], "chunk")
                index.count(user_id)
                if round_ == 2:
                    index.delete_document(user_id, "d0")
            index.optimize(user_id)
        except BaseException as exc:
            errors.append(exc)

    def churn() -> None:
        try:
            for _ in range(6):
                index.upsert(200, document("x", 5, seed=200))
                index.delete_user(200)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(u,)) for u in (101, 102, 103)]
    threads.append(threading.Thread(target=churn))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for user_id in (101, 102, 103):
        assert index.count(user_id) == 30
        assert index.document_ids(user_id) == {"d1", "d2", "d3"}
    assert index.count(200) == 0


# -- the embedded index only -------------------------------------------------------------


def test_edge_persists_across_reopen(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    first = EdgeIndex(root, DIM)
    points = document("persist", 25, seed=14)
    first.upsert(1, points)
    first.delete_document(1, "nothing")
    first.close()
    assert (root / collection_name(1) / "edge_config.json").is_file()

    second = EdgeIndex(root, DIM)
    try:
        assert second.count(1) == 25
        assert second.document_ids(1) == {"persist"}
        hit = query(second, 1, list(points[3].dense), "chunk 3 of persist", limit=1)[0]
        assert (hit.document_id, hit.chunk_index) == ("persist", 3)
    finally:
        second.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.count(1)


def test_edge_other_dimension_is_a_clear_error(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    first = EdgeIndex(root, DIM)
    first.upsert(1, document("a", 2, seed=15))
    first.close()
    other = EdgeIndex(root, 128)
    try:
        with pytest.raises(RuntimeError, match="EMBEDDING_DIM"):
            other.count(1)
    finally:
        other.close()


def test_edge_same_root_twice_in_one_process(tmp_path: Path) -> None:
    first = EdgeIndex(tmp_path, DIM)
    second = EdgeIndex(tmp_path, DIM)
    try:
        first.upsert(1, document("a", 2, seed=16))
        with pytest.raises(RuntimeError, match="already open in this process"):
            second.count(1)
        second.upsert(2, document("b", 2, seed=17))  # other users' shards are free
        assert second.count(2) == 2
    finally:
        first.close()
        second.close()


def test_edge_evicts_idle_shards(tmp_path: Path) -> None:
    index = EdgeIndex(tmp_path, DIM, max_open_shards=2)
    try:
        for user_id in range(1, 6):
            index.upsert(user_id, document(f"u{user_id}", 3, seed=user_id))
        assert index._shards.open_count() <= 2
        for user_id in range(1, 6):
            assert index.count(user_id) == 3
            assert index.document_ids(user_id) == {f"u{user_id}"}
        assert "2 shards open" in index.healthy()
    finally:
        index.close()


def _child(root: Path, body: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, uuid
        from pathlib import Path
        from pitchcraft.embedding.sparse import Bm25Encoder
        from pitchcraft.vectors.base import IndexPoint
        from pitchcraft.vectors.qdrant_edge import EdgeIndex
        bm25 = Bm25Encoder()
        index = EdgeIndex(Path({str(root)!r}), {DIM})
        def points(doc, n):
            return [
                IndexPoint(str(uuid.uuid4()), [1.0] + [0.0] * {DIM - 1},
                           bm25.encode_document("text"), doc, "f.pdf", 1, None, i, "text")
                for i in range(n)
            ]
        """
    ) + textwrap.dedent(body)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"child did not start: {line!r} {err}")
    return proc


def test_edge_shard_locked_by_another_process(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    child = _child(
        root,
        """
        index.upsert(1, points("theirs", 3))
        print("ready", flush=True)
        sys.stdin.readline()
        index.close()
        """,
    )
    index = EdgeIndex(root, DIM)
    try:
        with pytest.raises(VectorStoreLocked) as caught:
            index.count(1)
        message = str(caught.value)
        assert "another Pitchcraft process" in message
        assert "QDRANT_URL" in message
        assert str(root / collection_name(1)) in message
        with pytest.raises(VectorStoreLocked):
            index.upsert(1, document("mine", 1, seed=18))
        with pytest.raises(VectorStoreLocked):
            index.delete_user(1)  # never deletes files another process has open
        assert (root / collection_name(1) / "edge_config.json").is_file()
        # Other users' shards are not locked.
        index.upsert(2, document("mine", 2, seed=19))
        assert index.count(2) == 2
        # Once the other process has closed the shard, this one opens it.
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
        assert index.count(1) == 3
        index.delete_user(1)
        assert index.count(1) == 0
        assert not (root / collection_name(1)).exists()
    finally:
        if child.poll() is None:
            child.kill()
        index.close()


def test_edge_kill_9_right_after_upsert_loses_nothing(tmp_path: Path) -> None:
    root = tmp_path / "qdrant"
    child = _child(
        root,
        """
        index.upsert(1, points("a", 500))
        index.upsert(1, points("b", 7))
        index.delete_document(1, "a")
        index.upsert(1, points("c", 64))
        print("ready", flush=True)
        sys.stdin.readline()
        """,
    )
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    index = EdgeIndex(root, DIM)  # the lock died with the process
    try:
        assert index.count(1) == 71
        assert index.document_ids(1) == {"b", "c"}
    finally:
        index.close()


def test_edge_optimize_builds_hnsw_in_a_child_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    children: list[list[str]] = []
    real_run = subprocess.run

    def run(args: list[str], **kwargs: Any) -> Any:
        children.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr("pitchcraft.vectors.qdrant_edge.subprocess.run", run)
    root = tmp_path / "qdrant"
    # A low indexing threshold (in KB) so that a few hundred points get an HNSW index.
    index = EdgeIndex(root, DIM, offload_min_points=100, indexing_threshold_kb=100)
    points = document("big", 400, seed=20)
    index.upsert(1, points)
    index.upsert(2, document("small", 20, seed=21))

    ticks = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        started = time.monotonic()
        index.optimize(1)  # offloaded: the GIL stays free
        index.optimize(2)  # in-process: too small to offload
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        spinner.join()
    assert ticks > elapsed * 100, (ticks, elapsed)  # other threads kept running
    assert len(children) == 1  # user 2 was optimised in-process

    index.optimize(1)  # nothing written since: no second child
    assert len(children) == 1
    index.upsert(1, points[:1])
    index.optimize(1)
    assert len(children) == 2

    assert index.count(1) == 400
    hit = query(index, 1, list(points[17].dense), "chunk 17 of big", limit=1)[0]
    assert hit.chunk_index == 17
    index.close()
    shard = qdrant_edge.EdgeShard.load(str(root / collection_name(1)))
    try:
        info = shard.info()
        assert info.points_count == 400
        # Dense vectors in an HNSW segment count as indexed (sparse ones always do).
        assert info.indexed_vectors_count >= 800
    finally:
        shard.close()


def test_build_index_chooses_the_backend(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    embedded = build_index(settings)
    try:
        assert isinstance(embedded, EdgeIndex)
        assert embedded.root == settings.qdrant_dir
        assert embedded.dim == settings.embedding_dim
    finally:
        embedded.close()
    remote = build_index(
        Settings(_env_file=None, data_dir=tmp_path, qdrant_url="http://127.0.0.1:9")
    )
    try:
        assert isinstance(remote, ServerIndex)
        with pytest.raises(Exception):  # noqa: B017  (nothing listens on port 9)
            remote.healthy()
    finally:
        remote.close()
