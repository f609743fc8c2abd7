"""Crash loop: kill -9 a real server at random moments, restart it, check what survived.

A real `pitchcraft serve` (its own process group, DATA_DIR on a temp dir, CONTAINER_MODE=no,
LLM_BASE_URL at the test suite's OpenAI-compatible fake answering with a small delay per
streamed piece, so refine jobs are running when the kill comes) is driven by client threads,
one per user: small corpus uploads (and now and then a mid-size PDF, or a file that must fail
with a reason), refine jobs, prompt-template saves, document deletes and reads. Everything the
server ACCEPTED is recorded (a 202 with document ids, a 202 with a job id, a 200 for a template
save, a 204 for a delete); a request cut by the kill is not accepted, but it may have been
committed before the response was lost, so its outcome is "unknown" and only checked for
consistency (a document or job the server has that no acknowledged request created must be
accounted for by a cut request of that user).

Each cycle aims the kill at one phase (shuffled with a seeded RNG so every phase gets its
share): `uploading` (an upload request in flight), `ingesting` (a document being processed),
`refining` (a refine job running), `template` (a template save in flight) or `idle` (clients
paused, queue empty). The whole process group (server, parser processes, index optimiser)
gets SIGKILL at a random moment inside that phase; what was going on at that instant is
recorded too. Then the server is restarted and, once healthy, the invariants are checked:

* every accepted document is still there and `indexed`, `queued`/`processing` (still
  progressing) or `failed` with a non-empty reason; no document vanished (unless deleted);
* every accepted refine job is still there, `queued`/`running`/`succeeded`, or `failed` with a
  non-empty reason;
* documents and jobs nobody was told about are no more than the cut requests that may have
  created them;
* the template GET returns the last one saved with a 200 (or a later save whose answer was
  cut by the kill);
* no orphan files: every file under STORAGE_PATH/{user}/ belongs to a document row, and every
  stored document's file exists (the database is read directly, read-only);
* SQLite `PRAGMA integrity_check` is `ok` (read-only connection while the server runs).

At the end every accepted document must become indexed or failed with a reason and every
accepted job succeeded or failed with a reason, within a deadline (nothing stuck); then the
server is stopped cleanly and the embedded Qdrant Edge shards are opened here (the server
owns them while it runs) for the deep check: the points of every indexed document equal its
`chunks`, a failed document has no points, and no point belongs to a document without a row.
`--deep-every N` also does that deep check (clean stop, check, start) every N cycles.

Run: .venv/bin/python -m bench.crash [--cycles 20] [--seed N] [--users 3] [--no-llm]
                                     [--db sqlite|postgresql] [--deep-every N] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import (
    CORPUS,
    CPU_NOTE,
    DEV_SET,
    ROOT,
    CpuShare,
    banner,
    go_offline,
    latency_summary,
    loadavg,
    machine,
    table,
    write_results,
)
from bench.ingest import Server, _cmdline, _descendants

PASSWORD = "crash-loop-123"  # noqa: S105  # throwaway accounts on a throwaway server
PHASES = ("uploading", "ingesting", "refining", "template", "idle")
SMALL_FILES = (
    "text/fake-text.txt",
    "text/norwich-city.txt",
    "text/codeblock.md",
    "text/fake-html.html",
    "pdf/fake-memo.pdf",
    "pdf/minimal-document.pdf",
    "pdf/pdflatex-4-pages.pdf",
    "pptx/simple.pptx",
    "docx/simple.docx",
    "docx/handbook-1p.docx",
)
# Files that must end failed with a reason (refused up front, or by the parser).
FAILING_FILES = ("pdf/password.pdf", "text/empty.txt", "pptx/minimal.pptx")
# reliance.pdf: 7 passages; GeoTopo: 117 pages, ~190 passages (a minute of embedding here),
# so it comes up a third as often.
MID_FILES = ("pdf/reliance.pdf", "pdf/reliance.pdf", "pdf/GeoTopo-komprimiert.pdf")
# With one worker on 2 shared cores the queue keeps up with about this much work.
ACTIONS = {  # action: weight
    "upload_small": 10,
    "upload_failing": 2,
    "upload_mid": 1.5,
    "refine": 10,
    "template": 14,
    "delete": 2.5,
    "read": 25,
}
DOC_FINAL = {"indexed", "failed"}
DOC_STATES = {"queued", "processing", *DOC_FINAL}
JOB_FINAL = {"succeeded", "failed"}
JOB_STATES = {"queued", "running", *JOB_FINAL}
TEMPLATE = (
    "Crash loop, user {user}, save {seq}. Rewrite for {{{{backgrounds}}}}:\n"
    "{{{{marketing_text}}}}\n\nUse only these sources:\n{{{{context}}}}"
)


@dataclass
class Config:
    cycles: int = 20
    seed: int = 0
    users: int = 3
    llm: bool = True
    llm_delay: float = 0.04  # seconds between streamed pieces of the fake model's answer
    db: str = "sqlite"  # or "postgresql" (a throwaway schema in the test database)
    warm: tuple[float, float] = (2.0, 6.0)  # clients run this long before the kill is aimed
    watch_s: float = 25.0  # longest wait for the aimed-at phase before killing anyway
    idle_wait_s: float = 60.0  # longest wait for an idle queue in the `idle` phase
    think: tuple[float, float] = (0.5, 2.5)  # client think time between requests
    mid_files: tuple[str, ...] = MID_FILES  # () for none
    deep_every: int = 0  # also stop cleanly and check the vector index every N cycles
    settle_s: float = 900.0  # deadline for everything to finish at the end
    health_timeout_s: float = 180.0
    phases: tuple[str, ...] = PHASES
    worker_concurrency: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = print


# ---------------------------------------------------------------------------------------
# what the server acknowledged


@dataclass
class Upload:
    doc_id: str
    file: str
    cycle: int
    refused: str | None  # failed up front (the entry came back "failed" with this reason)


@dataclass
class UserState:
    index: int
    email: str
    token: str = ""
    uploads: dict[str, Upload] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)  # a 204 came back
    maybe_deleted: set[str] = field(default_factory=set)  # the delete was cut by the kill
    cut_upload_files: int = 0
    jobs: dict[str, int] = field(default_factory=dict)  # accepted job id -> cycle
    cut_jobs: int = 0
    template_seq: int = 0
    template_acked: str | None = None
    template_maybe: list[str] = field(default_factory=list)  # cut saves after the last ack
    user_id: int | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def expected_docs(self) -> set[str]:
        return set(self.uploads) - self.deleted - self.maybe_deleted


class ChildServer(Server):
    """bench.ingest's Server, which also dies with this process (PR_SET_PDEATHSIG), so
    that an interrupted run leaves no server behind."""

    def start(self) -> int:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)

        def die_with_parent() -> None:
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

        env = {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "CONTAINER_MODE": "no",
            "REGISTER_RATE_LIMIT_PER_CLIENT": "1000/minute",
            "REFINE_RATE_LIMIT_PER_USER": "100000/minute",
            "LOG_LEVEL": "INFO",
            # The per-user limits would refuse a benchmark's bulk uploads (0: unlimited).
            "USER_UPLOADS_PER_HOUR": "0",
            "USER_QUEUED_DOCUMENTS": "0",
            "USER_STORAGE_QUOTA_MB": "0",
            **self.extra_env,
        }
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pitchcraft", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # one call, no locks taken
            )
        return self.proc.pid

    def terminate(self) -> None:
        """SIGTERM to the server process only, as `docker stop` sends it; SIGKILL if it
        has not stopped within 60 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Cut(Exception):
    """The request failed because the server was killed under it."""


# ---------------------------------------------------------------------------------------
# the database, read directly (read-only for SQLite)


class DbView:
    def __init__(self, sqlite_file: Path | None, pg_url: str | None) -> None:
        self.sqlite_file = sqlite_file
        self.pg_url = pg_url

    @contextlib.contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.sqlite_file is not None:
            conn = sqlite3.connect(f"file:{self.sqlite_file}?mode=ro", uri=True, timeout=10)
            try:
                yield conn.cursor()
            finally:
                conn.close()
        else:
            import psycopg

            assert self.pg_url is not None
            with psycopg.connect(_pg_conninfo(self.pg_url), autocommit=True) as pg:
                yield pg.cursor()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self._cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def activity(self) -> dict[str, int]:
        """What the server is doing: documents and jobs by status."""
        out: Counter[str] = Counter()
        with contextlib.suppress(Exception):
            for status, n in self.query("SELECT status, count(*) FROM documents GROUP BY status"):
                out[f"doc_{status}"] += int(n)
            for kind, status, n in self.query(
                "SELECT kind, status, count(*) FROM jobs GROUP BY kind, status"
            ):
                out[f"{kind}_{status}"] += int(n)
        return dict(out)

    def documents(self) -> list[tuple[str, int, str, str, int, str | None]]:
        rows = self.query(
            "SELECT id, user_id, storage_key, status, chunks, error FROM documents ORDER BY id"
        )
        return [(str(a), int(b), str(c or ""), str(d), int(e or 0), f) for a, b, c, d, e, f in rows]

    def user_ids(self) -> list[int]:
        return [int(r[0]) for r in self.query("SELECT id FROM users ORDER BY id")]

    def integrity(self) -> str | None:
        """`PRAGMA integrity_check` for SQLite ("ok" when sound); None for PostgreSQL."""
        if self.sqlite_file is None:
            return None
        rows = self.query("PRAGMA integrity_check")
        return "; ".join(str(r[0]) for r in rows)[:500]


def _pg_conninfo(url: str) -> str:
    """postgresql+psycopg://...?options=-csearch_path%3Dx -> a libpq URI."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# ---------------------------------------------------------------------------------------
# the run


class CrashLoop:
    def __init__(self, config: Config, work: Path, llm_env: dict[str, str] | None) -> None:
        self.cfg = config
        self.work = work
        self.rng = random.Random(config.seed)
        self.data = work / "data"
        self.pg_schema: Any = None
        env = {
            "WORKER_CONCURRENCY": str(config.worker_concurrency),
            **(llm_env or {}),
            **config.extra_env,
        }
        sqlite_file: Path | None = self.data / "db" / "pitchcraft.db"
        pg_url: str | None = None
        if config.db == "postgresql":
            from tests.conftest import PgSchema

            self.pg_schema = PgSchema()
            self.pg_schema.create()
            pg_url = self.pg_schema.url
            env["DATABASE_URL"] = pg_url
            sqlite_file = None
        self.db = DbView(sqlite_file, pg_url)
        self.server = ChildServer(self.data, work / "server-00.log", env)
        self.starts = 0
        self.users = [
            UserState(i, f"crash-{config.seed}-{i}@example.com") for i in range(config.users)
        ]
        self.queries = _dev_queries()
        # shared with the client threads
        self.lock = threading.Lock()
        self.stop = threading.Event()  # clients: finish the current request and leave
        self.pause = threading.Event()  # clients: send nothing new (the idle phase)
        self.down = threading.Event()  # the server is being (or has been) killed
        self.in_flight: Counter[str] = Counter()
        self.armed: str | None = None  # a client-side phase the killer waits for
        self.fire = threading.Event()
        self.fire_delay = 0.0
        self.cycle = 0
        # results
        self.violations: list[str] = []
        self.errors: list[str] = []  # unexpected answers or failures without a kill
        self.kills: list[dict[str, Any]] = []
        self.resume_s: list[float] = []
        self.integrity: list[str] = []
        self.orphan_files: dict[str, list[int]] = {}  # key -> cycles whose checks saw it
        self.rows_without_file: list[str] = []
        self.requests: Counter[str] = Counter()  # action -> ok / cut / error counts
        self.deep_checks: list[dict[str, Any]] = []
        self.survivors: list[dict[str, Any]] = []  # server children alive after it died
        self.unknown_docs_committed = 0
        self.unknown_jobs_committed = 0
        self.template_checks = 0

    # -- bookkeeping -------------------------------------------------------------------

    def violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(f"cycle {self.cycle}: {text}")
        self.cfg.log(f"  VIOLATION: {text}")

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(f"cycle {self.cycle}: {text}")
        self.cfg.log(f"  error: {text}")

    def count(self, key: str) -> None:
        with self.lock:
            self.requests[key] += 1

    # -- the server --------------------------------------------------------------------

    def start_server(self) -> float:
        """Start, wait for /health 200; the seconds it took."""
        self.server.log_path = self.work / f"server-{self.starts:02d}.log"
        self.starts += 1
        started = time.perf_counter()
        self.server.start()
        deadline = time.monotonic() + self.cfg.health_timeout_s
        with httpx.Client(timeout=5) as client:
            while True:
                assert self.server.proc is not None
                if self.server.proc.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self.server.proc.returncode} at start; "
                        f"see {self.server.log_path}:\n{self.server.log_text()[-3000:]}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.server.base}/health").status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server did not become healthy; see {self.server.log_path}"
                    )
                time.sleep(0.05)
        self.down.clear()
        return time.perf_counter() - started

    def kill_server(self) -> None:
        assert self.server.proc is not None
        self.down.set()
        self.stop.set()
        before = _descendants(self.server.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server.proc.pid, signal.SIGKILL)
        self.server.proc.wait(timeout=30)
        self._survivors(before, "kill -9 of the process group")

    def _survivors(self, before: list[int], how: str) -> None:
        """Processes the server started that outlived it: recorded, then killed (the
        way a container runtime or systemd would when the service stops)."""
        assert self.server.proc is not None
        deadline = time.monotonic() + 10
        while _group_alive(self.server.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in before:
            if pid == self.server.proc.pid or not _alive(pid):
                continue
            self.survivors.append(
                {"cycle": self.cycle, "after": how, "pid": pid, "cmd": _cmdline(pid)[:120]}
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def stop_server(self) -> None:
        """A clean stop the way `docker stop` does it: SIGTERM to the server process only.
        (SIGTERM to the whole group would also stop the parser forkserver under a running
        ingestion, which is then retried at the next start; see bench/README.md.)"""
        assert self.server.proc is not None
        self.down.set()
        before = _descendants(self.server.proc.pid)
        self.server.proc.send_signal(signal.SIGTERM)
        try:
            self.server.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.violation("the server did not stop within 60 s of SIGTERM")
        time.sleep(1.0)  # the forkserver leaves when it sees the server gone
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.server.proc.pid, signal.SIGKILL)
        self.server.proc.wait(timeout=30)
        self._survivors(before, "SIGTERM to the server")

    # -- clients -----------------------------------------------------------------------

    def call(
        self, http: httpx.Client, user: UserState, phase: str, method: str, url: str, **kw: Any
    ) -> httpx.Response:
        big = bool(kw.pop("_big", False))
        with self.lock:
            self.in_flight[phase] += 1
            if self.armed == phase:
                # The killer waits for this: kill a random moment after it is sent.
                self.armed = None
                self.fire_delay = self.rng.uniform(0, 0.4 if big else 0.08)
                self.fire.set()
        try:
            return http.request(method, url, headers=user.headers, **kw)
        except httpx.TransportError as exc:
            if self.down.is_set():
                raise Cut from exc
            raise
        finally:
            with self.lock:
                self.in_flight[phase] -= 1

    def client(self, user: UserState, seed: int) -> None:
        rng = random.Random(seed)
        names, weights = list(ACTIONS), list(ACTIONS.values())
        if not self.cfg.mid_files:
            weights[names.index("upload_mid")] = 0.0
        with httpx.Client(base_url=self.server.base, timeout=120) as http:
            while not self.stop.is_set():
                if self.pause.is_set():
                    self.stop.wait(0.05)
                    continue
                action = rng.choices(names, weights)[0]
                try:
                    getattr(self, f"_do_{action}")(http, user, rng)
                    self.count(f"{action} ok")
                except Cut:
                    self.count(f"{action} cut")
                    break
                except Exception as exc:  # a timeout, a reset without a kill, a bad answer
                    self.count(f"{action} error")
                    self.error(f"{action} for user {user.index}: {type(exc).__name__}: {exc}")
                self.stop.wait(rng.uniform(*self.cfg.think))

    def _upload(
        self, http: httpx.Client, user: UserState, rels: list[str], *, big: bool = False
    ) -> None:
        handles = [(CORPUS / rel).open("rb") for rel in rels]
        try:
            files = [
                ("files", (Path(rel).name, fh, "application/octet-stream"))
                for rel, fh in zip(rels, handles, strict=True)
            ]
            try:
                r = self.call(
                    http,
                    user,
                    "uploading",
                    "POST",
                    "/api/v1/documents/upload",
                    files=files,
                    _big=big,
                )
            except Cut:
                user.cut_upload_files += len(rels)
                raise
        finally:
            for fh in handles:
                fh.close()
        if r.status_code != 202:
            self.error(f"upload {rels}: HTTP {r.status_code} {r.text[:200]}")
            return
        for rel, entry in zip(rels, r.json(), strict=True):
            refused = entry["error"] if entry["status"] == "failed" else None
            if entry["status"] == "failed" and not entry["error"]:
                self.violation(f"upload of {rel} refused without a reason: {entry}")
            user.uploads[str(entry["id"])] = Upload(str(entry["id"]), rel, self.cycle, refused)

    def _do_upload_small(self, http: httpx.Client, user: UserState, rng: random.Random) -> None:
        count = 2 if rng.random() < 0.2 else 1
        self._upload(http, user, rng.sample(SMALL_FILES, count))

    def _do_upload_failing(self, http: httpx.Client, user: UserState, rng: random.Random) -> None:
        self._upload(http, user, [rng.choice(FAILING_FILES)])

    def _do_upload_mid(self, http: httpx.Client, user: UserState, rng: random.Random) -> None:
        self._upload(http, user, [rng.choice(self.cfg.mid_files)], big=True)

    def _do_refine(self, http: httpx.Client, user: UserState, rng: random.Random) -> None:
        text, backgrounds = rng.choice(self.queries)
        try:
            r = self.call(
                http,
                user,
                "submitting",
                "POST",
                "/api/v1/rag/process",
                json={"marketing_text": text, "backgrounds": backgrounds},
            )
        except Cut:
            user.cut_jobs += 1
            raise
        if r.status_code != 202:
            self.error(f"process: HTTP {r.status_code} {r.text[:200]}")
            return
        user.jobs[str(r.json()["job_id"])] = self.cycle

    def _do_template(self, http: httpx.Client, user: UserState, rng: random.Random) -> None:
        user.template_seq += 1
        text = TEMPLATE.format(user=user.index, seq=user.template_seq)
        try:
            r = self.call(
                http,
                user,
                "template",
                "POST",
                "/api/v1/rag/prompt-template",
                json={"template": text},
            )
        except Cut:
            user.template_maybe.append(text)
            raise
        if r.status_code != 200:
            self.error(f"template save: HTTP {r.status_code} {r.text[:200]}")
            return
        saved = r.json()["template"]
        if saved != text:
            self.violation(f"template save answered with another text: {saved[:80]!r}")
        user.template_acked, user.template_maybe = saved, []

    def _do_delete(self, http: httpx.Client, user: UserState, rng: random.Random) -> None:
        candidates = sorted(user.expected_docs())
        if not candidates:
            return
        doc_id = rng.choice(candidates)
        try:
            r = self.call(http, user, "deleting", "DELETE", f"/api/v1/documents/{doc_id}")
        except Cut:
            user.maybe_deleted.add(doc_id)
            raise
        if r.status_code != 204:
            self.error(f"delete {doc_id}: HTTP {r.status_code} {r.text[:200]}")
            return
        user.deleted.add(doc_id)

    def _do_read(self, http: httpx.Client, user: UserState, rng: random.Random) -> None:
        path = rng.choice(
            ["/api/v1/documents", "/api/v1/jobs", "/api/v1/rag/prompt-template", "/api/v1/search"]
        )
        if path == "/api/v1/search":
            query, backgrounds = rng.choice(self.queries)
            r = self.call(
                http,
                user,
                "reading",
                "POST",
                path,
                json={"query": query, "backgrounds": backgrounds, "limit": 5},
            )
        else:
            r = self.call(http, user, "reading", "GET", path)
        if r.status_code != 200:
            self.error(f"GET {path}: HTTP {r.status_code} {r.text[:200]}")

    # -- one cycle ---------------------------------------------------------------------

    def run_clients(self) -> list[threading.Thread]:
        self.stop.clear()
        self.pause.clear()
        threads = []
        for user in self.users:
            seed = self.rng.randrange(2**32)
            t = threading.Thread(
                target=self.client, args=(user, seed), name=f"client-{user.index}", daemon=True
            )
            t.start()
            threads.append(t)
        return threads

    def aim_and_kill(self, target: str) -> dict[str, Any]:
        """Let the clients run, wait for the target phase, kill at a random moment in it."""
        self.stop.wait(self.rng.uniform(*self.cfg.warm))
        reached = False
        delay = 0.0
        deadline = time.monotonic() + self.cfg.watch_s
        if target in ("uploading", "template"):
            self.fire.clear()
            with self.lock:
                self.armed = target
            reached = self.fire.wait(self.cfg.watch_s)
            with self.lock:
                self.armed = None
            delay = self.fire_delay
        elif target in ("ingesting", "refining"):
            key = "doc_processing" if target == "ingesting" else "refine_running"
            while time.monotonic() < deadline:
                if self.db.activity().get(key, 0) > 0:
                    reached = True
                    break
                time.sleep(0.03)
            delay = self.rng.uniform(0, 0.4)
        else:  # idle: no request in flight, nothing queued or running
            self.pause.set()
            deadline = time.monotonic() + self.cfg.idle_wait_s
            while time.monotonic() < deadline:
                with self.lock:
                    busy = sum(self.in_flight.values())
                act = self.db.activity()
                waiting = sum(
                    n for k, n in act.items() if k.endswith(("_queued", "_running", "_processing"))
                )
                if busy == 0 and waiting == 0:
                    reached = True
                    break
                time.sleep(0.1)
            delay = self.rng.uniform(0, 0.5)
        time.sleep(delay)
        with self.lock:
            flight = {k: v for k, v in self.in_flight.items() if v > 0}
        act = self.db.activity()
        self.kill_server()
        active = [k for k in flight if k != "reading"]
        if act.get("doc_processing", 0):
            active.append("ingesting")
        if act.get("refine_running", 0):
            active.append("refining")
        if act.get("ingest_running", 0) and "ingesting" not in active:
            active.append("ingesting")
        return {
            "cycle": self.cycle,
            "target": target,
            "reached": reached,
            "active": sorted(set(active)) or ["idle"],
            "in_flight": flight,
            "server": {k: v for k, v in act.items() if not k.endswith(("_succeeded", "_failed"))},
            "delay_s": round(delay, 3),
        }

    # -- checks ------------------------------------------------------------------------

    def api_state(
        self, http: httpx.Client, user: UserState
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        r = http.get("/api/v1/documents", headers=user.headers)
        r.raise_for_status()
        docs = {str(d["id"]): d for d in r.json()}
        jobs: dict[str, dict[str, Any]] = {}
        offset = 0
        while True:
            r = http.get(f"/api/v1/jobs?limit=100&offset={offset}", headers=user.headers)
            r.raise_for_status()
            page = r.json()
            jobs.update({str(j["job_id"]): j for j in page})
            if len(page) < 100:
                break
            offset += 100
        return docs, jobs

    def check(self, *, final: bool = False) -> dict[str, Any]:
        """The invariants, on a running server with no client running."""
        summary: Counter[str] = Counter()
        with httpx.Client(base_url=self.server.base, timeout=120) as http:
            for user in self.users:
                docs, jobs = self.api_state(http, user)
                for doc_id in sorted(user.expected_docs()):
                    doc = docs.get(doc_id)
                    up = user.uploads[doc_id]
                    if doc is None:
                        self.violation(f"accepted document {up.file} ({doc_id}) vanished")
                        continue
                    self._check_doc(doc, up.file, final=final)
                    summary[f"doc {doc['status']}"] += 1
                for doc_id in sorted(user.deleted & set(docs)):
                    self.violation(f"deleted document {doc_id} (204) is back")
                unknown = set(docs) - set(user.uploads)
                if len(unknown) > user.cut_upload_files:
                    self.violation(
                        f"user {user.index}: {len(unknown)} documents nobody was told about, "
                        f"but only {user.cut_upload_files} files were in cut uploads"
                    )
                for doc_id in unknown:
                    self._check_doc(docs[doc_id], docs[doc_id]["filename"], final=final)
                summary["unknown docs"] += len(unknown)
                for job_id in sorted(user.jobs):
                    job = jobs.get(job_id)
                    if job is None:
                        self.violation(f"accepted refine job {job_id} vanished")
                        continue
                    self._check_job(job, final=final)
                    summary[f"job {job['status']}"] += 1
                unknown_jobs = set(jobs) - set(user.jobs)
                if len(unknown_jobs) > user.cut_jobs:
                    self.violation(
                        f"user {user.index}: {len(unknown_jobs)} jobs nobody was told about, "
                        f"but only {user.cut_jobs} submissions were cut"
                    )
                for job_id in unknown_jobs:
                    self._check_job(jobs[job_id], final=final)
                summary["unknown jobs"] += len(unknown_jobs)
                r = http.get("/api/v1/rag/prompt-template", headers=user.headers)
                r.raise_for_status()
                got = r.json()
                allowed = [user.template_acked, *user.template_maybe]
                current = None if got["is_default"] else got["template"]
                self.template_checks += 1
                if current not in allowed and not (current is None and user.template_acked is None):
                    self.violation(
                        f"user {user.index}: template is {str(current)[:60]!r}, expected the "
                        f"last saved {str(user.template_acked)[:60]!r}"
                        + (
                            f" or one of {len(user.template_maybe)} cut saves"
                            if user.template_maybe
                            else ""
                        )
                    )
                if final:
                    self.unknown_docs_committed += len(unknown)
                    self.unknown_jobs_committed += len(unknown_jobs)
        summary.update(self.check_storage())
        return dict(summary)

    def _check_doc(self, doc: dict[str, Any], name: str, *, final: bool) -> None:
        status = doc["status"]
        if status not in DOC_STATES:
            self.violation(f"document {name} ({doc['id']}) has status {status!r}")
        if status == "failed" and not (doc.get("error") or "").strip():
            self.violation(f"document {name} ({doc['id']}) failed without a reason")
        if status == "indexed" and doc["chunks"] < 1:
            self.violation(f"document {name} ({doc['id']}) indexed with no passages")
        if final and status not in DOC_FINAL:
            self.violation(f"document {name} ({doc['id']}) stuck in {status}: {doc}")

    def _check_job(self, job: dict[str, Any], *, final: bool) -> None:
        status = job["status"]
        if status not in JOB_STATES:
            self.violation(f"job {job['job_id']} has status {status!r}")
        if status == "failed" and not (job.get("error") or "").strip():
            self.violation(f"job {job['job_id']} failed without a reason")
        if final and status not in JOB_FINAL:
            self.violation(f"job {job['job_id']} stuck in {status}")

    def check_storage(self) -> dict[str, int]:
        """Orphan files, rows without a file, and the SQLite integrity check."""
        rows = self.db.documents()
        keys = {key for _, _, key, _, _, _ in rows if key}
        storage = self.data / "storage"
        files: dict[str, Path] = {}
        if storage.is_dir():
            for user_dir in storage.iterdir():
                if user_dir.is_dir():
                    for f in user_dir.iterdir():
                        if f.is_file():
                            files[f"{user_dir.name}/{f.name}"] = f
        orphans = sorted(set(files) - keys)
        for key in orphans:
            seen = self.orphan_files.setdefault(key, [])
            seen.append(self.cycle)
            if len(seen) == 1:  # one violation per file, however many checks still see it
                with contextlib.suppress(OSError):
                    age = time.time() - files[key].stat().st_mtime
                    self.violation(
                        f"orphan file {key} ({files[key].stat().st_size} bytes, {age:.0f} s "
                        "old) after the restart"
                    )
        missing = sorted(keys - set(files))
        for key in missing:
            self.violation(f"document row without its file: {key}")
            self.rows_without_file.append(f"cycle {self.cycle}: {key}")
        result = self.db.integrity()
        if result is not None:
            self.integrity.append(result)
            if result != "ok":
                self.violation(f"SQLite integrity_check: {result}")
        return {"orphan files": len(orphans), "rows without file": len(missing)}

    def deep_check(self) -> dict[str, Any]:
        """With the server stopped: the vector index against the document rows."""
        from pitchcraft.settings import Settings
        from pitchcraft.vectors.qdrant_edge import EdgeIndex

        settings = Settings(_env_file=None, data_dir=self.data)
        rows = self.db.documents()
        by_user: dict[int, dict[str, tuple[str, int]]] = {}
        for doc_id, user_id, _key, status, chunks, _err in rows:
            by_user.setdefault(user_id, {})[doc_id] = (status, chunks)
        out: Counter[str] = Counter()
        index = EdgeIndex(settings.qdrant_dir, settings.embedding_dim)
        try:
            for user_id in self.db.user_ids():
                known = by_user.get(user_id, {})
                ids = index.document_ids(user_id)
                for doc_id in sorted(ids - set(known)):
                    n = index.count(user_id, doc_id)
                    self.violation(f"orphan vectors: {n} points of document {doc_id} (no row)")
                    out["orphan vector documents"] += 1
                    out["orphan points"] += n
                for doc_id, (status, chunks) in known.items():
                    n = index.count(user_id, doc_id) if doc_id in ids else 0
                    if status == "indexed":
                        out["indexed checked"] += 1
                        if n != chunks:
                            self.violation(
                                f"document {doc_id}: {n} points but {chunks} chunks (indexed)"
                            )
                            out["point/chunk mismatches"] += 1
                    elif status == "failed" and n:
                        self.violation(f"failed document {doc_id} still has {n} points")
                        out["failed with points"] += 1
                    out["points"] += n
        finally:
            index.close()
        out.update(self.check_storage())
        return dict(out)

    def settle(self) -> float:
        """Wait until every document and job is final; the seconds it took."""
        started = time.monotonic()
        deadline = started + self.cfg.settle_s
        with httpx.Client(base_url=self.server.base, timeout=120) as http:
            while True:
                pending = 0
                for user in self.users:
                    docs, jobs = self.api_state(http, user)
                    pending += sum(1 for d in docs.values() if d["status"] not in DOC_FINAL)
                    pending += sum(1 for j in jobs.values() if j["status"] not in JOB_FINAL)
                if pending == 0:
                    return time.monotonic() - started
                if time.monotonic() > deadline:
                    self.violation(
                        f"{pending} documents/jobs not finished {self.cfg.settle_s:g} s "
                        "after the last restart"
                    )
                    return time.monotonic() - started
                time.sleep(0.5)

    # -- the whole run -----------------------------------------------------------------

    def register(self) -> None:
        with httpx.Client(base_url=self.server.base, timeout=60) as http:
            for user in self.users:
                r = http.post(
                    "/api/v1/auth/register", json={"email": user.email, "password": PASSWORD}
                )
                if r.status_code != 201:
                    raise RuntimeError(f"register: HTTP {r.status_code} {r.text[:300]}")
                user.token = str(r.json()["access_token"])
                me = http.get("/api/v1/auth/me", headers=user.headers).json()
                user.user_id = int(me["id"])

    def targets(self) -> list[str]:
        phases = list(self.cfg.phases)
        out: list[str] = []
        while len(out) < self.cfg.cycles:
            self.rng.shuffle(phases)
            out.extend(phases)
        return out[: self.cfg.cycles]

    def run(self) -> dict[str, Any]:
        log = self.cfg.log
        log(f"seed {self.cfg.seed}; data in {self.data}")
        self.start_server()
        self.register()
        targets = self.targets()
        cycle_summaries = []
        for n, target in enumerate(targets, start=1):
            self.cycle = n
            threads = self.run_clients()
            kill = self.aim_and_kill(target)
            for t in threads:
                t.join(timeout=150)
            self.kills.append(kill)
            resume = self.start_server()
            self.resume_s.append(resume)
            summary = self.check()
            cycle_summaries.append({"kill": kill, "resume_s": resume, "state": summary})
            log(
                f"cycle {n:>2}: aimed at {target:<9} {'hit' if kill['reached'] else 'missed'}; "
                f"active at kill: {', '.join(kill['active'])}; restart -> healthy {resume:.1f} s; "
                f"{_state_line(summary)}"
            )
            if self.cfg.deep_every and n % self.cfg.deep_every == 0 and n < len(targets):
                self.stop_server()
                deep = self.deep_check()
                self.deep_checks.append({"cycle": n, **deep})
                log(f"          deep check: {deep}")
                self.start_server()
        self.cycle = len(targets) + 1
        log("all cycles done; waiting for every document and job to finish ...")
        settle_s = self.settle()
        final_state = self.check(final=True)
        self.stop_server()
        deep = self.deep_check()
        self.deep_checks.append({"cycle": "final", **deep})
        log(f"final deep check: {deep}")
        return self.report(cycle_summaries, final_state, settle_s)

    def close(self) -> None:
        if self.server.proc is not None and self.server.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.server.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.server.proc.wait(timeout=30)
        if self.pg_schema is not None:
            self.pg_schema.drop()

    # -- the report --------------------------------------------------------------------

    def report(
        self, cycles: list[dict[str, Any]], final_state: dict[str, Any], settle_s: float
    ) -> dict[str, Any]:
        docs = self.db.documents()
        row = {doc_id: (status, error) for doc_id, _u, _k, status, _c, error in docs}
        accepted = [u for user in self.users for u in user.uploads.values()]
        outcome: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        for up in accepted:
            if up.doc_id in row:
                status, error = row[up.doc_id]
                outcome[status] += 1
                if status == "failed":
                    reasons[_reason(error)] += 1
            else:
                outcome["deleted"] += 1
        job_rows = {
            str(j): (str(s), e)
            for j, s, e in self.db.query("SELECT id, status, error FROM jobs WHERE kind='refine'")
        }
        job_outcome: Counter[str] = Counter()
        job_reasons: Counter[str] = Counter()
        for user in self.users:
            for job_id in user.jobs:
                status, error = job_rows.get(job_id, ("vanished", None))
                job_outcome[status] += 1
                if status == "failed":
                    job_reasons[_reason(error)] += 1
        logs = "".join(
            (self.work / f"server-{i:02d}.log").read_text(errors="replace")
            for i in range(self.starts)
            if (self.work / f"server-{i:02d}.log").exists()
        )
        return {
            "seed": self.cfg.seed,
            "config": {
                k: v
                for k, v in self.cfg.__dict__.items()
                if k not in ("log", "extra_env") and not callable(v)
            },
            "cycles": len(self.kills),
            "kills_by_target": dict(Counter(k["target"] for k in self.kills)),
            "kills_target_reached": sum(1 for k in self.kills if k["reached"]),
            "kills_by_active_phase": dict(Counter(p for k in self.kills for p in k["active"])),
            "kills": self.kills,
            "uploads": {
                "accepted_files": len(accepted),
                "refused_up_front": sum(1 for u in accepted if u.refused),
                "cut_files": sum(u.cut_upload_files for u in self.users),
                "committed_without_answer": self.unknown_docs_committed,
                "deleted_acknowledged": sum(len(u.deleted) for u in self.users),
                "outcome": dict(outcome),
                "failure_reasons": dict(reasons),
            },
            "jobs": {
                "accepted": sum(len(u.jobs) for u in self.users),
                "cut_submissions": sum(u.cut_jobs for u in self.users),
                "committed_without_answer": self.unknown_jobs_committed,
                "outcome": dict(job_outcome),
                "failure_reasons": dict(job_reasons),
            },
            "templates": {
                "saves_acknowledged": self.requests.get("template ok", 0),
                "saves_cut": self.requests.get("template cut", 0),
                "checks": self.template_checks,
            },
            "requests": dict(sorted(self.requests.items())),
            "orphan_files": self.orphan_files,
            "survivors": self.survivors,
            "rows_without_file": self.rows_without_file,
            "deep_checks": self.deep_checks,
            "integrity_checks": len(self.integrity),
            "integrity_ok": sum(1 for r in self.integrity if r == "ok"),
            "resume_s": latency_summary(self.resume_s),
            "settle_s": settle_s,
            "final_state": final_state,
            "errors": self.errors,
            "violations": self.violations,
            "server_log": {
                "starts": self.starts,
                "tracebacks": logs.count("Traceback (most recent call last)"),
                "traceback_excerpts": _tracebacks(logs),
                "warnings": dict(
                    Counter(
                        line.split(" WARNING ", 1)[1][:100]
                        for line in logs.splitlines()
                        if " WARNING " in line
                    ).most_common(10)
                ),
                "error_lines": sum(1 for line in logs.splitlines() if " ERROR " in line),
                "resumed_lines": sum(1 for line in logs.splitlines() if "resuming" in line),
                "orphan_sweeps": [
                    line.split("crash: ", 1)[-1]
                    for line in logs.splitlines()
                    if "removed orphans" in line
                ],
            },
            "cycle_details": cycles,
        }


def _tracebacks(logs: str) -> list[str]:
    """For each traceback in the logs: the line before it and the exception line."""
    lines = logs.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j]):
                j += 1
            before = lines[i - 1] if i else ""
            out.append(f"{before[:160]} | {lines[j][:200] if j < len(lines) else '?'}")
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _group_alive(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(stat.parent.name))
    return alive


def _reason(error: str | None) -> str:
    text = (error or "").strip()
    return text[:70] if text else "(no reason)"


def _state_line(summary: dict[str, Any]) -> str:
    parts = [f"{k} {v}" for k, v in sorted(summary.items()) if v]
    return ", ".join(parts)


def _dev_queries() -> list[tuple[str, list[str]]]:
    out = []
    for line in DEV_SET.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            out.append((str(item["query"]), [str(b) for b in item.get("backgrounds") or []]))
    return out or [("We stop ransomware on every laptop.", ["cybersecurity"])]


def run_crash_loop(config: Config, work: Path) -> dict[str, Any]:
    """Run the loop in `work` (a fresh directory); the report (see `CrashLoop.report`)."""
    go_offline()
    llm_ctx: Any = contextlib.nullcontext(None)
    if config.llm:
        from tests.llm_server import FakeLLM

        llm_ctx = FakeLLM(model="fake-model", delay=config.llm_delay)
    with llm_ctx as fake:
        env = fake.env() if fake is not None else None
        loop = CrashLoop(config, work, env)
        try:
            return loop.run()
        finally:
            loop.close()


def print_report(r: dict[str, Any]) -> None:
    banner("crash loop: results")
    up, jobs = r["uploads"], r["jobs"]
    deep = r["deep_checks"][-1] if r["deep_checks"] else {}
    checked = deep.get("indexed checked", 0)
    rows: list[list[Any]] = [
        ["seed", r["seed"]],
        ["cycles (kill -9 of the whole process group)", r["cycles"]],
        [
            "kills aimed at (reached)",
            f"{_counts(r['kills_by_target'])} ({r['kills_target_reached']} reached)",
        ],
        ["phases active at the kill", _counts(r["kills_by_active_phase"])],
        ["accepted uploads (files)", up["accepted_files"]],
        ["  refused up front with a reason", up["refused_up_front"]],
        ["  outcome", _counts(up["outcome"])],
        ["  failure reasons", _counts(up["failure_reasons"])],
        ["uploads cut by a kill (files)", up["cut_files"]],
        ["  of which committed anyway", up["committed_without_answer"]],
        ["accepted refine jobs", jobs["accepted"]],
        ["  outcome", _counts(jobs["outcome"])],
        ["  failure reasons", _counts(jobs["failure_reasons"])],
        [
            "submissions cut (committed anyway)",
            f"{jobs['cut_submissions']} ({jobs['committed_without_answer']})",
        ],
        [
            "template saves acknowledged / cut",
            f"{r['templates']['saves_acknowledged']} / {r['templates']['saves_cut']}",
        ],
        ["template checks (last acknowledged returned)", r["templates"]["checks"]],
        [
            "orphan files after a restart (target 0)",
            f"{len(r['orphan_files'])} distinct, seen by "
            f"{len({c for cs in r['orphan_files'].values() for c in cs})} checks",
        ],
        ["rows without their file (target 0)", len(r["rows_without_file"])],
        ["orphan vector documents, final (target 0)", deep.get("orphan vector documents", 0)],
        [
            "indexed documents with points == chunks",
            f"{checked - deep.get('point/chunk mismatches', 0)} of {checked}",
        ],
        ["failed documents with points (target 0)", deep.get("failed with points", 0)],
        ["SQLite integrity_check ok", f"{r['integrity_ok']} of {r['integrity_checks']}"],
        [
            "restart -> healthy p50 / max s",
            f"{r['resume_s']['p50_ms'] / 1000:.1f} / {r['resume_s']['max_ms'] / 1000:.1f}",
        ],
        ["settle after the last restart s", r["settle_s"]],
        ["unexpected errors (no kill)", len(r["errors"])],
        [
            "server children outliving a kill / a stop",
            f"{sum(1 for s in r['survivors'] if s['after'].startswith('kill'))} / "
            f"{sum(1 for s in r['survivors'] if not s['after'].startswith('kill'))}",
        ],
        [
            "server log: tracebacks / ERROR lines",
            f"{r['server_log']['tracebacks']} / {r['server_log']['error_lines']}",
        ],
        ["invariant violations (target 0)", len(r["violations"])],
    ]
    print(table(["measure", "value"], rows))
    for s in r["survivors"][:10]:
        print(f"  outlived the server (cycle {s['cycle']}, {s['after']}): {s['cmd']}")
    for t in r["server_log"]["traceback_excerpts"][:10]:
        print(f"  server traceback: {t}")
    for w, n in r["server_log"]["warnings"].items():
        print(f"  server warning x{n}: {w}")
    for v in r["violations"][:40]:
        print(f"  VIOLATION {v}")
    for e in r["errors"][:20]:
        print(f"  error {e}")


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: -kv[1])) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crash", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--no-llm", action="store_true", help="evidence mode (no fake model)")
    parser.add_argument("--llm-delay", type=float, default=0.05)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--deep-every", type=int, default=5)
    parser.add_argument("--no-mid", action="store_true", help="no mid-size PDFs")
    parser.add_argument("--think", type=float, nargs=2, default=(0.5, 2.5), metavar=("MIN", "MAX"))
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--quick", action="store_true", help="5 cycles, deep check at the end")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    config = Config(
        cycles=5 if args.quick else args.cycles,
        seed=seed,
        users=args.users,
        llm=not args.no_llm,
        llm_delay=args.llm_delay,
        db=args.db,
        deep_every=0 if args.quick else args.deep_every,
        mid_files=() if args.no_mid else MID_FILES,
        think=(args.think[0], args.think[1]),
    )
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), load {info['loadavg_at_start']}")
    print(f"note: {CPU_NOTE}")
    print(f"seed: {seed}  (rerun with --seed {seed})")
    started = time.perf_counter()
    tmp = tempfile.mkdtemp(prefix="pc-bench-crash-")
    try:
        with CpuShare() as cpu:
            result = run_crash_loop(config, Path(tmp))
    finally:
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"data kept in {tmp}")
    info["loadavg_at_end"] = loadavg()
    result["machine"] = info
    result["cpu"] = cpu.result()
    result["wall_s"] = time.perf_counter() - started
    print_report(result)
    print(
        f"\nwall time {result['wall_s']:.0f} s; CPU: this run {cpu.result()['own_cores']:.2f} "
        f"cores, others {cpu.result()['other_cores']:.2f} cores; "
        f"load {info['loadavg_at_start']} -> {info['loadavg_at_end']}"
    )
    out = write_results("crash", result)
    print(f"results: {out.relative_to(ROOT)}")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
