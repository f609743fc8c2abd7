"""Trying an OpenAI-compatible endpoint before saving it: list its models (`GET /models`)
and, when a model is named, make one tiny chat call.

Every failure is a sentence a person understands, never an exception and never the key.
Only http(s) URLs; a redirect is followed only to the same scheme, host and port (a
server that sends the request, and its key, elsewhere is reported instead); the whole
test ends within `timeout` seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from pitchcraft.core.openai_compat import display_url, endpoint_url, json_headers, scrub

TEST_TIMEOUT_S = 10.0
MAX_REDIRECTS = 3
MAX_MODELS = 500
EXAMPLE = "http://localhost:11434/v1 or https://api.openai.com/v1"


class BadEndpoint(ValueError):
    """The base URL cannot be an OpenAI-compatible endpoint; the message says why."""


def check_base_url(base_url: str) -> str:
    """The base URL, trimmed, when it is an http(s) URL with a host; else BadEndpoint."""
    url = base_url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise BadEndpoint(f"The base URL must start with http:// or https:// (such as {EXAMPLE}).")
    _endpoint(url, "models")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        raise BadEndpoint("The base URL has a port that is not a number.") from exc
    if not parts.hostname or parts.username is not None:
        raise BadEndpoint(f"The base URL needs a host and no user name (such as {EXAMPLE}).")
    return url


@dataclass
class ProbeResult:
    ok: bool
    models: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    error: str | None = None


class _Failed(Exception):
    pass


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def probe(
    base_url: str,
    api_key: str | None,
    model: str | None,
    *,
    timeout: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> ProbeResult:
    """Never raises for anything the endpoint does; BadEndpoint for a URL that is not one."""
    url = check_base_url(base_url)
    key = (api_key or "").strip()
    if key and not (key.isascii() and key.isprintable()):
        raise BadEndpoint("The API key has characters that cannot be sent in an HTTP header.")
    timeout = TEST_TIMEOUT_S if timeout is None else timeout
    with httpx.Client(
        headers=json_headers(key), follow_redirects=False, transport=transport
    ) as client:
        # Counted from here: building the client (loading CA certificates) is not the
        # endpoint's time.
        started = time.monotonic()
        deadline = started + timeout
        session = _Session(client, deadline, timeout, key)
        try:
            models = session.models(_endpoint(url, "models"))
            if model and model.strip():
                session.chat(_endpoint(url, "chat/completions"), model.strip())
        except _Failed as exc:
            return ProbeResult(False, [], _ms(started), scrub(str(exc), key))
    return ProbeResult(True, models, _ms(started), None)


def _endpoint(base_url: str, suffix: str) -> str:
    return endpoint_url(
        base_url, suffix, setting="The base URL", example=EXAMPLE, error=BadEndpoint
    )


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)


class _Session:
    def __init__(self, client: httpx.Client, deadline: float, timeout: float, key: str) -> None:
        self.client = client
        self.deadline = deadline
        self.timeout = timeout
        self.keyed = bool(key)

    def _request(self, method: str, url: str, json: object | None = None) -> httpx.Response:
        start = url
        for _ in range(MAX_REDIRECTS + 1):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise _Failed(f"{_where(start)} did not answer within {self.timeout:g} s.")
            try:
                response = self.client.request(method, url, json=json, timeout=httpx.Timeout(left))
            except httpx.TimeoutException:
                raise _Failed(f"{_where(url)} did not answer within {self.timeout:g} s.") from None
            except httpx.TransportError as exc:
                raise _Failed(
                    f"Could not connect to {_where(url)} ({_cause(exc)}). Check the address "
                    "and that the model server is running and reachable from this server."
                ) from None
            if not response.is_redirect:
                return response
            target = urljoin(url, response.headers.get("Location", ""))
            if _origin(target) != _origin(url):
                raise _Failed(
                    f"{_where(url)} redirects to {_where(target)}; enter that address as the "
                    "base URL if you trust it (the test follows no redirect to another host)."
                )
            url = target
        raise _Failed(f"{_where(start)} redirected too many times.")

    def _check(self, response: httpx.Response, url: str, what: str) -> object:
        status = response.status_code
        if status == 401:
            if self.keyed:
                raise _Failed("The endpoint refused the API key (HTTP 401). Check the key.")
            raise _Failed("The endpoint needs an API key (HTTP 401).")
        if status == 403:
            raise _Failed("The endpoint refused access (HTTP 403). Check the key's permissions.")
        if status == 404:
            raise _Failed(
                f"{display_url(url)} was not found (HTTP 404) {what}: the base URL of an "
                "OpenAI-compatible API usually ends in /v1."
            )
        if not 200 <= status < 300:
            raise _Failed(f"The endpoint answered HTTP {status} {what}.")
        try:
            return response.json()
        except ValueError:
            raise _Failed(
                f"The answer of {display_url(url)} is not JSON: is this the address of an "
                "OpenAI-compatible API (it usually ends in /v1)?"
            ) from None

    def models(self, url: str) -> list[str]:
        body = self._check(self._request("GET", url), url, "when listing the models")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise _Failed(
                f"The answer of {display_url(url)} has no list of models: is this an "
                "OpenAI-compatible API?"
            )
        names = [str(m["id"]) for m in data if isinstance(m, dict) and m.get("id")]
        return sorted(set(names))[:MAX_MODELS]

    def chat(self, url: str, model: str) -> None:
        payload = {
            "model": model,
            "messages": [{"role": "user", "content": "Reply with the word ok."}],
            "max_tokens": 5,
            "temperature": 0,
        }
        response = self._request("POST", url, json=payload)
        if response.status_code == 404:
            raise _Failed(f"The endpoint does not know the model {model!r} (HTTP 404).")
        body = self._check(response, url, f"to a chat request with {model!r}")
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list):
            raise _Failed(
                f"The chat answer of {display_url(url)} has no choices: is this an "
                "OpenAI-compatible API?"
            )


def _where(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _cause(exc: httpx.TransportError) -> str:
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "name or service" in text or "nodename" in text or "getaddrinfo" in text:
        return "unknown host name"
    if "ssl" in text or "certificate" in text:
        return "TLS certificate problem"
    return "no connection"
