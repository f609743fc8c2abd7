"""Parse children end with the server on every kind of stop, enforce their own time limit,
and OCR work per document is capped (SECURITY.md, "Document parsing")."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from pitchcraft.ingestion import sandbox
from pitchcraft.ingestion.sandbox import TEST_HANG, parse_sandboxed
from pitchcraft.ingestion.types import ParseFailure
from tests.conftest import CORPUS, app_on, auth, register
from tests.docs_helpers import upload, wait_final
from tests.test_parsers import _alive, _descendants, _process_table

pytestmark = pytest.mark.timeout(600)

TEXT = CORPUS / "text/fake-text.txt"

# A stand-in for the server: asks for a parse that never ends, says so, then waits for a
# line on stdin and exits normally (a graceful stop), or is killed.
PARSING_SERVER = """
import sys, threading
from pathlib import Path
from pitchcraft.ingestion.sandbox import TEST_HANG, parse_sandboxed
def parse():
    parse_sandboxed(Path(sys.argv[1]), TEST_HANG, ocr=False, soffice=None, timeout_s=600,
                    memory_mb=256)
threading.Thread(target=parse, daemon=True).start()
print("parsing", flush=True)
sys.stdin.readline()
"""


def parse_children(server_pid: int, timeout: float = 60) -> list[int]:
    """The parse children under `server_pid`: the descendants that lead a session."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = _process_table()
        found = [p for p in _descendants(server_pid) if table.get(p, (0, 0))[1] == p]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("no parse child in a session of its own appeared")


def wait_gone(pids: set[int], timeout: float = 15) -> list[int]:
    """The pids still alive after waiting up to `timeout` for them to end."""
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("stop", ["exit", "sigkill"])
def test_the_parse_child_ends_with_its_server(stop: str) -> None:
    """A normal exit of the server, and kill -9 of the server process alone (not of its
    group): the forkserver and the parse child go too."""
    server = subprocess.Popen(
        [sys.executable, "-c", PARSING_SERVER, str(TEXT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == b"parsing\n"
        (child,) = parse_children(server.pid)
        started = _descendants(server.pid)  # forkserver, resource tracker, the child
        assert child in started
        if stop == "exit":
            assert server.stdin is not None
            server.stdin.write(b"stop\n")
            server.stdin.flush()
        else:
            os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=30)
        assert wait_gone(started) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        for pid in _descendants(server.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.wait(timeout=10)


def test_the_time_limit_is_enforced_in_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child ends itself when its time is up (its alarm), before the parent's own
    deadline, which is only the backstop."""
    exits: list[int | None] = []
    real = sandbox._result

    def spy(message: Any, exitcode: int | None, timeout_s: float = 0) -> Any:
        exits.append(exitcode)
        return real(message, exitcode, timeout_s)

    monkeypatch.setattr(sandbox, "_result", spy)
    with pytest.raises(ParseFailure, match=r"^took too long to read \(over 1\.5 s\)$"):
        parse_sandboxed(TEXT, TEST_HANG, ocr=False, soffice=None, timeout_s=1.5, memory_mb=256)
    assert exits == [-signal.SIGALRM]


def test_stop_all_ends_a_parse_in_flight_without_failing_the_document() -> None:
    import threading

    outcome: list[BaseException] = []

    def parse() -> None:
        try:
            parse_sandboxed(TEXT, TEST_HANG, ocr=False, soffice=None, timeout_s=600, memory_mb=256)
        except BaseException as exc:
            outcome.append(exc)

    # An earlier stop (another app in this process) marks none of the parses after it.
    assert sandbox.stop_all() == 0
    thread = threading.Thread(target=parse)
    thread.start()
    parse_children(os.getpid())
    assert sandbox.stop_all() == 1
    thread.join(timeout=30)
    assert not thread.is_alive()
    # An OSError: the ingestion job is left to be retried, the document not failed.
    assert len(outcome) == 1 and isinstance(outcome[0], sandbox.SandboxStopped)
    assert isinstance(outcome[0], OSError) and not isinstance(outcome[0], ParseFailure)
    doc = parse_sandboxed(TEXT, "text", ocr=False, soffice=None, timeout_s=30, memory_mb=512)
    assert doc.blocks


# --- OCR caps ------------------------------------------------------------------------------


def scanned_pdf(path: Path, pages: int, lines: int = 3) -> Path:
    """An image-only PDF: each page a picture of a few lines of text."""
    doc = pymupdf.open()
    for n in range(pages):
        src = pymupdf.open()
        sheet = src.new_page(width=420, height=40 + 30 * lines)
        for i in range(lines):
            sheet.insert_text(
                (20, 45 + 30 * i), f"Page {n + 1} line {i + 1} of the plan", fontsize=18
            )
        png = sheet.get_pixmap(dpi=150).tobytes("png")
        page = doc.new_page(width=420, height=40 + 30 * lines)
        page.insert_image(page.rect, stream=png)
    doc.save(path)
    return path


def test_ocr_is_capped_by_pages_and_by_seconds(tmp_path: Path) -> None:
    scan = scanned_pdf(tmp_path / "scan.pdf", 3)
    whole = parse_sandboxed(scan, "pdf", ocr=True, soffice=None, timeout_s=120, memory_mb=3072)
    assert whole.notes == ["3 pages had no text layer and were read with OCR"]
    with pytest.raises(ParseFailure, match=r"more than 2 pages or images.*OCR_MAX_PAGES"):
        parse_sandboxed(
            scan, "pdf", ocr=True, soffice=None, timeout_s=120, memory_mb=3072, ocr_max_pages=2
        )
    with pytest.raises(ParseFailure, match=r"OCR took more than 0\.001 s.*OCR_MAX_SECONDS"):
        parse_sandboxed(
            scan,
            "pdf",
            ocr=True,
            soffice=None,
            timeout_s=120,
            memory_mb=3072,
            ocr_max_seconds=0.001,
        )


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_document_over_the_ocr_cap_fails_with_the_reason(database: str, tmp_path: Path) -> None:
    scan = scanned_pdf(tmp_path / "scan.pdf", 3)
    with app_on(database, tmp_path / "data", ocr_max_pages=2) as client:
        token = register(client)
        (doc,) = upload(client, token, ("scan.pdf", scan.read_bytes()))
        final = wait_final(client, token, doc["id"])
        assert final["status"] == "failed"
        assert "OCR_MAX_PAGES" in final["error"] and "2 pages" in final["error"]
        # The account goes on working.
        assert client.get("/api/v1/documents", headers=auth(token)).status_code == 200
