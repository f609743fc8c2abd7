"""Mojibake (text decoded with the wrong encoding before it reached us) is repaired when
text, Markdown and HTML files are parsed, on a real corpus file and a made-up page."""

from __future__ import annotations

from pathlib import Path

from pitchcraft.ingestion.cleanup import repair_mojibake
from pitchcraft.ingestion.parsers import html as html_parser
from pitchcraft.ingestion.parsers import text as text_parser
from tests.conftest import CORPUS

NORWICH = CORPUS / "text" / "norwich-city.txt"


def test_double_encoded_utf8_is_repaired_in_a_real_text_file() -> None:
    raw = NORWICH.read_bytes().decode("utf-8")
    assert "1997\u00e2\u0080\u00932004" in raw  # the file as it is: UTF-8 read as cp1252
    text = "\n".join(b.text for b in text_parser.parse(NORWICH).blocks)
    assert "1997\u20132004 Norwich City" in text
    assert "\u00e2" not in text


def test_mojibake_in_html_is_repaired_and_real_accents_stay(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    body = "<p>Caf\u00e9 \u2013 Stra\u00dfe</p>"
    page.write_bytes(
        f"<html><body>{body.encode('utf-8').decode('latin-1')}<p>K\u00f6ln</p></body></html>".encode()
    )
    blocks = [b.text for b in html_parser.parse(page).blocks]
    assert blocks == ["Caf\u00e9 \u2013 Stra\u00dfe", "K\u00f6ln"]


def test_text_that_is_right_stays_as_it_is() -> None:
    for text in (
        "Caf\u00e9 \u201cquoted\u201d \ufb01ne",
        "K\u00f6ln &amp; Stra\u00dfe",
        "\u00e2 la carte",
    ):
        assert repair_mojibake(text) == text
