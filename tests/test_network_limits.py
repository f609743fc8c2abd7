"""Header size, slow clients and connection count against a started `pitchcraft serve`,
with raw sockets on 127.0.0.1 (SECURITY.md, "Network limits"). Every socket has a timeout,
and the counts are small."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess

pytestmark = pytest.mark.timeout(300)

HEADER_TIMEOUT_S = 2
BODY_TIMEOUT_S = 2
MAX_CONNECTIONS = 20
WAIT_S = 20  # the most any socket read below waits


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("limits")
    env = {
        "DATA_DIR": str(root / "data"),
        "CONTAINER_MODE": "no",
        "LOG_LEVEL": "INFO",
        "HTTP_MAX_HEADER_KB": "16",
        "HTTP_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        "HTTP_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
        "HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    proc = ServerProcess(env, root / "server.log").start()
    try:
        yield proc
    finally:
        proc.stop()


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT_S)
    sock.settimeout(WAIT_S)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or WAIT_S passes)."""
    chunks = []
    with contextlib.suppress(ConnectionResetError, TimeoutError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split()[1])


def healthy(server: ServerProcess) -> bool:
    return httpx.get(f"{server.url}/health", timeout=WAIT_S).status_code == 200


def test_a_header_over_the_limit_gets_431(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        response = read_all(sock)
    assert status_of(response) == 431
    assert b"16 KB" in response
    # Just under the limit is served.
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 12_000 + b"\r\n\r\n")
        assert status_of(sock.recv(65536)) == 200


def test_an_endless_header_is_cut_off_early(server: ServerProcess) -> None:
    """A header that never ends (the 50 MB attack): the server answers 431 and closes
    long before it has been sent, instead of buffering it."""
    sent = 0
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(50 * 16):  # up to 50 MB, 64 KB at a time
                sock.sendall(b"a" * 65536)
                sent += 65536
        response = read_all(sock)
    assert sent < 50 * 1024 * 1024, "the server took the whole 50 MB header"
    assert response == b"" or status_of(response) == 431
    assert healthy(server)


def test_slow_headers_time_out(server: ServerProcess) -> None:
    socks = [connect(server) for _ in range(5)]
    try:
        socks[0].sendall(b"")  # connected, sends nothing
        for sock in socks[1:]:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finishes
        started = time.monotonic()
        responses = [read_all(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    assert all(status_of(r) == 408 for r in responses)
    # Closed by the server, not by the read timeout of this test.
    assert time.monotonic() - started < WAIT_S
    assert healthy(server)


def test_a_stalled_body_is_closed(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"email": '
        )
        started = time.monotonic()
        response = read_all(sock)
    assert time.monotonic() - started < WAIT_S, "the stalled body was never given up on"
    assert response == b"" or status_of(response) in (400, 408, 422)
    assert healthy(server)


def test_connections_are_capped(server: ServerProcess) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(MAX_CONNECTIONS):
            held.append(connect(server))
        time.sleep(0.2)  # let the server accept them all
        with connect(server) as extra:
            response = read_all(extra)
        assert status_of(response) == 503
    finally:
        for sock in held:
            sock.close()
    # Capacity comes back as connections close.
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if healthy(server):
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the server did not recover"
        time.sleep(0.2)


def test_the_log_holds_no_server_error(server: ServerProcess) -> None:
    log = Path(server.log_path).read_text(errors="replace")
    assert "Traceback" not in log and " 500 " not in log, log[-3000:]
