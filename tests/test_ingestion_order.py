"""The pipeline embeds a document's passages longest first, and what it indexes is whole."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

from fastapi.testclient import TestClient

from pitchcraft.documents.ingest import BATCH, Ingestor
from pitchcraft.embedding.base import Embedder
from pitchcraft.jobs.models import SUCCEEDED
from pitchcraft.jobs.queue import claim
from pitchcraft.web.app import create_app
from tests.conftest import CORPUS, auth, make_settings, register
from tests.docs_helpers import upload


class RecordingEmbedder:
    """The real model, recording what each embed_documents call was given."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.calls: list[list[str]] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return self.inner.embed_documents(texts)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        return self.inner.token_counts(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        return self.inner.embed_queries(texts)


def test_passages_are_embedded_longest_first_and_all_indexed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", worker_in_process=False)
    source = CORPUS / "pdf" / "GeoTopo-komprimiert.pdf"  # ~190 passages of 40-1,200 chars
    with TestClient(create_app(settings)) as c:
        token = register(c)
        [entry] = upload(c, token, (source.name, source.read_bytes()))
        container = c.app.state.container  # type: ignore[attr-defined]
        recorder = RecordingEmbedder(container.embedder())
        ingestor = Ingestor(
            settings=settings,
            db=container.db,
            store=container.store,
            index=container.index,
            embedder=lambda: recorder,
            sparse=container.sparse,
        )
        job = claim(container.db, worker_id="test", kinds=("ingest",), lease_seconds=600)
        assert job is not None and job.document_id == entry["id"]
        beats: list[float] = []

        def beat(progress: float) -> bool:
            beats.append(progress)
            return True

        outcome = ingestor.run(job, beat)

        assert outcome.status == SUCCEEDED, outcome.error
        assert outcome.result is not None and outcome.result["chunks"] > 2
        assert len(recorder.calls) > 2  # several batches, so their order means something
        assert all(len(call) <= BATCH for call in recorder.calls)
        embedded = [t for call in recorder.calls for t in call]
        assert len(embedded) == len(set(embedded))  # each distinct passage once
        # Batches go from the longest passages to the shortest: no batch holds a passage
        # longer than the shortest of the batch before it.
        counts = [recorder.token_counts(call) for call in recorder.calls]
        for before, after in pairwise(counts):
            assert max(after) <= min(before)
        assert counts[0] != counts[-1]
        # Progress moves forward with every batch and reaches the end with the last.
        assert beats == sorted(beats) and len(set(beats)) == len(beats)
        assert 0.05 < beats[0] < beats[-1] <= 1.0
        doc = c.get(f"/api/v1/documents/{entry['id']}", headers=auth(token)).json()
        assert doc["status"] == "indexed" and doc["chunks"] == outcome.result["chunks"]
        # One point per chunk, whatever order they were written in.
        index = container.index()
        assert index.count(job.user_id, entry["id"]) == doc["chunks"]
        hits = c.post(
            "/api/v1/search",
            headers=auth(token),
            json={"query": "Alle Bilder wurden von Martin Thoma erstellt", "limit": 5},
        ).json()
        assert hits["results"] and hits["results"][0]["filename"] == source.name
