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

The child ends with the server on every kind of stop, and enforces its own time limit:

- it closes its copy of the forkserver's liveness pipe, which every forkserver child
  inherits: while a child held it, the forkserver outlived the server, and with it the
  child (whose parent-death signal is tied to the forkserver);
- a watchdog thread in the child waits on the pipe to the server: when the server's end
  closes (the server stopped, was killed, or gave up on the parse) the child kills its
  session and exits;
- `timeout_s` is enforced in the child too, by an alarm (wall clock) and RLIMIT_CPU;
- `stop_all` (the server stopping) kills every running child; the parse in flight then
  raises SandboxStopped, an OSError, so its job is retried at the next start rather than
  failed.

`run_sandboxed` is the same machinery for any other work on an untrusted file (rendering a
page for a preview, say): a module-level function called in the child, with the same
outcomes, its return value (which must pickle) coming back instead of a ParsedDocument.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import resource
import select
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
from pitchcraft.ingestion.parsers.image import limit_ocr
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

# Children running now.
_running: set[multiprocessing.process.BaseProcess] = set()
_running_lock = threading.Lock()
# The children stop_all killed: their parses end as SandboxStopped, not as failures. Per
# child, so a stop of one app (a test, a restart in one process) never marks later parses.
_stopped: set[int] = set()
# Signals the child's own time limit ends it with.
_TIMEOUT_SIGNALS = {signal.SIGALRM, signal.SIGXCPU}


class SandboxStopped(OSError):
    """The server is stopping and killed the child: not the document's fault."""


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


def stop_all() -> int:
    """Kill every running child (the server is stopping); returns how many there were.
    Parses asked for afterwards still run (a test may stop one app and start another)."""
    with _running_lock:
        children = list(_running)
        _stopped.update(id(child) for child in children)
    for child in children:
        _kill(child)
    return len(children)


def parse_sandboxed(
    path: Path,
    kind: str,
    *,
    ocr: bool,
    soffice: str | None,
    timeout_s: float,
    memory_mb: int,
    max_rows: int = DEFAULT_MAX_ROWS,
    ocr_max_pages: int = 0,
    ocr_max_seconds: float = 0,
) -> ParsedDocument:
    """`ocr_max_pages` / `ocr_max_seconds`: OCR work allowed for this document (0: no cap);
    past either the document fails with a reason that names the setting."""
    context = _get_context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(
            sender,
            _parse,
            (str(path), kind, ocr, soffice, max_rows, ocr_max_pages, ocr_max_seconds),
            memory_mb,
            timeout_s,
        ),
        name=f"parse-{kind}",
        daemon=True,
    )
    message, exitcode = _supervise(child, receiver, sender, timeout_s)
    return _outcome(message, exitcode, timeout_s)


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
        target=_child, args=(sender, func, args, memory_mb, timeout_s), name=name, daemon=True
    )
    message, exitcode = _supervise(child, receiver, sender, timeout_s)
    return cast(T, _result(message, exitcode, timeout_s))


def _supervise(
    child: multiprocessing.process.BaseProcess,
    receiver: multiprocessing.connection.Connection,
    sender: multiprocessing.connection.Connection,
    timeout_s: float,
) -> tuple[tuple[str, Any] | None, int | None]:
    """Start the child and wait for its answer: (message or None, exit code)."""
    with _running_lock:
        child.start()
        _running.add(child)
    sender.close()
    message: tuple[str, Any] | None = None
    try:
        # A little longer than the child's own limit, which reports itself more precisely.
        if not receiver.poll(timeout_s + 2):
            _kill(child)
            raise ParseFailure(_too_long(timeout_s))
        try:
            message = receiver.recv()
        except (EOFError, OSError):
            message = None  # the child died without answering
    finally:
        receiver.close()  # the child's watchdog sees this and ends the child
        child.join(timeout=5)
        if child.is_alive():
            _kill(child)
        elif message is None and child.pid is not None:
            # It ended without answering (its own time limit, say): what it started may
            # still run in its session.
            _kill_session(child.pid)
        with _running_lock:
            _running.discard(child)
            stopped = id(child) in _stopped
            _stopped.discard(id(child))
    if message is None and stopped:
        raise SandboxStopped("the parser was stopped with the server")
    return message, child.exitcode


def _too_long(timeout_s: float) -> str:
    return f"took too long to read (over {timeout_s:g} s)"


def _outcome(
    message: tuple[str, Any] | None, exitcode: int | None, timeout_s: float = 0
) -> ParsedDocument:
    payload = _result(message, exitcode, timeout_s)
    if not isinstance(payload, ParsedDocument):
        raise ParseFailure(f"could not be read: {payload}")
    return payload


def _result(message: tuple[str, Any] | None, exitcode: int | None, timeout_s: float = 0) -> Any:
    if message is None:
        if exitcode is not None and exitcode < 0:
            if -exitcode in _TIMEOUT_SIGNALS and timeout_s:
                raise ParseFailure(_too_long(timeout_s))
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
        _kill_session(child.pid)
    child.join(timeout=5)


def _kill_session(session: int) -> None:
    for pid in _session_members(session):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


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
    timeout_s: float = 0,
) -> None:
    parent = os.getppid()  # the forkserver, which exits when the server does
    _drop_forkserver_liveness()
    with contextlib.suppress(OSError):
        os.setsid()  # its own session, so that a kill reaches whatever it starts
    die_with_parent(parent)  # ... which must not put it out of reach of the server's end
    _watch_server(conn)
    if timeout_s > 0:
        _limit_time(timeout_s)
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


def _drop_forkserver_liveness() -> None:
    """Close the child's copy of the server's end of the forkserver's liveness pipe: the
    forkserver exits when every copy is closed, and the child needs none."""
    from multiprocessing import forkserver

    server: Any = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None


def _watch_server(conn: multiprocessing.connection.Connection) -> None:
    """End the child (and its session) as soon as the server's end of `conn` closes."""
    fd = conn.fileno()

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, 0)  # no events asked: wakes on POLLERR/POLLHUP only
        while True:
            events = poller.poll()
            if any(ev & (select.POLLERR | select.POLLHUP | select.POLLNVAL) for _, ev in events):
                break
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)  # the child leads its group
        os._exit(1)

    threading.Thread(target=watch, name="server-watchdog", daemon=True).start()


def _limit_time(timeout_s: float) -> None:
    """The time limit, enforced where the work runs: SIGALRM after `timeout_s` of wall
    clock; SIGXCPU after the CPU time every core could give in that time, should the alarm
    not be delivered. Either ends the child, and the parent reports "took too long"."""
    seconds = max(1, math.ceil(timeout_s))
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    # A timer, not alarm(): a limit under a second (a preview's) holds as given.
    signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 0.001))
    cpu = seconds * (os.cpu_count() or 1)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = cpu if hard == resource.RLIM_INFINITY else min(cpu, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _parse(
    path: str,
    kind: str,
    ocr: bool,
    soffice: str | None,
    max_rows: int = DEFAULT_MAX_ROWS,
    ocr_max_pages: int = 0,
    ocr_max_seconds: float = 0,
) -> ParsedDocument:
    limit_ocr(max_pages=ocr_max_pages, max_seconds=ocr_max_seconds)
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
