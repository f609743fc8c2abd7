"""`pitchcraft migrate-vectors`: Qdrant Edge shards copied into a Qdrant server.

No Qdrant server runs here: qdrant-client's in-process mode (`QdrantClient(":memory:")` or
`path=`) stands in for one, through the same ServerIndex adapter the app uses with
QDRANT_URL. The points are real: corpus documents parsed and chunked by the ingestion code,
embedded by the real MiniLM and BM25 encoders.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models
from typer.testing import CliRunner

from pitchcraft.cli import app as cli_app
from pitchcraft.documents.ingest import embedding_text, point_id
from pitchcraft.embedding.local import LocalEmbedder
from pitchcraft.embedding.sparse import Bm25Encoder
from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.vectors.base import DENSE, SPARSE, IndexPoint, collection_name
from pitchcraft.vectors.migrate import MigrationError, migrate_vectors
from pitchcraft.vectors.payload import payload_of
from pitchcraft.vectors.qdrant_edge import EdgeIndex
from pitchcraft.vectors.qdrant_server import ServerIndex
from tests.conftest import CORPUS
from tests.test_vector_index import _child

DIM = 384
BM25 = Bm25Encoder()
# user id -> the documents indexed for them (corpus paths)
LIBRARY = {
    1: ["pdf/pdflatex-4-pages.pdf", "text/codeblock.md", "text/fake-text.txt"],
    2: [
        "pdf/pdflatex-outline.pdf",
        "pdf/fake-memo.pdf",
        "pdf/korean-text-with-tables.pdf",
        "docx/handbook-1p.docx",
        "pdf/habibi.pdf",
    ],
}
QUERIES = {
    1: ["LaTeX sections and pages", "a block of code in Markdown"],
    2: ["memo to the team about the meeting", "Korean table", "outline of the chapters"],
}


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder("sentence-transformers/all-MiniLM-L6-v2")


@pytest.fixture(scope="module")
def library(embedder: LocalEmbedder) -> dict[int, dict[str, list[IndexPoint]]]:
    """user -> document id -> its points, made the way the ingestion pipeline makes them."""
    made: dict[int, dict[str, list[IndexPoint]]] = {}
    for user_id, names in LIBRARY.items():
        made[user_id] = {}
        for name in names:
            path = CORPUS / name
            if not path.exists():
                continue
            doc_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
            parsed = parse_file(path, detect(path, path.name), ocr=False, soffice=None)
            chunks = chunk(parsed, size=1000, overlap=150)
            texts = [embedding_text(path.name, c) for c in chunks]
            vectors = embedder.embed_documents(texts)
            made[user_id][doc_id] = [
                IndexPoint(
                    id=point_id(doc_id, c.index),
                    dense=vec,
                    sparse=BM25.encode_document(text),
                    document_id=doc_id,
                    filename=path.name,
                    page=c.page,
                    section=c.section,
                    chunk_index=c.index,
                    text=c.text,
                )
                for c, vec, text in zip(chunks, vectors, texts, strict=True)
            ]
        assert len(made[user_id]) >= 2, f"corpus documents missing for user {user_id}"
    return made


@pytest.fixture
def edge(tmp_path: Path, library: dict[int, dict[str, list[IndexPoint]]]) -> Iterator[EdgeIndex]:
    """Both users' shards; user 2 also had a document that was deleted again."""
    index = EdgeIndex(tmp_path / "qdrant", DIM)
    for user_id, documents in library.items():
        for points in documents.values():
            for start in range(0, len(points), 32):  # in batches, as ingestion writes
                index.upsert(user_id, points[start : start + 32])
            index.optimize(user_id)
    first = next(iter(library[1].values()))
    gone = [
        IndexPoint(
            id=point_id("deleted-doc", p.chunk_index),
            dense=p.dense,
            sparse=p.sparse,
            document_id="deleted-doc",
            filename="old.pdf",
            page=p.page,
            section=p.section,
            chunk_index=p.chunk_index,
            text=p.text,
        )
        for p in first[:5]
    ]
    index.upsert(2, gone)
    index.delete_document(2, "deleted-doc")
    try:
        yield index
    finally:
        index.close()


@pytest.fixture
def server() -> Iterator[ServerIndex]:
    index = ServerIndex(QdrantClient(":memory:"), DIM)
    try:
        yield index
    finally:
        index.close()


def stored_points(server: ServerIndex, user_id: int) -> dict[str, models.Record]:
    records, offset = [], None
    while True:
        page, offset = server.client.scroll(
            collection_name(user_id), limit=100, offset=offset, with_payload=True, with_vectors=True
        )
        records += page
        if offset is None:
            return {str(r.id): r for r in records}


def ranking(
    index: EdgeIndex | ServerIndex, embedder: LocalEmbedder, user_id: int, text: str
) -> list[tuple[float, str]]:
    """(fused score, point id), best first."""
    found = index.search(
        user_id, dense=embedder.embed_query(text), sparse=BM25.encode_query(text), limit=5
    )
    return [(h.score, point_id(h.document_id, h.chunk_index)) for h in found]


def assert_same_top_hits(before: list[tuple[float, str]], after: list[tuple[float, str]]) -> None:
    """The same best passage and nearly the same top five. Not the identical list: fused
    scores come from ranks only, so ties are common, and the two engines compute cosine
    similarity with different float code, which can swap two nearly equal neighbours (one
    rank further down changes a fused score)."""
    best = {p for s, p in before if s == before[0][0]}  # tied best passages, if any
    assert after[0][1] in best
    assert after[0][0] == pytest.approx(before[0][0])
    assert len(after) == len(before)
    assert len({p for _, p in before} & {p for _, p in after}) >= len(before) - 1


# -- the copy ---------------------------------------------------------------------------


def test_copies_every_point_as_it_is_and_searches_alike(
    edge: EdgeIndex,
    server: ServerIndex,
    embedder: LocalEmbedder,
    library: dict[int, dict[str, list[IndexPoint]]],
) -> None:
    lines: list[str] = []
    report = migrate_vectors(edge, server, progress=lines.append, batch=50)

    assert report.ok, report.summary()
    assert [c.user_id for c in report.collections] == [1, 2]
    for user_id, documents in library.items():
        expected = sum(len(points) for points in documents.values())
        assert edge.count(user_id) == expected  # the deleted document's points are gone
        assert server.count(user_id) == expected
        assert server.document_ids(user_id) == set(documents)
        result = next(c for c in report.collections if c.user_id == user_id)
        assert result.source_points == result.copied == result.target_points == expected
    assert report.points == sum(c.copied for c in report.collections)
    assert any("[2/2] user_2_documents" in line and "(ok)" in line for line in lines)
    assert "Every collection verified" in report.summary()[-1]

    # Point by point: same ids, payloads, sparse vectors; dense vectors as stored (unit length).
    for user_id in library:
        source = {p.id: p for batch in edge.iter_points(user_id, batch=64) for p in batch}
        copied = stored_points(server, user_id)
        assert set(copied) == set(source)
        for pid, point in source.items():
            record = copied[pid]
            assert record.payload == payload_of(point)
            assert isinstance(record.vector, dict)
            sparse = record.vector[SPARSE]
            assert isinstance(sparse, models.SparseVector)
            assert (sparse.indices, sparse.values) == (point.sparse.indices, point.sparse.values)
            assert np.allclose(record.vector[DENSE], point.dense, atol=1e-6)
        # ... and the points are the ones ingestion wrote.
        originals = {p.id: p for points in library[user_id].values() for p in points}
        assert set(originals) == set(source)
        for pid, original in originals.items():
            assert payload_of(source[pid]) == payload_of(original)
            assert np.allclose(source[pid].dense, original.dense, atol=1e-5)

    # The same questions find the same passages.
    for user_id, questions in QUERIES.items():
        for text in questions:
            before = ranking(edge, embedder, user_id, text)
            # Fewer than 5 when the small library's near-duplicate passages collapse.
            assert 3 <= len(before) <= 5
            assert_same_top_hits(before, ranking(server, embedder, user_id, text))


def test_running_again_overwrites_and_replace_drops_stale_points(
    edge: EdgeIndex, server: ServerIndex
) -> None:
    first = migrate_vectors(edge, server)
    assert first.ok
    counts = {c.user_id: c.target_points for c in first.collections}

    again = migrate_vectors(edge, server)
    assert again.ok
    assert {c.user_id: c.target_points for c in again.collections} == counts

    # A point the shard does not have (say, from a copy of older data) is reported ...
    stale = next(iter(edge.iter_points(1, batch=1)))[0]
    server.upsert(
        1,
        [
            IndexPoint(
                id=str(uuid.uuid4()),
                dense=stale.dense,
                sparse=stale.sparse,
                document_id="stale-doc",
                filename="old.txt",
                page=None,
                section=None,
                chunk_index=0,
                text="left over",
            )
        ],
    )
    mismatch = migrate_vectors(edge, server)
    assert not mismatch.ok
    bad = next(c for c in mismatch.collections if c.user_id == 1)
    assert bad.target_points == counts[1] + 1
    assert bad.extra_documents == {"stale-doc"}
    assert "stale-doc" in bad.line() and "--replace" in bad.line()
    assert "do not match: user_1_documents" in " ".join(mismatch.summary())

    # ... and --replace starts each collection afresh.
    replaced = migrate_vectors(edge, server, replace=True)
    assert replaced.ok
    assert server.count(1) == counts[1]
    assert "stale-doc" not in server.document_ids(1)


def test_no_shards_is_nothing_to_do(tmp_path: Path, server: ServerIndex) -> None:
    empty = EdgeIndex(tmp_path / "nothing", DIM)
    try:
        report = migrate_vectors(empty, server)
    finally:
        empty.close()
    assert report.ok and report.collections == []
    assert "nothing to copy" in report.summary()[0]


def test_a_point_that_would_not_copy_unchanged_stops_the_run(
    tmp_path: Path, server: ServerIndex
) -> None:
    index = EdgeIndex(tmp_path / "qdrant", DIM)
    try:
        with index._shards.borrow(5, create=True) as shard:
            assert shard is not None
            payload = {**payload_of(_point(0)), "tags": ["added by another tool"]}
            shard.update(
                qe.UpdateOperation.upsert_points(
                    [qe.Point(str(uuid.uuid4()), {DENSE: [1.0] + [0.0] * (DIM - 1)}, payload)]
                )
            )
        with pytest.raises(MigrationError, match="payload this version does not write"):
            migrate_vectors(index, server)
    finally:
        index.close()


# -- refusing while the embedded index is in use -----------------------------------------


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "QDRANT_URL", "DATA_DIR"}
    }
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pitchcraft", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_refuses_while_a_running_process_holds_a_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "qdrant"
    mine = EdgeIndex(root, DIM)
    mine.upsert(1, [_point(0)])
    mine.close()
    # Another process (standing in for `pitchcraft serve`) holds user 2's shard open.
    child = _child(
        root,
        """
        index.upsert(2, points("theirs", 3))
        print("ready", flush=True)
        sys.stdin.readline()
        index.close()
        """,
    )
    server = ServerIndex(QdrantClient(":memory:"), DIM)
    try:
        index = EdgeIndex(root, DIM)
        try:
            with pytest.raises(MigrationError) as caught:
                migrate_vectors(index, server)
        finally:
            index.close()
        message = str(caught.value)
        assert "in use by another process" in message
        assert "user_2_documents" in message and "pitchcraft serve" in message
        assert "Nothing was copied" in message
        assert server.count(1) == 0  # user 1's shard was free, yet nothing was written

        # The command says the same and exits non-zero; it never got as far as the server.
        env = {"QDRANT_PATH": str(root), "QDRANT_URL": "http://127.0.0.1:9"}
        result = run_cli(env, tmp_path, "migrate-vectors")
        assert result.returncode == 2, result.stdout + result.stderr
        assert "in use by another process" in result.stderr
        assert "Nothing was copied" in result.stderr

        # Once the other process is gone, the command goes on to the server (none here).
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
        monkeypatch.chdir(tmp_path)
        for name in ("DATABASE_URL", "DATA_DIR"):
            monkeypatch.delenv(name, raising=False)
        again = CliRunner().invoke(cli_app, ["migrate-vectors"], env=env)
        assert again.exit_code == 2
        assert "Found 2 shard(s) with 4 points" in again.output
        assert "Cannot reach the Qdrant server at http://127.0.0.1:9" in again.output
    finally:
        if child.poll() is None:
            child.kill()
        server.close()


def test_cli_needs_qdrant_url_and_an_existing_qdrant_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # away from any .env
    for name in ("DATABASE_URL", "DATA_DIR", "QDRANT_URL"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    result = runner.invoke(
        cli_app, ["migrate-vectors"], env={"QDRANT_PATH": str(tmp_path / "qdrant")}
    )
    assert result.exit_code == 2
    assert "Set QDRANT_URL" in result.output
    env = {"QDRANT_PATH": str(tmp_path / "missing"), "QDRANT_URL": "http://127.0.0.1:9"}
    result = runner.invoke(cli_app, ["migrate-vectors"], env=env)
    assert result.exit_code == 2
    assert "QDRANT_PATH=" in result.output and "does not exist" in result.output


def test_cli_copies_and_verifies(
    edge: EdgeIndex,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    library: dict[int, dict[str, list[IndexPoint]]],
) -> None:
    """The command end to end, with an on-disk in-process Qdrant in place of the server."""
    root = edge.root
    edge.close()
    store = tmp_path / "server"

    def from_url(
        cls: type[ServerIndex], url: str, api_key: str | None = None, *, dim: int, timeout: int = 30
    ) -> ServerIndex:
        assert url == "http://qdrant:6333"
        return ServerIndex(QdrantClient(path=str(store)), dim)

    monkeypatch.setattr(ServerIndex, "from_url", classmethod(from_url))
    monkeypatch.chdir(tmp_path)  # away from any .env
    for name in ("DATABASE_URL", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    env = {"QDRANT_PATH": str(root), "QDRANT_URL": "http://qdrant:6333"}
    runner = CliRunner()
    for _ in range(2):  # the second run overwrites the same points
        result = runner.invoke(cli_app, ["migrate-vectors", "--batch", "40"], env=env)
        assert result.exit_code == 0, result.output
        total = sum(len(p) for docs in library.values() for p in docs.values())
        assert f"Copied {total} points in 2 collection(s)" in result.output
        assert "Every collection verified" in result.output

    reopened = ServerIndex(QdrantClient(path=str(store)), DIM)
    try:
        for user_id, documents in library.items():
            assert reopened.count(user_id) == sum(len(p) for p in documents.values())
    finally:
        reopened.close()


def _point(n: int) -> IndexPoint:
    rng = np.random.default_rng(n)
    v = rng.standard_normal(DIM)
    return IndexPoint(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{n}")),
        dense=[float(x) for x in v / np.linalg.norm(v)],
        sparse=BM25.encode_document(f"passage number {n}"),
        document_id="doc",
        filename="doc.txt",
        page=None,
        section=None,
        chunk_index=n,
        text=f"passage number {n}",
    )
