"""Legacy binary PowerPoint (.ppt): converted to .pptx with LibreOffice, then read as PPTX.

Without LibreOffice the person is asked to save the deck as .pptx.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from pitchcraft.ingestion.parsers import pptx
from pitchcraft.ingestion.types import ParsedDocument, ParseFailure

NO_CONVERTER = "legacy .ppt: save it as .pptx (LibreOffice is not installed on this server)"
CONVERT_TIMEOUT_S = 180


def find_soffice(configured: str | None) -> str | None:
    """The LibreOffice binary: the configured one if it is there, else `soffice` or
    `libreoffice` on PATH."""
    for candidate in (configured, "soffice", "libreoffice"):
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    return None


def parse(
    path: Path, *, ocr: bool = False, soffice: str | None = None, timeout_s: float | None = None
) -> ParsedDocument:
    binary = find_soffice(soffice)
    if binary is None:
        raise ParseFailure(NO_CONVERTER)
    with tempfile.TemporaryDirectory(prefix="pitchcraft-ppt-") as tmp:
        work = Path(tmp)
        source = work / "deck.ppt"  # a plain name: LibreOffice names the output after it
        shutil.copyfile(path, source)
        out_dir = work / "out"
        out_dir.mkdir()
        profile = work / "profile"  # a private profile: concurrent conversions don't collide
        command = [
            binary,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            "pptx",
            "--outdir",
            str(out_dir),
            str(source),
        ]
        _run(command, timeout_s or CONVERT_TIMEOUT_S, cwd=work)
        converted = out_dir / "deck.pptx"
        if not converted.is_file() or converted.stat().st_size == 0:
            raise ParseFailure("legacy .ppt: conversion to .pptx failed; save it as .pptx")
        return pptx.parse(converted, ocr=ocr)


def _run(command: list[str], timeout_s: float, *, cwd: Path) -> None:
    """Run LibreOffice in a process group of its own, so that a timeout kills all of its
    processes (in the same session, so that the sandbox's kill reaches them too)."""
    env = {**os.environ, "HOME": str(cwd)}
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,
    )
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        raise ParseFailure(
            f"legacy .ppt: conversion took too long (over {round(timeout_s)} s); save it as .pptx"
        ) from exc
    finally:
        _kill_group(proc)  # also whatever it left running in its group
    if proc.returncode != 0:
        raise ParseFailure("legacy .ppt: conversion to .pptx failed; save it as .pptx")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if proc.poll() is None:
            proc.kill()
    proc.wait()
