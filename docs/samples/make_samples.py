"""Writes the sample library bundled with the app (src/pitchcraft/documents/samples/): a
brochure and a datasheet (PDF), a launch deck (PPTX) and a price list (XLSX) of Beacon, a
made-up analytics product of a made-up company. The texts were written for this project and
are dedicated to the public domain (CC0 1.0), as LICENSES.md there says.

Run from the repository root: .venv/bin/python docs/samples/make_samples.py
"""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pptx
import pymupdf
from pptx.util import Pt

OUT = Path(__file__).resolve().parents[2] / "src" / "pitchcraft" / "documents" / "samples"

CSS = "body{font-family:sans-serif;font-size:11pt;line-height:1.4} h1{font-size:20pt} h2{font-size:14pt}"

BROCHURE = [
    """<h1>Beacon by Tidewater Analytics</h1>
<p><b>Every customer number your team needs, on one screen.</b></p>
<p>Beacon connects to more than 40 data sources &mdash; Shopify, Stripe, HubSpot, Salesforce,
Google Analytics 4 and your own PostgreSQL or BigQuery warehouse &mdash; and turns them into
dashboards that refresh every 5 minutes.</p>
<h2>Why teams choose Beacon</h2>
<ul>
<li>Reporting time cut by 62% on average, measured across 120 customer teams in 2024.</li>
<li>Set up in one afternoon: most teams connect their first source in under 15 minutes.</li>
<li>Plain-language questions: ask &ldquo;which campaign brought our best customers?&rdquo; and
get a chart.</li>
</ul>""",
    """<h2>Built for trust</h2>
<p>Beacon is SOC 2 Type II certified and GDPR compliant. Customer data for European accounts
stays in our Frankfurt data centre (EU data residency). Every dashboard keeps a full history
of changes.</p>
<h2>Customers</h2>
<p>More than 1,800 companies in 31 countries use Beacon, from two-person online shops to
retail chains with 400 stores.</p>
<p><i>&ldquo;We stopped arguing about whose spreadsheet was right.&rdquo;</i>
&mdash; Mara Lind, Head of Growth, Harbor Outfitters</p>
<p>Start a 14-day free trial at beacon.example &mdash; no credit card required.</p>""",
]

DATASHEET = """<h1>Beacon &mdash; technical datasheet</h1>
<h2>Service levels</h2>
<ul>
<li>Uptime: 99.95% monthly uptime SLA on the Growth and Business plans.</li>
<li>Dashboard refresh: every 5 minutes; live streams for Shopify and Stripe.</li>
<li>Support: first answer within 4 business hours (Business: 1 hour, around the clock).</li>
</ul>
<h2>Capacity</h2>
<ul>
<li>Events per month: 5 million (Starter), 50 million (Growth), 500 million (Business).</li>
<li>Data retention: 25 months of history on every plan.</li>
<li>API: REST and GraphQL, rate limit 1,000 requests per minute per workspace.</li>
</ul>
<h2>Security</h2>
<ul>
<li>Single sign-on with SAML 2.0 and OpenID Connect (Growth and Business).</li>
<li>Encryption: TLS 1.3 in transit, AES-256 at rest.</li>
<li>Certifications: SOC 2 Type II, ISO/IEC 27001:2022.</li>
</ul>"""

SLIDES = [
    ("Beacon 3.0", ["Launch briefing, March 2025", "Tidewater Analytics"]),
    (
        "What is new in 3.0",
        [
            "AI summaries: a weekly digest of what changed and why",
            "Forecasts for revenue and churn, 90 days ahead",
            "Twelve new connectors, including TikTok Ads and Klaviyo",
        ],
    ),
    (
        "Customer story: Harbor Outfitters",
        [
            "Outdoor retailer, 38 stores and an online shop",
            "Repeat purchases up 18% in two quarters",
            "Weekly reporting went from 6 hours to 45 minutes",
        ],
    ),
    (
        "Messaging do's and don'ts",
        [
            "Say 'more than 40 data sources', not 'every data source'",
            "Quote the 99.95% uptime SLA only for Growth and Business",
            "Always name the 14-day free trial, no credit card required",
        ],
    ),
]

PLANS = [
    ("Starter", 29, 3, 5_000_000, "Email"),
    ("Growth", 99, 10, 50_000_000, "Email and chat"),
    ("Business", 499, 50, 500_000_000, "24/7, 1-hour response"),
]


def pdf(path: Path, pages: list[str], title: str) -> None:
    doc = pymupdf.open()
    for html in pages:
        page = doc.new_page(width=595, height=842)
        page.insert_htmlbox(pymupdf.Rect(56, 56, 539, 786), html, css=CSS)
    doc.set_metadata({"title": title, "author": "Tidewater Analytics (fictional)"})
    doc.save(path, garbage=4, deflate=True)


def deck(path: Path) -> None:
    prs = pptx.Presentation()
    for title, bullets in SLIDES:
        slide = prs.slides.add_slide(prs.slide_layouts[1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for line in bullets[1:]:
            body.add_paragraph().text = line
        for p in body.paragraphs:
            for r in p.runs:
                r.font.size = Pt(24)
    prs.save(path)


def prices(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Plans"
    ws.append(["Plan", "Price per month", "Seats included", "Events per month", "Support"])
    for row in PLANS:
        ws.append(list(row))
    for r in range(2, len(PLANS) + 2):
        ws.cell(r, 2).number_format = '"$"#,##0'
        ws.cell(r, 4).number_format = "#,##0"
    terms = wb.create_sheet("Terms")
    terms.append(["Term", "Value"])
    terms.append(["Annual billing discount", 0.2])
    terms.append(["Free trial (days)", 14])
    terms.append(["Extra seat, per month", 12])
    terms.cell(2, 2).number_format = "0%"
    terms.cell(4, 2).number_format = '"$"#,##0'
    wb.save(path)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pdf(OUT / "beacon-brochure.pdf", BROCHURE, "Beacon brochure")
    pdf(OUT / "beacon-datasheet.pdf", [DATASHEET], "Beacon datasheet")
    deck(OUT / "beacon-3.0-launch.pptx")
    prices(OUT / "beacon-prices.xlsx")


if __name__ == "__main__":
    main()
