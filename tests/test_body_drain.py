"""An oversized request body reaches ordinary clients as its 413: the real server reads and
discards a moderately oversized body before it answers, so a client that sends the whole
body before reading (urllib, a raw socket) gets the answer, not a connection reset."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

BODY = json.dumps({"marketing_text": "x" * (12 * 1024 * 1024), "backgrounds": []}).encode()


@pytest.fixture
def server(start_server: Any, server_env: dict[str, str]) -> Any:
    return start_server(server_env)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_urllib_sees_the_413_of_a_12_mb_body(server: Any) -> None:
    # 12 MB: more than the loopback socket buffers hold, so a server that answers and closes
    # while the client is still sending breaks its pipe (3 MB did only now and then).
    for _ in range(3):
        request = urllib.request.Request(  # noqa: S310
            f"{server.url}/api/v1/rag/process",
            data=BODY,
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=60)  # noqa: S310  # http, the test server
        assert caught.value.code == 413
        assert json.loads(caught.value.read())["code"] == "too_large"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_a_raw_client_sending_everything_first_reads_the_413(server: Any, announced: bool) -> None:
    head = (
        f"POST /api/v1/rag/process HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\n"
    )
    if announced:
        wire = (head + f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    else:  # no length announced: the limit is found while the body streams in
        step = 64 * 1024
        chunks = b"".join(
            f"{len(BODY[i : i + step]):x}\r\n".encode() + BODY[i : i + step] + b"\r\n"
            for i in range(0, len(BODY), step)
        )
        wire = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunks + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(wire)  # all of it, before reading a byte of the answer
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            assert data, answer
            answer += data
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
