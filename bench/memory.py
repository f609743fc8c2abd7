"""Memory and responsiveness of a real `pitchcraft serve` while a large document ingests.

One run, against a fresh DATA_DIR (SQLite, Qdrant Edge, the local model):

1. idle: one small document indexed, a few searches done (the model loaded), then the PSS
   of the whole process tree (server, parse forkserver, any children) — PSS splits pages
   shared between processes, so the sum is what the tree really holds;
2. search p50/p95 on that idle server (one request at a time, every 0.2 s);
3. a second user uploads large/DA-619p.pdf; while it ingests: the tree's peak PSS
   (sampled every 0.25 s), the same search probe, and one refine job (evidence mode: no
   language model configured) submitted a few seconds into the embedding — when it starts
   and finishes after its request, and whether the ingestion was still running then;
4. search p95 during ingestion ÷ idle, and the upload → indexed time.

`--compare DIR` runs the same against another checkout's `src` (for instance the main
branch, with torch) first, so both sets of figures come from the same machine and hour.

    .venv/bin/python -m bench.memory [--quick] [--compare /path/to/checkout]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import (
    CORPUS,
    CPU_NOTE,
    ROOT,
    banner,
    loadavg,
    machine,
    ratio,
    table,
    write_results,
)
from bench.ingest import (
    SearchProbe,
    Server,
    TreeMemory,
    _descendants,
    _pss_kib,
    dev_queries,
    pdf_slice,
    register,
    upload,
    wait_indexed,
    wait_processing,
)

BIG = "large/DA-619p.pdf"
SMALL = "text/norwich-city.txt"
QUICK_PAGES = 150
REFINE_TEXT = (
    "Our platform cuts onboarding time in half and is certified to ISO 27001. "
    "Customers in 40 countries rely on it every day."
)


def tree_pss_mib(root: int) -> float:
    return sum(_pss_kib(pid) for pid in _descendants(root)) / 1024


def idle_pss(root: int, samples: int = 6, gap: float = 0.5) -> float:
    values = []
    for _ in range(samples):
        values.append(tree_pss_mib(root))
        time.sleep(gap)
    return statistics.median(values)


def refine_during(
    client: Any, base: str, token: str, big_doc: str, big_token: str
) -> dict[str, Any]:
    """Submit one refine job now; until it ends, note when it started and finished."""
    headers = {"Authorization": f"Bearer {token}"}
    submitted = time.perf_counter()
    r = client.post(
        f"{base}/api/v1/rag/process",
        headers=headers,
        json={"marketing_text": REFINE_TEXT, "backgrounds": []},
        timeout=60,
    )
    r.raise_for_status()
    job_id = r.json()["job_id"]
    started_s = None
    while True:
        body = client.get(f"{base}/api/v1/rag/results/{job_id}", headers=headers, timeout=60).json()
        now = time.perf_counter() - submitted
        if started_s is None and body.get("started_at"):
            started_s = now
        if body["status"] in ("succeeded", "failed", "cancelled"):
            break
        if now > 1800:
            raise RuntimeError(f"refine job stuck: {body}")
        time.sleep(0.05)
    big = client.get(
        f"{base}/api/v1/documents/{big_doc}",
        headers={"Authorization": f"Bearer {big_token}"},
        timeout=60,
    ).json()
    timings = body.get("timings") or {}
    return {
        "status": body["status"],
        "error": body.get("error"),
        "mode": body.get("mode"),
        "seen_started_s": started_s,
        "finished_s": now,
        "queued_ms": timings.get("queued_ms"),
        "total_ms": timings.get("total_ms"),
        "ingestion_status_at_finish": big["status"],
        "ingestion_progress_at_finish": big.get("progress"),
    }


def run(label: str, src: Path | None, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import httpx

    banner(f"{label}: {src or 'this checkout'}")
    extra = {"PYTHONPATH": str(src)} if src else {}
    data = work / label
    data.mkdir()
    server = Server(data, work / f"{label}.log", extra_env=extra)
    root = server.start()
    big_path = CORPUS / BIG
    if args.quick:
        big_path = pdf_slice(big_path, QUICK_PAGES, work)
    result: dict[str, Any] = {"label": label, "src": str(src) if src else str(ROOT / "src")}
    try:
        with httpx.Client() as client:
            server.wait_ready(client)
            reader = register(client, server.base, f"reader-{label}@example.com")
            small = upload(client, server.base, reader, CORPUS / SMALL, Path(SMALL).name)
            wait_indexed(client, server.base, reader, small)
            probe = SearchProbe(server.base, reader, dev_queries(), interval=args.probe_interval)
            probe.run_fixed("warm", 5)
            time.sleep(args.settle)
            result["idle_tree_pss_mib"] = idle_pss(root)
            print(f"idle tree PSS: {result['idle_tree_pss_mib']:.0f} MiB")
            probe.run_fixed("idle", args.idle_probes)

            memory = TreeMemory(root, interval=0.25)
            memory.start()
            uploader = register(client, server.base, f"uploader-{label}@example.com")
            uploaded = time.perf_counter()
            big = upload(client, server.base, uploader, big_path, big_path.name)
            wait_processing(client, server.base, uploader, big)
            probe.start("ingest")
            time.sleep(args.refine_after)
            result["refine"] = refine_during(client, server.base, reader, big, uploader)
            print(f"refine during ingestion: {result['refine']}")
            doc = wait_indexed(client, server.base, uploader, big, timeout=7200)
            result["ingest_s"] = time.perf_counter() - uploaded
            probe.stop()
            memory.stop()
            result["chunks"] = doc.get("chunk_count") or doc.get("chunks")
            result["memory"] = memory.report()
            result["search_idle"] = probe.summary("idle")
            result["search_ingest"] = probe.summary("ingest")
            result["search_p95_ratio"] = ratio(
                result["search_ingest"]["p95_ms"], result["search_idle"]["p95_ms"]
            )
    finally:
        server.stop()
    return result


def report(results: list[dict[str, Any]]) -> None:
    rows = []
    for key, name in (
        ("idle_tree_pss_mib", "idle: whole tree PSS, MiB (target ≤ 500)"),
        ("peak_pss", "peak tree PSS while ingesting, MiB (target ≤ 1024)"),
        ("server_hwm", "server VmHWM while ingesting, MiB"),
        ("ingest_s", "upload → indexed, s"),
        ("refine_start", "refine job: request → started, s (target ≤ 5)"),
        ("refine_end", "refine job: request → finished, s (target ≤ 20)"),
        ("refine_queued", "refine job: timings.queued_ms"),
        ("refine_before", "ingestion still running when the job finished"),
        ("idle_p95", "search p50 / p95 idle, ms"),
        ("ingest_p95", "search p50 / p95 while ingesting, ms"),
        ("search_p95_ratio", "search p95 while ingesting ÷ idle"),
    ):
        row = [name]
        for r in results:
            refine = r["refine"]
            value: Any = {
                "peak_pss": r["memory"]["tree_peak_pss_sum_mib"],
                "server_hwm": r["memory"]["server_vmhwm_mib"],
                "refine_start": refine["seen_started_s"],
                "refine_end": refine["finished_s"],
                "refine_queued": refine["queued_ms"],
                "refine_before": refine["ingestion_status_at_finish"] != "indexed",
                "idle_p95": f"{r['search_idle']['p50_ms']:.0f} / {r['search_idle']['p95_ms']:.0f}",
                "ingest_p95": (
                    f"{r['search_ingest']['p50_ms']:.0f} / {r['search_ingest']['p95_ms']:.0f}"
                ),
            }.get(key, r.get(key))
            row.append(f"{value:.2f}" if isinstance(value, float) else str(value))
        rows.append(row)
    print(table(["", *[r["label"] for r in results]], rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_PAGES} pages")
    parser.add_argument("--compare", type=Path, help="another checkout, run first as a baseline")
    parser.add_argument("--idle-probes", type=int, default=40)
    parser.add_argument("--probe-interval", type=float, default=0.2)
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before measuring")
    parser.add_argument("--refine-after", type=float, default=5.0)
    args = parser.parse_args(argv)
    info = machine()
    print(f"machine: {info['cpus']} CPUs, load {info['loadavg_at_start']}\nnote: {CPU_NOTE}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        if args.compare:
            results.append(run("compare", args.compare.resolve() / "src", args, Path(tmp)))
        results.append(run("this", None, args, Path(tmp)))
    info["loadavg_at_end"] = loadavg()
    report(results)
    out = write_results(
        "memory", {"benchmark": "memory", "quick": args.quick, "machine": info, "runs": results}
    )
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
