"""A small OpenAI-compatible chat completions server for tests.

In-process (a ThreadingHTTPServer on 127.0.0.1, a free port, served from a thread):

    with FakeLLM(api_key="sk-test") as llm:
        llm.status(500).ok()            # script the next answers; then the default again
        ... LLM_BASE_URL=llm.base_url ...
        llm.requests[0].body["messages"]

As a separate process (browser tests point `pitchcraft serve` at it):

    python -m tests.llm_server --port 8123 [--api-key K] [--model M] [--delay 0.05]
        [--latency 0.5]

It prints `listening on http://127.0.0.1:PORT/v1` once it accepts connections. Another
process scripts it with `POST /_fake/script` (a JSON behaviour such as
`{"kind": "status", "code": 500}`) and reads what it received with `GET /_fake/requests`.

Each answer can be scripted per call (`llm.ok("text", latency=0.5)`: what the next call
answers and how long it thinks first); every request is recorded with when it arrived,
when its answer was complete and what it answered.

Every request to `.../chat/completions` is checked the way a strict endpoint would:
a JSON object with a non-empty `model`, `messages` a non-empty list of
`{"role", "content"}` strings, a sane `temperature`/`max_tokens`/`stream` when present,
and `Authorization: Bearer <key>` when a key is configured (`GET .../models` too). Every
request is recorded with its headers (`Authorization` included). A wrong request gets an
OpenAI-style error body (400, 401, 404) and does not use up a scripted behaviour.

The default answer is computed from the request (see `default_answer`): it cites the
first two `[n]` passage labels of the last user message plus one number that no passage
has (e.g. [99]), so the app's citation cleanup has something to remove.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})
_LABEL = re.compile(r"\[(\d+)\]")


@dataclass
class Behaviour:
    """One scripted answer. kind: ok | timeout | status | malformed | empty_choices |
    empty_content | disconnect."""

    kind: str = "ok"
    text: str | None = None  # ok: the answer (None: computed from the request)
    finish_reason: str = "stop"  # ok
    delay: float = 0.0  # ok, streaming: seconds between deltas
    seconds: float = 0.0  # timeout: how long to sleep before answering
    code: int = 500  # status
    retry_after: str | None = None  # status: the Retry-After header
    message: str | None = None  # status: the error message in the body
    error_code: str | None = None  # status: the error's "code" (e.g. insufficient_quota)
    after_deltas: int = 0  # disconnect, streaming: deltas sent before hanging up
    latency: float = 0.0  # ok: seconds before the answer starts (a model thinking)


@dataclass
class Received:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON (None when it was not JSON)
    at: float  # time.monotonic() when it arrived (same clock as the tests)
    status: int = 0  # what the server answered (0 until it answered)
    behaviour: str = ""  # the behaviour used ("" for a rejected request)
    done: float = 0.0  # time.monotonic() when the answer was complete (0 until then)
    answer: str = ""  # the text it answered with

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


def default_answer(body: dict[str, Any]) -> str:
    """A plausible refined answer for this request: it reuses words of the first two
    numbered passages of the last user message, cites them, and cites one number that
    no passage has."""
    users = [m["content"] for m in body["messages"] if m.get("role") == "user"]
    prompt = users[-1] if users else body["messages"][-1]["content"]
    labels: list[int] = []
    for match in _LABEL.finditer(prompt):
        n = int(match.group(1))
        if n not in labels:
            labels.append(n)
    missing = 99
    while missing in labels:
        missing += 1
    sentences = []
    for n in labels[:2]:
        words = _passage(prompt, n).split()[:8]
        claim = " ".join(words).rstrip(".,;:") or "Backed by our own material"
        sentences.append(f"{claim} [{n}].")
    sentences.append(f"Trusted by teams that need results [{missing}].")
    return "Refined: " + " ".join(sentences)


def _passage(prompt: str, n: int) -> str:
    """The text after the label `[n]` up to the next label, without its source label
    (`brochure.pdf, page 3: ...`)."""
    # A passage ends at the next label or at its closing fence line (`⟪/source n⟫`).
    match = re.search(rf"\[{n}\](.*?)(?=\[\d+\]|\u27ea|\Z)", prompt, flags=re.DOTALL)
    text = match.group(1) if match else ""
    head, sep, rest = text.partition(": ")
    return rest if sep and "\n" not in head else text


def _deltas(text: str) -> list[str]:
    """Word-sized pieces that join to exactly `text`."""
    return re.findall(r"\s*\S+\s*|\s+", text) or [text]


def _error(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FakeLLM:
    """The server; also a context manager. Behaviours are taken in order, one per valid
    request; with none left, every request gets the default answer."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        model: str | None = None,
        port: int = 0,
        delay: float = 0.0,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key  # when set, requests must carry it as a bearer token
        self.model = model  # when set, other model names get a 404 model_not_found
        self.delay = delay  # default seconds between streamed deltas
        self.latency = latency  # default seconds before each answer starts
        # What GET /models lists (default: `model`, or "fake-model").
        self.models: list[str] = []
        self.requests: list[Received] = []
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server(("127.0.0.1", port), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-llm",
            daemon=True,
        )
        self._thread.start()

    # -- where it is -------------------------------------------------------------------

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def env(self) -> dict[str, str]:
        """LLM_* variables for a `pitchcraft serve` process that should use this server."""
        env = {"LLM_BASE_URL": self.base_url, "LLM_MODEL": self.model or "fake-model"}
        if self.api_key:
            env["LLM_API_KEY"] = self.api_key
        return env

    # -- the script --------------------------------------------------------------------

    def push(self, behaviour: Behaviour) -> FakeLLM:
        with self._lock:
            self._queue.append(behaviour)
        return self

    def ok(
        self,
        text: str | None = None,
        *,
        finish_reason: str = "stop",
        delay: float = 0.0,
        latency: float = 0.0,
    ) -> FakeLLM:
        """Answer `text` (None: the default answer computed from the request), after
        `latency` seconds, with `delay` seconds between streamed deltas."""
        return self.push(
            Behaviour("ok", text=text, finish_reason=finish_reason, delay=delay, latency=latency)
        )

    def timeout(self, seconds: float) -> FakeLLM:
        """Say nothing for `seconds` (longer than the client's timeout), then answer."""
        return self.push(Behaviour("timeout", seconds=seconds))

    def status(
        self,
        code: int,
        *,
        retry_after: float | str | None = None,
        message: str | None = None,
        error_code: str | None = None,
    ) -> FakeLLM:
        """Answer HTTP `code` with an OpenAI-style error body (and a Retry-After header)."""
        after = retry_after if isinstance(retry_after, str | None) else f"{retry_after:g}"
        return self.push(
            Behaviour(
                "status", code=code, retry_after=after, message=message, error_code=error_code
            )
        )

    def malformed(self) -> FakeLLM:
        """200 with a body that is not JSON (a stream of events that are not JSON)."""
        return self.push(Behaviour("malformed"))

    def empty_choices(self) -> FakeLLM:
        """200 with `"choices": []`."""
        return self.push(Behaviour("empty_choices"))

    def empty_content(self) -> FakeLLM:
        """200 with one choice whose content is empty."""
        return self.push(Behaviour("empty_content"))

    def disconnect(self, after_deltas: int = 0) -> FakeLLM:
        """Hang up without a complete answer: at once for a plain request; for a streamed
        one after sending the headers and `after_deltas` deltas."""
        return self.push(Behaviour("disconnect", after_deltas=after_deltas))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next(self) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            return Behaviour(delay=self.delay, latency=self.latency)

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping in a timeout behaviour
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- checking a request --------------------------------------------------------------

    def check_key(self, headers: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
        """None when the request carries the configured key (or none is configured)."""
        if self.api_key is not None:
            auth = headers.get("authorization", "")
            if auth != f"Bearer {self.api_key}":
                shown = auth.removeprefix("Bearer ")
                masked = f"{shown[:3]}***{shown[-4:]}" if len(shown) > 8 else "***"
                return 401, _error(
                    f"Incorrect API key provided: {masked}." if auth else "Missing API key.",
                    "invalid_request_error",
                    "invalid_api_key",
                )
        return None

    def check(self, headers: dict[str, str], body: Any) -> tuple[int, dict[str, Any]] | None:
        """None for a good request, else the status and error body a strict server sends."""
        refused = self.check_key(headers)
        if refused is not None:
            return refused
        if not isinstance(body, dict):
            return 400, _error("The body must be a JSON object.", "invalid_request_error")
        model = body.get("model")
        if not isinstance(model, str) or not model.strip():
            return 400, _error("You must provide a model parameter.", "invalid_request_error")
        if self.model is not None and model != self.model:
            return 404, _error(
                f"The model `{model}` does not exist.", "invalid_request_error", "model_not_found"
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, _error("'messages' must be a non-empty array.", "invalid_request_error")
        for i, m in enumerate(messages):
            if (
                not isinstance(m, dict)
                or m.get("role") not in ROLES
                or not isinstance(m.get("content"), str)
            ):
                return 400, _error(
                    f"Invalid message at messages[{i}]: needs a known 'role' and a 'content' "
                    "string.",
                    "invalid_request_error",
                )
        temperature = body.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0 <= temperature <= 2
        ):
            return 400, _error(
                "'temperature' must be a number from 0 to 2.", "invalid_request_error"
            )
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            return 400, _error("'max_tokens' must be a positive integer.", "invalid_request_error")
        if "stream" in body and not isinstance(body["stream"], bool):
            return 400, _error("'stream' must be a boolean.", "invalid_request_error")
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and hung up: expected


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        # -- plumbing ----------------------------------------------------------------

        def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            out = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.send_header("Connection", "close")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(out)
            self.close_connection = True

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _event(self, payload: Any) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            self._chunk(f"data: {data}\n\n".encode())

        def _start_stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True

        def _end_stream(self) -> None:
            self._event("[DONE]")
            self.wfile.write(b"0\r\n\r\n")

        def _hang_up(self) -> None:
            """Drop the connection: no complete response, no end of the chunked body."""
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        # -- requests ----------------------------------------------------------------

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/_fake/requests":
                self._send(200, [asdict(r) for r in fake.requests])
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Received(self.path, headers, None, time.monotonic())
            with fake._lock:
                fake.requests.append(seen)
            if self.path.rstrip("/").endswith("/models"):
                refused = fake.check_key(headers)
                if refused is not None:
                    seen.status = refused[0]
                    self._send(*refused)
                    return
                names = fake.models or [fake.model or "fake-model"]
                seen.status = 200
                self._send(
                    200, {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}
                )
            else:
                seen.status = 404
                self._send(404, _error(f"No route {self.path}.", "invalid_request_error"))

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if self.path.rstrip("/") == "/_fake/script":
                fields = body if isinstance(body, dict) else {}
                try:
                    fake.push(Behaviour(**fields))
                except TypeError as exc:
                    self._send(400, _error(str(exc), "invalid_request_error"))
                    return
                self._send(200, {"pending": fake.pending})
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            seen = Received(self.path, headers, body, time.monotonic())
            with fake._lock:
                fake.requests.append(seen)
            if not self.path.rstrip("/").endswith("/chat/completions"):
                seen.status = 404
                self._send(404, _error(f"No route {self.path}.", "invalid_request_error"))
                return
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                seen.status = 400
                self._send(
                    400,
                    _error("Send JSON (Content-Type: application/json).", "invalid_request_error"),
                )
                return
            problem = fake.check(headers, body)
            if problem is not None:
                seen.status = problem[0]
                self._send(*problem)
                return
            behaviour = fake._next()
            seen.behaviour = behaviour.kind
            self._answer(seen, body, behaviour)

        def _answer(self, seen: Received, body: dict[str, Any], b: Behaviour) -> None:
            stream = body.get("stream") is True
            if b.kind == "timeout":
                if fake._closing.wait(b.seconds):
                    return
                b = Behaviour()  # then a normal answer, which nobody may be waiting for
            seen.status = b.code if b.kind == "status" else 200
            if b.kind == "status":
                headers = {"Retry-After": b.retry_after} if b.retry_after is not None else {}
                message = b.message or f"The server had an error (HTTP {b.code})"
                kind = "rate_limit_exceeded" if b.code == 429 else "server_error"
                self._send(b.code, _error(message, kind, b.error_code), headers)
                return
            if b.kind == "disconnect" and not stream:
                self._hang_up()
                return
            model = body["model"]
            ident = f"chatcmpl-{len(fake.requests)}"
            created = int(time.time())
            if b.kind == "malformed":
                if stream:
                    self._start_stream()
                    self._event("{this is not json")
                    self._end_stream()
                else:
                    self._send(200, b'{"id": "chatcmpl-x", "choices": [{"message": ')
                return
            if b.kind == "empty_choices":
                payload = {
                    "id": ident,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [],
                }
                if stream:
                    self._start_stream()
                    self._event({**payload, "object": "chat.completion.chunk"})
                    self._end_stream()
                else:
                    self._send(200, payload)
                return
            text = (
                ""
                if b.kind == "empty_content"
                else (b.text if b.text is not None else default_answer(body))
            )
            seen.answer = text
            if b.latency and fake._closing.wait(b.latency):
                return
            prompt_chars = sum(len(m["content"]) for m in body["messages"])
            usage = {
                "prompt_tokens": max(1, prompt_chars // 4),
                "completion_tokens": len(text.split()),
                "total_tokens": max(1, prompt_chars // 4) + len(text.split()),
            }
            if not stream:
                self._send(
                    200,
                    {
                        "id": ident,
                        "object": "chat.completion",
                        "created": created,
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": text},
                                "finish_reason": b.finish_reason,
                            }
                        ],
                        "usage": usage,
                    },
                )
                seen.done = time.monotonic()
                return
            chunk = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
            }
            self._start_stream()
            self._event(
                {
                    **chunk,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                }
            )
            for i, piece in enumerate(_deltas(text) if text else []):
                if b.kind == "disconnect" and i >= b.after_deltas:
                    self._hang_up()
                    return
                if i and b.delay and fake._closing.wait(b.delay):
                    return
                self._event(
                    {
                        **chunk,
                        "choices": [
                            {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                        ],
                    }
                )
            if b.kind == "disconnect":
                self._hang_up()
                return
            self._event(
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": b.finish_reason}]}
            )
            self._end_stream()
            seen.done = time.monotonic()

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="An OpenAI-compatible test server.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--model", default=None, help="accept only this model name")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between deltas")
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before each answer starts"
    )
    args = parser.parse_args(argv)
    fake = FakeLLM(
        api_key=args.api_key,
        model=args.model,
        port=args.port,
        delay=args.delay,
        latency=args.latency,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on {fake.base_url}", flush=True)
    while not stop.wait(0.5):
        pass
    fake.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
