"""The copywriter's workflow without a model: channels, the length, the diff, the glossary
(its checks, its findings, hostile input), exports and who may read them — on SQLite and
PostgreSQL, with real documents indexed by the real embedder."""

from __future__ import annotations

import io
import itertools
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docx import Document as read_docx
from fastapi.testclient import TestClient
from lxml import etree

from pitchcraft.channels.presets import PRESETS
from pitchcraft.core.errors import Invalid
from pitchcraft.glossary.importing import merged, read_csv
from pitchcraft.glossary.mining import suggest
from pitchcraft.glossary.rules import Glossary, parse, prompt_text
from pitchcraft.glossary.style import findings
from pitchcraft.refine.copy import chars, length
from pitchcraft.refine.diff import rebuild, word_diff
from tests.conftest import CORPUS, app_on, auth, register
from tests.docs_helpers import upload, wait_final
from tests.test_refine import BROCHURE, NETWORK, process, wait_job

pytestmark = pytest.mark.timeout(600)

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


# -- the diff -----------------------------------------------------------------------------

PAIRS = [
    ("We stop ransomware fast.", "Acme Shield stops ransomware within 30 seconds [1]."),
    ("", "All new."),
    ("All gone.", ""),
    ("Line one.\n\nLine two, unchanged.", "Line one, longer.\n\nLine two, unchanged.\nAdded."),
    ("Café — naïve “quotes” ₹5,000 crore.", "Café: naïve \u2018quotes\u2019 ₹6,000 crore!"),
    ("same text", "same text"),
    ("a  b\tc", "a b c"),
]


@pytest.mark.parametrize(("before", "after"), PAIRS)
def test_the_diff_rebuilds_both_texts(before: str, after: str) -> None:
    ops = word_diff(before, after)
    assert rebuild(ops, "before") == before
    assert rebuild(ops, "after") == after
    assert all(o["op"] in {"equal", "insert", "delete"} and o["text"] for o in ops)
    # Merged: never two operations of one kind in a row.
    assert all(a["op"] != b["op"] for a, b in itertools.pairwise(ops))


def test_the_diff_is_word_level() -> None:
    ops = word_diff("We stop ransomware fast.", "We stop ransomware quickly.")
    assert {"op": "delete", "text": "fast"} in ops and {"op": "insert", "text": "quickly"} in ops
    assert ops[0] == {"op": "equal", "text": "We stop ransomware "}


# -- length ---------------------------------------------------------------------------------


def test_length_leaves_citations_out_and_counts_code_points() -> None:
    assert chars("Acme Shield stops it [1]. Fast [2, 3].") == len("Acme Shield stops it. Fast.")
    assert chars("e\u0301😀") == 2  # NFC makes é one character; an emoji is one
    assert length("x" * 290, 280) == {"chars": 290, "max_chars": 280, "over_by": 10}
    assert length("x" * 28, 30) == {"chars": 28, "max_chars": 30, "over_by": 0}
    assert length("short", None) == {"chars": 5, "max_chars": None, "over_by": 0}


def test_presets_cover_the_issue_s_channels_with_their_limits() -> None:
    limits = {c.id: c.max_chars for c in PRESETS}
    assert limits["x-post"] == 280 and limits["linkedin-post"] == 3000
    assert limits["google-ads-headline"] == 30 and limits["google-ads-description"] == 90
    assert limits["email-subject"] == 60 and limits["meta-description"] == 155
    assert "landing-hero" in limits and "press-boilerplate" in limits
    assert len(limits) == len(PRESETS) and all(c.guidance for c in PRESETS)


# -- the glossary ---------------------------------------------------------------------------

GLOSSARY = parse(
    [
        {"use": "LayoutParser", "avoid": ["layout parser"]},
        {"use": "sign in", "avoid": ["login", "log-in"]},
        {"use": "Pitchcraft", "avoid": []},
        {"use": "customer", "avoid": ["synergy partner"]},
        {"use": "policy", "avoid": ["rulebook"]},
    ],
    ["world-class", "C++", "(a+b)*"],
)


def _found(text: str) -> list[tuple[str, str, str | None]]:
    return [(f.kind, f.term, f.suggestion) for f in findings(text, GLOSSARY)]


def test_findings_are_case_insensitive_whole_words_multi_word_and_plural() -> None:
    text = (
        "Our Layout\n parsers are World-Class. Please LOGIN first. "
        "Synergy partners love it. Two rulebooks apply. Loginx and slogin are other words."
    )
    assert _found(text) == [
        ("avoid", "Layout parsers", "LayoutParser"),
        ("banned", "World-Class", None),
        ("avoid", "LOGIN", "sign in"),
        ("avoid", "Synergy partners", "customer"),
        ("avoid", "rulebooks", "policy"),
    ]
    by_term = {f.term: f.sentence for f in findings(text, GLOSSARY)}
    assert by_term["LOGIN"] == "Please LOGIN first."


def test_a_word_to_use_with_another_capitalisation_is_found() -> None:
    text = "Layoutparser is fast. pitchcraft ships. Pitchcraft ships. LayoutParsers rock."
    assert _found(text) == [
        ("avoid", "Layoutparser", "LayoutParser"),
        ("avoid", "pitchcraft", "Pitchcraft"),
    ]
    # A capital at the start of a sentence is not a misspelling of a lower-case word.
    assert _found("Customers agree. Sign in now.") == []


def test_regex_characters_are_matched_literally() -> None:
    assert _found("We code in C++ and (a+b)* too. C is fine. aab is fine.") == [
        ("banned", "C++", None),
        ("banned", "(a+b)*", None),
    ]


def test_the_prompt_text_lists_every_rule() -> None:
    text = prompt_text(GLOSSARY)
    assert "Write “LayoutParser”, never “layout parser”." in text
    assert "Never use: “world-class”, “C++”, “(a+b)*”." in text
    assert "no brand glossary" in prompt_text(Glossary())


@pytest.mark.parametrize(
    ("terms", "banned", "says"),
    [
        ([{"use": f"term{i}", "avoid": []} for i in range(10_000)], [], "at most 500 terms"),
        ([], [f"w{i}" for i in range(10_000)], "at most 500 words"),
        ([{"use": "", "avoid": []}], [], "Term 1's word to use is empty"),
        ([{"use": "ok", "avoid": ["fine", "  "]}], [], "word to avoid no. 2 is empty"),
        ([], ["fine", ""], "Banned word no. 2 is empty"),
        ([{"use": "***", "avoid": []}], [], "no letter or digit"),
        ([{"use": "x" * 81, "avoid": []}], [], "longer than 80"),
        ([{"use": "cloud", "avoid": []}, {"use": "Cloud", "avoid": []}], [], "already listed"),
        ([{"use": "cloud", "avoid": ["cloud"]}], [], "avoids its own word"),
        ([{"use": "a\x00b", "avoid": []}], [], "control characters"),
    ],
)
def test_a_hostile_glossary_is_refused_with_its_place_named(
    terms: list[dict[str, Any]], banned: list[str], says: str
) -> None:
    with pytest.raises(Invalid) as err:
        parse(terms, banned)
    assert err.value.code == "invalid_glossary" and says in err.value.message


def test_a_large_glossary_checks_a_long_text_in_one_pass() -> None:
    big = parse(
        [{"use": f"Product{i}", "avoid": [f"prod {i}", f"p-{i}"]} for i in range(400)],
        [f"banned{i}" for i in range(500)],
    )
    text = ("Prod 17 and p-399 beat banned42. " * 200) + "product5 too."
    found = findings(text, big)
    assert found[:3] == [
        type(found[0])("avoid", "Prod 17", "Product17", "Prod 17 and p-399 beat banned42."),
        type(found[0])("avoid", "p-399", "Product399", "Prod 17 and p-399 beat banned42."),
        type(found[0])("banned", "banned42", None, "Prod 17 and p-399 beat banned42."),
    ]
    assert len(found) == 200  # capped, and the cap says so by its size


def test_csv_import_reads_rows_banned_words_and_merges() -> None:
    csv = "use,avoid\nLayoutParser,Layoutparser;layout parser\nbanned,world-class,synergy\n"
    terms, banned = read_csv(csv)
    assert terms == [{"use": "LayoutParser", "avoid": ["Layoutparser", "layout parser"]}]
    assert banned == ["world-class", "synergy"]
    saved = parse([{"use": "LayoutParser", "avoid": ["Layout-Parser"]}], ["synergy"])
    all_terms, all_banned = merged(saved, terms, banned)
    assert all_terms == [
        {"use": "LayoutParser", "avoid": ["Layout-Parser", "Layoutparser", "layout parser"]}
    ]
    assert all_banned == ["synergy", "world-class"]
    with pytest.raises(Invalid, match="Row 2"):
        read_csv("LayoutParser,x\n,orphan avoid\n")


def test_names_mined_from_a_real_document_keep_their_capitalisation() -> None:
    from pitchcraft.ingestion.parsers import parse_file

    paper = CORPUS / "pdf" / "layout-parser-paper-fast.pdf"
    texts = [b.text for b in parse_file(paper, "pdf", ocr=False, soffice=None).blocks]
    names = {s.use: s for s in suggest(texts)}
    assert "LayoutParser" in names and names["LayoutParser"].count >= 2
    # A second spelling seen in the user's documents becomes the one to avoid.
    again = {s.use: s for s in suggest([*texts, "Layoutparser is fast."])}
    assert again["LayoutParser"].avoid == ("Layoutparser",)
    assert "LayoutParser" not in {s.use for s in suggest(texts, known=["layoutparser"])}
    for s in names.values():
        assert not s.use.islower() and not s.use.isupper() and s.count >= 2


# -- the API on both databases --------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    with app_on(request.param, tmp_path_factory.mktemp(f"copy-{request.param}") / "data") as c:
        yield c


@pytest.fixture(scope="module")
def owner(client: TestClient) -> str:
    token = register(client, "copy@example.com")
    entries = upload(
        client, token, ("acme-shield.txt", BROCHURE.encode()), ("acme-mesh.md", NETWORK.encode())
    )
    assert all(wait_final(client, token, e["id"])["status"] == "indexed" for e in entries)
    return token


def test_channels_list_add_use_and_delete(client: TestClient, owner: str) -> None:
    r = client.get("/api/v1/rag/channels", headers=auth(owner))
    assert r.status_code == 200
    ids = [c["id"] for c in r.json()]
    assert ids[: len(PRESETS)] == [c.id for c in PRESETS]
    r = client.post(
        "/api/v1/rag/channels",
        headers=auth(owner),
        json={"name": "  App store   subtitle ", "max_chars": 30, "guidance": "No prices."},
    )
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["name"] == "App store subtitle" and mine["custom"] is True
    assert mine["id"] in [
        c["id"] for c in client.get("/api/v1/rag/channels", headers=auth(owner)).json()
    ]

    other = register(client, "other-channels@example.com")
    assert mine["id"] not in [
        c["id"] for c in client.get("/api/v1/rag/channels", headers=auth(other)).json()
    ]
    r = client.post(
        "/api/v1/rag/process",
        headers=auth(other),
        json={"marketing_text": "Hello.", "channel": mine["id"]},
    )
    assert r.status_code == 422 and r.json()["code"] == "unknown_channel"
    assert (
        client.delete(f"/api/v1/rag/channels/{mine['id']}", headers=auth(other)).status_code == 404
    )
    for bad in ({"name": "", "max_chars": 10}, {"name": "x", "max_chars": 0}, {"name": "x"}):
        assert client.post("/api/v1/rag/channels", headers=auth(owner), json=bad).status_code == 422

    # A job keeps the channel as it was; deleting it later changes nothing in the job.
    job_id = process(
        client, owner, marketing_text="Acme Shield is certified to ISO 27001.", channel=mine["id"]
    )
    assert (
        client.delete(f"/api/v1/rag/channels/{mine['id']}", headers=auth(owner)).status_code == 204
    )
    job = wait_job(client, owner, job_id)
    assert job["channel"]["name"] == "App store subtitle" and job["channel"]["max_chars"] == 30
    assert job["length"] == {"chars": 38, "max_chars": 30, "over_by": 8}
    assert (
        "App store subtitle: at most 30 characters" in job["prompt"]
        and "No prices." in job["prompt"]
    )


def test_glossary_get_put_is_per_user_and_refusals_keep_the_saved_one(
    client: TestClient, owner: str
) -> None:
    empty = client.get("/api/v1/glossary", headers=auth(owner))
    assert empty.status_code == 200 and empty.json()["terms"] == [] and empty.json()["banned"] == []
    body = {
        "terms": [{"use": "Acme Shield", "avoid": ["Acme shield", "the shield"]}],
        "banned": ["world-class", "C++"],
    }
    r = client.put("/api/v1/glossary", headers=auth(owner), json=body)
    assert r.status_code == 200, r.text
    assert r.json()["terms"] == body["terms"] and r.json()["updated_at"]

    other = register(client, "other-glossary@example.com")
    assert client.get("/api/v1/glossary", headers=auth(other)).json()["terms"] == []

    for hostile in (
        {"terms": [{"use": f"t{i}"} for i in range(10_000)]},
        {"terms": [{"use": "", "avoid": []}]},
        {"terms": [{"use": "ok", "avoid": [""]}]},
        {"banned": ["", "x"]},
        {"terms": [{"use": "x", "avoid": "not a list"}]},
        {"terms": "nope"},
    ):
        r = client.put("/api/v1/glossary", headers=auth(owner), json=hostile)
        assert r.status_code == 422, (hostile, r.text)
        assert r.json()["detail"]
    assert client.get("/api/v1/glossary", headers=auth(owner)).json()["terms"] == body["terms"]
    assert client.get("/api/v1/glossary").status_code == 401


def test_evidence_mode_has_length_diff_and_style_for_the_submitted_text(
    client: TestClient, owner: str
) -> None:
    client.put(
        "/api/v1/glossary",
        headers=auth(owner),
        json={
            "terms": [{"use": "Acme Shield", "avoid": ["the shield"]}],
            "banned": ["world-class"],
        },
    )
    text = "The shield isolates an infected laptop within 90 seconds. It is world-class."
    job = wait_job(client, owner, process(client, owner, marketing_text=text, channel="x-post"))
    assert job["status"] == "succeeded" and job["mode"] == "evidence"
    assert job["length"] == {"chars": len(text), "max_chars": 280, "over_by": 0}
    assert job["variants"] == []
    assert [(s["kind"], s["term"], s["suggestion"]) for s in job["style"]] == [
        ("avoid", "The shield", "Acme Shield"),
        ("banned", "world-class", None),
    ]
    assert job["style"][1]["sentence"] == "It is world-class."
    # The diff goes to the corrected draft: 90 seconds becomes the documents' 30 seconds.
    assert rebuild(job["diff"], "before") == text
    after = rebuild(job["diff"], "after")
    assert "30 seconds" in after and "90 seconds" not in after
    assert "Write “Acme Shield”, never “the shield”." in job["prompt"]
    assert "X post: at most 280 characters" in job["prompt"]
    assert job["timings"]["queued_ms"] >= 0

    # Export: Markdown and Word, for the owner only.
    md = client.get(f"/api/v1/jobs/{job['job_id']}/export?format=md", headers=auth(owner))
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert re.search(
        r'filename="refined-\d{4}-\d{2}-\d{2}-\d{4}\.md"', md.headers["content-disposition"]
    )
    body = md.text
    assert after in body and "## Sources" in body and "## Claim ledger" in body
    for s in job["sources"]:
        assert s["label"] in body
    for c in job["claims"]:
        assert c["verdict"] in body
    docx = client.get(f"/api/v1/jobs/{job['job_id']}/export?format=docx", headers=auth(owner))
    assert docx.status_code == 200 and "refined-" in docx.headers["content-disposition"]
    assert tracked_texts(docx.content) == (text, after)

    stranger = register(client, "stranger-export@example.com")
    for fmt in ("md", "docx"):
        r = client.get(f"/api/v1/jobs/{job['job_id']}/export?format={fmt}", headers=auth(stranger))
        assert r.status_code == 404 and r.json()["code"] == "job_not_found"
    bad = client.get(f"/api/v1/jobs/{job['job_id']}/export?format=pdf", headers=auth(owner))
    assert bad.status_code == 422


def tracked_texts(content: bytes) -> tuple[str, str]:
    """(the text with every change rejected, with every change accepted) of the tracked
    paragraphs, read back from the file's XML, after checking the revision marks are as
    Word writes them."""
    doc = read_docx(io.BytesIO(content))
    body = doc.element.body
    marks = body.findall(f".//{W}ins") + body.findall(f".//{W}del")
    ids = [m.get(f"{W}id") for m in marks]
    assert len(ids) == len(set(ids)), "revision ids are unique"
    for m in marks:
        assert m.get(f"{W}author") == "Pitchcraft"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m.get(f"{W}date") or "")
        parent = m.getparent()
        assert parent.tag in (f"{W}p", f"{W}rPr")  # around runs, or on a paragraph mark
    for d in body.findall(f".//{W}del"):
        assert d.findall(f".//{W}t") == [], "deleted runs hold w:delText, never w:t"
    for i in body.findall(f".//{W}ins"):
        assert i.findall(f".//{W}delText") == []
    # The copy's paragraphs: from the first to the last one carrying a revision mark.
    paragraphs = [p for p in body.iterchildren(f"{W}p") if p.find(f"{W}pPr/{W}pStyle") is None]
    marked = [
        i
        for i, p in enumerate(paragraphs)
        if p.find(f".//{W}ins") is not None or p.find(f".//{W}del") is not None
    ]
    assert marked, "the copy carries tracked changes"
    rejected, accepted = [], []
    for p in paragraphs[marked[0] : marked[-1] + 1]:
        texts = list(p.iter(f"{W}t", f"{W}delText"))
        rejected.append("".join(t.text or "" for t in texts if not _inside(t, "ins")))
        accepted.append(
            "".join(t.text or "" for t in texts if t.tag == f"{W}t" and not _inside(t, "del"))
        )
    assert etree.tostring(body)
    return "\n".join(rejected), "\n".join(accepted)


def _inside(element: Any, tag: str) -> bool:
    return any(a.tag == f"{W}{tag}" for a in element.iterancestors())


def test_export_of_an_unfinished_or_unknown_job(client: TestClient, owner: str) -> None:
    r = client.get("/api/v1/jobs/no-such-job/export?format=md", headers=auth(owner))
    assert r.status_code == 404
    assert client.get("/api/v1/jobs/no-such-job/export").status_code == 401


def test_variants_are_checked_as_1_to_5(client: TestClient, owner: str) -> None:
    for bad in (0, 6, "three", 2.5, True):
        r = client.post(
            "/api/v1/rag/process",
            headers=auth(owner),
            json={"marketing_text": "Hello there.", "variants": bad},
        )
        assert r.status_code == 422, (bad, r.text)


def test_a_capitalisation_to_avoid_may_equal_the_folded_word_to_use() -> None:
    g = parse([{"use": "Lisbon Oven", "avoid": ["lisbon oven", "LISBON OVEN"]}], [])
    assert [(f.term, f.suggestion) for f in findings("Try the lisbon oven.", g)] == [
        ("lisbon oven", "Lisbon Oven")
    ]
    with pytest.raises(Invalid, match="already listed"):
        parse([{"use": "Oven", "avoid": ["oven", "oven"]}], [])


def test_the_word_export_survives_characters_xml_cannot_hold() -> None:
    from datetime import UTC, datetime

    from pitchcraft.exports.service import export
    from pitchcraft.jobs.models import Job
    from pitchcraft.refine.schemas import ResultOut

    original = "Tab\there, a vertical\x0btab and a form\x0cfeed."
    refined = "Tab\there, no vertical tab [1]."
    now = datetime.now(UTC)
    job = Job(
        id="j",
        user_id=1,
        kind="refine",
        status="succeeded",
        payload={"marketing_text": original},
        result={
            "mode": "llm",
            "refined_text": refined,
            "diff": word_diff(original, refined),
            "sources": [
                {"n": 1, "filename": "a.pdf", "page": 2, "snippet": "bad\x0bchar", "label": "a"}
            ],
            "claims": [],
        },
        created_at=now,
        finished_at=now,
    )
    out = export(ResultOut.of(job), "docx")
    rejected, accepted = tracked_texts(out.content)
    assert accepted == refined and rejected == re.sub("[\x0b\x0c]", " ", original)
    assert "bad char" in "\n".join(
        c.text for t in read_docx(io.BytesIO(out.content)).tables for c in t._cells
    )


@pytest.mark.skipif(
    not (shutil.which("soffice") or shutil.which("libreoffice")),
    reason="LibreOffice is not installed here; the XML checks above stand in for it",
)
def test_libreoffice_opens_the_word_export(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from pitchcraft.exports.service import export
    from pitchcraft.jobs.models import Job
    from pitchcraft.refine.schemas import ResultOut

    original, refined = "We stop ransomware fast.", "Acme Shield stops ransomware in 30 s."
    now = datetime.now(UTC)
    job = Job(
        id="j",
        user_id=1,
        kind="refine",
        status="succeeded",
        payload={"marketing_text": original},
        result={"mode": "llm", "refined_text": refined, "diff": word_diff(original, refined)},
        created_at=now,
        finished_at=now,
    )
    path = tmp_path / "refined.docx"
    path.write_bytes(export(ResultOut.of(job), "docx").content)
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    subprocess.run(
        [str(soffice), "--headless", "--convert-to", "odt", "--outdir", str(tmp_path), str(path)],
        check=True,
        timeout=120,
        capture_output=True,
    )
    with zipfile.ZipFile(tmp_path / "refined.odt") as odt:
        content = odt.read("content.xml").decode()
    assert "<text:tracked-changes" in content and "Pitchcraft" in content
