"""Writes pricing.xlsx, the workbook the spreadsheet tests assert exact values on.

Run from the repository root: python tests/data/spreadsheets/make_pricing.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl


def build(path: Path) -> None:
    wb = openpyxl.Workbook()
    plans = wb.active
    plans.title = "Plans"
    plans.append(["Plan", "Price", "Discount", "Seats", "Launched"])
    rows = [
        ("Starter", 19, 0, 5, dt.date(2023, 1, 16)),
        ("Pro", 49, 0.15, 25, dt.date(2023, 4, 3)),
        ("Business", 1299.5, 0.125, 1500, dt.date(2024, 2, 29)),
        ("Enterprise", 24990, 0.3, 125000, dt.date(2024, 11, 1)),
    ]
    for row in rows:
        plans.append(list(row))
    for r in range(2, len(rows) + 2):
        plans.cell(r, 2).number_format = '"$"#,##0.00'
        plans.cell(r, 3).number_format = "0.0%"
        plans.cell(r, 4).number_format = "#,##0"
        plans.cell(r, 5).number_format = "yyyy-mm-dd"
    metrics = wb.create_sheet("Metrics")
    metrics.append(["Quarter", "Revenue", "Churn", "NPS"])
    metrics.append(["Q1 2024", 1234567.891, 0.021, 41])
    metrics.append(["Q2 2024", 2345678, -0.004, 47])
    for r in (2, 3):
        metrics.cell(r, 2).number_format = "[$€-407] #,##0.00"
        metrics.cell(r, 3).number_format = "0.00%"
    wb.create_sheet("Empty")
    wb.save(path)


if __name__ == "__main__":
    build(Path(__file__).with_name("pricing.xlsx"))
