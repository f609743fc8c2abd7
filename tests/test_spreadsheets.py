"""Spreadsheets: .xlsx and .csv/.tsv read row by row, with their header, numbers as the sheet
shows them, chunked by whole rows and cited as `pricing.xlsx, sheet "Plans", rows 2-5`.

Files: tests/data/spreadsheets (provenance and licences in its LICENSES.md): pricing.xlsx
(made by make_pricing.py, for exact values), and real files from agate-excel's and csvkit's
test data (MIT). Hostile workbooks are built here, in the shapes attackers use.
"""

from __future__ import annotations

import codecs
import io
import re
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from pitchcraft.ingestion.archive import ZIP_BOMB
from pitchcraft.ingestion.chunking import chunk
from pitchcraft.ingestion.detect import detect
from pitchcraft.ingestion.parsers import parse_file
from pitchcraft.ingestion.parsers.spreadsheet import MAX_COLUMNS, table_rows
from pitchcraft.ingestion.sandbox import parse_sandboxed
from pitchcraft.ingestion.types import ParsedDocument, ParseFailure
from pitchcraft.refine.context import Passage
from pitchcraft.vectors.base import Hit
from tests.conftest import app_on, auth, register
from tests.docs_helpers import upload, wait_final
from tests.test_refine import process, wait_job
from tests.test_source_viewer import SESSION

pytestmark = pytest.mark.timeout(600)

DATA = Path(__file__).parent / "data" / "spreadsheets"
PRICING = DATA / "pricing.xlsx"


def parse(path: Path, name: str | None = None, **kw: int) -> ParsedDocument:
    kind = detect(path, name or path.name)
    return parse_sandboxed(path, kind, ocr=False, soffice=None, timeout_s=120, memory_mb=2048, **kw)


# ---------------------------------------------------------------- exact values


def test_pricing_rows_carry_their_header_and_formatted_numbers() -> None:
    doc = parse_file(PRICING, detect(PRICING, PRICING.name), ocr=False, soffice=None)
    by_row = {(b.section, b.rows): b.text for b in doc.blocks}
    assert by_row[("Plans", (3, 3))] == (
        "Plan: Pro; Price: $49.00; Discount: 15.0%; Seats: 25; Launched: 2023-04-03"
    )
    assert by_row[("Plans", (4, 4))] == (
        "Plan: Business; Price: $1,299.50; Discount: 12.5%; Seats: 1,500; Launched: 2024-02-29"
    )
    assert by_row[("Metrics", (2, 2))] == (
        "Quarter: Q1 2024; Revenue: € 1,234,567.89; Churn: 2.10%; NPS: 41"
    )
    assert by_row[("Metrics", (3, 3))].endswith("Churn: -0.40%; NPS: 47")
    # The empty sheet is no section; the header row is no passage of its own.
    assert {b.section for b in doc.blocks} == {"Plans", "Metrics"}
    assert all(b.rows and b.rows[0] >= 2 for b in doc.blocks)
    assert doc.pages is None


def test_chunks_are_runs_of_whole_rows_of_one_sheet() -> None:
    doc = parse_file(PRICING, "xlsx", ocr=False, soffice=None)
    chunks = chunk(doc, size=200, overlap=50)
    rows_text = {b.rows: b.text for b in doc.blocks if b.section == "Plans"}
    plans = [c for c in chunks if c.section == "Plans"]
    assert len(plans) > 1  # 200 characters hold fewer than the four rows
    covered: list[int] = []
    for c in plans:
        assert c.rows is not None and c.page is None
        first, last = c.rows
        # Exactly the rows it names, each whole, in order; no row in two chunks.
        assert c.text == "\n".join(rows_text[(r, r)] for r in range(first, last + 1))
        covered += range(first, last + 1)
    assert covered == [2, 3, 4, 5]
    assert [c.rows for c in chunks if c.section == "Metrics"] == [(2, 3)]


def test_source_labels_name_the_sheet_and_rows() -> None:
    hit = Hit("d1", "pricing.xlsx", None, "Plans", 0, "Plan: Pro", 1.0, rows=(2, 31))
    passage = Passage.of(hit, n=1)
    assert passage.label == 'pricing.xlsx, sheet "Plans", rows 2\u201331'
    source = passage.source()
    assert source["sheet"] == "Plans" and source["rows"] == [2, 31] and source["page"] is None
    csv_hit = Hit("d2", "leads.csv", None, None, 0, "Name: Ada", 1.0, rows=(7, 7))
    assert Passage.of(csv_hit).label == "leads.csv, row 7"
    # Other documents keep their labels.
    deck = Hit("d3", "deck.pptx", 4, "Pricing", 0, "x", 1.0)
    assert Passage.of(deck).label == "deck.pptx, slide 4"


def test_table_rows_for_the_source_viewer() -> None:
    header, rows = table_rows(PRICING, "xlsx", "Plans", 3, 4)
    assert header == ["Plan", "Price", "Discount", "Seats", "Launched"]
    assert rows == [
        (3, ["Pro", "$49.00", "15.0%", "25", "2023-04-03"]),
        (4, ["Business", "$1,299.50", "12.5%", "1,500", "2024-02-29"]),
    ]


# ---------------------------------------------------------------- real files


def test_real_workbook_with_many_sheets() -> None:
    """covid_19-iss.xlsx (agate-excel test data, Istituto Superiore di Sanità figures): eleven
    sheets, one declaring a wrong size ("A1:A1"), dates written as text."""
    path = DATA / "covid_19-iss.xlsx"
    doc = parse(path)
    sections = {b.section for b in doc.blocks}
    assert {"casi_prelievo_diagnosi", "casi_regioni", "decessi"} <= sections
    regioni = [b for b in doc.blocks if b.section == "casi_regioni"]
    assert len(regioni) > 20
    assert regioni[0].rows == (2, 2) and regioni[0].text.startswith("iss_date: ")
    chunks = chunk(doc)
    seen: dict[str | None, int] = {}
    for c in chunks:
        assert c.rows is not None
        # Rows go forward; a row is split only when it alone is longer than a chunk.
        assert c.rows[0] >= seen.get(c.section, 0)
        seen[c.section] = c.rows[1] + (0 if c.rows[0] == c.rows[1] else 1)


def test_real_csv_files() -> None:
    """ks_1033_data.csv and test_latin1.csv: csvkit's test data."""
    doc = parse(DATA / "ks_1033_data.csv")
    assert len(doc.blocks) == 1575
    first = doc.blocks[0]
    assert first.rows == (2, 2) and first.section is None
    assert "item_name: RIFLE,5.56 MILLIMETER" in first.text  # a quoted comma stays in its cell
    latin = parse(DATA / "test_latin1.csv")
    assert latin.blocks[-1].text == "a: 4; b: 5; c: \u00a9"


def test_sheets_with_dates_and_booleans() -> None:
    doc = parse(DATA / "test_sheets.xlsx")
    assert doc.blocks[0].text == (
        "number: 1; text: a; boolean: TRUE; date: 2015-11-04; datetime: 2015-11-04 12:22"
    )


# ---------------------------------------------------------------- bad input


def test_csv_with_bom_and_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    path = tmp_path / "preise.csv"
    text = "Produkt;Preis;Rabatt\r\nHeron Pro;1.299,50 €;12,5 %\r\nHeron Lite;49,00 €;0 %\r\n"
    path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    doc = parse(path)
    assert [b.text for b in doc.blocks] == [
        "Produkt: Heron Pro; Preis: 1.299,50 €; Rabatt: 12,5 %",
        "Produkt: Heron Lite; Preis: 49,00 €; Rabatt: 0 %",
    ]


def test_csv_mixing_utf8_and_cp1252_lines(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        "city,note\nKöln,from the UTF-8 export\n".encode()
        + "Düsseldorf,from the old system \u2013 cp1252\n".encode("cp1252")
    )
    texts = [b.text for b in parse(path).blocks]
    assert texts == [
        "city: Köln; note: from the UTF-8 export",
        "city: Düsseldorf; note: from the old system \u2013 cp1252",
    ]


def test_tsv_and_xlsx_renamed_to_csv(tmp_path: Path) -> None:
    tsv = tmp_path / "plans.tsv"
    tsv.write_text("Plan\tPrice\nPro\t49 USD\n")
    assert [b.text for b in parse(tsv).blocks] == ["Plan: Pro; Price: 49 USD"]
    renamed = tmp_path / "pricing.csv"
    renamed.write_bytes(PRICING.read_bytes())
    assert detect(renamed, renamed.name) == "xlsx"
    assert any("Plan: Pro; Price: $49.00" in b.text for b in parse(renamed).blocks)


def test_empty_workbooks(tmp_path: Path) -> None:
    with pytest.raises(ParseFailure, match="empty workbook"):
        parse(DATA / "test_empty.xlsx")  # agate-excel's
    fresh = tmp_path / "fresh.xlsx"
    openpyxl.Workbook().save(fresh)
    with pytest.raises(ParseFailure, match="empty workbook"):
        parse(fresh)


def test_formulas_without_saved_results(tmp_path: Path) -> None:
    # openpyxl writes formulas without computing them: no cached values, as some exporters do.
    path = tmp_path / "totals.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["=1+1", "=SUM(A1:A1)"])
    ws.append(["=A1*2", "=B1*2"])
    wb.save(path)
    with pytest.raises(ParseFailure, match="formulas have no saved results"):
        parse(path)
    # Beside a sheet with values, such a sheet is skipped and named in the notes.
    ws2 = wb.create_sheet("Values")
    ws2.append(["Plan", "Price"])
    ws2.append(["Pro", 49])
    wb.save(path)
    doc = parse(path)
    assert [b.text for b in doc.blocks] == ["Plan: Pro; Price: 49"]
    assert any('"Sheet"' in n and "no saved results" in n for n in doc.notes)


def _ole_with_stream(name: str) -> bytes:
    """An OLE2 compound file whose directory names `name` (an encrypted Office file keeps
    its package in an `EncryptedPackage` stream)."""
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * (512 - 8)
    encoded = name.encode("utf-16-le") + b"\0\0"
    entry = encoded.ljust(64, b"\0") + struct.pack("<H", len(encoded))
    return header + entry.ljust(128, b"\0") + b"\0" * 384


def test_password_protected_workbook(tmp_path: Path) -> None:
    path = tmp_path / "locked.xlsx"
    path.write_bytes(_ole_with_stream("EncryptedPackage"))
    with pytest.raises(ParseFailure, match="password-protected"):
        detect(path, path.name)


def _raw_xlsx(
    path: Path, sheet_rows: Iterator[str], *, extra: dict[str, bytes] | None = None
) -> None:
    """A minimal .xlsx whose one sheet's XML is streamed from `sheet_rows`."""
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats'
            '-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
            'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml'
            '.worksheet+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        z.writestr(
            "xl/workbook.xml",
            f'<?xml version="1.0"?><workbook xmlns="{ns}" xmlns:r="{rel}"><sheets>'
            '<sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>",
        )
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(f'<?xml version="1.0"?><worksheet xmlns="{ns}"><sheetData>'.encode())
            for row in sheet_rows:
                fh.write(row.encode())
            fh.write(b"</sheetData></worksheet>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)


def test_a_million_rows_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "huge.xlsx"
    rows = (
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>lead {n}</t></is></c>'
        f'<c r="B{n}"><v>{n}</v></c></row>'
        for n in range(1, 1_000_001)
    )
    _raw_xlsx(path, rows)
    doc = parse(path, max_rows=5_000)
    assert len(doc.blocks) == 5_000
    assert doc.blocks[-1].text == "lead 5000; 5000" and doc.blocks[-1].rows == (5000, 5000)
    assert any("only the first 5,000 rows" in n for n in doc.notes)


def test_sixteen_thousand_columns_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "wide.xlsx"

    def cells(r: int) -> str:
        return "".join(f'<c r="{_col(i)}{r}"><v>{i}</v></c>' for i in range(16_384))

    _raw_xlsx(path, iter([f'<row r="1">{cells(1)}</row>', f'<row r="2">{cells(2)}</row>']))
    doc = parse(path)
    assert len(doc.blocks) == 2
    assert doc.blocks[0].text.split("; ")[-1] == str(MAX_COLUMNS - 1)
    assert any(f"first {MAX_COLUMNS} columns" in n for n in doc.notes)


def _col(i: int) -> str:
    name = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        name = chr(65 + rest) + name
    return name


def test_macros_and_external_links_are_ignored_and_said(tmp_path: Path) -> None:
    path = tmp_path / "campaign.xlsm"
    rows = iter(['<row r="1"><c r="A1" t="inlineStr"><is><t>Campaign results</t></is></c></row>'])
    _raw_xlsx(
        path,
        rows,
        extra={
            "xl/vbaProject.bin": b'Attribute VB_Name = "Module1"\nSub AutoOpen()\nEnd Sub',
            "xl/externalLinks/externalLink1.xml": b'<?xml version="1.0"?><externalLink/>',
        },
    )
    doc = parse(path)
    assert [b.text for b in doc.blocks] == ["Campaign results"]
    assert any("macros were ignored" in n for n in doc.notes)
    assert any("links to other workbooks were not followed" in n for n in doc.notes)


def test_zip_bomb_workbook(tmp_path: Path) -> None:
    path = tmp_path / "bomb.xlsx"
    zeros = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            for _ in range(64):
                fh.write(zeros)
    assert detect(path, path.name) == "xlsx"
    with pytest.raises(ParseFailure) as exc:
        parse(path)
    assert str(exc.value) == ZIP_BOMB


# ---------------------------------------------------------------- the whole path


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_upload_index_search_and_cite(database: str, tmp_path: Path) -> None:
    bad = io.BytesIO()
    openpyxl.Workbook().save(bad)
    with app_on(database, tmp_path / "data") as c:
        token = register(c)
        entries = upload(
            c,
            token,
            ("pricing.xlsx", PRICING.read_bytes()),
            ("blank.xlsx", bad.getvalue()),
            ("population.csv", (DATA / "acs2012_5yr_population.csv").read_bytes()),
        )
        final = {e["filename"]: wait_final(c, token, e["id"]) for e in entries}
        assert final["pricing.xlsx"]["status"] == "indexed", final
        assert final["population.csv"]["status"] == "indexed", final
        assert final["blank.xlsx"]["status"] == "failed"
        assert "empty workbook" in final["blank.xlsx"]["error"]
        assert final["pricing.xlsx"]["file_type"] == "xlsx"

        r = c.post(
            "/api/v1/search",
            headers=auth(token),
            json={"query": "Business plan price discount seats"},
        )
        assert r.status_code == 200, r.text
        top = r.json()["results"][0]
        assert top["filename"] == "pricing.xlsx" and top["page"] is None
        assert top["sheet"] == "Plans" and top["rows"] == [2, 5]
        assert "Price: $1,299.50" in top["snippet"]

        text = "Business costs $1,299.50 a month."
        job = wait_job(c, token, process(c, token, marketing_text=text))
        assert job["status"] == "succeeded", job
        plans = [s for s in job["sources"] if s["filename"] == "pricing.xlsx"]
        assert plans and plans[0]["label"] == 'pricing.xlsx, sheet "Plans", rows 2\u20135'
        assert plans[0]["sheet"] == "Plans" and plans[0]["rows"] == [2, 5]

        # The source viewer shows those rows as a table, under the sheet's header.
        c.cookies.set(SESSION, token)
        page = c.get(f"/results/{job['job_id']}/sources/{plans[0]['n']}")
        c.cookies.clear()
        assert page.status_code == 200, page.text
        table = page.text.split('data-testid="rows-table"', 1)[1].split("</table>", 1)[0]
        assert re.findall(r'<tr data-row="(\d+)">', table) == ["2", "3", "4", "5"]
        assert '<th scope="col">Price</th>' in table and "<td>$1,299.50</td>" in table
