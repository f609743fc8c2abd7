"""Parse a document in a child process with a memory cap and a wall-clock timeout.

A hostile or broken file can make a parser hang, allocate without bound or crash in C code;
none of that may reach the server. Children come from a forkserver (the server runs
threads, so forking it directly is unsafe) that has already imported the parsers, so a
child starts in milliseconds. Every outcome is a ParsedDocument or a ParseFailure:

- the parser's own ParseFailure, with its message;
- past `timeout_s` the child (and anything it started) is killed:
  "took too long to read (over N s)";
- MemoryError, or the child killed outright (the kernel's OOM killer):
  "needs too much memory to read";
- anything else: "could not be read: <short reason>".

`memory_mb` is the address space the parser may add on top of what the child has mapped
when it starts (interpreter and preloaded libraries), enforced with RLIMIT_AS.

`run_sandboxed` is the same machinery for any other work on an untrusted file (rendering a
page for a preview, say): a module-level function called in the child, with the same
outcomes, its return value (which must pickle) coming back instead of a ParsedDocument.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import resource
import signal
import sys
import threading
import time
import types
from collections.abc import Callable
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any, TypeVar, cast

from pitchcraft.ingestion.lifetime import die_with_parent
from pitchcraft.ingestion.parsers import DEFAULT_MAX_ROWS, PARSER_MODULES, parse_file
from pitchcraft.ingestion.types import ParsedDocument, ParseFailure

TOO_MUCH_MEMORY = "needs too much memory to read"

# Test-only kinds: they exercise the timeout, memory and error paths of the sandbox without
# needing a pathological document. detect() never returns them.
TEST_HANG = "__test_hang__"
TEST_MEMORY = "__test_memory__"
TEST_ERROR = "__test_error__"

_PRELOAD = [__name__, *PARSER_MODULES, "rapidocr_onnxruntime"]
_MEMORY_WORDS = ("bad_alloc", "out of memory", "cannot allocate memory", "malloc")

T = TypeVar("T")

_context_lock = threading.Lock()
_context: ForkServerContext | None = None


def _get_context() -> ForkServerContext:
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([*_PRELOAD, *_main_imports()])
            _context = context
        return _context


def _main_imports() -> list[str]:
    """Modules the main script (`pitchcraft serve`, pytest, ...) imported.

    Each child re-runs the main script before anything else (multiprocessing's way to find
    what the target refers to). With what the script imports already loaded in the
    forkserver, that costs milliseconds instead of a fresh import of the whole application.
    """
    main = sys.modules.get("__main__")
    names: set[str] = set()
    for value in vars(main).values() if main is not None else ():
        name = value.__name__ if isinstance(value, types.ModuleType) else None
        if name is None and isinstance(value, type | types.FunctionType):
            name = value.__module__
        if isinstance(name, str) and not name.startswith("__") and name in sys.modules:
            names.add(name)
    return sorted(names)


def warm_up() -> None:
    """Start the forkserver (importing the parsers) now rather than on the first upload."""
    _get_context()
    multiprocessing.forkserver.ensure_running()


def parse_sandboxed(
    path: Path,
    kind: str,
    *,
    ocr: bool,
    soffice: str | None,
    timeout_s: float,
    memory_mb: int,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> ParsedDocument:
    context = _get_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(sender, _parse, (str(path), kind, ocr, soffice, max_rows), memory_mb),
        name=f"parse-{kind}",
        daemon=True,
    )
    message, exitcode = _supervise(child, receiver, sender, timeout_s)
    return _outcome(message, exitcode)


def run_sandboxed(
    func: Callable[..., T], *args: Any, timeout_s: float, memory_mb: int, name: str
) -> T:
    """`func(*args)` in a sandboxed child, with the limits and outcomes of `parse_sandboxed`.

    `func` must be a module-level function (the child finds it by name) and its arguments
    and result must pickle. Whatever it raises reaches the caller as a ParseFailure (its own
    ParseFailure with its message); an outcome other exceptions should keep is better
    returned as a value. `name` names the child process (for logs and tests).
    """
    context = _get_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child, args=(sender, func, args, memory_mb), name=name, daemon=True
    )
    message, exitcode = _supervise(child, receiver, sender, timeout_s)
    return cast(T, _result(message, exitcode))


def _supervise(
    child: multiprocessing.process.BaseProcess,
    receiver: multiprocessing.connection.Connection,
    sender: multiprocessing.connection.Connection,
    timeout_s: float,
) -> tuple[tuple[str, Any] | None, int | None]:
    """Start the child and wait for its answer: (message or None, exit code)."""
    child.start()
    sender.close()
    message: tuple[str, Any] | None = None
    try:
        if not receiver.poll(timeout_s):
            _kill(child)
            raise ParseFailure(f"took too long to read (over {timeout_s:g} s)")
        try:
            message = receiver.recv()
        except (EOFError, OSError):
            message = None  # the child died without answering
    finally:
        receiver.close()
        child.join(timeout=5)
        if child.is_alive():
            _kill(child)
    return message, child.exitcode


def _outcome(message: tuple[str, Any] | None, exitcode: int | None) -> ParsedDocument:
    payload = _result(message, exitcode)
    if not isinstance(payload, ParsedDocument):
        raise ParseFailure(f"could not be read: {payload}")
    return payload


def _result(message: tuple[str, Any] | None, exitcode: int | None) -> Any:
    if message is None:
        if exitcode is not None and exitcode < 0:
            if -exitcode == signal.SIGKILL:
                raise ParseFailure(TOO_MUCH_MEMORY)
            name = signal.Signals(-exitcode).name
            raise ParseFailure(f"could not be read: the reader crashed ({name})")
        raise ParseFailure(f"could not be read: the reader stopped (exit code {exitcode})")
    status, payload = message
    if status == "ok":
        return payload
    if status == "failure":
        raise ParseFailure(str(payload))
    if status == "memory":
        raise ParseFailure(TOO_MUCH_MEMORY)
    raise ParseFailure(f"could not be read: {payload}")


def _kill(child: multiprocessing.process.BaseProcess) -> None:
    """Kill the child and everything it started: the child leads its own session, and what
    it starts (LibreOffice, say) stays in that session even in a process group of its own."""
    child.kill()
    if child.pid is not None:
        for pid in _session_members(child.pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    child.join(timeout=5)


def _session_members(session: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        # After "pid (comm)": state, ppid, pgrp, session.
        if len(fields) > 3 and fields[3] == str(session):
            pid = int(stat.parent.name)
            if pid != os.getpid():
                members.append(pid)
    return members


# --- in the child ----------------------------------------------------------------------------


def _child(
    conn: multiprocessing.connection.Connection,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    memory_mb: int,
) -> None:
    parent = os.getppid()  # the forkserver, which exits when the server does
    with contextlib.suppress(OSError):
        os.setsid()  # its own session, so that a kill reaches whatever it starts
    die_with_parent(parent)  # ... which must not put it out of reach of the server's end
    message: tuple[str, Any]
    try:
        _limit_memory(memory_mb)
        message = ("ok", func(*args))
    except ParseFailure as exc:
        message = ("failure", str(exc))
    except MemoryError:
        message = ("memory", None)
    except Exception as exc:
        reason = _short_reason(exc)
        is_memory = any(word in reason.lower() for word in _MEMORY_WORDS)
        message = ("memory", None) if is_memory else ("error", reason)
    try:
        conn.send(message)
    except MemoryError:  # pickling a huge result can itself run out of memory
        with contextlib.suppress(Exception):
            conn.send(("memory", None))
    finally:
        conn.close()


def _parse(
    path: str, kind: str, ocr: bool, soffice: str | None, max_rows: int = DEFAULT_MAX_ROWS
) -> ParsedDocument:
    return _run(Path(path), kind, ocr=ocr, soffice=soffice, max_rows=max_rows)


def _run(
    path: Path, kind: str, *, ocr: bool, soffice: str | None, max_rows: int = DEFAULT_MAX_ROWS
) -> ParsedDocument:
    if kind == TEST_HANG:
        while True:
            time.sleep(60)
    if kind == TEST_MEMORY:
        hog = [bytearray(1 << 20) for _ in range(1 << 20)]  # 1 TiB, one MiB at a time
        raise AssertionError(f"allocated {len(hog)} MiB")
    if kind == TEST_ERROR:
        raise RuntimeError("simulated parser bug")
    return parse_file(path, kind, ocr=ocr, soffice=soffice, max_rows=max_rows)


def _limit_memory(memory_mb: int) -> None:
    try:
        with open("/proc/self/statm") as fh:
            mapped = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        mapped = 0
    limit = mapped + memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _short_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if not text:
        return type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
