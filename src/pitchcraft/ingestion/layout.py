"""Reading order for boxes of text on a page (PDF text blocks, OCR paragraphs).

A recursive cut along empty strips of the page: a region whose boxes leave a vertical strip
free (a gutter) is read column by column; otherwise it is cut into horizontal bands at
empty horizontal strips, and consecutive bands that share a gutter are read as one
multi-column region. So a two-column page with a full-width title reads: title, left column
top to bottom, right column top to bottom, footer. A region where three or more thin bands
(a line or two high) have text on both sides of a gutter looks like a table and is read row
by row instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar


class HasBox(Protocol):
    @property
    def x0(self) -> float: ...
    @property
    def y0(self) -> float: ...
    @property
    def x1(self) -> float: ...
    @property
    def y1(self) -> float: ...


B = TypeVar("B", bound=HasBox)

# Thin bands with text on both sides of a gutter: from this many on, a table, not columns.
_TABLE_ROWS = 3
_THIN_ROW = 2.5  # line heights


def reading_order(boxes: Sequence[B], *, unit: float) -> list[B]:
    """The boxes in reading order; `unit` is a typical line height in the boxes' coordinates."""
    return _Orderer[B](unit).order(list(boxes))


class _Orderer(Generic[B]):
    def __init__(self, unit: float) -> None:
        self.min_gap = max(unit * 0.4, 1e-6)
        self.tol = unit * 0.15
        self.thin = unit * _THIN_ROW

    def order(self, boxes: list[B]) -> list[B]:
        if len(boxes) <= 1:
            return boxes
        rows = self.rows(boxes)
        columns = self.columns(boxes)
        if columns is not None and not self.looks_like_table(rows, columns):
            return self.by_columns(columns)
        if len(rows) == 1:
            return sorted(boxes, key=lambda b: (b.y0, b.x0))
        out: list[B] = []
        i = 0
        while i < len(rows):
            group = rows[i]
            merged = [rows[i]]
            columns = None
            for row in rows[i + 1 :]:
                candidate = self.columns(group + row)
                if candidate is None or self.looks_like_table([*merged, row], candidate):
                    break
                group, columns = group + row, candidate
                merged.append(row)
            if columns is not None:
                out.extend(self.by_columns(columns))
            else:
                out.extend(self.order_row(rows[i]))
            i += len(merged)
        return out

    def by_columns(self, columns: list[list[B]]) -> list[B]:
        return [b for col in columns for b in self.order(col)]

    def order_row(self, row: list[B]) -> list[B]:
        columns = self.columns(row)
        if columns is not None:
            return self.by_columns(columns)
        return sorted(row, key=lambda b: (b.y0, b.x0))

    def rows(self, boxes: list[B]) -> list[list[B]]:
        """Horizontal bands separated by empty horizontal strips, top to bottom."""
        ordered = sorted(boxes, key=lambda b: b.y0)
        rows: list[list[B]] = [[ordered[0]]]
        bottom = ordered[0].y1
        for b in ordered[1:]:
            if b.y0 >= bottom - self.tol:
                rows.append([b])
                bottom = b.y1
            else:
                rows[-1].append(b)
                bottom = max(bottom, b.y1)
        return rows

    def columns(self, boxes: list[B]) -> list[list[B]] | None:
        """Split at empty vertical strips wide enough to be a gutter; None if there is none."""
        ordered = sorted(boxes, key=lambda b: b.x0)
        parts: list[list[B]] = [[ordered[0]]]
        right = ordered[0].x1
        for b in ordered[1:]:
            if b.x0 - right >= self.min_gap:
                parts.append([b])
            else:
                parts[-1].append(b)
            right = max(right, b.x1)
        return parts if len(parts) > 1 else None

    def looks_like_table(self, rows: list[list[B]], columns: list[list[B]]) -> bool:
        """Several thin rows with boxes in more than one column: table rows, not columns."""
        where = {id(b): i for i, col in enumerate(columns) for b in col}
        thin_two_sided = 0
        for row in rows:
            height = max(b.y1 for b in row) - min(b.y0 for b in row)
            if height <= self.thin and len({where.get(id(b)) for b in row}) > 1:
                thin_two_sided += 1
        return thin_two_sided >= _TABLE_ROWS
