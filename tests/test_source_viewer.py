"""The source viewer pages on a real refine job (evidence mode) over real corpus documents, a
real Qdrant Edge index and the real MiniLM model, on SQLite and on PostgreSQL: source n
opened on its page with the passage (or a quote) highlighted, or among its neighbours; the
original downloaded with the page session; another user's job and document not found."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pymupdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from pitchcraft.documents import preview as pv
from pitchcraft.jobs.models import Job
from pitchcraft.web.pages.format import mark
from tests.conftest import CORPUS, app_on, auth, register
from tests.docs_helpers import upload, wait_final
from tests.test_refine import wait_job

pytestmark = pytest.mark.timeout(600)

MEMO = CORPUS / "pdf/fake-memo.pdf"
DECK = CORPUS / "pptx/sample-presentation.pptx"
HANDBOOK = CORPUS / "docx/handbook-1p.docx"
TEXT = (
    "We delivered 20,000 bottles of water and 10,000 blankets with 3 trucks in 15 hours. "
    "The standing trustee has a fiduciary responsibility to the bankruptcy estate. "
    "What happens when there's 2 details, sub-details and a sub-sub-detail?"
)
QUOTE = "A total of 3 trucks were used for 15 hours."
SESSION = "pitchcraft_session"


@dataclass
class World:
    client: TestClient
    token: str
    other: str
    docs: dict[str, str]
    job_id: str
    sources: list[dict[str, Any]]

    def page(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        self.client.cookies.clear()
        self.client.cookies.set(SESSION, token or self.token)
        try:
            return self.client.get(path, follow_redirects=False, **kw)
        finally:
            self.client.cookies.clear()

    def source_of(self, what: str) -> dict[str, Any]:
        return next(s for s in self.sources if s["document_id"] == self.docs[what])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data = tmp_path_factory.mktemp(f"viewer-{request.param}") / "data"
    with app_on(request.param, data) as c:
        token = register(c, "viewer@example.com", "viewer-password")
        other = register(c, "stranger@example.com", "stranger-password")
        files = {"memo": MEMO, "deck": DECK, "handbook": HANDBOOK}
        entries = upload(c, token, *((p.name, p.read_bytes()) for p in files.values()))
        docs = {what: e["id"] for what, e in zip(files, entries, strict=True)}
        for doc_id in docs.values():
            assert wait_final(c, token, doc_id)["status"] == "indexed"
        r = c.post("/api/v1/rag/process", headers=auth(token), json={"marketing_text": TEXT})
        assert r.status_code == 202, r.text
        job = wait_job(c, token, r.json()["job_id"])
        assert job["status"] == "succeeded", job
        found = {s["document_id"] for s in job["sources"]}
        assert set(docs.values()) <= found, job["sources"]
        yield World(c, token, other, docs, job["job_id"], job["sources"])


def decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png)).convert("RGB")


def memo_boxes(width: int, *texts: str) -> list[tuple[int, int, int, int]]:
    """Where PyMuPDF's own search finds each text on the memo, in pixels at `width`."""
    with pymupdf.open(MEMO) as doc:
        zoom = width / doc[0].rect.width
        rects = [r for text in texts for r in doc[0].search_for(text)]
    assert len(rects) >= len(texts)
    return [
        (round(r.x0 * zoom), round(r.y0 * zoom), round(r.x1 * zoom), round(r.y1 * zoom))
        for r in rects
    ]


def lit(mask: np.ndarray, box: tuple[int, int, int, int], inset: int = 0) -> int:
    x0, y0, x1, y1 = box
    return int(mask[y0 + inset : y1 - inset, x0 + inset : x1 - inset].sum())


def test_sources_carry_their_chunk_index(world: World) -> None:
    """The job's sources name the passage's chunk, as the index has it."""
    for s in world.sources:
        assert isinstance(s["chunk_index"], int), s
        r = world.client.get(
            f"/api/v1/documents/{s['document_id']}/passages/{s['chunk_index']}/context",
            headers=auth(world.token),
            params={"radius": 0},
        )
        (passage,) = r.json()["passages"]
        assert passage["text"].startswith(s["snippet"].removesuffix("…").strip()[:80])


def test_result_page_links_each_source_to_its_viewer(world: World) -> None:
    r = world.page(f"/results/{world.job_id}")
    assert r.status_code == 200
    links = re.findall(r'<a class="source-label" href="([^"]+)"', r.text)
    assert links == [f"/results/{world.job_id}/sources/{s['n']}" for s in world.sources]


def test_pdf_source_opens_on_its_page_with_the_passage_highlighted(world: World) -> None:
    s = world.source_of("memo")
    r = world.page(f"/results/{world.job_id}/sources/{s['n']}")
    assert r.status_code == 200
    assert f"Source [{s['n']}]" in r.text and html.escape(s["label"]) in r.text
    image_url = f"/results/{world.job_id}/sources/{s['n']}/page.png"
    assert f'src="{image_url}"' in r.text
    assert f'href="/documents/{world.docs["memo"]}/file"' in r.text
    png = world.page(image_url)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    mask = pv.highlight_mask(decode(png.content))
    # The snippet is the whole memo: its first and last lines are both highlighted.
    for box in memo_boxes(mask.shape[1], "To Whom it May Concern", "Mallori"):
        assert lit(mask, box, 1) > 0.4 * (box[2] - box[0]) * (box[3] - box[1])


def test_a_quote_is_highlighted_instead_of_the_whole_passage(world: World) -> None:
    s = world.source_of("memo")
    r = world.page(f"/results/{world.job_id}/sources/{s['n']}", params={"quote": QUOTE})
    assert r.status_code == 200
    assert f"<mark>{QUOTE}</mark>" in r.text
    assert "/page.png?quote=A+total+of+3+trucks" in r.text
    png = world.page(f"/results/{world.job_id}/sources/{s['n']}/page.png", params={"quote": QUOTE})
    mask = pv.highlight_mask(decode(png.content))
    (quoted, *_) = memo_boxes(mask.shape[1], "A total of 3 trucks")
    assert lit(mask, quoted, 1) > 0.4 * (quoted[2] - quoted[0]) * (quoted[3] - quoted[1])
    for box in memo_boxes(mask.shape[1], "To Whom it May Concern", "Mallori", "May 5, 2023"):
        assert lit(mask, box, -2) == 0, box
    # A quote not in the passage: said so, the whole passage shown unmarked.
    r = world.page(f"/results/{world.job_id}/sources/{s['n']}", params={"quote": "no such words"})
    assert r.status_code == 200 and 'data-testid="quote-not-found"' in r.text
    assert "<mark>" not in r.text


def test_slide_source_shows_the_slide(world: World) -> None:
    s = world.source_of("deck")
    assert s["page"] is not None
    r = world.page(f"/results/{world.job_id}/sources/{s['n']}")
    assert r.status_code == 200 and f"Slide {s['page']} of {DECK.name}" in r.text
    png = world.page(f"/results/{world.job_id}/sources/{s['n']}/page.png")
    image = decode(png.content)
    assert image.size == (1200, 675) and pv.highlight_mask(image).sum() > 1000


def test_docx_source_shows_its_neighbours_in_order(world: World) -> None:
    s = world.source_of("handbook")
    assert s["page"] is None
    r = world.page(f"/results/{world.job_id}/sources/{s['n']}")
    assert r.status_code == 200
    assert "page.png" not in r.text and 'data-testid="context"' in r.text
    items = re.findall(r'data-focus="(true|false)" data-chunk="(\d+)">(.*?)</li>', r.text, re.S)
    chunks = [int(c) for _, c, _ in items]
    assert chunks == sorted(chunks) and chunks == list(range(chunks[0], chunks[-1] + 1))
    focus = [(int(c), text) for f, c, text in items if f == "true"]
    assert [c for c, _ in focus] == [s["chunk_index"]]
    assert len(chunks) > 1  # the handbook has four passages: some neighbour is shown
    assert focus[0][1].startswith("<mark>") and focus[0][1].endswith("</mark>")


def test_old_sources_without_a_chunk_index_are_found_by_their_text(world: World) -> None:
    """A job saved before sources carried their chunk: the viewer finds it by the snippet."""
    s = world.source_of("handbook")
    app_container = world.client.app.state.container  # type: ignore[attr-defined]
    with app_container.db.session() as session:
        job = session.scalars(select(Job).where(Job.id == world.job_id)).one()
        stored = dict(job.result)
        stored["sources"] = [
            {k: v for k, v in x.items() if k != "chunk_index"} for x in stored["sources"]
        ]
        job.result = stored
    try:
        api = world.client.get(f"/api/v1/rag/results/{world.job_id}", headers=auth(world.token))
        assert all(x["chunk_index"] is None for x in api.json()["sources"])
        r = world.page(f"/results/{world.job_id}/sources/{s['n']}")
        assert r.status_code == 200
        focus = re.findall(r'data-focus="true" data-chunk="(\d+)"', r.text)
        assert focus == [str(s["chunk_index"])]
    finally:
        with app_container.db.session() as session:
            job = session.scalars(select(Job).where(Job.id == world.job_id)).one()
            job.result = {**job.result, "sources": world.sources}


def test_download_with_the_page_session(world: World) -> None:
    r = world.page(f"/documents/{world.docs['handbook']}/file")
    assert r.status_code == 200
    assert r.content == HANDBOOK.read_bytes()
    assert r.headers["content-disposition"] == f'attachment; filename="{HANDBOOK.name}"'
    assert r.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert r.headers["x-content-type-options"] == "nosniff"
    # Signed out: to the sign-in page, nothing of the file.
    world.client.cookies.clear()
    signed_out = world.client.get(
        f"/documents/{world.docs['handbook']}/file", follow_redirects=False
    )
    assert signed_out.status_code == 303 and signed_out.content != HANDBOOK.read_bytes()


def test_another_user_gets_not_found(world: World) -> None:
    n = world.sources[0]["n"]
    for path in (
        f"/results/{world.job_id}/sources/{n}",
        f"/results/{world.job_id}/sources/{n}/page.png",
        f"/documents/{world.docs['memo']}/file",
    ):
        r = world.page(path, world.other, headers={"accept": "text/html"})
        assert r.status_code == 404, (path, r.status_code)
        assert "Mallori" not in r.text and "Page not found" in r.text
    for n in (0, 99):
        r = world.page(f"/results/{world.job_id}/sources/{n}", headers={"accept": "text/html"})
        assert r.status_code == 404 and "has no source" in r.text


def test_deleted_document_leaves_the_passage(world: World) -> None:
    """A source whose document was deleted: its text, no picture, no download."""
    lorem = CORPUS / "pdf/minimal-document.pdf"
    (entry,) = upload(world.client, world.token, (lorem.name, lorem.read_bytes()))
    assert wait_final(world.client, world.token, entry["id"])["status"] == "indexed"
    r = world.client.post(
        "/api/v1/rag/process",
        headers=auth(world.token),
        json={"marketing_text": "Lorem ipsum dolor sit amet, consetetur sadipscing elitr."},
    )
    job = wait_job(world.client, world.token, r.json()["job_id"])
    copy = next(s for s in job["sources"] if s["document_id"] == entry["id"])
    deleted = world.client.delete(f"/api/v1/documents/{entry['id']}", headers=auth(world.token))
    assert deleted.status_code == 204
    page = world.page(f"/results/{job['job_id']}/sources/{copy['n']}")
    assert page.status_code == 200
    assert 'data-testid="document-gone"' in page.text and "consetetur sadipscing" in page.text
    assert "page.png" not in page.text and "/file" not in page.text
    png = world.page(f"/results/{job['job_id']}/sources/{copy['n']}/page.png")
    assert png.status_code == 404


@pytest.mark.parametrize(
    ("text", "quote", "expected", "found"),
    [
        ("Three trucks\nwere used.", "trucks were", "Three <mark>trucks\nwere</mark> used.", True),
        ("A TOTAL of 3", "a total", "<mark>A TOTAL</mark> of 3", True),
        ("<b>bold</b> & co", "bold</b>", "&lt;b&gt;<mark>bold&lt;/b&gt;</mark> &amp; co", True),
        ("<i>x</i>", "absent", "&lt;i&gt;x&lt;/i&gt;", False),
        ("plain", None, "plain", False),
        ("a.b", ".", "a<mark>.</mark>b", True),
    ],
)
def test_marking_a_quote_escapes_everything(
    text: str, quote: str | None, expected: str, found: bool
) -> None:
    assert mark(text, quote) == (expected, found)
