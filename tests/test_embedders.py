"""Embedders: the real MiniLM on the CPU through ONNX Runtime (fp32 and int8), an
OpenAI-compatible endpoint played by a small local HTTP server that checks each request,
and the BM25 encoder."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pitchcraft.embedding import build_embedder
from pitchcraft.embedding.base import EmbeddingConfigError, EmbeddingError
from pitchcraft.embedding.local import LocalEmbedder, load_model, resolve_model_path
from pitchcraft.embedding.openai import OpenAIEmbedder, embeddings_url
from pitchcraft.embedding.sparse import Bm25Encoder
from pitchcraft.settings import Settings

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
KEY = "sk-test-0123456789abcdef"


def cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- the local model ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def fp32() -> LocalEmbedder:
    return LocalEmbedder(MINILM, quantize="none", batch_size=8)


@pytest.fixture(scope="session")
def int8() -> LocalEmbedder:
    return LocalEmbedder(MINILM, quantize="int8", batch_size=8)


SENTENCES = [
    "Our new espresso machine brews a perfect cup in thirty seconds.",
    "The quarterly revenue grew by twelve percent compared to last year.",
    "Unser Team liefert Ihre Bestellung innerhalb von zwei Werktagen.",
    "Customers can cancel their subscription at any time without a fee.",
    "The warehouse in Rotterdam ships to all European countries.",
]


def test_local_dimension_and_unit_norm(fp32: LocalEmbedder, int8: LocalEmbedder) -> None:
    assert fp32.dim == 384 and int8.dim == 384
    for embedder in (fp32, int8):
        vectors = embedder.embed_documents(SENTENCES)
        assert len(vectors) == len(SENTENCES)
        for v in vectors:
            assert len(v) == 384
            assert math.isclose(float(np.linalg.norm(v)), 1.0, abs_tol=1e-4)
        q = embedder.embed_query("coffee")
        assert len(q) == 384 and math.isclose(float(np.linalg.norm(q)), 1.0, abs_tol=1e-4)
    assert fp32.embed_documents([]) == []


REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text())


def test_same_vectors_as_the_torch_model(fp32: LocalEmbedder, int8: LocalEmbedder) -> None:
    """The ONNX model gives the vectors sentence-transformers + torch gave (stored from it in
    tests/data/minilm_reference.json, texts from 1 to 256+ tokens), so indexes built before
    stay valid; and the same token counts (truncated at 256)."""
    texts = REFERENCE["texts"]
    assert fp32.token_counts(texts) == REFERENCE["tokens"]
    assert max(REFERENCE["tokens"]) == 256  # the long text really is truncated
    for mine, theirs in zip(fp32.embed_documents(texts), REFERENCE["fp32"], strict=True):
        assert cos(mine, theirs) >= 0.9999999
    assert cos(fp32.embed_query(texts[0]), REFERENCE["query_fp32"]) >= 0.9999999
    # int8 (ONNX Runtime's quantisation) stays nearer fp32 than torch's int8 did.
    for mine, torch8, ref in zip(
        int8.embed_documents(texts), REFERENCE["torch_int8"], REFERENCE["fp32"], strict=True
    ):
        assert cos(mine, ref) >= min(0.98, cos(torch8, ref))


def test_no_torch_in_the_process(fp32: LocalEmbedder) -> None:
    fp32.embed_query("warm")
    assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules


def test_local_paraphrase_is_closer_than_unrelated(
    fp32: LocalEmbedder, int8: LocalEmbedder
) -> None:
    for embedder in (fp32, int8):
        a, b, c = embedder.embed_documents(
            [
                "How much does the premium plan cost per month?",
                "What is the monthly price of the premium subscription?",
                "The hiking trail follows the river through the forest.",
            ]
        )
        assert cos(a, b) > cos(a, c) + 0.3, (cos(a, b), cos(a, c))


def test_int8_stays_close_to_fp32(fp32: LocalEmbedder, int8: LocalEmbedder) -> None:
    assert fp32.model is not int8.model
    assert int8.model.session._model_path.endswith("-int8.onnx")
    for a, b in zip(fp32.embed_documents(SENTENCES), int8.embed_documents(SENTENCES), strict=True):
        assert cos(a, b) >= 0.9
        assert cos(a, b) < 0.99999  # really quantised, not the same model twice


def test_batching_matches_one_by_one(fp32: LocalEmbedder, int8: LocalEmbedder) -> None:
    batched = fp32.embed_documents(SENTENCES)  # batch_size 8: one padded batch
    for text, vector in zip(SENTENCES, batched, strict=True):
        np.testing.assert_allclose(fp32.embed_query(text), vector, atol=2e-5)
    # int8 quantises activations per batch (one scale for all its tokens, padding too),
    # so the other texts in a batch move a vector a little.
    for text, vector in zip(SENTENCES, int8.embed_documents(SENTENCES), strict=True):
        assert cos(int8.embed_query(text), vector) > 0.95


def test_queries_in_a_batch_match_one_by_one(fp32: LocalEmbedder) -> None:
    batched = fp32.embed_queries(SENTENCES)
    assert len(batched) == len(SENTENCES) and fp32.embed_queries([]) == []
    for text, vector in zip(SENTENCES, batched, strict=True):
        np.testing.assert_allclose(fp32.embed_query(text), vector, atol=2e-5)


def test_model_is_loaded_once_per_process(fp32: LocalEmbedder, int8: LocalEmbedder) -> None:
    again = LocalEmbedder("all-MiniLM-L6-v2", quantize="none", batch_size=2)
    assert again.model is fp32.model
    assert load_model(fp32.path, "int8") is int8.model
    assert LocalEmbedder(MINILM, quantize="int8", batch_size=32).model is int8.model


def test_queries_and_documents_share_the_model_from_many_threads(fp32: LocalEmbedder) -> None:
    """One session for searches and ingestion, used at once from several threads (each
    has its own tokenizer)."""
    expected = fp32.embed_documents(SENTENCES)
    results: list[list[list[float]]] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(5):
                got = fp32.embed_queries(SENTENCES) if n % 2 else fp32.embed_documents(SENTENCES)
                results.append(got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 20
    for got in results:
        for a, b in zip(got, expected, strict=True):
            assert cos(a, b) > 0.99999


def test_int8_copy_is_made_once_into_the_models_dir(tmp_path: Path) -> None:
    from pitchcraft.embedding.local import int8_file

    path = resolve_model_path(MINILM)
    made = int8_file(path, tmp_path / "models")
    assert made.parent == tmp_path / "models" and made.stat().st_size > 10_000_000
    assert made.stat().st_size < (path / "onnx" / "model.onnx_data").stat().st_size / 2
    mtime = made.stat().st_mtime_ns
    assert int8_file(path, tmp_path / "models") == made
    assert made.stat().st_mtime_ns == mtime  # not made again
    assert [p.name for p in (tmp_path / "models").iterdir()] == [made.name]  # no leftovers


def test_resolve_model_path(tmp_path: Path) -> None:
    bundled = resolve_model_path(MINILM)
    assert (bundled / "onnx" / "model.onnx").is_file() and (bundled / "tokenizer.json").is_file()
    assert resolve_model_path("all-MiniLM-L6-v2") == bundled
    assert resolve_model_path(str(bundled)) == bundled  # a local directory as it is
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_MODEL") as caught:
        resolve_model_path(tmp_path / "no-such-model")
    assert "no-such-model" in str(caught.value)
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_MODEL"):
        resolve_model_path("BAAI/bge-small-en-v1.5")  # a hub name: never downloaded


def test_build_embedder(tmp_path: Path) -> None:
    def settings(**values: Any) -> Settings:
        return Settings(_env_file=None, data_dir=tmp_path, **values)

    local = build_embedder(settings())
    assert isinstance(local, LocalEmbedder)
    assert local.quantize == "int8" and local.dim == 384
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_BASE_URL"):
        build_embedder(settings(embedding_backend="openai"))
    remote = build_embedder(
        settings(
            embedding_backend="openai",
            embedding_base_url="http://127.0.0.1:9/v1",
            embedding_api_key=KEY,
            embedding_model="text-embedding-3-small",
            embedding_dim=1536,
        )
    )
    assert isinstance(remote, OpenAIEmbedder)
    assert remote.dim == 1536 and KEY not in repr(remote)
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_DIM=384"):
        build_embedder(settings(embedding_dim=768))


# -- an OpenAI-compatible endpoint -------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are; None: embeddings of the input
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    count: int | None = None  # how many embeddings to return (None: one per input)
    dim: int = 8


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeOpenAI:
    """A ThreadingHTTPServer on 127.0.0.1 that records requests and plays scripted replies
    (the last one repeats)."""

    def __init__(self) -> None:
        self.script: list[Reply] = [Reply()]
        self.seen: list[Seen] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = json.loads(raw)
                fake.seen.append(Seen(self.path, dict(self.headers), body, time.monotonic()))
                reply = fake.script.pop(0) if len(fake.script) > 1 else fake.script[0]
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is None:
                    inputs = body["input"]
                    n = len(inputs) if reply.count is None else reply.count
                    # Unnormalised vectors that encode the input's position and length,
                    # listed in reverse order with their "index" (as the API allows).
                    data = [
                        {
                            "object": "embedding",
                            "index": i,
                            "embedding": [float(i + 1), float(len(inputs[i % len(inputs)]))]
                            + [1.0] * (reply.dim - 2),
                        }
                        for i in reversed(range(n))
                    ]
                    payload: Any = {"object": "list", "data": data, "model": body["model"]}
                else:
                    payload = reply.body
                out = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(out)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and hung up: expected in the timeout test

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def make(fake: FakeOpenAI) -> Iterator[Callable[..., OpenAIEmbedder]]:
    made: list[OpenAIEmbedder] = []

    def build(**overrides: Any) -> OpenAIEmbedder:
        values: dict[str, Any] = {
            "base_url": f"{fake.base}/v1",
            "api_key": KEY,
            "model": "text-embedding-test",
            "dim": 8,
            "batch_size": 2,
            "timeout": 5.0,
            "min_wait": 0.01,
            "max_wait": 2.0,
        }
        values.update(overrides)
        embedder = OpenAIEmbedder(**values)
        made.append(embedder)
        return embedder

    yield build
    for embedder in made:
        embedder.close()


def test_openai_requests_batches_and_normalises(
    fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]
) -> None:
    texts = ["alpha", "beta gamma", "", "δέλτα 한국어", "epsilon"]
    vectors = make().embed_documents(texts)
    assert [s.body["input"] for s in fake.seen] == [
        ["alpha", "beta gamma"],
        [" ", "δέλτα 한국어"],
        ["epsilon"],
    ]
    for seen in fake.seen:
        assert seen.path == "/v1/embeddings"
        assert seen.headers["Authorization"] == f"Bearer {KEY}"
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.body["model"] == "text-embedding-test"
        assert seen.body["encoding_format"] == "float"
    assert len(vectors) == 5
    for v in vectors:
        assert len(v) == 8 and math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-9)
    # The server listed items in reverse; "index" put them back in input order.
    for vector, (position, text) in zip(vectors, [(0, "alpha"), (1, "beta gamma")], strict=False):
        raw = np.array([position + 1.0, float(len(text))] + [1.0] * 6)
        assert vector == pytest.approx((raw / np.linalg.norm(raw)).tolist())
    query = make(base_url=fake.base).embed_query("just one")
    assert fake.seen[-1].path == "/v1/embeddings"  # /v1 added to a bare host
    assert fake.seen[-1].body["input"] == ["just one"]
    assert len(query) == 8


def test_openai_retries_a_server_error(
    fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]
) -> None:
    fake.script = [Reply(status=500, body={"error": {"message": "boom"}}), Reply()]
    assert len(make().embed_query("x")) == 8
    assert len(fake.seen) == 2


def test_openai_honours_retry_after(fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]) -> None:
    fake.script = [
        Reply(status=429, body={"error": {"message": "slow down"}}, headers={"Retry-After": "1"}),
        Reply(),
    ]
    started = time.monotonic()
    assert len(make().embed_documents(["a", "b"])) == 2
    assert len(fake.seen) == 2
    assert fake.seen[1].at - fake.seen[0].at >= 0.9
    assert time.monotonic() - started < 5


def test_openai_retry_after_replaces_the_backoff(
    fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]
) -> None:
    # The server's Retry-After is the wait, shorter or longer than our own backoff, up to
    # max_wait.
    fake.script = [Reply(status=503, headers={"Retry-After": "0"}), Reply()]
    assert len(make(min_wait=3.0, max_wait=10.0).embed_query("x")) == 8
    assert fake.seen[1].at - fake.seen[0].at < 1.5  # the backoff alone would wait 3 s or more
    fake.script = [Reply(status=429, headers={"Retry-After": "3600"}), Reply()]
    assert len(make(max_wait=0.5).embed_query("x")) == 8
    assert 0.5 <= fake.seen[3].at - fake.seen[2].at < 5  # capped at max_wait


def test_openai_retries_a_timeout(fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]) -> None:
    fake.script = [Reply(delay=1.5), Reply()]
    assert len(make(timeout=0.5).embed_query("slow")) == 8
    assert len(fake.seen) == 2


def test_openai_gives_up_after_max_attempts(
    fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]
) -> None:
    fake.script = [Reply(status=503, body={"error": {"message": "overloaded"}})]
    with pytest.raises(EmbeddingError, match=r"after 3 attempts: HTTP 503: overloaded"):
        make(max_attempts=3).embed_query("x")
    assert len(fake.seen) == 3


def test_openai_malformed_json_is_a_clear_error(
    fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]
) -> None:
    fake.script = [Reply(body=b"{not json")]
    with pytest.raises(EmbeddingError, match="not JSON"):
        make().embed_query("x")
    assert len(fake.seen) == 1  # not retried
    fake.script = [Reply(body={"object": "list"})]
    with pytest.raises(EmbeddingError, match="without a 'data' list"):
        make().embed_query("x")


def test_openai_wrong_number_of_embeddings(
    fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]
) -> None:
    fake.script = [Reply(count=1)]
    with pytest.raises(EmbeddingError, match="returned 1 embeddings for 2 inputs"):
        make().embed_documents(["a", "b"])


def test_openai_wrong_dimension(fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder]) -> None:
    fake.script = [Reply(dim=16)]
    with pytest.raises(EmbeddingError, match=r"16-dimensional.*EMBEDDING_DIM is 8"):
        make().embed_query("a")


def test_openai_refused_key_is_never_shown(
    fake: FakeOpenAI, make: Callable[..., OpenAIEmbedder], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script = [
        Reply(status=502, body={"error": {"message": f"upstream rejected {KEY}"}}),
        Reply(status=401, body={"error": {"message": f"Incorrect API key provided: {KEY}"}}),
    ]
    with pytest.raises(EmbeddingError, match="EMBEDDING_API_KEY") as caught:
        make().embed_query("x")
    assert KEY not in str(caught.value)
    assert KEY not in caplog.text
    assert len(fake.seen) == 2


def test_openai_url_and_settings_errors() -> None:
    assert embeddings_url("https://api.openai.com/v1") == "https://api.openai.com/v1/embeddings"
    assert embeddings_url("http://h:8080/") == "http://h:8080/v1/embeddings"
    assert embeddings_url("http://h/v1/embeddings") == "http://h/v1/embeddings"
    assert embeddings_url("https://h/api/openai") == "https://h/api/openai/embeddings"
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_BASE_URL"):
        embeddings_url("localhost:8080")
    with pytest.raises(EmbeddingConfigError, match="EMBEDDING_DIM"):
        OpenAIEmbedder("http://h/v1", None, "m", 0)
    unreachable = OpenAIEmbedder(
        "http://127.0.0.1:9/v1", KEY, "m", 8, max_attempts=2, min_wait=0.01
    )
    with pytest.raises(EmbeddingError, match="connection failed") as caught:
        unreachable.embed_query("x")
    assert KEY not in str(caught.value)
    unreachable.close()


# -- BM25 --------------------------------------------------------------------------------


def test_bm25_tokenisation_across_languages() -> None:
    bm25 = Bm25Encoder()

    def terms(text: str) -> set[int]:
        return set(bm25.encode_query(text).indices)

    def doc_terms(text: str) -> set[int]:
        return set(bm25.encode_document(text).indices)

    # Case and accents fold, so German spellings meet; numbers and codes are kept.
    assert terms("Straße") == terms("STRASSE") == terms("strasse")
    assert terms("Geschäftsführer") == terms("geschaftsfuhrer")
    assert terms("2024") and terms("2024") != terms("2025")
    assert terms("XR-7000") <= doc_terms("Das Modell xr-7000 kostet 499 Euro")
    # No stemming and no stopwords of either language.
    assert terms("running") != terms("run")
    assert terms("war") and terms("die") and terms("the")
    # Korean and Arabic words survive folding and lowercasing as whole words.
    assert terms("회사") <= doc_terms("우리 회사 제품")
    assert terms("회사") != terms("제품")
    assert terms("الشركة") <= doc_terms("منتجات الشركة الجديدة")
    assert len(doc_terms("منتجات الشركة الجديدة")) == 3
    # Documents get term-frequency weights, queries 1.0 per distinct term.
    doc = bm25.encode_document("price price price list")
    assert len(doc.indices) == 2 and len(set(doc.values)) == 2
    q = bm25.encode_query("price price list")
    assert sorted(q.values) == [1.0, 1.0]
    assert bm25.encode_query("").indices == []


class CountingEmbedder:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner, self.texts = inner, 0

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        return self.inner.embed_documents(texts)


def test_ingestion_embeds_each_distinct_passage_once(fp32: LocalEmbedder) -> None:
    from pitchcraft.documents.ingest import _VectorMemo

    # fp32: int8 activations are quantised per batch, so its vectors depend a little on
    # what else is in the batch, and this compares vectors of different batches.
    memo, counting = _VectorMemo(), CountingEmbedder(fp32)
    batches = [
        [SENTENCES[0], SENTENCES[1], SENTENCES[0]],  # a repeat inside a batch
        [SENTENCES[2], SENTENCES[1]],  # ... and one from an earlier batch
        [SENTENCES[1]],
    ]
    out = [memo.embed(counting, batch) for batch in batches]  # type: ignore[arg-type]
    assert counting.texts == 3
    assert [len(b) for b in out] == [3, 2, 1]
    assert out[0][0] == out[0][2] and out[0][1] == out[1][1] == out[2][0]
    # The vectors are the model's: the same as embedding the sentences directly.
    direct = fp32.embed_documents(SENTENCES[:3])
    mine = [out[0][0], out[0][1], out[1][0]]
    for a, b in zip(direct, mine, strict=True):
        assert float(np.dot(a, b)) > 0.9999
    assert all(isinstance(x, float) for x in out[1][0])
