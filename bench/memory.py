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
4. search p95 during ingestion ÷ idle, and the upload → indexed time;
5. the multilingual enrichment that follows (issue 21: e5 vectors added after `indexed`, in
   a low-priority lane): once the document's `multilingual` is "running", one more refine
   job (its start after the request), the same PSS sampling and search probe until
   "done"; passages/s and minutes from `indexed` to `multilingual: done`.

The idle figure is taken once the small document's own enrichment is done (e5 loaded), so
it is the idle server of a default configuration (MULTILINGUAL_SEARCH=on).

`--compare DIR` runs the same against another checkout's `src` (for instance the main
branch, with torch) first, so both sets of figures come from the same machine and hour.

    .venv/bin/python -m bench.memory [--quick] [--compare /path/to/checkout] [--enrich-timeout S]
"""

from __future__ import annotations

import argparse
import os
import re
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
# Issue 20's memory targets (MiB) and issue 21's allowance for e5 on top (100 MB in MiB).
IDLE_TARGET_MIB, PEAK_TARGET_MIB, E5_ALLOWANCE_MIB = 500, 1024, 100e6 / 2**20
_ENRICHED_LINE = re.compile(
    r"enriched document (\S+): (\d+) passages with multilingual vectors in ([\d.]+)s"
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
        # An older checkout (--compare) has no multilingual field: "off".
        "multilingual_at_finish": big.get("multilingual", "off"),
        "multilingual_progress_at_finish": big.get("multilingual_progress"),
    }


def wait_multilingual(
    client: Any, base: str, token: str, doc_id: str, states: set[str], timeout: float
) -> tuple[dict[str, Any], bool]:
    """Poll the document list until the document's `multilingual` is one of `states`;
    (the document, whether it timed out instead) — a timeout keeps the figures so far."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(
            f"{base}/api/v1/documents", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        r.raise_for_status()
        doc: dict[str, Any] | None = next((d for d in r.json() if d["id"] == doc_id), None)
        if doc is None:
            raise RuntimeError(f"document {doc_id} is not in its owner's list")
        if doc.get("multilingual", "off") in states:
            return doc, False
        if time.monotonic() > deadline:
            return doc, True
        time.sleep(0.25)


def enrichment(
    client: Any,
    server: Server,
    reader: str,
    uploader: str,
    big: str,
    indexed: float,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """From `indexed` (perf_counter `indexed`) until the big document's `multilingual` is
    "done": a refine job a few seconds into the "running" state, the times, passages/s."""
    base = server.base
    out: dict[str, Any] = {}
    doc, timed_out = wait_multilingual(
        client, base, uploader, big, {"running", "done", "off"}, args.enrich_timeout
    )
    out["indexed_to_running_s"] = time.perf_counter() - indexed
    out["state_seen"] = doc.get("multilingual", "off")
    if out["state_seen"] == "off" or timed_out:
        out["timed_out"] = timed_out
        return out
    if out["state_seen"] == "running":
        time.sleep(args.refine_after)
        refine = refine_during(client, base, reader, big, uploader)
        out["refine"] = refine
        print(f"refine during enrichment: {refine}")
    remaining = max(1.0, args.enrich_timeout - (time.perf_counter() - indexed))
    doc, timed_out = wait_multilingual(client, base, uploader, big, {"done", "off"}, remaining)
    seconds = time.perf_counter() - indexed
    chunks = doc.get("chunks") or 0
    out.update(
        timed_out=timed_out,
        final_state=doc.get("multilingual"),
        final_progress=doc.get("multilingual_progress"),
        chunks=chunks,
        indexed_to_done_s=seconds,
        indexed_to_done_min=seconds / 60,
        # Passages enriched so far ÷ the time so far (the whole document once done).
        passages_per_s=chunks * (doc.get("multilingual_progress") or 0.0) / seconds,
    )
    for match in _ENRICHED_LINE.finditer(server.log_text()):
        if match.group(1) == big:
            out["server_log_passages"] = int(match.group(2))
            out["server_log_s"] = float(match.group(3))
            out["server_log_passages_per_s"] = int(match.group(2)) / float(match.group(3))
    print(f"enrichment: {out}")
    return out


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
            # The idle server holds e5 as well once the small document is enriched.
            wait_multilingual(client, server.base, reader, small, {"done", "off"}, 600)
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
            indexed = time.perf_counter()
            result["ingest_s"] = indexed - uploaded
            memory.stop()
            enrich_memory = TreeMemory(root, interval=0.25)
            enrich_memory.start()
            probe.phase = "enrich"  # the probe keeps running through the enrichment
            result["chunks"] = doc.get("chunk_count") or doc.get("chunks")
            result["memory"] = memory.report()
            result["enrich"] = enrichment(client, server, reader, uploader, big, indexed, args)
            probe.stop()
            enrich_memory.stop()
            result["enrich"]["memory"] = enrich_memory.report()
            result["enrich"]["after_tree_pss_mib"] = idle_pss(root)
            result["search_enrich"] = probe.summary("enrich")
            result["search_p95_enrich_ratio"] = ratio(
                result["search_enrich"]["p95_ms"], probe.summary("idle")["p95_ms"]
            )
            result["search_idle"] = probe.summary("idle")
            result["search_ingest"] = probe.summary("ingest")
            result["search_p95_ratio"] = ratio(
                result["search_ingest"]["p95_ms"], result["search_idle"]["p95_ms"]
            )
    finally:
        server.stop()
    return result


ROWS = (
    (
        "idle_tree_pss_mib",
        f"idle: whole tree PSS, MiB (target ≤ {IDLE_TARGET_MIB}, + 100 MB with e5)",
    ),
    ("peak_pss", f"peak tree PSS while ingesting, MiB (target ≤ {PEAK_TARGET_MIB})"),
    ("server_hwm", "server VmHWM while ingesting, MiB"),
    ("ingest_s", "upload → indexed, s"),
    ("refine_start", "refine job: request → started, s (target ≤ 5)"),
    ("refine_end", "refine job: request → finished, s (target ≤ 20)"),
    ("refine_queued", "refine job: timings.queued_ms"),
    ("refine_before", "ingestion still running when the job finished"),
    ("idle_p95", "search p50 / p95 idle, ms"),
    ("ingest_p95", "search p50 / p95 while ingesting, ms"),
    ("search_p95_ratio", "search p95 while ingesting ÷ idle"),
    ("enrich_min", "enrichment: indexed → multilingual done, min"),
    ("enrich_rate", "enrichment: passages/s (passages ÷ indexed → done)"),
    ("enrich_log", "enrichment: server log, passages in s (running only)"),
    ("enrich_refine_start", "refine job while enriching: request → started, s (target ≤ 5)"),
    ("enrich_refine_end", "refine job while enriching: request → finished, s"),
    ("enrich_refine_before", "enrichment still running when that job finished"),
    (
        "enrich_peak",
        f"peak tree PSS while enriching, MiB (target ≤ {PEAK_TARGET_MIB + E5_ALLOWANCE_MIB:.0f})",
    ),
    ("enrich_after", "tree PSS after the enrichment, MiB"),
    ("enrich_p95", "search p50 / p95 while enriching, ms"),
    ("search_p95_enrich_ratio", "search p95 while enriching ÷ idle"),
)


def _p50_p95(summary: dict[str, Any] | None) -> str:
    return f"{summary['p50_ms']:.0f} / {summary['p95_ms']:.0f}" if summary else "—"


def _value(r: dict[str, Any], key: str) -> Any:
    refine, enrich = r["refine"], r.get("enrich") or {}
    enrich_refine = enrich.get("refine") or {}
    log_s = enrich.get("server_log_s")
    values: dict[str, Any] = {
        "peak_pss": r["memory"]["tree_peak_pss_sum_mib"],
        "server_hwm": r["memory"]["server_vmhwm_mib"],
        "refine_start": refine["seen_started_s"],
        "refine_end": refine["finished_s"],
        "refine_queued": refine["queued_ms"],
        "refine_before": refine["ingestion_status_at_finish"] != "indexed",
        "idle_p95": _p50_p95(r["search_idle"]),
        "ingest_p95": _p50_p95(r["search_ingest"]),
        "enrich_min": enrich.get("indexed_to_done_min"),
        "enrich_rate": enrich.get("passages_per_s"),
        "enrich_log": f"{enrich['server_log_passages']} in {log_s:.0f}" if log_s else None,
        "enrich_refine_start": enrich_refine.get("seen_started_s"),
        "enrich_refine_end": enrich_refine.get("finished_s"),
        "enrich_refine_before": (
            enrich_refine["multilingual_at_finish"] != "done" if enrich_refine else None
        ),
        "enrich_peak": (enrich.get("memory") or {}).get("tree_peak_pss_sum_mib"),
        "enrich_after": enrich.get("after_tree_pss_mib"),
        "enrich_p95": _p50_p95(r.get("search_enrich")),
    }
    return values.get(key, r.get(key))


def report(results: list[dict[str, Any]]) -> None:
    rows = []
    for key, name in ROWS:
        row = [name]
        for r in results:
            value = _value(r, key)
            row.append(
                f"{value:.2f}" if isinstance(value, float) else "—" if value is None else str(value)
            )
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
    parser.add_argument(
        "--enrich-timeout",
        type=float,
        default=3600.0,
        help="seconds from indexed to multilingual done before the figures so far are kept",
    )
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
