"""Document parsers on the real corpus (shared/corpus) and on hostile input.

Every corpus file must end as the MANIFEST says: indexed, or failed with a reason a person
understands. Small files go through the sandbox (a forkserver child, as in production); the
two large ones are parsed in-process once for the module.
"""

from __future__ import annotations

import contextlib
import fnmatch
import multiprocessing
import os
import random
import re
import shutil
import signal
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pymupdf
import pytest

from pitchcraft.ingestion.archive import ZIP_BOMB
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.ingestion.parsers.image import OCR_OFF
from pitchcraft.ingestion.parsers.ppt import find_soffice
from pitchcraft.ingestion.sandbox import (
    TEST_ERROR,
    TEST_HANG,
    TEST_MEMORY,
    TOO_MUCH_MEMORY,
    _outcome,
    parse_sandboxed,
)
from pitchcraft.ingestion.types import ParsedDocument, ParseFailure
from tests.conftest import CORPUS

TIMEOUT_S = 120.0
MEMORY_MB = 2048
INDEXED = "indexed"
HAS_SOFFICE = find_soffice(None) is not None

# file → (kind detect() gives, None if detect itself refuses; "indexed" or the failure reason)
EXPECTED: dict[str, tuple[str | None, str]] = {
    "docx/contains-pictures.docx": ("docx", INDEXED),
    "docx/docx-tables.docx": ("docx", INDEXED),
    "docx/fake.docx": ("docx", INDEXED),
    "docx/handbook-1p.docx": ("docx", INDEXED),
    "docx/simple.docx": ("docx", INDEXED),
    # A photo of a frangipani flower: there is no text in it to recognise.
    "img/example.jpg": ("image", "no extractable text"),
    "img/layout-parser-paper-fast.jpg": ("image", INDEXED),
    "large/DA-619p.pdf": ("pdf", INDEXED),
    "large/handbook-872p.docx": ("docx", INDEXED),
    "pdf/002-trivial-libre-office-writer.pdf": ("pdf", INDEXED),
    "pdf/GeoTopo-komprimiert.pdf": ("pdf", INDEXED),
    "pdf/copy-protected.pdf": ("pdf", INDEXED),
    "pdf/crazyones-pdfa.pdf": ("pdf", INDEXED),
    "pdf/fake-memo.pdf": ("pdf", INDEXED),
    "pdf/google-doc-document.pdf": ("pdf", INDEXED),
    "pdf/habibi.pdf": ("pdf", INDEXED),
    # Six 16x16-pixel images on 4-point pages: nothing for OCR either.
    "pdf/imagemagick-images.pdf": ("pdf", "no extractable text"),
    "pdf/invalid-pdf-structure-pdfminer-one-page.pdf": ("pdf", INDEXED),
    "pdf/korean-text-with-tables.pdf": ("pdf", INDEXED),
    "pdf/layout-parser-paper-fast.pdf": ("pdf", INDEXED),
    "pdf/libreoffice-writer-password.pdf": ("pdf", "password-protected"),
    "pdf/minimal-document.pdf": ("pdf", INDEXED),
    "pdf/multi-column-2p.pdf": ("pdf", INDEXED),
    "pdf/multicolumn.pdf": ("pdf", INDEXED),
    "pdf/password.pdf": ("pdf", "password-protected"),
    "pdf/pdf-with-ocr-text.pdf": ("pdf", INDEXED),
    "pdf/pdflatex-4-pages.pdf": ("pdf", INDEXED),
    "pdf/pdflatex-outline.pdf": ("pdf", INDEXED),
    "pdf/reliance.pdf": ("pdf", INDEXED),
    "ppt/fake-power-point.ppt": (
        "ppt",
        INDEXED if HAS_SOFFICE else "legacy .ppt: save it as .pptx",
    ),
    "pptx/cht-charts.pptx": ("pptx", "no extractable text"),
    "pptx/fake-power-point-malformed.pptx": ("pptx", INDEXED),
    "pptx/fake-power-point-table.pptx": ("pptx", INDEXED),
    "pptx/fake-power-point.pptx": ("pptx", INDEXED),
    "pptx/group-shapes-nested.pptx": ("pptx", INDEXED),
    "pptx/minimal.pptx": ("pptx", "no extractable text"),
    "pptx/ph-populated-placeholders.pptx": ("pptx", INDEXED),
    "pptx/sample-presentation.pptx": ("pptx", INDEXED),
    "pptx/simple.pptx": ("pptx", INDEXED),
    "text/codeblock.md": ("markdown", INDEXED),
    "text/empty.txt": (None, "empty document"),
    "text/fake-html.html": ("html", INDEXED),
    "text/fake-text-all-whitespace.txt": ("text", "empty document"),
    "text/fake-text-utf-16.txt": ("text", INDEXED),
    "text/fake-text.txt": ("text", INDEXED),
    "text/norwich-city.txt": ("text", INDEXED),
    "text/umlauts-non-utf8.md": ("markdown", INDEXED),
}


def corpus_files() -> list[str]:
    return sorted(
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "MANIFEST.md"
    )


def manifest_rows() -> list[tuple[list[str], str]]:
    """(file patterns, expected outcome) for each row of the MANIFEST's table."""
    rows = []
    for line in (CORPUS / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and "/" in cells[0] and not cells[0].startswith("-"):
            rows.append(([p.strip() for p in cells[0].split(",")], cells[2]))
    return rows


Result = ParsedDocument | ParseFailure


class Corpus:
    """Parses each corpus file once per module and remembers the outcome."""

    def __init__(self) -> None:
        self.results: dict[tuple[str, bool], tuple[str | None, Result]] = {}

    def result(self, rel: str, *, ocr: bool = True) -> tuple[str | None, Result]:
        if (rel, ocr) not in self.results:
            path = CORPUS / rel
            kind: str | None = None
            outcome: Result
            try:
                kind = detect(path, path.name)
                if rel.startswith("large/"):
                    outcome = parse_file(path, kind, ocr=ocr, soffice=None)
                else:
                    outcome = parse_sandboxed(
                        path, kind, ocr=ocr, soffice=None, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB
                    )
            except ParseFailure as exc:
                outcome = exc
            self.results[(rel, ocr)] = (kind, outcome)
        return self.results[(rel, ocr)]

    def doc(self, rel: str) -> ParsedDocument:
        outcome = self.result(rel)[1]
        assert isinstance(outcome, ParsedDocument), f"{rel}: {outcome}"
        return outcome

    def text(self, rel: str, page: int | None = None) -> str:
        blocks = self.doc(rel).blocks
        return "\n".join(b.text for b in blocks if page is None or b.page == page)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus()


def flat(text: str) -> str:
    return " ".join(text.split())


# --- every corpus file ------------------------------------------------------------------------


def test_corpus_is_there_and_fully_described() -> None:
    files = corpus_files()
    assert len(files) >= 40, f"corpus missing or incomplete at {CORPUS}"
    assert set(files) == set(EXPECTED), "a corpus file was added or removed: update EXPECTED"
    rows = manifest_rows()
    for rel in files:
        outcomes = [o for patterns, o in rows if any(fnmatch.fnmatch(rel, p) for p in patterns)]
        assert outcomes, f"{rel} is not in the MANIFEST"
        expected = EXPECTED[rel][1]
        if expected == INDEXED:
            assert "indexed" in outcomes[0], (rel, outcomes[0])
        else:
            assert "failed" in outcomes[0] or "clear reason" in outcomes[0], (rel, outcomes[0])


@pytest.mark.parametrize("rel", corpus_files())
def test_corpus_file_outcome(corpus: Corpus, rel: str) -> None:
    assert rel in EXPECTED, f"new corpus file {rel}: add its expected outcome to EXPECTED"
    expected_kind, expected = EXPECTED[rel]
    kind, outcome = corpus.result(rel)
    assert kind == expected_kind
    if expected == INDEXED:
        assert isinstance(outcome, ParsedDocument), f"{rel} failed: {outcome}"
        assert outcome.blocks and all(b.text.strip() for b in outcome.blocks)
        assert outcome.char_count > 0
        if kind in ("pdf", "pptx", "ppt"):
            assert outcome.pages is not None and outcome.pages >= 1
            assert all(b.page is not None and 1 <= b.page <= outcome.pages for b in outcome.blocks)
        else:
            assert all(b.page is None for b in outcome.blocks)
    else:
        assert isinstance(outcome, ParseFailure), f"{rel} should have failed"
        assert expected in str(outcome)


# --- content -------------------------------------------------------------------------------


def test_pdf_page_numbers_kept(corpus: Corpus) -> None:
    doc = corpus.doc("pdf/pdflatex-4-pages.pdf")
    assert doc.pages == 4
    assert sorted({b.page for b in doc.blocks}) == [1, 2, 3, 4]
    assert [b.page for b in doc.blocks] == sorted(b.page or 0 for b in doc.blocks)


def test_pdf_sections_from_the_outline(corpus: Corpus) -> None:
    doc = corpus.doc("pdf/pdflatex-outline.pdf")
    sections = [b.section for b in doc.blocks if b.page == 2]
    assert "Foo" in sections and "Bar" in sections
    foo = next(b for b in doc.blocks if b.section == "Foo")
    assert foo.page == 2


def test_two_column_reading_order(corpus: Corpus) -> None:
    # The left column of page 1 ends mid-sentence ("Donec nonummy") and the right one goes on
    # ("pellentesque ante."): read column by column, the sentence is whole.
    page1 = flat(corpus.text("pdf/multicolumn.pdf", page=1))
    assert "fermentum felis. Donec nonummy pellentesque ante. Phasellus adipiscing" in page1
    left = page1.index("Nulla malesuada porttitor diam")  # last paragraph of the left column
    right = page1.index("Quisque ullamcorper placerat ipsum")  # in the right column
    assert page1.index("Lorem ipsum dolor sit amet") < left < right
    # Same for the DPR paper: "More specifically, we assume" + "the extractive QA setting".
    dpr = flat(corpus.text("pdf/multi-column-2p.pdf", page=2))
    assert "More specifically, we assume the extractive QA setting" in dpr


def test_geotopo_length_and_umlauts(corpus: Corpus) -> None:
    text = corpus.text("pdf/GeoTopo-komprimiert.pdf")
    assert 0.9 * 149_000 <= len(text) <= 1.1 * 149_000, len(text)
    assert corpus.doc("pdf/GeoTopo-komprimiert.pdf").pages == 117
    assert "Topologische Räume" in text and "Auflage" in text  # ligature "fl" expanded


def test_large_pdf(corpus: Corpus) -> None:
    doc = corpus.doc("large/DA-619p.pdf")
    assert doc.pages == 619
    assert {b.page for b in doc.blocks} == set(range(1, 620))  # every page has text
    assert 1_500_000 < len("\n".join(b.text for b in doc.blocks)) < 2_100_000
    page117 = flat(corpus.text("large/DA-619p.pdf", page=117))
    assert "Scratched into the bar of Redcliffe's tavern." in page117


def test_large_docx(corpus: Corpus) -> None:
    doc = corpus.doc("large/handbook-872p.docx")
    assert doc.pages is None
    assert 700_000 < doc.char_count < 900_000
    media = [b for b in doc.blocks if "Representatives of the media are permitted" in b.text]
    assert media and media[0].section == "3. MEDIA AND THIRD-PARTY RECORDING"


def test_korean_and_arabic_not_mangled(corpus: Corpus) -> None:
    korean = corpus.text("pdf/korean-text-with-tables.pdf")
    assert len(re.findall("[\uac00-\ud7a3]", korean)) > 400
    assert "삼성카드" in korean and "빅포인트" in korean
    assert "할인점 | 이마트, 이마트 트레이더스, 롯데마트, 홈플러스" in korean  # a table row
    assert "\x07" not in korean and "\ufffd" not in korean
    arabic = corpus.text("pdf/habibi.pdf")
    assert "حَبيبي" in arabic and "habibi" in arabic


def test_copy_protected_pdf_reads_like_the_unprotected_one(corpus: Corpus) -> None:
    protected = corpus.text("pdf/copy-protected.pdf")
    assert "can be easily installed via pip" in flat(protected)
    assert "LayoutParser: A Unified Toolkit" in protected  # "fi" ligature expanded


def test_text_encodings(corpus: Corpus) -> None:
    umlauts = corpus.text("text/umlauts-non-utf8.md")
    assert "können" in umlauts and "äöüß" in umlauts
    assert corpus.doc("text/umlauts-non-utf8.md").blocks[0].section == "können"
    utf16 = corpus.text("text/fake-text-utf-16.txt")
    assert "This is a test document to use for unit tests." in utf16
    assert "\x00" not in utf16 and "\ufeff" not in utf16
    assert flat(utf16) == flat(corpus.text("text/fake-text.txt"))


def test_more_encodings(tmp_path: Path) -> None:
    text = "Grüße aus Köln \u2013 \u201cquoted\u201d naïve café.\nZweite Zeile."
    cases = {
        "utf16le-no-bom.txt": text.encode("utf-16-le"),
        "utf16be-no-bom.txt": text.encode("utf-16-be"),
        "utf8-bom.txt": text.encode("utf-8-sig"),
        "utf32.txt": text.encode("utf-32"),
        "cp1252.txt": text.encode("cp1252"),
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        kind = detect(path, name)
        assert kind == "text", name
        doc = parse_file(path, kind, ocr=False, soffice=None)
        assert doc.blocks[0].text == text, name


def test_markdown_headings_and_code(corpus: Corpus) -> None:
    doc = corpus.doc("text/codeblock.md")
    assert {b.section for b in doc.blocks} == {"HTML Example", "XML Example"}
    assert "<title>Sample HTML</title>" in corpus.text("text/codeblock.md")  # code kept as text


def test_html_without_markup(corpus: Corpus) -> None:
    doc = corpus.doc("text/fake-html.html")
    text = corpus.text("text/fake-html.html")
    assert not re.search(r"</?[a-zA-Z!]", text)
    assert "if the cow comes home under the sun" in text
    assert "Row 1, Cell 1 | Row 1, Cell 2\nRow 2, Cell 1 | Row 2, Cell 2" in text
    table = next(b for b in doc.blocks if "Row 1, Cell 1" in b.text)
    assert table.section == "A Third Heading"


def test_tables_in_docx_and_pptx(corpus: Corpus) -> None:
    docx_text = corpus.text("docx/docx-tables.docx")
    assert "Header Col 1 | Header Col 2\nLorem ipsum | A link example" in docx_text
    assert "e | f\ng&t | h" in docx_text  # the nested table, after its row
    pptx_doc = corpus.doc("pptx/fake-power-point-table.pptx")
    table = next(b for b in pptx_doc.blocks if "Column 1" in b.text)
    assert table.text.splitlines()[:2] == ["Column 1 | Column 2 | Column 3", "Red | Green | Blue"]
    assert table.page == 1 and table.section == "A Slide with a Table"


def test_pptx_groups_placeholders_and_slides(corpus: Corpus) -> None:
    grouped = corpus.text("pptx/group-shapes-nested.pptx")
    assert sorted(grouped.split()) == list("ABCDEFGHIJ")  # shapes nested three groups deep
    deck = corpus.doc("pptx/sample-presentation.pptx")
    assert deck.pages == 4
    bullets = next(b for b in deck.blocks if "sub-sub-bullet" in b.text)
    assert bullets.page == 2 and bullets.section == "This is the first content slide"
    placeholders = corpus.doc("pptx/ph-populated-placeholders.pptx")
    assert placeholders.pages == 9
    assert {b.page for b in placeholders.blocks} == {5, 6, 7}


def test_image_ocr(corpus: Corpus) -> None:
    text = corpus.text("img/layout-parser-paper-fast.jpg").lower()
    assert "layoutparser" in text.replace(" ", "")
    assert "document image analysis" in text
    assert corpus.doc("img/layout-parser-paper-fast.jpg").notes


@pytest.mark.parametrize("rel", ["img/layout-parser-paper-fast.jpg", "img/example.jpg"])
def test_image_without_ocr_says_so(corpus: Corpus, rel: str) -> None:
    outcome = corpus.result(rel, ocr=False)[1]
    assert isinstance(outcome, ParseFailure)
    assert str(outcome) == OCR_OFF


def test_scanned_pdf_is_read_with_ocr(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    _scanned_pdf(scan, "Invoice number 4711 is overdue")
    with pytest.raises(ParseFailure, match=r"^no extractable text \(scanned pages need OCR"):
        parse_file(scan, "pdf", ocr=False, soffice=None)
    doc = parse_file(scan, "pdf", ocr=True, soffice=None)
    assert "4711" in "\n".join(b.text for b in doc.blocks)
    assert doc.pages == 1 and doc.blocks[0].page == 1
    assert doc.notes == ["1 page had no text layer and was read with OCR"]


def _text_png(text: str) -> bytes:
    """A PNG of a line of text, drawn by MuPDF."""
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=80)
    page.insert_text((20, 50), text, fontsize=20)
    png: bytes = page.get_pixmap(dpi=150).tobytes("png")
    return png


def _scanned_pdf(path: Path, text: str) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=80)
    page.insert_image(page.rect, stream=_text_png(text))
    doc.save(path)


# --- hostile input -------------------------------------------------------------------------


def _ooxml(path: Path, kind: str, member_mib: int) -> None:
    """A valid-looking DOCX or PPTX with one member of `member_mib` MiB of zeros (streamed, so
    the file itself stays small)."""
    main = "word/document.xml" if kind == "docx" else "ppt/presentation.xml"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        zf.writestr(main, '<?xml version="1.0"?><document/>')
        with zf.open(f"{main.split('/')[0]}/media/zeros.bin", "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(member_mib):
                fh.write(block)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    docx = folder / "report.docx"
    _ooxml(docx, "docx", 1280)  # 1.25 GiB unpacked: over the 1 GiB total
    pptx = folder / "deck.pptx"
    _ooxml(pptx, "pptx", 64)  # 64 MiB of zeros in ~64 KiB: an absurd ratio
    return {"docx": docx, "pptx": pptx}


@pytest.mark.parametrize("kind", ["docx", "pptx"])
def test_zip_bomb_refused(bombs: dict[str, Path], kind: str) -> None:
    path = bombs[kind]
    assert path.stat().st_size < 10 * 1024 * 1024
    assert detect(path, path.name) == kind
    with pytest.raises(ParseFailure) as exc:
        parse_sandboxed(
            path, kind, ocr=False, soffice=None, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB
        )
    assert str(exc.value) == ZIP_BOMB
    _normal_parse_still_works()


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("pdf/multicolumn.pdf", "damaged or truncated PDF"),
        ("docx/simple.docx", "damaged or truncated DOCX file"),
        ("pptx/simple.pptx", "damaged or truncated PPTX file"),
        ("large/handbook-872p.docx", "damaged or truncated DOCX file"),
    ],
)
def test_truncated_files(tmp_path: Path, rel: str, reason: str) -> None:
    data = (CORPUS / rel).read_bytes()
    cut = tmp_path / Path(rel).name
    cut.write_bytes(data[: len(data) // 2])
    kind = detect(cut, cut.name)
    assert kind == Path(rel).suffix[1:]
    with pytest.raises(ParseFailure, match=re.escape(reason)):
        parse_sandboxed(
            cut, kind, ocr=False, soffice=None, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB
        )


def test_truncated_pdf_recovered_when_possible(tmp_path: Path) -> None:
    data = (CORPUS / "pdf/fake-memo.pdf").read_bytes()
    cut = tmp_path / "memo.pdf"
    cut.write_bytes(data[: len(data) // 2])
    doc = parse_file(cut, detect(cut, cut.name), ocr=False, soffice=None)
    assert "20,000 bottles of water" in flat("\n".join(b.text for b in doc.blocks))
    assert any("repaired" in note for note in doc.notes)


def test_truncated_legacy_ppt_is_still_a_ppt(tmp_path: Path) -> None:
    data = (CORPUS / "ppt/fake-power-point.ppt").read_bytes()
    cut = tmp_path / "deck.ppt"
    cut.write_bytes(data[: len(data) // 2])  # the directory of streams is in the lost half
    assert detect(cut, cut.name) == "ppt"


def test_empty_and_whitespace_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(ParseFailure, match=r"^empty document$"):
        detect(empty, empty.name)
    blank = tmp_path / "blank.md"
    blank.write_bytes(b" \n\t\r\n   \n")
    assert detect(blank, blank.name) == "markdown"
    with pytest.raises(ParseFailure, match=r"^empty document$"):
        parse_file(blank, "markdown", ocr=False, soffice=None)
    blank_html = tmp_path / "blank.html"
    blank_html.write_bytes(b"<html><head><script>var x = 1;</script></head><body> </body></html>")
    with pytest.raises(ParseFailure, match=r"^empty document$"):
        parse_file(blank_html, detect(blank_html, blank_html.name), ocr=False, soffice=None)


def test_random_bytes(tmp_path: Path) -> None:
    noise = tmp_path / "notes.txt"
    noise.write_bytes(random.Random(20240101).randbytes(200_000))
    with pytest.raises(ParseFailure, match=r"^unsupported file type \(binary data\)$"):
        detect(noise, noise.name)


def test_executable(tmp_path: Path) -> None:
    with pytest.raises(ParseFailure, match=r"^unsupported file type \(executable\)$"):
        detect(Path(sys.executable).resolve(), "invoice.docx")  # this Python, an ELF binary
    elf = tmp_path / "report.txt"
    elf.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(4088))
    with pytest.raises(ParseFailure, match=r"^unsupported file type \(executable\)$"):
        detect(elf, elf.name)


def test_plain_zip_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "slides.pptx"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ParseFailure, match=r"^unsupported file type \(ZIP archive\)$"):
        detect(archive, archive.name)


def test_legacy_word_is_refused_even_named_ppt(tmp_path: Path) -> None:
    # Legacy Office files are OLE2 compound files; what decides is the name of the main
    # stream in the directory. Renaming the .ppt's "PowerPoint Document" stream to
    # "WordDocument" makes the same container a legacy Word file.
    data = bytearray((CORPUS / "ppt/fake-power-point.ppt").read_bytes())
    entry = bytes(data).find("PowerPoint Document".encode("utf-16-le"))
    assert entry > 0 and entry % 128 == 0
    data[entry : entry + 64] = "WordDocument".encode("utf-16-le").ljust(64, b"\0")
    data[entry + 64 : entry + 66] = struct.pack("<H", len("WordDocument") * 2 + 2)
    doc = tmp_path / "letter.ppt"
    doc.write_bytes(bytes(data))
    with pytest.raises(ParseFailure, match=r"legacy Word \.doc: save it as \.docx"):
        detect(doc, doc.name)


def test_content_wins_over_extension(tmp_path: Path) -> None:
    pdf_named_docx = tmp_path / "memo.docx"
    shutil.copyfile(CORPUS / "pdf/fake-memo.pdf", pdf_named_docx)
    kind = detect(pdf_named_docx, pdf_named_docx.name)
    assert kind == "pdf"
    doc = parse_sandboxed(
        pdf_named_docx, kind, ocr=False, soffice=None, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB
    )
    assert "20,000 bottles of water" in flat("\n".join(b.text for b in doc.blocks))
    docx_named_txt = tmp_path / "notes.txt"
    shutil.copyfile(CORPUS / "docx/fake.docx", docx_named_txt)
    assert detect(docx_named_txt, docx_named_txt.name) == "docx"
    html_named_md = tmp_path / "page.md"
    shutil.copyfile(CORPUS / "text/fake-html.html", html_named_md)
    assert detect(html_named_md, html_named_md.name) == "html"


def test_png_named_txt_is_read_as_an_image(tmp_path: Path) -> None:
    png_named_txt = tmp_path / "notes.txt"
    png_named_txt.write_bytes(_text_png("Quarterly revenue grew"))
    kind = detect(png_named_txt, png_named_txt.name)
    assert kind == "image"
    doc = parse_sandboxed(
        png_named_txt, kind, ocr=True, soffice=None, timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB
    )
    assert "revenue" in "\n".join(b.text for b in doc.blocks).lower()


def test_image_too_large_refused(tmp_path: Path) -> None:
    # A PNG whose header claims 30000 x 30000 pixels (900 megapixels): refused unread.
    def png_chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    huge = tmp_path / "poster.png"
    huge.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(bytes(1000)))
        + png_chunk(b"IEND", b"")
    )
    assert detect(huge, huge.name) == "image"
    with pytest.raises(ParseFailure, match=r"^image is too large to read"):
        parse_sandboxed(huge, "image", ocr=True, soffice=None, timeout_s=60, memory_mb=MEMORY_MB)


# LibreOffice is not installed here: fake `soffice` scripts exercise the conversion path.
FAKE_SOFFICE = """#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in --outdir) out="$2"; shift ;; esac
  shift
done
cp "{pptx}" "$out/deck.pptx"
"""
HANGING_SOFFICE = """#!/bin/sh
sleep 300 &
echo $! > "{pidfile}"
wait
"""


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def test_ppt_without_libreoffice_says_so(tmp_path: Path) -> None:
    if HAS_SOFFICE:
        pytest.skip("LibreOffice is installed on this machine")
    with pytest.raises(ParseFailure, match=r"^legacy \.ppt: save it as \.pptx"):
        parse_file(
            CORPUS / "ppt/fake-power-point.ppt", "ppt", ocr=False, soffice=str(tmp_path / "no")
        )


def test_ppt_converted_with_libreoffice(tmp_path: Path) -> None:
    soffice = _script(tmp_path / "soffice", FAKE_SOFFICE.format(pptx=CORPUS / "pptx/simple.pptx"))
    doc = parse_sandboxed(
        CORPUS / "ppt/fake-power-point.ppt", "ppt", ocr=False, soffice=soffice,
        timeout_s=TIMEOUT_S, memory_mb=MEMORY_MB,
    )  # fmt: skip
    assert doc.pages == 2
    assert any(b.section == "Things to think about" and b.page == 2 for b in doc.blocks)


def test_ppt_conversion_that_hangs_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "sleep.pid"
    soffice = _script(tmp_path / "soffice", HANGING_SOFFICE.format(pidfile=pidfile))
    with pytest.raises(ParseFailure, match=r"^took too long to read \(over 3 s\)$"):
        parse_sandboxed(
            CORPUS / "ppt/fake-power-point.ppt", "ppt", ocr=False, soffice=soffice,
            timeout_s=3, memory_mb=MEMORY_MB,
        )  # fmt: skip
    # What the converter started is gone too, not left running.
    sleeper = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(sleeper)
    _normal_parse_still_works()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# --- the sandbox ---------------------------------------------------------------------------


def _normal_parse_still_works() -> None:
    doc = parse_sandboxed(
        CORPUS / "text/fake-text.txt", "text", ocr=False, soffice=None, timeout_s=30, memory_mb=512
    )
    assert "This is a test document" in doc.blocks[0].text


def _sandbox_children() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name.startswith("parse-")]


def test_sandbox_kills_a_hanging_parser() -> None:
    started = time.monotonic()
    with pytest.raises(ParseFailure, match=r"^took too long to read \(over 1\.5 s\)$"):
        parse_sandboxed(
            CORPUS / "text/fake-text.txt",
            TEST_HANG,
            ocr=False,
            soffice=None,
            timeout_s=1.5,
            memory_mb=256,
        )
    assert time.monotonic() - started < 1.5 + 5
    assert _sandbox_children() == []
    _normal_parse_still_works()


def test_sandbox_caps_memory() -> None:
    with pytest.raises(ParseFailure) as exc:
        parse_sandboxed(
            CORPUS / "text/fake-text.txt",
            TEST_MEMORY,
            ocr=False,
            soffice=None,
            timeout_s=60,
            memory_mb=256,
        )
    assert str(exc.value) == TOO_MUCH_MEMORY
    assert _sandbox_children() == []
    _normal_parse_still_works()


def test_sandbox_turns_a_crash_into_a_reason() -> None:
    with pytest.raises(ParseFailure, match=r"^could not be read: simulated parser bug$"):
        parse_sandboxed(
            CORPUS / "text/fake-text.txt",
            TEST_ERROR,
            ocr=False,
            soffice=None,
            timeout_s=30,
            memory_mb=256,
        )
    with pytest.raises(ParseFailure, match=r"^unsupported file type \(spreadsheet\)$"):
        parse_sandboxed(
            CORPUS / "text/fake-text.txt",
            "spreadsheet",
            ocr=False,
            soffice=None,
            timeout_s=30,
            memory_mb=256,
        )
    _normal_parse_still_works()


def test_sandbox_reasons_for_a_child_that_dies() -> None:
    # Killed outright (the kernel's OOM killer), crashed in C code, or exited: no answer.
    with pytest.raises(ParseFailure, match=f"^{TOO_MUCH_MEMORY}$"):
        _outcome(None, -signal.SIGKILL)
    with pytest.raises(ParseFailure, match=r"^could not be read: the reader crashed \(SIGSEGV\)$"):
        _outcome(None, -signal.SIGSEGV)
    with pytest.raises(ParseFailure, match=r"^could not be read: the reader stopped"):
        _outcome(None, 1)


def test_sandbox_overhead_is_small() -> None:
    _normal_parse_still_works()  # the forkserver is warm from here on
    started = time.monotonic()
    for _ in range(5):
        _normal_parse_still_works()
    per_parse = (time.monotonic() - started) / 5
    print(f"sandboxed parse of a small text file: {per_parse * 1000:.0f} ms")
    assert per_parse < 2.0


KILLED_MID_PARSE = """
import sys
from pathlib import Path
from pitchcraft.ingestion.sandbox import TEST_HANG, parse_sandboxed
print("parsing", flush=True)
parse_sandboxed(Path(sys.argv[1]), TEST_HANG, ocr=False, soffice=None, timeout_s=600,
                memory_mb=256)
"""


def _process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every live process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[3]))
    return table


def _descendants(root: int) -> set[int]:
    table = _process_table()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def test_a_parse_in_flight_ends_with_the_killed_server(tmp_path: Path) -> None:
    """kill -9 of the process that asked for a parse (the server) also ends the parse
    child, although it runs in a session of its own (out of reach of a group kill)."""
    import subprocess

    server = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_PARSE, str(CORPUS / "text/fake-text.txt")],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == b"parsing\n"
        parse_child = None
        deadline = time.monotonic() + 60
        while parse_child is None and time.monotonic() < deadline:
            table = _process_table()
            leaders = [p for p in _descendants(server.pid) if table.get(p, (0, 0))[1] == p]
            parse_child = leaders[0] if leaders else None
            time.sleep(0.05)
        assert parse_child is not None, "no parse child in a session of its own appeared"
        started = _descendants(server.pid)  # the forkserver, the resource tracker, the child
        os.killpg(server.pid, signal.SIGKILL)  # the server's whole group, as kill -9 of a
        server.wait(timeout=10)  # container or a systemd unit would do
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(parse_child)
        assert [p for p in started if _alive(p)] == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
