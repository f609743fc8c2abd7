"""Load: simulated users registering, uploading, searching and refining, on SQLite and PostgreSQL.

For each database, a real `pitchcraft serve` on loopback (fresh DATA_DIR; for PostgreSQL a
throwaway schema in the `test` database, dropped afterwards; registration and sign-in rate
limits raised; everything else at its defaults: one in-process worker, evidence mode, the
embedded Qdrant Edge index):

1. baseline, on the idle server: one user makes the same requests one at a time (register,
   upload -> indexed, search, lists, template read/save, refine -> result);
2. load: `--users` simulated users (threads, one httpx client each), started over a short
   ramp, each: register, upload 1-2 small corpus documents, poll until they are indexed,
   then until `--duration` is over a loop of searches (dev-set queries), refine jobs
   (evidence mode; polled until finished), history reads, template reads and saves, with
   think time between requests.

Reported per endpoint: requests, errors (any status other than the expected one, 429
included, and every connection error or timeout), p50/p95/max, requests/s, and p95 under
load over p95 on the idle server (baseline of the same run); jobs completed per minute;
upload -> indexed and refine -> finished times.

Run: .venv/bin/python -m bench.load [--quick] [--duration 300] [--users 50]
                                    [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import threading
import time
import uuid
from collections import Counter
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
    pg_schema,
    ratio,
    table,
    write_results,
)
from bench.crash import ChildServer

PASSWORD = "load-test-123"  # noqa: S105  # throwaway accounts on a throwaway server
DOCUMENTS = (
    "text/fake-text.txt",
    "text/codeblock.md",
    "text/fake-html.html",
    "pdf/fake-memo.pdf",
    "pdf/minimal-document.pdf",
    "pdf/pdflatex-4-pages.pdf",
    "pptx/simple.pptx",
    "pptx/sample-presentation.pptx",
    "docx/simple.docx",
    "docx/handbook-1p.docx",
)
EXPECTED = {
    "POST /auth/register": 201,
    "POST /documents/upload": 202,
    "POST /rag/process": 202,
}
ACTIONS = {  # the loop after the documents are indexed: action -> weight
    "search": 40,
    "refine": 15,
    "history": 12,
    "documents": 10,
    "template_get": 15,
    "template_save": 8,
}
TEMPLATE = (
    "Load test {n}. Backgrounds: {{{{backgrounds}}}}\n{{{{marketing_text}}}}\n"
    "Sources:\n{{{{context}}}}"
)
POLL_S = 1.0
JOB_TIMEOUT_S = 300.0
INDEX_TIMEOUT_S = 600.0
ENDPOINT_ORDER = (
    "POST /auth/register",
    "POST /documents/upload",
    "GET /documents/{id}",
    "GET /documents",
    "POST /search",
    "POST /rag/process",
    "GET /rag/results/{id}",
    "GET /jobs",
    "GET /rag/prompt-template",
    "POST /rag/prompt-template",
)


@dataclass
class Record:
    endpoint: str
    started: float  # time.monotonic()
    seconds: float
    status: int  # -1: no answer (connection error, timeout)
    detail: str = ""


@dataclass
class Recorder:
    records: list[Record] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    indexed_s: list[float] = field(default_factory=list)  # upload sent -> indexed seen
    doc_failures: Counter[str] = field(default_factory=Counter)
    job_s: list[float] = field(default_factory=list)  # process sent -> finished seen
    job_server_s: list[float] = field(default_factory=list)  # created_at -> finished_at
    jobs_done: list[float] = field(default_factory=list)  # when a finished job was seen
    job_failures: Counter[str] = field(default_factory=Counter)
    unfinished_jobs: int = 0
    unindexed_docs: int = 0

    def add(self, record: Record) -> None:
        with self.lock:
            self.records.append(record)


class Api:
    """One user's client: every request timed and recorded under its endpoint name."""

    def __init__(self, base: str, recorder: Recorder, timeout: float = 120) -> None:
        self.http = httpx.Client(base_url=base, timeout=timeout)
        self.rec = recorder
        self.headers: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def call(self, endpoint: str, method: str, url: str, **kw: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            r = self.http.request(method, url, headers=self.headers, **kw)
        except httpx.HTTPError as exc:
            self.rec.add(
                Record(endpoint, started, time.monotonic() - started, -1, type(exc).__name__)
            )
            return None
        elapsed = time.monotonic() - started
        detail = "" if r.status_code == EXPECTED.get(endpoint, 200) else r.text[:200]
        self.rec.add(Record(endpoint, started, elapsed, r.status_code, detail))
        return r if r.status_code == EXPECTED.get(endpoint, 200) else None

    def register(self, email: str) -> bool:
        r = self.call(
            "POST /auth/register",
            "POST",
            "/api/v1/auth/register",
            json={"email": email, "password": PASSWORD},
        )
        if r is None:
            return False
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return True

    def upload(self, rels: list[str]) -> list[str]:
        handles = [(CORPUS / rel).open("rb") for rel in rels]
        try:
            files = [
                ("files", (Path(rel).name, fh, "application/octet-stream"))
                for rel, fh in zip(rels, handles, strict=True)
            ]
            r = self.call("POST /documents/upload", "POST", "/api/v1/documents/upload", files=files)
        finally:
            for fh in handles:
                fh.close()
        if r is None:
            return []
        return [str(e["id"]) for e in r.json()]

    def wait_indexed(
        self, doc_ids: list[str], sent: float, until: float, poll: float = POLL_S
    ) -> None:
        pending = set(doc_ids)
        while pending and time.monotonic() < until:
            time.sleep(poll)
            for doc_id in sorted(pending):
                r = self.call("GET /documents/{id}", "GET", f"/api/v1/documents/{doc_id}")
                if r is None:
                    continue
                doc = r.json()
                if doc["status"] == "indexed":
                    self.rec.indexed_s.append(time.monotonic() - sent)
                    pending.discard(doc_id)
                elif doc["status"] == "failed":
                    with self.rec.lock:
                        self.rec.doc_failures[str(doc.get("error"))[:80]] += 1
                    pending.discard(doc_id)
        with self.rec.lock:
            self.rec.unindexed_docs += len(pending)

    def refine(self, text: str, backgrounds: list[str], until: float, poll: float) -> None:
        sent = time.monotonic()
        r = self.call(
            "POST /rag/process",
            "POST",
            "/api/v1/rag/process",
            json={"marketing_text": text, "backgrounds": backgrounds},
        )
        if r is None:
            return
        job_id = r.json()["job_id"]
        deadline = min(until, sent + JOB_TIMEOUT_S)
        while time.monotonic() < deadline:
            time.sleep(poll)
            r = self.call("GET /rag/results/{id}", "GET", f"/api/v1/rag/results/{job_id}")
            if r is None:
                continue
            body = r.json()
            if body["status"] in ("succeeded", "failed"):
                now = time.monotonic()
                with self.rec.lock:
                    self.rec.job_s.append(now - sent)
                    self.rec.jobs_done.append(now)
                    if body["status"] == "failed":
                        self.rec.job_failures[str(body.get("error"))[:80]] += 1
                    server_s = _server_seconds(body)
                    if server_s is not None:
                        self.rec.job_server_s.append(server_s)
                return
        with self.rec.lock:
            self.rec.unfinished_jobs += 1

    def search(self, query: str, backgrounds: list[str]) -> None:
        self.call(
            "POST /search",
            "POST",
            "/api/v1/search",
            json={"query": query, "backgrounds": backgrounds, "limit": 5},
        )

    def history(self) -> None:
        self.call("GET /jobs", "GET", "/api/v1/jobs?limit=20")

    def documents(self) -> None:
        self.call("GET /documents", "GET", "/api/v1/documents")

    def template_get(self) -> None:
        self.call("GET /rag/prompt-template", "GET", "/api/v1/rag/prompt-template")

    def template_save(self, n: int) -> None:
        self.call(
            "POST /rag/prompt-template",
            "POST",
            "/api/v1/rag/prompt-template",
            json={"template": TEMPLATE.format(n=n)},
        )


def _server_seconds(body: dict[str, Any]) -> float | None:
    from datetime import datetime

    try:
        created = datetime.fromisoformat(str(body["created_at"]).replace("Z", "+00:00"))
        finished = datetime.fromisoformat(str(body["finished_at"]).replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError):
        return None
    return (finished - created).total_seconds()


def dev_queries() -> list[tuple[str, list[str]]]:
    out = []
    for line in DEV_SET.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            out.append((str(item["query"]), [str(b) for b in item.get("backgrounds") or []]))
    return out


# ---------------------------------------------------------------------------------------


def baseline(base: str, queries: list[tuple[str, list[str]]], n: int) -> Recorder:
    """The same requests, one at a time, on the idle server (after an unrecorded warm-up:
    the embedding model loads on the first upload and the first search after start)."""
    warm = Api(base, Recorder())
    try:
        warm.register(f"warm-{uuid.uuid4().hex[:8]}@example.com")
        sent = time.monotonic()
        warm.wait_indexed(warm.upload([DOCUMENTS[0]]), sent, sent + INDEX_TIMEOUT_S)
        for query, backgrounds in queries[:3]:
            warm.search(query, backgrounds)
        warm.refine(*queries[0], until=time.monotonic() + JOB_TIMEOUT_S, poll=0.05)
    finally:
        warm.close()
    rec = Recorder()
    api = Api(base, rec)
    try:
        for i in range(max(3, n // 4)):
            api.register(f"base-{i}-{uuid.uuid4().hex[:8]}@example.com")
        doc_ids: list[str] = []
        for rel in DOCUMENTS[:4]:
            sent = time.monotonic()
            ids = api.upload([rel])
            api.wait_indexed(ids, sent, time.monotonic() + INDEX_TIMEOUT_S, poll=0.1)
            doc_ids.extend(ids)
        for i in range(n):
            query, backgrounds = queries[i % len(queries)]
            api.search(query, backgrounds)
            api.documents()
            api.history()
            api.template_get()
            api.template_save(i)
            if doc_ids:
                api.call(
                    "GET /documents/{id}",
                    "GET",
                    f"/api/v1/documents/{doc_ids[i % len(doc_ids)]}",
                )
        for i in range(max(3, n // 3)):
            query, backgrounds = queries[i % len(queries)]
            api.refine(query, backgrounds, time.monotonic() + JOB_TIMEOUT_S, poll=0.05)
    finally:
        api.close()
    return rec


def simulated_user(
    base: str,
    rec: Recorder,
    index: int,
    start_at: float,
    until: float,
    queries: list[tuple[str, list[str]]],
    seed: int,
    think: tuple[float, float],
) -> None:
    rng = random.Random(seed)
    time.sleep(max(0.0, start_at - time.monotonic()))
    api = Api(base, rec)
    try:
        if not api.register(f"load-{index}-{uuid.uuid4().hex[:8]}@example.com"):
            return
        rels = rng.sample(DOCUMENTS, rng.choice((1, 2)))
        sent = time.monotonic()
        ids = api.upload(rels)
        api.wait_indexed(ids, sent, until)
        names, weights = list(ACTIONS), list(ACTIONS.values())
        saves = 0
        while time.monotonic() < until:
            time.sleep(rng.uniform(*think))
            if time.monotonic() >= until:
                break
            action = rng.choices(names, weights)[0]
            query, backgrounds = rng.choice(queries)
            if action == "search":
                api.search(query, backgrounds)
            elif action == "refine":
                api.refine(query, backgrounds, until, poll=POLL_S)
            elif action == "history":
                api.history()
            elif action == "documents":
                api.documents()
            elif action == "template_get":
                api.template_get()
            else:
                saves += 1
                api.template_save(saves)
    finally:
        api.close()


def summarise(rec: Recorder, window: float | None) -> dict[str, dict[str, Any]]:
    by: dict[str, list[Record]] = {}
    for r in rec.records:
        by.setdefault(r.endpoint, []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for endpoint, records in by.items():
        ok = [r.seconds for r in records if r.status == EXPECTED.get(endpoint, 200)]
        errors = [r for r in records if r.status != EXPECTED.get(endpoint, 200)]
        out[endpoint] = {
            **latency_summary(ok),
            "count": len(records),
            "errors": len(errors),
            "error_kinds": dict(
                Counter(f"{r.status} {_short(r.detail)}".strip() for r in errors).most_common(5)
            ),
            "per_s": len(records) / window if window else None,
        }
    return out


def _short(detail: str) -> str:
    match = re.search(r'"code":\s*"([^"]+)"', detail)
    return match.group(1) if match else detail[:60]


def run_db(db: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    banner(f"{db}: {args.users} users for {args.duration:g} s")
    env = {
        "REGISTER_RATE_LIMIT_PER_CLIENT": "100000/minute",
        "REFINE_RATE_LIMIT_PER_USER": "100000/minute",
        "LOGIN_RATE_LIMIT_PER_CLIENT": "100000/minute",
        "LOGIN_RATE_LIMIT_PER_EMAIL": "100000/minute",
        "LOGIN_RATE_LIMIT_PER_EMAIL_CLIENT": "100000/minute",
        # The per-user limits would refuse the load's uploads (0: unlimited).
        "USER_UPLOADS_PER_HOUR": "0",
        "USER_QUEUED_DOCUMENTS": "0",
        "USER_STORAGE_QUOTA_MB": "0",
    }
    schema: Any = None
    if db == "postgresql":
        schema = pg_schema()
        env["DATABASE_URL"] = schema.url
    server = ChildServer(work / db / "data", work / f"server-{db}.log", env)
    (work / db).mkdir(parents=True, exist_ok=True)
    queries = dev_queries()
    try:
        server.start()
        with httpx.Client() as probe:
            server.wait_ready(probe)
            # the model loads in the background after start: wait until a search is quick
        print("baseline: one user, one request at a time, idle server ...", flush=True)
        base_rec = baseline(server.base, queries, args.baseline_n)
        base = summarise(base_rec, None)
        print(
            f"  search p50 {base.get('POST /search', {}).get('p50_ms', float('nan')):.0f} ms; "
            f"upload -> indexed p50 {latency_summary(base_rec.indexed_s)['p50_ms']:.0f} ms",
            flush=True,
        )
        rec = Recorder()
        seed = args.seed
        ramp = min(15.0, args.duration / 6)
        started = time.monotonic()
        until = started + args.duration
        threads = [
            threading.Thread(
                target=simulated_user,
                args=(
                    server.base,
                    rec,
                    i,
                    started + ramp * i / max(1, args.users),
                    until,
                    queries,
                    seed * 1000 + i,
                    tuple(args.think),
                ),
                name=f"user-{i}",
                daemon=True,
            )
            for i in range(args.users)
        ]
        print(f"load: {args.users} users, ramp {ramp:.0f} s ...", flush=True)
        with CpuShare() as cpu:
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=args.duration + JOB_TIMEOUT_S + 120)
        window = time.monotonic() - started
        load = summarise(rec, window)
    finally:
        server.terminate()
        if schema is not None:
            schema.drop()
    log = server.log_text()
    total = sum(v["count"] for v in load.values())
    errors = sum(v["errors"] for v in load.values())
    ratios = {
        ep: ratio(load[ep]["p95_ms"], base[ep]["p95_ms"])
        for ep in load
        if ep in base and base[ep]["n"]
    }
    in_window = [t for t in rec.jobs_done if t <= started + args.duration]
    result = {
        "db": db,
        "users": args.users,
        "duration_s": args.duration,
        "window_s": window,
        "requests": total,
        "errors": errors,
        "requests_per_s": total / window,
        "endpoints": load,
        "baseline": base,
        "p95_ratio_load_over_idle": ratios,
        "jobs_completed": len(rec.jobs_done),
        "jobs_per_minute": len(in_window) / (args.duration / 60),
        "jobs_unfinished_at_end": rec.unfinished_jobs,
        "job_failures": dict(rec.job_failures),
        "refine_client_s": latency_summary(rec.job_s),
        "refine_server_s": latency_summary(rec.job_server_s),
        "refine_baseline_s": latency_summary(base_rec.job_s),
        "upload_to_indexed": latency_summary(rec.indexed_s),
        "upload_to_indexed_baseline": latency_summary(base_rec.indexed_s),
        "documents_not_indexed_in_time": rec.unindexed_docs,
        "document_failures": dict(rec.doc_failures),
        "cpu": cpu.result(),
        "server_log": {
            "tracebacks": log.count("Traceback (most recent call last)"),
            "error_lines": sum(1 for line in log.splitlines() if " ERROR " in line),
            "5xx": len(re.findall(r'" 5\d\d ', log)),
        },
    }
    print_db(result)
    return result


def print_db(r: dict[str, Any]) -> None:
    banner(f"{r['db']}: {r['users']} users, {r['duration_s']:g} s")
    rows = []
    for ep in [*ENDPOINT_ORDER, *sorted(set(r["endpoints"]) - set(ENDPOINT_ORDER))]:
        s = r["endpoints"].get(ep)
        if s is None:
            continue
        b = r["baseline"].get(ep, {})
        rows.append(
            [
                ep,
                s["count"],
                s["errors"],
                s["p50_ms"],
                s["p95_ms"],
                s["max_ms"],
                s["per_s"],
                b.get("p95_ms"),
                r["p95_ratio_load_over_idle"].get(ep),
            ]
        )
    print(
        table(
            [
                "endpoint",
                "n",
                "errors",
                "p50 ms",
                "p95 ms",
                "max ms",
                "req/s",
                "idle p95 ms",
                "p95 load/idle",
            ],
            rows,
        )
    )
    up, upb = r["upload_to_indexed"], r["upload_to_indexed_baseline"]
    rj, rb = r["refine_client_s"], r["refine_baseline_s"]
    sl, failed_docs = r["server_log"], sum(r["document_failures"].values())
    print(
        table(
            ["measure", "value"],
            [
                ["requests (errors)", f"{r['requests']} ({r['errors']})"],
                ["throughput req/s", r["requests_per_s"]],
                [
                    "refine jobs completed (per minute)",
                    f"{r['jobs_completed']} ({r['jobs_per_minute']:.1f})",
                ],
                ["refine jobs unfinished at the end", r["jobs_unfinished_at_end"]],
                ["refine job failures", _counts(r["job_failures"])],
                [
                    "refine submit -> finished p50 / p95 s",
                    f"{rj['p50_ms'] / 1000:.1f} / {rj['p95_ms'] / 1000:.1f}",
                ],
                [
                    "  idle baseline p50 / p95 s",
                    f"{rb['p50_ms'] / 1000:.2f} / {rb['p95_ms'] / 1000:.2f}",
                ],
                [
                    "upload -> indexed p50 / p95 s",
                    f"{up['p50_ms'] / 1000:.1f} / {up['p95_ms'] / 1000:.1f} (n {up['n']})",
                ],
                [
                    "  idle baseline p50 / p95 s",
                    f"{upb['p50_ms'] / 1000:.2f} / {upb['p95_ms'] / 1000:.2f}",
                ],
                [
                    "documents not indexed in time / failed",
                    f"{r['documents_not_indexed_in_time']} / {failed_docs}",
                ],
                [
                    "CPU: this run / others (cores)",
                    f"{r['cpu']['own_cores']:.2f} / {r['cpu']['other_cores']:.2f}",
                ],
                [
                    "server log: tracebacks / ERROR / 5xx",
                    f"{sl['tracebacks']} / {sl['error_lines']} / {sl['5xx']}",
                ],
            ],
        )
    )
    for ep, s in r["endpoints"].items():
        if s["errors"]:
            print(f"  errors {ep}: {s['error_kinds']}")


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=None, help="seconds (default 300)")
    parser.add_argument("--users", type=int, default=None, help="simulated users (default 50)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--quick", action="store_true", help="60 s, 20 users")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"))
    parser.add_argument("--baseline-n", type=int, default=20, help="idle requests per endpoint")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 60.0 if args.quick else 300.0
    if args.users is None:
        args.users = 20 if args.quick else 50
    go_offline()
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), load {info['loadavg_at_start']}")
    print(f"note: {CPU_NOTE}")
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="pc-bench-load-") as tmp:
        for db in dbs:
            results.append(run_db(db, args, Path(tmp)))
    info["loadavg_at_end"] = loadavg()
    wall = time.perf_counter() - started
    print(
        f"\nwall time {wall:.0f} s; "
        f"load average {info['loadavg_at_start']} -> {info['loadavg_at_end']}"
    )
    out = write_results(
        "load",
        {
            "benchmark": "load",
            "quick": args.quick,
            "users": args.users,
            "duration_s": args.duration,
            "think_s": list(args.think),
            "machine": info,
            "wall_s": wall,
            "databases": results,
        },
    )
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
