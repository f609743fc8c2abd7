"""The sample library: from an empty account to a finished, checked job with the bundled
documents and example text, on SQLite and PostgreSQL; the samples are ordinary documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from pitchcraft.documents.sample_library import SAMPLE_FILES, SAMPLES
from tests.conftest import app_on, auth, register
from tests.docs_helpers import wait_final
from tests.test_refine import process, wait_job
from tests.test_source_viewer import SESSION

pytestmark = pytest.mark.timeout(600)


def test_every_sample_has_its_licence_noted() -> None:
    licences = (SAMPLES / "LICENSES.md").read_text()
    for name in (*SAMPLE_FILES, "example.txt"):
        assert (SAMPLES / name).is_file()
        row = next(line for line in licences.splitlines() if f"`{name}`" in line)
        assert "CC0 1.0" in row


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_from_an_empty_account_to_a_finished_job(database: str, tmp_path: Path) -> None:
    with app_on(database, tmp_path / "data") as c:
        token = register(c)
        c.cookies.set(SESSION, token)
        empty = c.get("/documents")
        assert 'data-testid="try-samples"' in empty.text

        r = c.post("/api/v1/documents/samples", headers=auth(token))
        assert r.status_code == 202, r.text
        entries = r.json()
        assert sorted(e["filename"] for e in entries) == sorted(SAMPLE_FILES)
        for e in entries:
            assert wait_final(c, token, e["id"])["status"] == "indexed", e
        listed = c.get("/api/v1/documents", headers=auth(token)).json()
        assert {d["filename"] for d in listed} == set(SAMPLE_FILES)
        # Once there are documents, the offer is gone.
        assert 'data-testid="try-samples"' not in c.get("/documents").text

        example = c.get("/api/v1/documents/samples/example", headers=auth(token)).json()
        compose = c.get("/compose", params={"example": "samples"})
        assert example["marketing_text"].split(".")[0] in compose.text
        job = wait_job(c, token, process(c, token, marketing_text=example["marketing_text"]))
        assert job["status"] == "succeeded", job
        cited = {s["filename"] for s in job["sources"]}
        assert {"beacon-prices.xlsx", "beacon-datasheet.pdf", "beacon-brochure.pdf"} <= cited
        verdicts = {cl["text"]: cl["verdict"] for cl in job["claims"]}
        # The example's wrong price (the Growth plan is $99) is never passed as supported.
        wrong_price = next(t for t in verdicts if "$79" in t)
        assert verdicts[wrong_price] != "supported", verdicts
        right = next(t for t in verdicts if "40 data sources" in t)
        assert verdicts[right] == "supported", verdicts

        # Ordinary documents: deletable like any other.
        deck = next(e for e in entries if e["filename"].endswith(".pptx"))
        assert c.delete(f"/api/v1/documents/{deck['id']}", headers=auth(token)).status_code == 204
        left = c.get("/api/v1/documents", headers=auth(token)).json()
        assert len(left) == len(SAMPLE_FILES) - 1
        c.cookies.clear()
