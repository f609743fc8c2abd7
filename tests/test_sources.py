"""The source routes of the API on real corpus documents, a real Qdrant Edge index and the real
MiniLM model, on SQLite and on PostgreSQL: a page as a PNG with the passage highlighted, the
original file, a passage among its neighbours.

Where a highlight belongs is worked out apart from the code under test: PyMuPDF's own text
search on the PDF, python-pptx's shape geometry on the slide."""

from __future__ import annotations

import io
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pptx
import pymupdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pitchcraft.documents import preview as pv
from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.web.downloads import content_disposition
from tests.conftest import CORPUS, app_on, auth, register
from tests.docs_helpers import upload, wait_final

pytestmark = pytest.mark.timeout(600)

MEMO = CORPUS / "pdf/fake-memo.pdf"
DECK = CORPUS / "pptx/sample-presentation.pptx"
HANDBOOK = CORPUS / "docx/handbook-1p.docx"
NORWICH = CORPUS / "text/norwich-city.txt"
LOCKED = CORPUS / "pdf/password.pdf"
# Directories, quotes, a parameter of its own, a bidi override and non-ASCII letters.
NASTY_NAME = '..\\..\\etc/"sales"; filename=evil.sh\u202egpj.Résumé \u2013 Ünïcode memo.pdf'
Box = tuple[float, float, float, float]


@dataclass
class World:
    client: TestClient
    token: str
    other: str
    docs: dict[str, str]  # what → document id
    names: dict[str, str]  # what → the filename the API shows

    def get(self, path: str, token: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
        return self.client.get(path, headers=auth(token or self.token), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    data = tmp_path_factory.mktemp(f"sources-{request.param}") / "data"
    with app_on(request.param, data) as c:
        token = register(c, "owner@example.com", "owner-password")
        other = register(c, "other@example.com", "other-password")
        files = {
            "memo": (NASTY_NAME, MEMO.read_bytes()),
            "deck": (DECK.name, DECK.read_bytes()),
            "handbook": (HANDBOOK.name, HANDBOOK.read_bytes()),
            "norwich": (NORWICH.name, NORWICH.read_bytes()),
            "locked": (LOCKED.name, LOCKED.read_bytes()),
            "broken": ("broken.pdf", MEMO.read_bytes()[:1500]),  # cut short
        }
        entries = upload(c, token, *files.values())
        docs = {what: e["id"] for what, e in zip(files, entries, strict=True)}
        names = {what: e["filename"] for what, e in zip(files, entries, strict=True)}
        for what, doc_id in docs.items():
            status = wait_final(c, token, doc_id)["status"]
            failed = what in ("locked", "broken")
            assert status == ("failed" if failed else "indexed"), (what, status)
        yield World(c, token, other, docs, names)


def decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png)).convert("RGB")


def count_in(mask: np.ndarray, box: Box, shrink: float = 0) -> int:
    x0, y0, x1, y1 = (
        round(box[0] + shrink),
        round(box[1] + shrink),
        round(box[2] - shrink),
        round(box[3] - shrink),
    )
    return int(mask[max(0, y0) : y1, max(0, x0) : x1].sum())


def preview(w: World, what: str, page: int, highlight: str | None = None, **kw: object):  # type: ignore[no-untyped-def]
    params = {"highlight": highlight} if highlight is not None else {}
    return w.get(f"/api/v1/documents/{w.docs[what]}/pages/{page}/preview", params={**params, **kw})


# -- a page as a picture ---------------------------------------------------------------------


def test_pdf_page_with_the_passage_highlighted(world: World) -> None:
    quote = "A total of 3 trucks were used for 15 hours."
    r = preview(world, "memo", 1, quote)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    image = decode(r.content)
    with pymupdf.open(MEMO) as doc:
        page = doc[0]
        zoom = image.width / page.rect.width
        assert image.width == 1200
        there = [tuple(v * zoom for v in rect) for rect in page.search_for("A total of 3 trucks")]
        elsewhere = [
            tuple(v * zoom for v in rect)
            for text in ("To Whom it May Concern", "Mallori", "May 5, 2023")
            for rect in page.search_for(text)
        ]
    assert there and len(elsewhere) == 3
    mask = pv.highlight_mask(image)
    for box in there:
        area = (box[2] - box[0]) * (box[3] - box[1])
        assert count_in(mask, box, 1) > 0.4 * area  # the words' background is the colour
    for box in elsewhere:
        assert count_in(mask, box, -2) == 0, f"highlight in an unrelated line {box}"
    # Without a highlight, the same page without any of the colour.
    plain = decode(preview(world, "memo", 1).content)
    assert plain.size == image.size and not pv.highlight_mask(plain).any()
    # Width is the caller's to choose, within limits.
    assert decode(preview(world, "memo", 1, width=400).content).width == 400
    assert preview(world, "memo", 1, width=5000).status_code == 422


def test_slide_with_the_passage_highlighted_in_its_text_box(world: World) -> None:
    deck = pptx.Presentation(str(DECK))
    slide = deck.slides[2]
    zoom = 1200 / deck.slide_width
    boxes = {
        s.text_frame.text.split("\n")[0]: (
            s.left * zoom,
            s.top * zoom,
            (s.left + s.width) * zoom,
            (s.top + s.height) * zoom,
        )
        for s in slide.shapes
    }
    right = next(
        s for s in slide.shapes if s.text_frame.text.startswith("What happens when there\u2019s 2")
    )
    r = preview(world, "deck", 3, right.text_frame.text)
    assert r.status_code == 200, r.text
    image = decode(r.content)
    assert image.size == (1200, 675)
    mask = pv.highlight_mask(image)
    inside_right = count_in(mask, boxes["What happens when there\u2019s 2"])
    assert inside_right > 2000
    assert count_in(mask, boxes["What happens when there\u2019s one here"], 3) == 0
    assert count_in(mask, boxes["This is the second content slide"], 3) == 0
    assert inside_right == int(mask.sum()) or int(mask.sum()) - inside_right < 50
    assert not pv.highlight_mask(decode(preview(world, "deck", 3).content)).any()


def test_pages_that_do_not_exist_and_documents_without_pages(world: World) -> None:
    for what, page in (("memo", 0), ("memo", 2), ("memo", -1), ("deck", 5), ("deck", 10**9)):
        r = preview(world, what, page, "anything")
        assert r.status_code == 404, (what, page, r.text)
        assert r.json()["code"] == "page_not_found"
    for what in ("handbook", "norwich"):
        r = preview(world, what, 1)
        assert r.status_code == 422 and r.json()["code"] == "document_has_no_pages", r.text
        assert "no pages" in r.json()["detail"]
    # A password-protected PDF (stored, its ingestion failed): a clear reason, never a 500.
    r = preview(world, "locked", 1)
    assert r.status_code == 422 and r.json()["code"] == "preview_failed", r.text
    assert "password" in r.json()["detail"]
    r = preview(world, "broken", 1, "anything")
    assert r.status_code == 422 and r.json()["code"] == "preview_failed", r.text
    assert "damaged or truncated" in r.json()["detail"]


def test_another_users_document_is_not_found(world: World) -> None:
    doc = world.docs["memo"]
    for path in (
        f"/api/v1/documents/{doc}/pages/1/preview",
        f"/api/v1/documents/{doc}/file",
        f"/api/v1/documents/{world.docs['norwich']}/passages/0/context",
        "/api/v1/documents/no-such-document/file",
    ):
        r = world.get(path, world.other)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["code"] == "document_not_found"
        assert "Mallori" not in r.text and "Norwich" not in r.text
    assert world.client.get(f"/api/v1/documents/{doc}/file").status_code == 401


# -- the original file -----------------------------------------------------------------------


def test_download_is_the_upload_with_a_safe_header(world: World) -> None:
    r = world.get(f"/api/v1/documents/{world.docs['memo']}/file")
    assert r.status_code == 200
    assert r.content == MEMO.read_bytes()
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["x-content-type-options"] == "nosniff"
    header = r.headers["content-disposition"]
    assert "\r" not in header and "\n" not in header and header.isascii()
    assert header.count("filename=") == 1  # the name's own "filename=evil.sh" is defused
    match = re.fullmatch(r'attachment; filename="([^"]*)"; filename\*=UTF-8\'\'(\S+)', header)
    assert match, header
    fallback, exact = match[1], urllib.parse.unquote(match[2], errors="strict")
    assert exact == world.names["memo"]  # the name as the documents list shows it
    assert "/" not in exact and "\\" not in exact and "\u202e" not in exact
    assert re.fullmatch(r"[A-Za-z0-9 !#$&+,.@^_`{}~()\[\]-]+", fallback), fallback
    assert fallback.endswith(".pdf") and not fallback.startswith(".")
    # Each kind with its own type; a plain ASCII name needs no filename*.
    deck = world.get(f"/api/v1/documents/{world.docs['deck']}/file")
    assert deck.content == DECK.read_bytes()
    assert deck.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    )
    assert deck.headers["content-disposition"] == f'attachment; filename="{DECK.name}"'
    text = world.get(f"/api/v1/documents/{world.docs['norwich']}/file")
    assert text.content == NORWICH.read_bytes()
    assert text.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("plain.pdf", 'attachment; filename="plain.pdf"'),
        ('a"b;c.pdf', "attachment; filename=\"a_b_c.pdf\"; filename*=UTF-8''a%22b%3Bc.pdf"),
        (
            "日本語.pdf",
            'attachment; filename="download.pdf"; '
            "filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.pdf",
        ),
        (
            "Résumé.docx",
            "attachment; filename=\"Resume.docx\"; filename*=UTF-8''R%C3%A9sum%C3%A9.docx",
        ),
        (
            "x\r\nSet-Cookie: a=b.txt",
            'attachment; filename="xSet-Cookie_ a_b.txt"; '
            "filename*=UTF-8''xSet-Cookie%3A%20a%3Db.txt",
        ),
        ("..", "attachment; filename=\"download\"; filename*=UTF-8''.."),
    ],
)
def test_content_disposition(name: str, expected: str) -> None:
    assert content_disposition(name) == expected


# -- a passage in context --------------------------------------------------------------------


def test_passage_with_its_neighbours_in_order(world: World) -> None:
    chunks = [c.text for c in chunk(parse_file(NORWICH, "text", ocr=False, soffice=None))]
    assert len(chunks) > 20
    r = world.get(f"/api/v1/documents/{world.docs['norwich']}/passages/10/context")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["chunk_index"] == 10 and body["filename"] == NORWICH.name
    passages = body["passages"]
    assert [p["chunk_index"] for p in passages] == [8, 9, 10, 11, 12]
    assert [p["focus"] for p in passages] == [False, False, True, False, False]
    assert passages[2]["text"] == chunks[10]  # the passage itself, whole
    for p in passages[:2]:  # before it: what it shares with the next one left out
        assert chunks[p["chunk_index"]].startswith(p["text"]) and p["text"]
    for p in passages[3:]:
        assert chunks[p["chunk_index"]].endswith(p["text"]) and p["text"]
    # At the start of the document, fewer before; a wider or narrower radius on request.
    first = world.get(f"/api/v1/documents/{world.docs['norwich']}/passages/0/context").json()
    assert [p["chunk_index"] for p in first["passages"]] == [0, 1, 2]
    alone = world.get(
        f"/api/v1/documents/{world.docs['norwich']}/passages/5/context", params={"radius": 0}
    ).json()
    assert [(p["chunk_index"], p["text"]) for p in alone["passages"]] == [(5, chunks[5])]
    last = len(chunks) - 1
    end = world.get(f"/api/v1/documents/{world.docs['norwich']}/passages/{last}/context")
    assert [p["chunk_index"] for p in end.json()["passages"]] == [last - 2, last - 1, last]
    for bad in (len(chunks), -1):
        r = world.get(f"/api/v1/documents/{world.docs['norwich']}/passages/{bad}/context")
        assert r.status_code == 404 and r.json()["code"] == "passage_not_found"
    r = world.get(
        f"/api/v1/documents/{world.docs['norwich']}/passages/3/context", params={"radius": 99}
    )
    assert r.status_code == 422


def test_openapi_describes_the_new_routes(world: World) -> None:
    paths = world.client.get("/openapi.json").json()["paths"]
    png = paths["/api/v1/documents/{document_id}/pages/{page}/preview"]["get"]
    assert "image/png" in png["responses"]["200"]["content"]
    assert {p["name"] for p in png["parameters"]} >= {"document_id", "page", "highlight", "width"}
    assert {"404", "422"} <= set(png["responses"])
    file = paths["/api/v1/documents/{document_id}/file"]["get"]
    assert file["responses"]["200"]["content"]
    context = paths["/api/v1/documents/{document_id}/passages/{chunk_index}/context"]["get"]
    schema = context["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/PassageContextOut")
