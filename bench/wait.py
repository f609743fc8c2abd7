"""Waiting for jobs: do 20 clients waiting in `POST /rag/process` (PROCESS_WAIT_S) stall the
server's other requests?

For each database, a real `pitchcraft serve` (fresh DATA_DIR; for PostgreSQL a throwaway
schema in the `test` database) with PROCESS_WAIT_S set, one in-process worker, and the
local OpenAI-compatible test server (tests/llm_server.py) as its language model, told to
hang on every call longer than the wait, so that every waiter waits the whole time:

1. baseline, idle server: `GET /health` and `POST /api/v1/search` (a dev question on
   norwich-city.txt), one at a time, alternating;
2. the same requests while `--waiters` clients (one thread and connection each) sit in
   `POST /api/v1/rag/process` for the whole wait.

Reported: p50/p95 of each request waiting vs idle and their ratio; the server's thread
count and its open PostgreSQL connections idle vs while the clients wait; what
the waiters got (202 once the wait ran out).

Run: .venv/bin/python -m bench.wait [--waiters 20] [--wait 30] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench import (
    CORPUS,
    CPU_NOTE,
    banner,
    go_offline,
    latency_summary,
    loadavg,
    machine,
    pg_schema,
    ratio,
    table,
    write_results,
)
from bench.crash import ChildServer

PASSWORD = "wait-bench-123"  # noqa: S105  # throwaway accounts on a throwaway server
DOCUMENT = CORPUS / "text" / "norwich-city.txt"
QUERY = "How many goals did Iwan Roberts score for Norwich City?"
TEXT = "Iwan Roberts scored 84 goals for Norwich City."


def _register(c: httpx.Client, base: str, email: str) -> dict[str, str]:
    r = c.post(f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return -1


def _db_ports(pid: int) -> list[int]:
    """The local ports of the server's open connections to PostgreSQL (port 5432): its
    sockets, found in /proc/<pid>/fd, matched with the kernel's connection tables."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = fd.readlink().name
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = []
    for table_path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table_path).read_text().splitlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == 5432 and fields[3] == "01" and fields[9] in inodes:
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))  # 01: ESTABLISHED
    return ports


def _db_connections(pid: int) -> dict[str, int]:
    """The server's PostgreSQL connections by state: `idle` ones sit in its pool, unused;
    any other state (active, idle in transaction) is one a request or job is using."""
    ports = _db_ports(pid)
    if not ports:
        return {}
    import psycopg

    from tests.conftest import PG_URL, _pg_conninfo

    with psycopg.connect(_pg_conninfo(PG_URL), autocommit=True) as pg:
        rows = pg.execute(
            "SELECT coalesce(state, '?'), count(*) FROM pg_stat_activity "
            "WHERE client_port = ANY(%s) GROUP BY 1",
            (ports,),
        ).fetchall()
    return {str(state): int(n) for state, n in rows}


def _sample(
    c: httpx.Client, base: str, headers: dict[str, str], seconds: float, n_max: int
) -> dict[str, list[float]]:
    """/health and search, one at a time, alternating, for `seconds` or `n_max` each."""
    out: dict[str, list[float]] = {"GET /health": [], "POST /search": []}
    until = time.monotonic() + seconds
    while time.monotonic() < until and len(out["POST /search"]) < n_max:
        t = time.perf_counter()
        c.get(f"{base}/health").raise_for_status()
        out["GET /health"].append(time.perf_counter() - t)
        t = time.perf_counter()
        r = c.post(f"{base}/api/v1/search", json={"query": QUERY}, headers=headers)
        r.raise_for_status()
        out["POST /search"].append(time.perf_counter() - t)
    return out


def run_db(db: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tests.llm_server import FakeLLM

    banner(f"{db}: {args.waiters} clients waiting up to {args.wait:g} s")
    schema: Any = None
    fake = FakeLLM(model="fake-model")
    for _ in range(args.waiters + 5):
        fake.timeout(args.wait + 30)  # every call hangs past the wait
    env = {
        **fake.env(),
        "LLM_TIMEOUT_S": str(args.wait + 60),
        "LLM_MAX_RETRIES": "0",
        "PROCESS_WAIT_S": str(args.wait),
        "REGISTER_RATE_LIMIT_PER_CLIENT": "100000/minute",
    }
    if db == "postgresql":
        schema = pg_schema()
        env["DATABASE_URL"] = schema.url
    (work / db).mkdir(parents=True, exist_ok=True)
    server = ChildServer(work / db / "data", work / f"server-{db}.log", env)
    try:
        server.start()
        assert server.proc is not None
        with httpx.Client(timeout=120) as c:
            server.wait_ready(c)
            headers = _register(c, server.base, "searcher@example.com")
            files = [("files", (DOCUMENT.name, DOCUMENT.read_bytes(), "text/plain"))]
            c.post(f"{server.base}/api/v1/documents/upload", files=files, headers=headers)
            while c.get(f"{server.base}/api/v1/documents", headers=headers).json()[0][
                "status"
            ] not in ("indexed", "failed"):
                time.sleep(0.3)
            _sample(c, server.base, headers, 5, 20)  # warm-up, not recorded
            idle_threads = _threads(server.proc.pid)
            idle_conns = _db_connections(server.proc.pid)
            idle = _sample(c, server.base, headers, args.sample_s, args.samples)

            waiter_headers = [
                _register(c, server.base, f"waiter{i}@example.com") for i in range(args.waiters)
            ]
            answers: Counter[str] = Counter()
            lock = threading.Lock()

            def wait_for_job(h: dict[str, str]) -> None:
                with httpx.Client(timeout=args.wait + 60) as own:
                    try:
                        r = own.post(
                            f"{server.base}/api/v1/rag/process",
                            json={"marketing_text": TEXT},
                            headers=h,
                        )
                        key = str(r.status_code)
                    except httpx.HTTPError as exc:
                        key = type(exc).__name__
                with lock:
                    answers[key] += 1

            waiters = [
                threading.Thread(target=wait_for_job, args=(h,), daemon=True)
                for h in waiter_headers
            ]
            started = time.monotonic()
            for t in waiters:
                t.start()
            time.sleep(2)  # all of them are in their wait by now
            busy_threads = _threads(server.proc.pid)
            busy_conns = _db_connections(server.proc.pid)
            # Sample while every client still waits (stop well before the wait runs out).
            window = max(1.0, args.wait - (time.monotonic() - started) - 3)
            waiting = _sample(c, server.base, headers, window, args.samples)
            for t in waiters:
                t.join(args.wait + 90)
    finally:
        server.terminate()
        fake.close()
        if schema is not None:
            schema.drop()
    endpoints = {}
    for ep in idle:
        i, w = latency_summary(idle[ep]), latency_summary(waiting[ep])
        endpoints[ep] = {
            "idle": i,
            "waiting": w,
            "p50_ratio": ratio(w["p50_ms"], i["p50_ms"]),
            "p95_ratio": ratio(w["p95_ms"], i["p95_ms"]),
        }
    result = {
        "db": db,
        "waiters": args.waiters,
        "wait_s": args.wait,
        "endpoints": endpoints,
        "server_threads": {"idle": idle_threads, "waiting": busy_threads},
        "pg_connections": {"idle": idle_conns, "waiting": busy_conns},
        "waiter_answers": dict(answers),
        "server_log_tracebacks": server.log_text().count("Traceback (most recent call last)"),
    }
    print(
        table(
            ["request", "n idle", "n waiting", "idle p50/p95 ms", "waiting p50/p95 ms", "ratio"],
            [
                [
                    ep,
                    v["idle"]["n"],
                    v["waiting"]["n"],
                    f"{v['idle']['p50_ms']:.1f} / {v['idle']['p95_ms']:.1f}",
                    f"{v['waiting']['p50_ms']:.1f} / {v['waiting']['p95_ms']:.1f}",
                    f"{v['p50_ratio']:.2f} / {v['p95_ratio']:.2f}",
                ]
                for ep, v in endpoints.items()
            ],
        )
    )
    print(
        f"server threads idle {idle_threads}, waiting {busy_threads}; "
        f"PostgreSQL connections by state: idle server {idle_conns}, waiting {busy_conns}; "
        f"waiters got {dict(answers)}",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=20)
    parser.add_argument("--wait", type=float, default=30.0, help="PROCESS_WAIT_S of the server")
    parser.add_argument("--samples", type=int, default=60, help="at most, per request kind")
    parser.add_argument("--sample-s", type=float, default=20.0, help="idle sampling time")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    go_offline()
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    with tempfile.TemporaryDirectory(prefix="bench-wait-") as tmp:
        results = [run_db(db, args, Path(tmp)) for db in dbs]
    path = write_results(
        "wait",
        {"machine": machine(), "loadavg": loadavg(), "note": CPU_NOTE, "runs": results},
    )
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
