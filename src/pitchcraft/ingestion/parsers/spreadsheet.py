"""Spreadsheets: .xlsx/.xlsm with openpyxl, .csv/.tsv with the csv module.

Each sheet is a section; each row becomes one block that carries its header, so a passage
reads "Plan: Pro; Price: 49 USD" rather than a bare "Pro | 49", and `rows` holds the row
number as the sheet shows it (header in row 1, data from row 2). Chunking packs whole rows.

An .xlsx is read in read-only (streaming) mode with the values its formulas had when it was
last saved (formulas are never evaluated, macros never run, links to other workbooks never
followed), numbers formatted as the sheet shows them. Hostile workbooks are capped: at most
`max_rows` rows in all, MAX_COLUMNS columns and MAX_CELL_CHARS characters a cell; a cap that
was reached is said in the document's notes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

from pitchcraft.ingestion.archive import check_ooxml_zip
from pitchcraft.ingestion.cleanup import clean_line
from pitchcraft.ingestion.parsers import DEFAULT_MAX_ROWS
from pitchcraft.ingestion.parsers.numfmt import format_value
from pitchcraft.ingestion.parsers.text import bom_encoding, decode, utf16_without_bom
from pitchcraft.ingestion.types import Block, ParsedDocument, ParseFailure

MAX_COLUMNS = 256
MAX_CELL_CHARS = 10_000
_CSV_MAX_BYTES = 200 * 1024 * 1024
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = ",;\t|"


@dataclass
class Table:
    """One sheet's non-empty rows as (row number, cells as shown)."""

    name: str | None
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass
class _Caps:
    max_rows: int
    rows_left: int = 0
    rows_cut: bool = False
    columns_cut: bool = False
    cells_cut: bool = False

    def __post_init__(self) -> None:
        self.rows_left = self.max_rows

    def cell(self, text: str) -> str:
        text = clean_line(" ".join(text.split()))
        if len(text) > MAX_CELL_CHARS:
            self.cells_cut = True
            return text[: MAX_CELL_CHARS - 1] + "…"
        return text

    def notes(self) -> list[str]:
        notes = []
        if self.rows_cut:
            notes.append(f"only the first {self.max_rows:,} rows were read (SPREADSHEET_MAX_ROWS)")
        if self.columns_cut:
            notes.append(f"only the first {MAX_COLUMNS} columns of each sheet were read")
        if self.cells_cut:
            notes.append(f"cells longer than {MAX_CELL_CHARS:,} characters were shortened")
        return notes


# ---------------------------------------------------------------- rows as passages


def column_name(index: int) -> str:
    """The sheet's letter for a 0-based column index: 0 → A, 26 → AA."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def header_of(rows: Sequence[tuple[int, list[str]]], raw_kinds: Sequence[list[bool]]) -> bool:
    """Whether the first row is a header: all its filled cells are text (not numbers or
    dates), and there are at least two of them or the next row has a number under it."""
    if len(rows) < 2:
        return False
    first, kinds = rows[0][1], raw_kinds[0]
    filled = [i for i, c in enumerate(first) if c]
    if not filled or any(not kinds[i] for i in filled):
        return False
    if len(filled) >= 2:
        return True
    nxt = raw_kinds[1]
    i = filled[0]
    return i < len(nxt) and not nxt[i] and bool(rows[1][1][i])


def row_text(cells: Sequence[str], header: Sequence[str] | None) -> str:
    if header is None:
        return "; ".join(c for c in cells if c)
    parts = []
    for i, cell in enumerate(cells):
        if not cell:
            continue
        name = header[i] if i < len(header) and header[i] else f"Column {column_name(i)}"
        parts.append(f"{name}: {cell}")
    return "; ".join(parts)


def blocks_of(tables: Iterable[Table], kinds: dict[int, list[list[bool]]]) -> list[Block]:
    blocks: list[Block] = []
    for t, table in enumerate(tables):
        rows = table.rows
        header: list[str] | None = None
        if header_of(rows[:2], kinds.get(t, [])[:2]):
            header, rows = rows[0][1], rows[1:]
        for number, cells in rows:
            text = row_text(cells, header)
            if text:
                blocks.append(Block(text=text, section=table.name, rows=(number, number)))
    return blocks


# ---------------------------------------------------------------- .xlsx


def parse_xlsx(path: Path, *, max_rows: int = DEFAULT_MAX_ROWS) -> ParsedDocument:
    check_ooxml_zip(path, "Excel")
    notes = _package_notes(path)
    caps = _Caps(max_rows)
    tables, kinds, empty_sheets = read_xlsx(path, caps)
    blocks = blocks_of(tables, kinds)
    if empty_sheets and _only_formulas(path, empty_sheets):
        if not blocks:
            raise ParseFailure(
                "the workbook's formulas have no saved results (it was written by a program "
                "that does not calculate them): open it in Excel or LibreOffice and save it again"
            )
        listed = ", ".join(f'"{n}"' for n in empty_sheets[:5])
        notes.append(f"sheets with formulas but no saved results were skipped: {listed}")
    if not blocks:
        raise ParseFailure("empty workbook: no cell has a value")
    return ParsedDocument(blocks=blocks, pages=None, notes=notes + caps.notes())


def _package_notes(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    notes = []
    if "xl/vbaProject.bin" in names:
        notes.append("the workbook's macros were ignored (never run)")
    if any(n.startswith("xl/externalLinks/") for n in names):
        notes.append("links to other workbooks were not followed; their last saved values are used")
    return notes


@contextlib.contextmanager
def _workbook(path: Path, *, data_only: bool) -> Iterator[Any]:
    """The workbook opened read-only (streaming). Opened from a file object: openpyxl
    refuses a path whose extension it does not know, and an .xlsx renamed .csv is fine."""
    import openpyxl  # type: ignore[import-untyped]  # imported here: only the parsing child needs it

    with path.open("rb") as fh:
        try:
            wb = openpyxl.load_workbook(
                fh, read_only=True, data_only=data_only, keep_links=False, keep_vba=False
            )
        except Exception as exc:
            raise ParseFailure("damaged or unreadable Excel workbook") from exc
        try:
            yield wb
        finally:
            wb.close()


def read_xlsx(
    path: Path, caps: _Caps, *, sheet: str | None = None, stop_after_row: int | None = None
) -> tuple[list[Table], dict[int, list[list[bool]]], list[str]]:
    """The workbook's sheets as tables (only `sheet` when given), with which cells held text
    (for the header guess), and the names of sheets without a value."""
    tables: list[Table] = []
    kinds: dict[int, list[list[bool]]] = {}
    empty: list[str] = []
    try:
        with _workbook(path, data_only=True) as wb:
            _read_sheets(wb, caps, sheet, stop_after_row, tables, kinds, empty)
    except ParseFailure:
        raise
    except Exception as exc:
        raise ParseFailure("damaged or unreadable Excel workbook") from exc
    return tables, kinds, empty


def _read_sheets(
    wb: Any,
    caps: _Caps,
    sheet: str | None,
    stop_after_row: int | None,
    tables: list[Table],
    kinds: dict[int, list[list[bool]]],
    empty: list[str],
) -> None:
    for ws in wb.worksheets:
        if sheet is not None and ws.title != sheet:
            continue
        if caps.rows_left <= 0:
            caps.rows_cut = True
            break
        table = Table(name=ws.title)
        table_kinds: list[list[bool]] = []
        try:
            declared = int(ws.max_column or 0)
        except (TypeError, ValueError):
            declared = 0
        if declared > MAX_COLUMNS:
            caps.columns_cut = True
        # The declared size may be wrong (some writers leave "A1:A1"): read what is there.
        ws.reset_dimensions()
        for row in ws.iter_rows(max_col=MAX_COLUMNS + 1):
            if stop_after_row is not None and _row_number(row) > stop_after_row:
                break
            cells, is_text, number = _xlsx_cells(row, caps)
            if number is None or not any(cells):
                continue
            if caps.rows_left <= 0:
                caps.rows_cut = True
                break
            caps.rows_left -= 1
            table.rows.append((number, cells))
            table_kinds.append(is_text)
        if table.rows:
            kinds[len(tables)] = table_kinds
            tables.append(table)
        else:
            empty.append(ws.title)


def _row_number(row: Sequence[object]) -> int:
    for cell in row:
        number = getattr(cell, "row", None)
        if number:
            return int(number)
    return 0


def _xlsx_cells(row: Sequence[object], caps: _Caps) -> tuple[list[str], list[bool], int | None]:
    cells: list[str] = []
    is_text: list[bool] = []
    number: int | None = None
    for i, cell in enumerate(row):
        if number is None:
            number = getattr(cell, "row", None)
        value = getattr(cell, "value", None)
        if i >= MAX_COLUMNS:
            if value is not None and str(value).strip():
                caps.columns_cut = True
            break
        text = caps.cell(format_value(value, getattr(cell, "number_format", None)))
        cells.append(text)
        is_text.append(isinstance(value, str))
    while cells and not cells[-1]:
        cells.pop()
        is_text.pop()
    return cells, is_text, number


def _only_formulas(path: Path, sheets: list[str]) -> bool:
    """Whether the sheets that read empty hold formulas (whose results were never saved)."""
    try:
        with _workbook(path, data_only=False) as wb:
            for ws in wb.worksheets:
                if ws.title not in sheets:
                    continue
                ws.reset_dimensions()
                for n, row in enumerate(ws.iter_rows(max_col=MAX_COLUMNS, values_only=True)):
                    if n > 1000:
                        break
                    if any(isinstance(v, str) and v.startswith("=") for v in row):
                        return True
    except Exception:
        return False
    return False


# ---------------------------------------------------------------- .csv / .tsv


def parse_csv(path: Path, *, max_rows: int = DEFAULT_MAX_ROWS) -> ParsedDocument:
    caps = _Caps(max_rows)
    table, kinds = read_csv(path, caps)
    blocks = blocks_of([table], {0: kinds})
    if not blocks:
        raise ParseFailure("empty document")
    return ParsedDocument(blocks=blocks, pages=None, notes=caps.notes())


def read_csv(
    path: Path, caps: _Caps, *, stop_after_row: int | None = None
) -> tuple[Table, list[list[bool]]]:
    if path.stat().st_size > _CSV_MAX_BYTES:
        raise ParseFailure(f"CSV file too large (over {_CSV_MAX_BYTES // (1024 * 1024)} MB)")
    text = decode_mixed(path.read_bytes()).replace("\x00", "")
    delimiter = sniff_delimiter(text[:_SNIFF_BYTES])
    table = Table(name=None)
    kinds: list[list[bool]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for number, record in enumerate(reader, start=1):
            if stop_after_row is not None and number > stop_after_row:
                break
            cells = [caps.cell(v) for v in record[:MAX_COLUMNS]]
            if len(record) > MAX_COLUMNS and any(v.strip() for v in record[MAX_COLUMNS:]):
                caps.columns_cut = True
            while cells and not cells[-1]:
                cells.pop()
            if not cells:
                continue
            if caps.rows_left <= 0:
                caps.rows_cut = True
                break
            caps.rows_left -= 1
            table.rows.append((number, cells))
            kinds.append([not _looks_numeric(c) for c in cells])
    except csv.Error as exc:
        raise ParseFailure(f"damaged CSV file ({exc})") from exc
    return table, kinds


def _looks_numeric(cell: str) -> bool:
    stripped = cell.strip().strip("%$€£¥").replace(",", "").replace(".", "").replace(" ", "")
    return stripped.lstrip("+-").isdigit()


def sniff_delimiter(sample: str) -> str:
    """The delimiter that splits the sample's lines into the same number of fields most
    consistently (csv.Sniffer's guess first, checked the same way)."""
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may cut the last line short
    candidates: list[str] = []
    with contextlib.suppress(csv.Error):
        candidates.append(csv.Sniffer().sniff(sample[:8192], delimiters=_DELIMITERS).delimiter)
    candidates += [d for d in _DELIMITERS if d not in candidates]
    best, best_score = ",", (0.0, 0)
    for delimiter in candidates:
        counts = [len(r) for r in csv.reader(lines, delimiter=delimiter)]
        if not counts:
            continue
        common = max(set(counts), key=counts.count)
        if common < 2:
            continue
        score = (counts.count(common) / len(counts), common)
        if score[0] > best_score[0] + 0.05 or (
            abs(score[0] - best_score[0]) <= 0.05 and best_score[1] == 0
        ):
            best, best_score = delimiter, score
    return best


def decode_mixed(data: bytes) -> str:
    """Text of a file that may mix encodings line by line (rows pasted together from
    several exports): UTF-8 lines stay UTF-8, the others are read in the encoding
    charset-normalizer finds for them (cp1252 when it finds none)."""
    if bom_encoding(data) is not None or utf16_without_bom(data) is not None:
        return decode(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = data.split(b"\n")
    foreign: list[bytes] = []
    for line in lines:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            foreign.append(line)
    sample = b"\n".join(foreign)[:200_000]
    best = from_bytes(sample).best()
    encoding = "cp1252"  # the usual legacy encoding; a guess from a few bytes is no better
    if best is not None and sum(c > 127 for c in sample) >= 32:
        encoding = best.encoding
    out: list[str] = []
    for line in lines:
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                out.append(line.decode(encoding))
            except (UnicodeDecodeError, LookupError):
                out.append(line.decode("cp1252", errors="replace"))
    return "\n".join(out)


def table_rows(
    path: Path, kind: str, sheet: str | None, first: int, last: int
) -> tuple[list[str] | None, list[tuple[int, list[str]]]]:
    """Rows `first`..`last` of a sheet (the source viewer's table) and the sheet's header
    (None when it has none)."""
    caps = _Caps(max_rows=max(0, last) + 1)
    if kind == "xlsx":
        tables, kinds_by_table, _ = read_xlsx(path, caps, sheet=sheet, stop_after_row=last)
        table = tables[0] if tables else Table(name=sheet)
        kinds = kinds_by_table.get(0, [])
    else:
        table, kinds = read_csv(path, caps, stop_after_row=last)
    header: list[str] | None = None
    rows = table.rows
    if header_of(rows[:2], kinds[:2]):
        header = rows[0][1]
    picked = [(n, cells) for n, cells in rows if first <= n <= last]
    if header is not None:
        picked = [(n, c) for n, c in picked if n != rows[0][0]]
    return header, picked
