"""Benchmarks for Pitchcraft: `python -m bench.ingest` and `python -m bench.search`.

Each benchmark measures a baseline in the same run and reports ratios against it, never
absolute timings checked against a threshold: the machine (2 cores) is shared with other
work, so only what was measured side by side is comparable. Results are printed and
written to ``bench/results/<name>-<timestamp>.json``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SHARED = Path(os.environ.get("BENCH_SHARED", "/work/shared"))
CORPUS = SHARED / "corpus"
DEV_SET = SHARED / "eval" / "retrieval-dev.jsonl"

CPU_NOTE = (
    "2-core machine whose CPU is shared with other sessions' test runs: absolute times "
    "vary from run to run; compare the ratios, which were measured side by side."
)


def go_offline() -> None:
    """The model ships in a package; never let Hugging Face libraries reach the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "max_ms": max(ms) if ms else math.nan,
        "mean_ms": sum(ms) / len(ms) if ms else math.nan,
    }


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(b) else math.nan


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = math.nan
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "loadavg_at_start": loadavg(),
        "note": CPU_NOTE,
    }


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, default=_json_default, allow_nan=True) + "\n")
    return path


def finish(name: str, data: dict[str, Any]) -> int:
    """The end of a benchmark's run: the CPU note, its results written, where to; exit 0."""
    print(f"note: {CPU_NOTE}")
    path = write_results(name, data)
    print(f"results: {path.relative_to(ROOT)}")
    return 0


def pg_schema() -> Any:
    """A new, empty schema in the test PostgreSQL database (tests.conftest.PgSchema);
    its `url` is the server's DATABASE_URL, and `drop()` removes it."""
    from tests.conftest import PgSchema

    schema = PgSchema()
    schema.create()
    return schema


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned numbers."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for row in cells:
        lines.append(
            "  ".join(
                c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)
            )
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


_NUMBER = re.compile(r"^[-+]?[\d,]*\.?\d+\s*[a-z%x/]*$")


def _numeric(text: str) -> bool:
    return bool(_NUMBER.match(text))


class Stopwatch:
    """`with Stopwatch() as sw: ...` then `sw.seconds`."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = math.nan
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def banner(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _tree_jiffies(root: int) -> int:
    """CPU time (utime+stime, plus that of reaped children) of `root` and its descendants."""
    stats: dict[int, tuple[int, list[str]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            stats[int(stat.parent.name)] = (int(fields[1]), fields)
        except (OSError, IndexError, ValueError):
            continue
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            f = stats[pid][1]
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        todo.extend(children.get(pid, ()))
    return total


class CpuShare:
    """How many cores this benchmark (with its child processes) and everything else on the
    machine used during a phase: `with CpuShare() as cpu: ...` then `cpu.result()`.
    `other_cores` well above 0 means the phase competed with other work for the 2 cores."""

    def __enter__(self) -> CpuShare:
        self._busy0, self._total0 = _busy_jiffies()
        self._own0 = _tree_jiffies(os.getpid())
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, total = _busy_jiffies()
        own = _tree_jiffies(os.getpid())
        wall = time.perf_counter() - self._t0
        hz = os.sysconf("SC_CLK_TCK")
        cpus = os.cpu_count() or 1
        share = (busy - self._busy0) / max(1, total - self._total0)  # of all cores
        own_cores = (own - self._own0) / hz / wall if wall > 0 else math.nan
        self._result = {
            "wall_s": wall,
            "busy_cores": share * cpus,
            "own_cores": own_cores,
            "other_cores": max(0.0, share * cpus - own_cores),
        }

    def result(self) -> dict[str, float]:
        return self._result
