"""Helpers for document tests: upload, wait for an outcome, read the MANIFEST."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import CORPUS

FINAL = {"indexed", "failed"}


def upload(client: Any, token: str, *files: tuple[str, bytes]) -> list[dict[str, Any]]:
    r = client.post(
        "/api/v1/documents/upload",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )
    assert r.status_code == 202, r.text
    body: list[dict[str, Any]] = r.json()
    return body


def get_doc(client: Any, token: str, doc_id: str) -> dict[str, Any]:
    r = client.get(f"/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    doc: dict[str, Any] = r.json()
    return doc


def wait_doc(
    client: Any,
    token: str,
    doc_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 300,
    detail: Callable[[], str] = lambda: "",
) -> dict[str, Any]:
    """Poll the document until `done(document)`; fails the test after `timeout` seconds,
    with `detail()` (a server's log, say) in the message."""
    deadline = time.monotonic() + timeout
    while True:
        doc = get_doc(client, token, doc_id)
        if done(doc):
            return doc
        assert time.monotonic() < deadline, f"document stuck: {doc}\n{detail()}"
        time.sleep(0.25)


def wait_final(client: Any, token: str, doc_id: str, timeout: float = 300) -> dict[str, Any]:
    return wait_doc(client, token, doc_id, lambda d: d["status"] in FINAL, timeout)


def manifest_expectations() -> dict[str, str]:
    """file (relative to the corpus) -> the MANIFEST's expected outcome text."""
    rows: dict[str, str] = {}
    for line in (CORPUS / "MANIFEST.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in {"file", "---"} or set(cells[0]) <= {"-", " "}:
            continue
        names, _, outcome = cells
        for name in names.split(","):
            name = name.strip()
            folder = name.rsplit("/", 1)[0]
            if name.endswith("*.docx"):
                for p in sorted((CORPUS / folder).glob("*.docx")):
                    rows[f"{folder}/{p.name}"] = outcome
            else:
                rows[name] = outcome
    return rows


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name != "MANIFEST.md")


def allowed_outcomes(expectation: str) -> tuple[bool, bool, list[str]]:
    """(may be indexed, may fail, reasons a failure may give) from a MANIFEST row."""
    text = expectation.lower()
    reasons = re.findall(r'"([^"]+)"', expectation)
    # "else a clear reason": a photo with no text in it (img/example.jpg) fails honestly.
    may_fail = "failed" in text or "flagged" in text or "else a clear reason" in text
    may_index = text.startswith("indexed") or " or indexed" in text or "indexed or" in text
    if text.startswith("indexed") and not any(
        s in text for s in ("or failed", "or flagged", "else a clear reason")
    ):
        may_fail = False
    return may_index, may_fail, [r.lower() for r in reasons]
