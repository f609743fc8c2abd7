"""Reading a failed chat request: an HTTP status and the endpoint's error body become an
`LLMError` a marketing user understands, or a `Retryable` when another try may succeed;
a dropped or timed-out connection becomes a `Retryable`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from pitchcraft.core.openai_compat import Retryable, retry_after, retryable_status
from pitchcraft.llm.base import LLMError

_DETAIL_CHARS = 200  # of the endpoint's own error message, in our messages


def transport_failure(exc: httpx.TransportError) -> Retryable:
    """No answer at all: timed out, or the connection failed."""
    if isinstance(exc, httpx.TimeoutException):
        return Retryable("timeout", "timed out")
    return Retryable("connection", f"connection failed: {type(exc).__name__}")


def check_status(response: httpx.Response, *, scrub: Callable[[str], str], keyed: bool) -> None:
    """Returns for a 2xx answer; raises `Retryable` or `LLMError` for any other. `keyed`:
    an API key was sent (a 401 then means a wrong key, not a missing one)."""
    status = response.status_code
    if 200 <= status < 300:
        return
    detail = _detail(response, scrub)
    if status == 429 and _error_code(response) == "insufficient_quota":
        raise LLMError(
            f"the language model account has no credit left (HTTP 429{detail})", status=status
        )
    if retryable_status(status):
        raise Retryable(
            "rate_limit" if status == 429 else "server",
            f"HTTP {status}",
            detail=detail,
            status=status,
            wait=retry_after(response.headers.get("Retry-After")),
        )
    if status == 401:
        if keyed:
            message = "the language model endpoint refused the API key (401); check LLM_API_KEY"
        else:
            message = "the language model endpoint needs an API key (401); set LLM_API_KEY"
        raise LLMError(message, status=status)  # its own text may quote part of the key
    if status == 403:
        raise LLMError(
            f"the language model endpoint refused access (403{detail}); check LLM_API_KEY "
            "and LLM_MODEL",
            status=status,
        )
    if status == 404:
        raise LLMError(
            f"the language model endpoint answered 404 (not found{detail}); check "
            "LLM_BASE_URL (it usually ends in /v1) and LLM_MODEL",
            status=status,
        )
    if 400 <= status < 500:
        raise LLMError(
            f"the language model endpoint rejected the request (HTTP {status}{detail})",
            status=status,
        )
    raise LLMError(f"the language model endpoint answered HTTP {status}{detail}", status=status)


def body_error(body: dict[str, Any], scrub: Callable[[str], str]) -> str:
    """': <the error message in a JSON body>', short and scrubbed; '' if there is none."""
    error = body.get("error")
    message: Any = None
    if isinstance(error, dict):
        message = error.get("message")
    elif isinstance(error, str):
        message = error
    elif isinstance(body.get("detail"), str):
        message = body["detail"]
    if not isinstance(message, str) or not message.strip():
        return ""
    return f": {_short(scrub(message))}"


def _detail(response: httpx.Response, scrub: Callable[[str], str]) -> str:
    """': <the endpoint's own message>', short and without the key; '' if none."""
    try:
        message = _error_message(response)
    except httpx.ResponseNotRead:
        return ""
    message = _short(scrub(message))
    return f": {message}" if message else ""


def _short(message: str) -> str:
    """On one line, and at most _DETAIL_CHARS long."""
    message = re.sub(r"\s+", " ", message).strip()
    if len(message) > _DETAIL_CHARS:
        message = message[: _DETAIL_CHARS - 1].rstrip() + "…"
    return message


def _error_message(response: httpx.Response) -> str:
    """The endpoint's own error text: OpenAI style {"error": {"message": ...}}, or
    {"error": "..."}, {"detail": "..."}, or a short plain-text body (never an HTML page)."""
    try:
        body = response.json()
    except ValueError:
        if "html" in response.headers.get("Content-Type", "").lower():
            return ""
        return response.text
    if isinstance(body, dict):
        return body_error(body, lambda s: s).removeprefix(": ")
    return ""


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
