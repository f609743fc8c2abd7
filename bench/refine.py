"""Refine benchmark: time from Process to result, against the search alone.

A real `pitchcraft serve` indexes a few corpus documents for one user. Then, for each of the
dev-set questions used as marketing text (with its backgrounds):
  * search alone: POST /api/v1/search with the same query and limit the refine step uses;
  * refine: POST /api/v1/rag/process, then GET /api/v1/rag/results/{id} every 5 ms until the
    job is finished — measured by the client (Process to result) and by the job's own
    timestamps (created_at to finished_at, without the polling).
Twice: in evidence mode (no LLM configured) and against the test suite's OpenAI-compatible
server answering at once (zero model latency), so what is left is Pitchcraft's overhead:
the queue hand-over, retrieval, prompt rendering, the model client and citation clean-up.
Both modes run one search per sentence (the claim ledger's evidence) besides the whole-text
search, so the ratio to one search is reported with the number of searches a job ran.

Run: .venv/bin/python -m bench.refine [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import (
    CORPUS,
    DEV_SET,
    CpuShare,
    banner,
    go_offline,
    latency_summary,
    machine,
    ratio,
    table,
    write_results,
)
from bench.ingest import Server, register, upload, wait_indexed

DOCUMENTS = (
    "pdf/reliance.pdf",
    "pdf/fake-memo.pdf",
    "pptx/sample-presentation.pptx",
    "docx/handbook-1p.docx",
    "text/norwich-city.txt",
    "pdf/GeoTopo-komprimiert.pdf",
)
POLL_S = 0.005


def corpus_documents() -> list[Path]:
    return [CORPUS / rel for rel in DOCUMENTS if (CORPUS / rel).exists()]


def texts(limit: int) -> list[tuple[str, list[str]]]:
    out = []
    for line in DEV_SET.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            out.append((item["query"], list(item.get("backgrounds") or [])))
    return out[:limit]


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def measure(server: Server, queries: list[tuple[str, list[str]]], limit: int) -> dict[str, Any]:
    import httpx

    with httpx.Client(timeout=120) as client:
        server.wait_ready(client)
        token = register(client, server.base, f"bench-{uuid.uuid4().hex[:8]}@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        for path in corpus_documents():
            doc_id = upload(client, server.base, token, path, path.name)
            try:
                wait_indexed(client, server.base, token, doc_id, timeout=600)
            except RuntimeError as exc:  # a corpus file meant to fail is no problem here
                print(f"  {path.name}: {exc}", flush=True)
        # Warm both the search path and the job path once.
        client.post(f"{server.base}/api/v1/search", headers=headers, json={"query": "warm up"})
        search_s: list[float] = []
        client_s: list[float] = []
        server_s: list[float] = []
        pickup_s: list[float] = []
        retrieval_ms: list[float] = []
        model_ms: list[float] = []
        searches_per_job: list[int] = []
        failed = 0
        for i, (text, backgrounds) in enumerate([queries[0], *queries]):
            started = time.perf_counter()
            r = client.post(
                f"{server.base}/api/v1/search",
                headers=headers,
                json={"query": text, "backgrounds": backgrounds, "limit": limit},
            )
            r.raise_for_status()
            searched = time.perf_counter() - started

            started = time.perf_counter()
            r = client.post(
                f"{server.base}/api/v1/rag/process",
                headers=headers,
                json={"marketing_text": text, "backgrounds": backgrounds},
            )
            r.raise_for_status()
            job_id = r.json()["job_id"]
            while True:
                job = client.get(
                    f"{server.base}/api/v1/rag/results/{job_id}", headers=headers
                ).json()
                if job["status"] in ("succeeded", "failed"):
                    break
                time.sleep(POLL_S)
            elapsed = time.perf_counter() - started
            if i == 0:
                continue  # the warm-up pair
            if job["status"] != "succeeded":
                failed += 1
                continue
            search_s.append(searched)
            client_s.append(elapsed)
            server_s.append(
                (_parse(job["finished_at"]) - _parse(job["created_at"])).total_seconds()
            )
            pickup_s.append((_parse(job["started_at"]) - _parse(job["created_at"])).total_seconds())
            timings = job.get("timings") or {}
            retrieval_ms.append(float(timings.get("retrieval_ms") or 0))
            model_ms.append(float(timings.get("model_ms") or 0))
            # One search per checked sentence, and one for the whole text.
            searches_per_job.append(1 + len(job.get("claims") or []))
    return {
        "search": latency_summary(search_s),
        "process_to_result_client": latency_summary(client_s),
        "process_to_result_server": latency_summary(server_s),
        "queue_pickup": latency_summary(pickup_s),
        "retrieval_ms_p50": statistics.median(retrieval_ms) if retrieval_ms else None,
        "model_ms_p50": statistics.median(model_ms) if model_ms else None,
        "searches_per_job_mean": statistics.mean(searches_per_job) if searches_per_job else None,
        "failed": failed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10 texts instead of 30")
    args = parser.parse_args(argv)
    go_offline()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from pitchcraft.settings import Settings
    from tests.llm_server import FakeLLM

    limit = Settings(_env_file=None).context_passages * 3  # type: ignore[call-arg]
    queries = texts(10 if args.quick else 30)
    results: dict[str, Any] = {"machine": machine(), "texts": len(queries), "search_limit": limit}
    with tempfile.TemporaryDirectory(prefix="pc-bench-refine-") as tmp, FakeLLM() as fake:
        for mode, env in (("evidence", {}), ("llm", {**fake.env(), "LLM_MAX_RETRIES": "0"})):
            banner(f"{mode} mode")
            work = Path(tmp) / mode
            work.mkdir()
            server = Server(work / "data", work / "server.log", env)
            server.start()
            try:
                with CpuShare() as cpu:
                    results[mode] = measure(server, queries, limit)
                results[mode]["cpu"] = cpu.result()
            finally:
                server.stop()
            if mode == "llm":
                results[mode]["model_requests"] = len(fake.requests)

    rows = []
    for mode in ("evidence", "llm"):
        r = results[mode]
        search_p50 = r["search"]["p50_ms"]
        client_p50 = r["process_to_result_client"]["p50_ms"]
        server_p50 = r["process_to_result_server"]["p50_ms"]
        r["ratio_client_to_search"] = ratio(client_p50, search_p50)
        r["ratio_server_to_search"] = ratio(server_p50, search_p50)
        rows.append(
            [
                mode,
                search_p50,
                client_p50,
                r["process_to_result_client"]["p95_ms"],
                server_p50,
                r["queue_pickup"]["p50_ms"],
                r["retrieval_ms_p50"],
                r["ratio_client_to_search"],
                r["searches_per_job_mean"],
                r["failed"],
            ]
        )
    print()
    print(
        table(
            [
                "mode",
                "search p50 ms",
                "process→result p50",
                "p95",
                "job created→finished p50",
                "queue pickup p50",
                "retrieval p50",
                "ratio to search",
                "searches/job",
                "failed",
            ],
            rows,
        )
    )
    path = write_results("refine", results)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
