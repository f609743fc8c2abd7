"""Page previews with the passage highlighted, on the real corpus (shared/corpus). Passages
come from the project's parser and chunker; where the highlight belongs is worked out apart
from the code under test (PyMuPDF's text search, python-pptx or the slide XML read here)."""

from __future__ import annotations

import functools
import io
import itertools
import math
import multiprocessing
import shutil
import sys
import unicodedata
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pptx
import pymupdf
import pytest
from lxml import etree  # type: ignore[import-untyped]
from PIL import Image

from pitchcraft.documents import preview as pv
from pitchcraft.documents.preview.match import Word, find, line_boxes
from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.ingestion.types import Chunk
from tests.conftest import CORPUS

Box = tuple[float, float, float, float]
Mask = npt.NDArray[np.bool_]
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


@functools.cache
def chunks_of(rel: str, kind: str) -> tuple[Chunk, ...]:
    return tuple(chunk(parse_file(CORPUS / rel, kind, ocr=False, soffice=None)))


def decode(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png)).convert("RGB")


def render(path: str | Path, kind: str, page: int, text: str | None, **kw: Any) -> Image.Image:
    return decode(pv.render_page(CORPUS / path, kind, page, text, **kw))


def inside(mask: Mask, boxes: Sequence[Box], margin: float = 0.0) -> Mask:
    """Which pixels lie in any of the boxes (grown by `margin`)."""
    out = np.zeros_like(mask)
    for box in boxes:
        x0, y0 = (max(0, math.floor(v - margin)) for v in box[:2])
        x1, y1 = (max(0, math.ceil(v + margin)) for v in box[2:])
        out[y0:y1, x0:x1] = True
    return out


def count_in(mask: Mask, box: Box, margin: float = 0.0) -> int:
    return int((mask & inside(mask, [box], margin)).sum())


def shrink(box: Box, by: float) -> Box:
    return (box[0] + by, box[1] + by, box[2] - by, box[3] - by)


def scaled(rect: Any, zoom: float) -> Box:
    return (rect.x0 * zoom, rect.y0 * zoom, rect.x1 * zoom, rect.y1 * zoom)


def plain(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKC", word).casefold() if ch.isalnum())


def check_pdf_highlight(rel: str, passage: Chunk, strangers_at_least: int = 0) -> Image.Image:
    """Where PyMuPDF's search finds the passage (four-word stretches and short lines; it finds
    none across a line break) is highlighted; words nowhere in the passage are not; nothing
    lies far from it; without a passage, nothing is highlighted."""
    assert passage.page is not None
    image = render(rel, "pdf", passage.page, passage.text)
    words = passage.text.split()
    stretches = [" ".join(words[i : i + 4]) for i in range(0, max(1, len(words) - 3), 2)]
    stretches += [line for line in passage.text.split("\n") if len(line.split()) < 4]
    with pymupdf.open(CORPUS / rel) as doc:
        page = doc[passage.page - 1]
        zoom = 1200 / page.rect.width
        assert image.size == (1200, math.ceil(page.rect.height * zoom - 1e-6))
        hits = [page.search_for(s) for s in stretches]
        page_words = page.get_text("words")
    assert sum(1 for h in hits if h) > 0.6 * len(stretches)  # the oracle finds the passage
    found = [scaled(r, zoom) for h in hits for r in h]
    mask = pv.highlight_mask(image)
    area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in found)
    covered = sum(count_in(mask, shrink(b, 1)) for b in found)
    assert covered > 0.45 * area, (covered, area)  # glyphs are dark: not all of it
    span = (*np.min(found, axis=0)[:2], *np.max(found, axis=0)[2:])
    outside = int((mask & ~inside(mask, [span], margin=18 * zoom)).sum())
    assert outside <= 0.005 * mask.sum(), (outside, mask.sum())
    vocabulary = {plain(w) for w in words}
    # (Halves of a word hyphenated at a line end are in the passage as the whole word.)
    halves = {i for i, w in enumerate(page_words) if w[4].endswith("-")}
    halves |= {i + 1 for i in halves}
    strangers = [w for i, w in enumerate(page_words) if i not in halves and plain(w[4])]
    strangers = [w for w in strangers if plain(w[4]) not in vocabulary]
    assert len(strangers) >= strangers_at_least
    for w in strangers:
        box = shrink(scaled(pymupdf.Rect(w[:4]), zoom), 3)
        assert count_in(mask, box) == 0, f"{w[4]!r} is not in the passage but is highlighted"
    plain_page = render(rel, "pdf", passage.page, None)
    assert plain_page.size == image.size and not pv.highlight_mask(plain_page).any()
    return image


def test_pdf_memo_page() -> None:
    (passage,) = chunks_of("pdf/fake-memo.pdf", "pdf")
    image = check_pdf_highlight("pdf/fake-memo.pdf", passage)
    # On white paper, highlighted pixels are exactly the exported colour.
    exact = (np.asarray(image) == np.array(pv.HIGHLIGHT_RGB, dtype=np.uint8)).all(axis=2)
    assert exact.sum() > 10_000
    elsewhere = render("pdf/fake-memo.pdf", "pdf", 1, "Quantum chromodynamics of gluons")
    assert not pv.highlight_mask(elsewhere).any()
    # A passage cut short, mid-word, with "…": up to there.
    cut = passage.text.index("bottles") + 4  # "bott…"
    full = pv.highlight_mask(render("pdf/fake-memo.pdf", "pdf", 1, passage.text))
    short = pv.highlight_mask(render("pdf/fake-memo.pdf", "pdf", 1, passage.text[:cut] + "…"))
    assert 0 < short.sum() < full.sum()
    with pymupdf.open(CORPUS / "pdf/fake-memo.pdf") as doc:
        zoom = 1200 / doc[0].rect.width
        bottles, water = doc[0].search_for("bottles")[0], doc[0].search_for("water")[0]
    assert count_in(short, shrink(scaled(bottles, zoom), 2)) > 0  # the word cut short
    assert count_in(short, shrink(scaled(water, zoom), 2)) == 0  # what comes after it


@pytest.mark.parametrize(
    ("rel", "page", "nth"), [("pdf/multicolumn.pdf", 1, 2), ("large/DA-619p.pdf", 300, 1)]
)
def test_pdf_longer_passages(rel: str, page: int, nth: int) -> None:
    """On multicolumn.pdf, from the foot of the left column to the top of the right one."""
    passage = [c for c in chunks_of(rel, "pdf") if c.page == page][nth]
    check_pdf_highlight(rel, passage, strangers_at_least=100)


def test_pdf_hyphenated_line_breaks_are_highlighted() -> None:
    rel = "pdf/multi-column-2p.pdf"
    passage = chunks_of(rel, "pdf")[0]
    # The parser re-joined "ef-" + "ficient" and "dual-" + "encoder" from line ends.
    assert "efficient passage retrieval" in passage.text and "dualencoder" in passage.text
    mask = pv.highlight_mask(check_pdf_highlight(rel, passage, strangers_at_least=100))
    with pymupdf.open(CORPUS / rel) as doc:
        zoom = 1200 / doc[0].rect.width
        words = doc[0].get_text("words")
    halves = [(a, b) for a, b in itertools.pairwise(words) if plain(a[4]) in ("ef", "dual")]
    assert [plain(b[4]) for _, b in halves] == ["ficient", "encoder"]
    for w in (w for pair in halves for w in pair):
        box = shrink(scaled(pymupdf.Rect(w[:4]), zoom), 1)
        assert count_in(mask, box) > 0.3 * (box[2] - box[0]) * (box[3] - box[1]), w[4]


def test_pdf_page_geometry(tmp_path: Path) -> None:
    (passage,) = chunks_of("pdf/fake-memo.pdf", "pdf")
    with pymupdf.open(CORPUS / "pdf/fake-memo.pdf") as doc:
        doc[0].set_rotation(90)
        doc.save(tmp_path / "rotated.pdf")
    with pymupdf.open(tmp_path / "rotated.pdf") as doc:
        zoom = 1200 / doc[0].rect.width  # landscape now
        water = doc[0].search_for("bottles of water")[0] * doc[0].rotation_matrix
    rotated = render(tmp_path / "rotated.pdf", "pdf", 1, passage.text)
    assert rotated.width == 1200 and rotated.width > rotated.height
    assert count_in(pv.highlight_mask(rotated), shrink(scaled(water, zoom), 1)) > 50
    assert render("pdf/fake-memo.pdf", "pdf", 1, None, width=10_000).width == pv.MAX_WIDTH
    assert render("pdf/fake-memo.pdf", "pdf", 1, None, width=300).width == 300
    with pymupdf.open() as doc:
        doc.new_page(width=14_400, height=3)  # 200 inches by a 24th of one
        doc.save(tmp_path / "ribbon.pdf")
    with pytest.raises(pv.PreviewError, match="too long and narrow"):
        pv.render_page(tmp_path / "ribbon.pdf", "pdf", 1)


NS = {
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "p": "http://schemas.openxmlformats.org/presentationml/2006/main",
}


def shape_boxes(rel: str, slide: int) -> dict[str, Box]:
    """Text of each top-level shape ("table" for a table) → its box in pixels at 1200 wide."""
    deck = pptx.Presentation(str(CORPUS / rel))
    zoom = 1200 / deck.slide_width
    boxes: dict[str, Box] = {}
    for s in deck.slides[slide - 1].shapes:
        name = "table" if s.has_table else s.text_frame.text.strip()
        corners = (s.left, s.top, s.left + s.width, s.top + s.height)
        boxes[name] = tuple(v * zoom for v in corners)  # type: ignore[assignment]
    return boxes


def xml_group_boxes(rel: str) -> dict[str, Box]:
    """Text → box in pixels at 1200 wide of each shape of slide 1, from the slide XML: a
    group maps its children's chOff/chExt onto its own off/ext, group within group."""
    with zipfile.ZipFile(CORPUS / rel) as package:
        root = etree.fromstring(package.read("ppt/slides/slide1.xml"))
        size = etree.fromstring(package.read("ppt/presentation.xml")).find("p:sldSz", NS)
    zoom = 1200 / int(size.get("cx"))
    boxes: dict[str, Box] = {}

    def get(x: Any, tag: str, attr: str) -> float:
        return float(x.find(f"a:{tag}", NS).get(attr))

    def walk(tree: Any, sx: float, sy: float, tx: float, ty: float) -> None:
        for node in tree:
            x = node.find("p:grpSpPr/a:xfrm", NS) if node.tag.endswith("grpSp") else None
            if x is not None:
                gx = get(x, "ext", "cx") / get(x, "chExt", "cx")
                gy = get(x, "ext", "cy") / get(x, "chExt", "cy")
                ox = get(x, "off", "x") - get(x, "chOff", "x") * gx
                oy = get(x, "off", "y") - get(x, "chOff", "y") * gy
                walk(node, sx * gx, sy * gy, tx + sx * ox, ty + sy * oy)
            elif node.tag.endswith("}sp") and (x := node.find("p:spPr/a:xfrm", NS)) is not None:
                x0, y0 = tx + sx * get(x, "off", "x"), ty + sy * get(x, "off", "y")
                x1, y1 = x0 + sx * get(x, "ext", "cx"), y0 + sy * get(x, "ext", "cy")
                if text := "".join(t.text or "" for t in node.iterfind(".//a:t", NS)):
                    boxes[text] = (x0 * zoom, y0 * zoom, x1 * zoom, y1 * zoom)

    walk(root.find("p:cSld/p:spTree", NS), 1.0, 1.0, 0.0, 0.0)
    return boxes


def check_only_in(mask: Mask, expected: Sequence[Box], others: Sequence[Box] = ()) -> None:
    """Highlight in each expected box, none outside them (3 px of slack), none in others."""
    for box in expected:
        assert count_in(mask, box) > 0, f"nothing highlighted in {box}"
    assert not (mask & ~inside(mask, expected, margin=3)).any()
    for box in others:
        assert count_in(mask, shrink(box, 3)) == 0, f"highlight in {box}"


def test_slides_with_placeholders() -> None:
    rel = "pptx/sample-presentation.pptx"
    passage = next(c for c in chunks_of(rel, "pptx") if c.page == 2)
    image = render(rel, "pptx", 2, passage.text)
    assert image.size == (1200, 675)  # the deck's 16:9
    boxes = shape_boxes(rel, 2)
    assert len(boxes) == 2 and all(text in passage.text for text in boxes)
    check_only_in(pv.highlight_mask(image), list(boxes.values()))
    assert not pv.highlight_mask(render(rel, "pptx", 2, None)).any()
    # A passage that is one shape's text, on a slide of three shapes: only that shape.
    boxes = shape_boxes(rel, 3)
    right = next(text for text in boxes if text.startswith("What happens when there\u2019s 2"))
    others = [box for text, box in boxes.items() if text != right]
    check_only_in(pv.highlight_mask(render(rel, "pptx", 3, right)), [boxes[right]], others)


def test_slide_with_nested_groups() -> None:
    rel = "pptx/group-shapes-nested.pptx"
    (passage,) = chunks_of(rel, "pptx")
    boxes = xml_group_boxes(rel)
    assert sorted(boxes) == list("ABCDEFGHIJ")
    # The slide's passage: each letter highlighted inside its own shape.
    check_only_in(pv.highlight_mask(render(rel, "pptx", 1, passage.text)), list(boxes.values()))
    # One shape, three groups deep: only there.
    others = [box for text, box in boxes.items() if text != "G"]
    check_only_in(pv.highlight_mask(render(rel, "pptx", 1, "G")), [boxes["G"]], others)


def test_slide_with_a_table() -> None:
    rel = "pptx/fake-power-point-table.pptx"
    (passage,) = chunks_of(rel, "pptx")
    boxes = shape_boxes(rel, 1)
    table, title = boxes["table"], boxes["A Slide with a Table"]
    check_only_in(pv.highlight_mask(render(rel, "pptx", 1, passage.text)), [table, title])
    # One row, as the parser writes it: in a band of the table a row or two high.
    row = pv.highlight_mask(render(rel, "pptx", 1, "Purple | Orange | Yellow"))
    check_only_in(row, [table], [title])
    rows = np.nonzero(row.any(axis=1))[0]
    assert rows.max() - rows.min() < (table[3] - table[1]) / 3


@pytest.mark.parametrize("rel", sorted(p.name for p in (CORPUS / "pptx").glob("*.pptx")))
def test_every_corpus_slide_renders(rel: str) -> None:
    """Charts, pictures, placeholders without positions, SmartArt, malformed parts, no slides."""
    rel = f"pptx/{rel}"
    slides = pv.page_count(CORPUS / rel, "pptx")
    assert slides == len(pptx.Presentation(str(CORPUS / rel)).slides)
    try:
        passages = {c.page: c.text for c in chunks_of(rel, "pptx")}
    except Exception:  # no extractable text: the slides still render
        passages = {}
    for number in range(1, (slides or 0) + 1):
        image = render(rel, "pptx", number, passages.get(number))
        assert image.width == 1200 and 300 < image.height <= 1200
        if number in passages:
            assert pv.highlight_mask(image).any(), f"slide {number}: passage not highlighted"
    with pytest.raises(pv.PageNotFound):
        pv.render_page(CORPUS / rel, "pptx", (slides or 0) + 1)


def test_slide_notes_are_drawn_below_and_highlighted(tmp_path: Path) -> None:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly results"
    slide.notes_slide.notes_text_frame.text = "Mention the record harvest in Norfolk first"
    deck.save(tmp_path / "notes.pptx")
    image = render(tmp_path / "notes.pptx", "pptx", 1, "record harvest in Norfolk")
    slide_height = 1200 * deck.slide_height / deck.slide_width
    assert image.height > slide_height + 40  # the notes band
    mask = pv.highlight_mask(image)
    assert mask.any() and not mask[: int(slide_height)].any()


def test_images_page_numbers_and_counts() -> None:
    with Image.open(CORPUS / "img/layout-parser-paper-fast.jpg") as original:
        width, height = original.size
    image = render("img/layout-parser-paper-fast.jpg", "image", 1, "anything", width=400)
    assert image.width == 400 and abs(image.height - height * 400 / width) <= 1
    assert render("img/example.jpg", "image", 1, None, width=pv.MAX_WIDTH).width < pv.MAX_WIDTH
    assert pv.page_count(CORPUS / "img/example.jpg", "image") == 1
    with pytest.raises(pv.PageNotFound):
        pv.render_page(CORPUS / "img/example.jpg", "image", 2)
    for rel in ("docx/fake.docx", "text/fake-text.txt", "text/codeblock.md", "text/fake-html.html"):
        kind = detect(CORPUS / rel, rel)  # docx, text, markdown, html
        assert pv.page_count(CORPUS / rel, kind) is None
        with pytest.raises(pv.PageNotFound, match="has no pages"):
            pv.render_page(CORPUS / rel, kind, 1)
    assert pv.page_count(CORPUS / "pdf/multicolumn.pdf", "pdf") == 3
    for page in (0, -1, 4):
        with pytest.raises(pv.PageNotFound):
            pv.render_page(CORPUS / "pdf/multicolumn.pdf", "pdf", page)
    assert pv.page_count(CORPUS / "large/DA-619p.pdf", "pdf") == 619
    assert pv.page_count(CORPUS / "pptx/sample-presentation.pptx", "pptx") == 4
    assert pv.page_count(CORPUS / "ppt/fake-power-point.ppt", "ppt") is None
    for soffice in (None, "/nonexistent/soffice"):  # .ppt: only through LibreOffice
        with pytest.raises(pv.PageNotFound, match="need LibreOffice"):
            pv.render_page(CORPUS / "ppt/fake-power-point.ppt", "ppt", 1, soffice=soffice)


def test_unreadable_files_are_preview_errors(tmp_path: Path) -> None:
    with pytest.raises(pv.PreviewError, match="password-protected"):
        pv.render_page(CORPUS / "pdf/password.pdf", "pdf", 1)
    for name, source, kind, reason in [
        ("broken.pptx", "pptx/simple.pptx", "pptx", "damaged or truncated PPTX"),
        ("bad.jpg", "img/example.jpg", "image", "damaged or unreadable image"),
    ]:
        (tmp_path / name).write_bytes((CORPUS / source).read_bytes()[:3000])
        with pytest.raises(pv.PreviewError, match=reason):
            pv.render_page(tmp_path / name, kind, 1)


def test_sandboxed_render_matches_in_process() -> None:
    passage = chunks_of("pdf/multicolumn.pdf", "pdf")[2]
    cases = [
        ("pdf/multicolumn.pdf", "pdf", passage.text),
        ("pptx/group-shapes-nested.pptx", "pptx", "G"),
    ]
    for rel, kind, text in cases:
        here = decode(pv.render_page(CORPUS / rel, kind, 1, text, width=800))
        there = decode(pv.render_sandboxed(CORPUS / rel, kind, 1, text, width=800, timeout_s=60))
        assert here.size == there.size
        assert pv.highlight_mask(here).sum() == pv.highlight_mask(there).sum() > 0
    with pytest.raises(pv.PageNotFound, match="page 9 is not in this PDF"):
        pv.render_sandboxed(CORPUS / "pdf/fake-memo.pdf", "pdf", 9, timeout_s=60)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("preview")]


def test_sandboxed_hostile_inputs_give_clear_errors(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes((CORPUS / "pdf/fake-memo.pdf").read_bytes()[:2000])
    with pytest.raises(pv.PreviewError, match=r"^damaged or truncated PDF$"):
        pv.render_sandboxed(truncated, "pdf", 1, timeout_s=60)
    # No child answers within 10 ms: it is stopped, and the reason given.
    with pytest.raises(pv.PreviewError, match=r"could not be shown: took too long"):
        pv.render_sandboxed(CORPUS / "large/DA-619p.pdf", "pdf", 300, timeout_s=0.01)
    assert not [p for p in multiprocessing.active_children() if p.name.startswith("preview")]


@pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed here")
def test_real_libreoffice_renders_slides() -> None:
    rel = "pptx/fake-power-point-table.pptx"
    (passage,) = chunks_of(rel, "pptx")
    mask = pv.highlight_mask(render(rel, "pptx", 1, passage.text, soffice=SOFFICE))
    assert mask.shape[1] == 1200 and abs(mask.shape[0] - 900) <= 1
    boxes = shape_boxes(rel, 1)
    assert count_in(mask, boxes["table"]) > 0 and count_in(mask, boxes["A Slide with a Table"])
    assert render("ppt/fake-power-point.ppt", "ppt", 1, None, soffice=SOFFICE).width == 1200


# A stand-in for soffice, to test how it is called and what is made of its output: a deck
# becomes a PDF of square pages with the text of each visible slide; a .ppt, a copy of
# FAKE_PPTX. FAKE_SOFFICE=fail exits 1, =hang never ends.
FAKE_SOFFICE = """\
import os, shutil, sys, time
from pathlib import Path
import pptx, pymupdf
args = sys.argv[1:]
assert "--headless" in args and args[0].startswith("-env:UserInstallation=file://"), args
target, out, source = args[args.index("--convert-to") + 1], Path(args[-2]), Path(args[-1])
if os.environ["FAKE_SOFFICE"] == "fail":
    sys.exit(1)
while os.environ["FAKE_SOFFICE"] == "hang":
    time.sleep(1)
if target == "pptx":
    shutil.copyfile(os.environ["FAKE_PPTX"], out / (source.stem + ".pptx"))
    sys.exit(0)
pdf = pymupdf.open()
for slide in pptx.Presentation(str(source)).slides:
    if slide._element.get("show") != "0":  # LibreOffice leaves hidden slides out
        text = " ".join(s.text_frame.text for s in slide.shapes if s.has_text_frame)
        pdf.new_page(width=500, height=500).insert_textbox((20, 20, 480, 480), text)
pdf.save(out / (source.stem + ".pdf"))
"""


@pytest.fixture
def fake_soffice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    script = tmp_path / "soffice"
    script.write_text(f"#!{sys.executable}\n{FAKE_SOFFICE}")
    script.chmod(0o755)
    monkeypatch.setenv("FAKE_SOFFICE", "ok")
    return str(script)


def test_soffice_pdf_is_used_and_hidden_slides_skipped(
    fake_soffice: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deck = pptx.Presentation(str(CORPUS / "pptx/sample-presentation.pptx"))
    deck.slides[1]._element.set("show", "0")
    deck.save(tmp_path / "hidden.pptx")
    # Slide 3 is the PDF's page 2 (slide 2 is not in the PDF), with slide 3's text on it.
    third = "This is the second content slide"
    image = render(tmp_path / "hidden.pptx", "pptx", 3, third, soffice=fake_soffice)
    assert image.size == (1200, 1200) and pv.highlight_mask(image).sum() > 500
    # The hidden slide is drawn with Pillow (the deck's 16:9).
    hidden = render(tmp_path / "hidden.pptx", "pptx", 2, None, soffice=fake_soffice)
    assert hidden.size == (1200, 675)
    # A .ppt is converted to .pptx first (here: to FAKE_PPTX, one slide), then as above.
    monkeypatch.setenv("FAKE_PPTX", str(tmp_path / "hidden.pptx"))
    ppt = CORPUS / "ppt/fake-power-point.ppt"
    assert pv.page_count(ppt, "ppt", soffice=fake_soffice) == 4
    image = render(ppt, "ppt", 3, third, soffice=fake_soffice)
    assert image.size == (1200, 1200) and pv.highlight_mask(image).sum() > 500


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_soffice_failure_falls_back_to_drawing(
    fake_soffice: str, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("FAKE_SOFFICE", mode)
    rel = "pptx/group-shapes-nested.pptx"
    image = render(rel, "pptx", 1, "G", soffice=fake_soffice, convert_timeout_s=2)
    assert image.size == (1200, 675)
    check_only_in(pv.highlight_mask(image), [xml_group_boxes(rel)["G"]])
    with pytest.raises(pv.PreviewError, match="could not be converted"):
        ppt = CORPUS / "ppt/fake-power-point.ppt"
        pv.render_page(ppt, "ppt", 1, soffice=fake_soffice, convert_timeout_s=2)


def test_passage_in_context() -> None:
    passages = [c.text for c in chunks_of("docx/handbook-1p.docx", "docx")]
    middle = passages[1]
    (before, _), focus, (after, _) = pv.passage_in_context(passages, 1)
    assert focus == (middle, True)
    # Chunking's overlap is not shown twice: each neighbour loses what the focus repeats.
    assert passages[0].startswith(before) and passages[2].endswith(after)
    cut_before = passages[0][len(before) :].strip()
    assert len(cut_before) >= 20 and middle.startswith(cut_before)
    cut_after = passages[2][: len(passages[2]) - len(after)].strip()
    assert len(cut_after) >= 20 and middle.endswith(cut_after)
    assert pv.passage_in_context(passages, 0, radius=0) == [(passages[0], True)]
    assert len(pv.passage_in_context(passages, len(passages) - 1, radius=2)) == 3
    assert [f for _, f in pv.passage_in_context(["a", "b", "c"], 2, radius=5)] == [0, 0, 1]
    with pytest.raises(IndexError):
        pv.passage_in_context(passages, len(passages))


def words_of(lines: list[str]) -> list[Word]:
    return [
        Word(text, (x * 100.0, y * 20.0, x * 100.0 + 90, y * 20.0 + 15), y)
        for y, line in enumerate(lines)
        for x, text in enumerate(line.split())
    ]


def test_matching_and_the_highlight_colour() -> None:
    words = words_of(["The quick brown fox is ef-", "ﬁciently JUMPING over", "the lazy dog."])
    matched = find(words, "quick brown fox is efficiently jumping over the lazy dog")
    assert {words[i].text for i in matched} == set(" ".join(w.text for w in words[1:]).split())
    # One box per line, from the first matched word to the last.
    rows = [(100.0, 0.0, 590.0, 15.0), (0.0, 20.0, 290.0, 35.0), (0.0, 40.0, 290.0, 55.0)]
    assert line_boxes(words, matched) == rows
    assert find(words, "nothing like it here at all") == set() == find(words, "")
    assert pv.is_highlight(pv.HIGHLIGHT_RGB) and pv.is_highlight((*pv.HIGHLIGHT_RGB, 255))
    for colour in [(255, 255, 255), (0, 0, 0), (255, 255, 0), (255, 0, 0), (200, 200, 200)]:
        assert not pv.is_highlight(colour)
