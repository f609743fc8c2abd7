"""Documents through the real service: upload, ingest, search, delete, clear on sign-in."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pitchcraft.settings import Settings
from pitchcraft.web.app import create_app
from tests.conftest import CORPUS, auth, make_settings, register
from tests.docs_helpers import (
    allowed_outcomes,
    corpus_files,
    manifest_expectations,
    upload,
    wait_final,
)

pytestmark = pytest.mark.timeout(1500)

EXPECTED = manifest_expectations()


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Every corpus file uploaded once through the API and waited for."""
    data = tmp_path_factory.mktemp("corpus") / "data"
    with TestClient(create_app(make_settings(data))) as c:
        token = register(c, "corpus@example.com")
        files = corpus_files()
        outcomes: dict[str, dict[str, Any]] = {}
        for start in range(0, len(files), 10):
            batch = files[start : start + 10]
            entries = upload(c, token, *[(p.name, p.read_bytes()) for p in batch])
            for path, entry in zip(batch, entries, strict=True):
                outcomes[str(path.relative_to(CORPUS))] = entry
        for name, entry in outcomes.items():
            outcomes[name] = wait_final(c, token, entry["id"], timeout=1400)
        outcomes["__search__"] = {
            "rd": c.post(
                "/api/v1/search",
                headers=auth(token),
                json={"query": "Scratched into the bar of Redcliffe's tavern", "limit": 5},
            ).json()
        }
        yield outcomes


def test_manifest_covers_the_corpus() -> None:
    assert {str(p.relative_to(CORPUS)) for p in corpus_files()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_ends_as_the_manifest_says(
    corpus_run: dict[str, dict[str, Any]], name: str
) -> None:
    doc = corpus_run[name]
    may_index, may_fail, reasons = allowed_outcomes(EXPECTED[name])
    assert doc["status"] in {"indexed", "failed"}
    if doc["status"] == "indexed":
        assert may_index, f"{name} was indexed but the MANIFEST says: {EXPECTED[name]}"
        assert doc["chunks"] > 0
        assert doc["progress"] == 1.0
    else:
        assert may_fail, f"{name} failed ({doc['error']}) but the MANIFEST says: {EXPECTED[name]}"
        assert doc["error"]
        if reasons:
            assert any(r.split(":")[0] in doc["error"].lower() for r in reasons), (
                doc["error"],
                reasons,
            )


def test_page_numbers_are_kept(corpus_run: dict[str, dict[str, Any]]) -> None:
    assert corpus_run["pdf/pdflatex-4-pages.pdf"]["pages"] == 4
    assert corpus_run["large/DA-619p.pdf"]["pages"] == 619
    assert corpus_run["pptx/sample-presentation.pptx"]["pages"] >= 1


def test_search_finds_the_passage_with_its_page(corpus_run: dict[str, dict[str, Any]]) -> None:
    results = corpus_run["__search__"]["rd"]["results"]
    assert results, "no results"
    top = results[0]
    assert top["filename"] == "DA-619p.pdf"
    assert top["page"] == 117
    assert "Redcliffe" in top["snippet"]
    # Ordered by the fused rank; `score` is the 0-1 closeness in meaning.
    ranks = [r["rank_score"] for r in results]
    assert ranks == sorted(ranks, reverse=True)
    assert all(0 <= r["score"] <= 1 for r in results)


@pytest.fixture
def small_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"max_upload_mb": 3}))) as c:
        yield c


TEXT = b"Our zero-trust gateway inspects every packet and blocks lateral movement in the network."


def test_upload_list_search_delete(small_client: TestClient, settings: Settings) -> None:
    c = small_client
    token = register(c)
    [doc] = upload(c, token, ("brochure.txt", TEXT))
    assert doc["status"] == "queued"
    assert doc["file_type"] == "text"
    done = wait_final(c, token, doc["id"])
    assert done["status"] == "indexed", done
    listed = c.get("/api/v1/documents/list", headers=auth(token)).json()
    assert [d["id"] for d in listed] == [doc["id"]]
    assert c.get("/api/v1/documents", headers=auth(token)).json() == listed

    r = c.post(
        "/api/v1/search", headers=auth(token), json={"query": "lateral movement", "limit": 3}
    )
    hits = r.json()["results"]
    assert hits[0]["document_id"] == doc["id"]
    assert hits[0]["page"] is None
    assert "zero-trust" in hits[0]["snippet"]

    stored = list((settings.storage_dir / "1").glob("*"))
    assert len(stored) == 1
    assert c.delete(f"/api/v1/documents/{doc['id']}", headers=auth(token)).status_code == 204
    assert c.get(f"/api/v1/documents/{doc['id']}", headers=auth(token)).status_code == 404
    assert list((settings.storage_dir / "1").glob("*")) == []
    container = c.app.state.container  # type: ignore[attr-defined]
    assert container.index().count(1, doc["id"]) == 0
    r = c.post("/api/v1/search", headers=auth(token), json={"query": "lateral movement"})
    assert r.json()["results"] == []


def _zip_bomb(kind: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        part = "word/document.xml" if kind == "docx" else "ppt/presentation.xml"
        with z.open(part, "w", force_zip64=True) as fh:
            block = b"\0" * (1024 * 1024)
            for _ in range(2048):
                fh.write(block)
    return buf.getvalue()


def test_bad_files_get_clear_outcomes_and_lose_nothing(
    small_client: TestClient, settings: Settings
) -> None:
    c = small_client
    token = register(c)
    [keeper] = upload(c, token, ("keeper.txt", TEXT))
    assert wait_final(c, token, keeper["id"])["status"] == "indexed"

    pdf = (CORPUS / "pdf" / "minimal-document.pdf").read_bytes()
    docx = (CORPUS / "docx" / "simple.docx").read_bytes()
    bad: list[tuple[str, bytes]] = [
        # Distinct contents: the same content twice would be one document (a duplicate).
        ("../../etc/passwd", TEXT + b" (1)"),
        ("evil\x00name.txt", TEXT + b" (2)"),
        ("invoice\u202efdp.exe.txt", TEXT + b" (3)"),
        ("x" * 400 + ".txt", TEXT + b" (4)"),
        ("report.docx", pdf),  # a PDF with the wrong extension
        ("photo.png", b"just text pretending to be an image, and quite readable."),
        ("empty.txt", b""),
        ("half.docx", docx[: len(docx) // 2]),
        ("half.pdf", pdf[: len(pdf) // 2]),
        ("bomb.docx", _zip_bomb("docx")),
        ("bomb.pptx", _zip_bomb("pptx")),
        ("big.txt", b"a" * (3 * 1024 * 1024 + 10)),
        ("program.exe", b"\x7fELF\x02\x01\x01" + b"\0" * 500),
    ]
    entries = upload(c, token, *bad)
    assert len(entries) == len(bad)
    by_name = {}
    for (sent, _), entry in zip(bad, entries, strict=True):
        final = entry if entry["status"] == "failed" else wait_final(c, token, entry["id"])
        by_name[sent] = final
        assert final["status"] in {"indexed", "failed"}
        assert "/" not in final["filename"] and "\x00" not in final["filename"]
        assert "\u202e" not in final["filename"]
        assert len(final["filename"]) <= 255

    assert by_name["../../etc/passwd"]["filename"] == "passwd"
    assert by_name["../../etc/passwd"]["status"] == "indexed"
    assert by_name["report.docx"]["file_type"] == "pdf"
    assert by_name["report.docx"]["status"] == "indexed"
    assert by_name["photo.png"]["file_type"] == "text"
    assert by_name["empty.txt"]["error"] == "empty document"
    assert "3 MB" in by_name["big.txt"]["error"]
    for name in ("half.docx", "bomb.docx", "bomb.pptx", "program.exe"):
        assert by_name[name]["status"] == "failed", (name, by_name[name])
        assert by_name[name]["error"]
    assert "zip bomb" in by_name["bomb.docx"]["error"]

    # Nothing escaped the user's storage folder, and the earlier document is intact.
    assert not (settings.storage_dir.parent / "etc").exists()
    for f in settings.storage_dir.rglob("*"):
        assert f.is_dir() or f.parent.parent == settings.storage_dir
    kept = c.get(f"/api/v1/documents/{keeper['id']}", headers=auth(token)).json()
    assert kept["status"] == "indexed"
    assert c.app.state.container.index().count(1, keeper["id"]) == kept["chunks"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "multipart/form-data; boundary=xyz"),
        (
            b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n\r\nabc',
            "multipart/form-data; boundary=xyz",
        ),
        (b"{}", "application/json"),
        (b"--xyz--\r\n", "multipart/form-data"),
    ],
    ids=["empty", "truncated", "json", "no-boundary"],
)
def test_malformed_uploads(
    client: TestClient, settings: Settings, body: bytes, content_type: str
) -> None:
    token = register(client)
    r = client.post(
        "/api/v1/documents/upload",
        content=body,
        headers={**auth(token), "content-type": content_type},
    )
    assert r.status_code in {400, 415, 422}, r.text
    assert r.json()["code"]
    assert client.get("/api/v1/documents", headers=auth(token)).json() == []
    leftovers = [p for p in settings.storage_dir.rglob("*") if p.is_file()]
    assert leftovers == []


def _part(name: str, data: bytes, filename: str | None = None) -> bytes:
    head = f'--xyz\r\nContent-Disposition: form-data; name="{name}"'
    if filename is not None:
        head += f'; filename="{filename}"\r\nContent-Type: application/octet-stream'
    return head.encode() + b"\r\n\r\n" + data + b"\r\n"


# What a browser sends for a file input with no file chosen.
NO_FILE_CHOSEN = _part("files", b"", "")
MULTIPART_XYZ = {"content-type": "multipart/form-data; boundary=xyz"}


def test_a_file_input_with_no_file_chosen_is_ignored(
    client: TestClient, settings: Settings
) -> None:
    token = register(client)
    for body in (NO_FILE_CHOSEN, NO_FILE_CHOSEN * 3):
        r = client.post(
            "/api/v1/documents/upload",
            content=body + b"--xyz--\r\n",
            headers={**auth(token), **MULTIPART_XYZ},
        )
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "no_files"
    assert client.get("/api/v1/documents", headers=auth(token)).json() == []
    assert [p for p in settings.storage_dir.rglob("*") if p.is_file()] == []

    # Beside real files it is skipped; a chosen file of 0 bytes is still a (failed) document.
    body = (
        NO_FILE_CHOSEN
        + _part("files", TEXT, "note.txt")
        + NO_FILE_CHOSEN
        + _part("files", b"", "empty.txt")
        + b"--xyz--\r\n"
    )
    r = client.post(
        "/api/v1/documents/upload", content=body, headers={**auth(token), **MULTIPART_XYZ}
    )
    assert r.status_code == 202, r.text
    assert [e["filename"] for e in r.json()] == ["note.txt", "empty.txt"]
    empty = next(e for e in r.json() if e["filename"] == "empty.txt")
    assert wait_final(client, token, empty["id"])["error"] == "empty document"
    listed = client.get("/api/v1/documents", headers=auth(token)).json()
    assert sorted(d["filename"] for d in listed) == ["empty.txt", "note.txt"]


def test_the_documents_page_says_when_no_file_was_chosen(client: TestClient) -> None:
    token = register(client)
    client.cookies.set("pitchcraft_session", token)
    client.get("/documents")
    csrf = client.cookies.get("csrftoken")
    assert csrf
    r = client.post(
        "/documents/upload",
        content=_part("csrftoken", csrf.encode()) + NO_FILE_CHOSEN + b"--xyz--\r\n",
        headers={**MULTIPART_XYZ, "accept": "text/html"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/documents?error=no_files"
    page = client.get(r.headers["location"])
    assert "No files were received. Choose one or more files and try again." in page.text
    assert client.get("/api/v1/documents", headers=auth(token)).json() == []


def test_users_cannot_see_each_others_documents(client: TestClient) -> None:
    alice = register(client, "alice@example.com")
    bob = register(client, "bob@example.com")
    [doc] = upload(
        client,
        alice,
        ("alice.txt", b"Alice's secret roadmap mentions the Falcon launch in spring."),
    )
    assert wait_final(client, alice, doc["id"])["status"] == "indexed"
    assert client.get(f"/api/v1/documents/{doc['id']}", headers=auth(bob)).status_code == 404
    assert client.delete(f"/api/v1/documents/{doc['id']}", headers=auth(bob)).status_code == 404
    assert client.get("/api/v1/documents", headers=auth(bob)).json() == []
    r = client.post("/api/v1/search", headers=auth(bob), json={"query": "Falcon launch roadmap"})
    assert r.json()["results"] == []
    r = client.post("/api/v1/search", headers=auth(alice), json={"query": "Falcon launch roadmap"})
    assert r.json()["results"][0]["document_id"] == doc["id"]


def test_sign_in_clears_documents_but_keeps_the_account(
    client: TestClient, settings: Settings
) -> None:
    token = register(client, "clear@example.com", "test-pass-123")
    [doc] = upload(client, token, ("note.txt", TEXT))
    assert wait_final(client, token, doc["id"])["status"] == "indexed"
    # Cleared once the session that uploaded it has ended (here: signed out).
    assert client.post("/api/v1/auth/logout", headers=auth(token)).status_code == 204
    r = client.post(
        "/api/v1/auth/login", json={"email": "clear@example.com", "password": "test-pass-123"}
    )
    assert r.status_code == 200 and r.json()["cleared_documents"] == 1
    fresh = r.json()["access_token"]
    assert client.get("/api/v1/documents", headers=auth(fresh)).json() == []
    assert [p for p in settings.storage_dir.rglob("*") if p.is_file()] == []
    assert client.app.state.container.index().count(1) == 0  # type: ignore[attr-defined]
    assert client.get("/api/v1/auth/me", headers=auth(fresh)).json()["email"] == "clear@example.com"


def test_clearing_on_sign_in_can_be_turned_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", clear_documents_on_login=False)
    with TestClient(create_app(settings)) as c:
        token = register(c, "keep@example.com", "test-pass-123")
        [doc] = upload(c, token, ("note.txt", TEXT))
        wait_final(c, token, doc["id"])
        assert c.post("/api/v1/auth/logout", headers=auth(token)).status_code == 204
        fresh = c.post(
            "/api/v1/auth/login", json={"email": "keep@example.com", "password": "test-pass-123"}
        ).json()
        listed = c.get("/api/v1/documents", headers=auth(fresh["access_token"])).json()
        assert [d["id"] for d in listed] == [doc["id"]]
