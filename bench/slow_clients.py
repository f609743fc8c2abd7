"""Slow clients: the server's memory and `/health` latency under the attack of the security
review (issue 22, item 2), as ratios against the idle server in the same run.

A real `pitchcraft serve` on loopback (fresh DATA_DIR, default limits unless overridden):

1. idle: `/health` latency (sequential requests) and the server's RSS;
2. attack, for `--window` seconds (45 as in the review): 20 connections each streaming an
   unfinished header of up to 50 MB (64 KB at a time, as fast as the server takes it), and
   50 slow connections that send a request line and then one header byte per second;
   meanwhile `/health` is timed the same way and the RSS sampled.

The idle figures are taken once the server has settled (its start-up warm-up loads the
embedding model in the background; the RSS must be flat for a few seconds first).

Reported: RSS peak under attack / idle, `/health` p50 and p95 under attack / idle, how many
bytes of its 50 MB header a big-header connection got sent (into the socket buffers, too)
before the server closed it, how many slow connections the server still held at the end of
the window, and how long it took to close them.

Run: .venv/bin/python -m bench.slow_clients [--quick] [--window 45]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench import (
    CPU_NOTE,
    banner,
    go_offline,
    latency_summary,
    loadavg,
    machine,
    ratio,
    table,
    write_results,
)
from bench.crash import ChildServer

BIG_HEADERS = 20
BIG_HEADER_BYTES = 50 * 1024 * 1024
SLOW_CONNECTIONS = 50


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settle(pid: int, timeout: float = 180) -> None:
    """Wait until the server's RSS has stayed within 1% for 5 s (its warm-up is over)."""
    samples: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = [*samples[-4:], rss_mib(pid)]
        if len(samples) == 5 and max(samples) - min(samples) < 0.01 * max(samples):
            return
        time.sleep(1)


def time_health(client: httpx.Client, base: str, seconds: float, gap: float = 0.1) -> list[float]:
    """`/health` timed one request at a time for `seconds`; a failure counts as 30 s."""
    took = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        try:
            ok = client.get(f"{base}/health", timeout=30).status_code == 200
        except httpx.HTTPError:
            ok = False
        took.append(time.perf_counter() - start if ok else 30.0)
        time.sleep(gap)
    return took


class BigHeader(threading.Thread):
    """Streams an unfinished header until the server closes the connection or 50 MB."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.sent = 0
        self.answer = b""

    def run(self) -> None:
        chunk = b"a" * 65536
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nX-Big: ")
                with contextlib.suppress(OSError):
                    while self.sent < BIG_HEADER_BYTES and not self.stop.is_set():
                        sock.sendall(chunk)
                        self.sent += len(chunk)
                with contextlib.suppress(OSError):
                    self.answer = sock.recv(200)
        except OSError:
            pass


class SlowClient(threading.Thread):
    """A request line, then one header byte a second; notes when the server gives up."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.closed_after: float | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
                sock.settimeout(1.0)
                while not self.stop.is_set():
                    try:
                        if sock.recv(4096) == b"":
                            break  # closed by the server
                        continue  # an answer (408): the close follows
                    except TimeoutError:
                        pass
                    try:
                        sock.sendall(b"z")
                    except OSError:
                        break
                else:
                    return  # still held when the window ended
        except OSError:
            pass
        self.closed_after = time.monotonic() - started


def run(window: float, extra_env: dict[str, str]) -> dict[str, Any]:
    go_offline()
    work = Path(tempfile.mkdtemp(prefix="bench-slow-"))
    server = ChildServer(work / "data", work / "server.log", extra_env)
    pid = server.start()
    client = httpx.Client()
    try:
        server.wait_ready(client)
        settle(pid)
        time_health(client, server.base, 3)  # warm-up
        idle = time_health(client, server.base, min(window, 15))
        idle_rss = rss_mib(pid)

        stop = threading.Event()
        big = [BigHeader(server.port, stop) for _ in range(BIG_HEADERS)]
        slow = [SlowClient(server.port, stop) for _ in range(SLOW_CONNECTIONS)]
        for t in [*big, *slow]:
            t.start()
        peak = [idle_rss]

        def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    peak.append(rss_mib(pid))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        attacked = time_health(client, server.base, window)
        stop.set()
        for t in [*big, *slow, sampler]:
            t.join(timeout=10)
    finally:
        client.close()
        server.stop()

    idle_s, attacked_s = latency_summary(idle), latency_summary(attacked)
    closed = [t.closed_after for t in slow if t.closed_after is not None]
    return {
        "window_s": window,
        "limits": extra_env or "defaults",
        "idle_rss_mib": idle_rss,
        "attack_peak_rss_mib": max(peak),
        "rss_ratio": ratio(max(peak), idle_rss),
        "health_idle": idle_s,
        "health_attack": attacked_s,
        "health_p50_ratio": ratio(attacked_s["p50_ms"], idle_s["p50_ms"]),
        "health_p95_ratio": ratio(attacked_s["p95_ms"], idle_s["p95_ms"]),
        "big_header_bytes_sent_max": max(t.sent for t in big),
        "big_header_answers": sorted({t.answer.split(b"\r\n", 1)[0].decode() for t in big}),
        "slow_held_at_end": SLOW_CONNECTIONS - len(closed),
        "slow_closed_after_s_max": max(closed) if closed else None,
        "loadavg": loadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 15 s attack window")
    parser.add_argument("--window", type=float, default=45.0)
    args = parser.parse_args()
    window = 15.0 if args.quick else args.window
    banner(f"slow clients: {BIG_HEADERS} unfinished 50 MB headers + {SLOW_CONNECTIONS} slow")
    print(CPU_NOTE)
    result = run(window, {})
    print(
        table(
            ["measure", "idle", "under attack", "ratio"],
            [
                [
                    "server RSS (MiB)",
                    result["idle_rss_mib"],
                    result["attack_peak_rss_mib"],
                    result["rss_ratio"],
                ],
                [
                    "/health p50 (ms)",
                    result["health_idle"]["p50_ms"],
                    result["health_attack"]["p50_ms"],
                    result["health_p50_ratio"],
                ],
                [
                    "/health p95 (ms)",
                    result["health_idle"]["p95_ms"],
                    result["health_attack"]["p95_ms"],
                    result["health_p95_ratio"],
                ],
            ],
        )
    )
    print(
        f"big headers: at most {result['big_header_bytes_sent_max']:,} bytes sent before the "
        f"server closed ({', '.join(result['big_header_answers']) or 'no answer'}); "
        f"slow connections still held after {window:g} s: {result['slow_held_at_end']} "
        f"(closed after at most {result['slow_closed_after_s_max']} s)"
    )
    path = write_results("slow_clients", {"machine": machine(), **result})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
