"""Chat completions from any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Works with OpenAI, Ollama, vLLM, LM Studio, LiteLLM and the like. LLM_BASE_URL may be
given with or without the version: ``http://host:11434`` and ``http://host:11434/v1`` both
post to ``http://host:11434/v1/chat/completions``; a URL that already ends in
``/chat/completions`` is used as it is, and any other path gets ``/chat/completions``
appended (``https://host/api/openai``).

Rate limits (429), server errors (5xx except 501/505), 408/425, timeouts and dropped
connections are retried LLM_MAX_RETRIES times, waiting as `core.openai_compat.retry_wait`
says (a Retry-After header, in seconds or as an HTTP date, is honoured up to `max_wait`;
without one, exponential backoff with jitter); anything else fails at once. A streamed
answer is retried only until its first text delta arrives: after that, a failure ends the
stream with an error (the caller has already shown part of it).

Every failure is an `LLMError` whose message a marketing user understands. The API key
is sent only in the Authorization header and never appears in an error, a log line or a
repr. Nothing of the prompt is logged; DEBUG shows sizes and timings only.

This module is the client: settings, requests, retries and the messages when retrying
did not help. Reading error answers is in `llm.errors`, whole answers in `llm.answers`,
and streamed ones in `llm.sse`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState

from pitchcraft.core.openai_compat import (
    Retryable,
    display_url,
    endpoint_url,
    json_headers,
    retry_policy,
    scrub,
)
from pitchcraft.llm.answers import json_body, parse_completion
from pitchcraft.llm.base import Completion, LLMConfigError, LLMError
from pitchcraft.llm.errors import check_status, transport_failure
from pitchcraft.llm.sse import text_deltas

log = logging.getLogger(__name__)

T = TypeVar("T")

_CONNECT_TIMEOUT_S = 10.0


def chat_completions_url(base_url: str) -> str:
    """The URL to post to, from LLM_BASE_URL (see the module docstring)."""
    return endpoint_url(
        base_url,
        "chat/completions",
        setting="LLM_BASE_URL",
        example="https://api.openai.com/v1 or http://ollama:11434/v1",
        error=LLMConfigError,
    )


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _checked(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """A programming error, not an endpoint failure: ValueError."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts")
    for message in messages:
        if not (
            isinstance(message, dict)
            and isinstance(message.get("role"), str)
            and message["role"]
            and isinstance(message.get("content"), str)
        ):
            raise ValueError("each message must be a dict with a 'role' and a 'content' string")
    return [dict(m) for m in messages]


class OpenAIChat:
    """The LLM port over HTTP. Thread-safe (one httpx.Client with a connection pool)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        temperature: float = 0.4,
        max_tokens: int = 1200,
        timeout: float = 120.0,
        max_retries: int = 4,
        min_wait: float = 0.5,
        max_wait: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not model or not model.strip():
            raise LLMConfigError(
                "LLM_MODEL must name the endpoint's model (for example gpt-4o-mini or llama3.1)"
            )
        if not timeout > 0:
            raise LLMConfigError("LLM_TIMEOUT_S must be more than 0 seconds")
        if max_tokens < 1:
            raise LLMConfigError("LLM_MAX_TOKENS must be at least 1")
        if max_retries < 0:
            raise LLMConfigError("LLM_MAX_RETRIES must be 0 or more")
        key = (api_key or "").strip()
        if key and not (key.isascii() and key.isprintable()):
            raise LLMConfigError(
                "LLM_API_KEY contains characters that cannot be sent in an HTTP header"
            )
        self.url = chat_completions_url(base_url)
        self.model = model.strip()
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self._attempts = max_retries + 1
        self._min_wait = min_wait
        self._max_wait = max_wait
        self.__secret = key
        self._client = httpx.Client(
            headers=json_headers(key),
            timeout=httpx.Timeout(timeout, connect=min(timeout, _CONNECT_TIMEOUT_S)),
            transport=transport,
        )

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIChat(url={display_url(self.url)!r}, model={self.model!r})"

    def close(self) -> None:
        self._client.close()

    # -- the LLM port --------------------------------------------------------------------

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        payload = self._payload(_checked(messages), stream=False)
        started = time.monotonic()
        completion = self._with_retries(self._post, payload)
        log.debug(
            "language model answered in %.2f s: %d chars, finish_reason=%s, usage=%s",
            time.monotonic() - started,
            len(completion.text),
            completion.finish_reason,
            completion.usage,
        )
        self._note_cut(completion.finish_reason)
        return completion

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        # Checked now, not at the first next(): a bad call fails where it is made.
        payload = self._payload(_checked(messages), stream=True)
        return self._stream(payload)

    # -- requests and retries ------------------------------------------------------------

    def _payload(self, messages: list[dict[str, str]], *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if stream:
            payload["stream"] = True
        log.debug(
            "language model request: %d messages, %d chars, stream=%s",
            len(messages),
            sum(len(m["content"]) for m in messages),
            stream,
        )
        return payload

    def _scrub(self, text: str) -> str:
        return scrub(text, self.__secret)

    def _log_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        reason = exc.reason if isinstance(exc, Retryable) else type(exc).__name__
        sleep = state.next_action.sleep if state.next_action is not None else 0.0
        log.info(
            "the language model request failed (%s); retrying in %.1f s (attempt %d of %d)",
            reason,
            sleep,
            state.attempt_number + 1,
            self._attempts,
        )

    def _with_retries(self, call: Callable[[dict[str, Any]], T], payload: dict[str, Any]) -> T:
        policy = retry_policy(
            self._attempts,
            min_wait=self._min_wait,
            max_wait=self._max_wait,
            before_sleep=self._log_retry,
        )
        try:
            return policy(call, payload)
        except Retryable as exc:
            raise self._gave_up(exc) from None
        except LLMError as exc:
            raise LLMError(
                self._scrub(str(exc)), status=exc.status, transient=exc.transient, kind=exc.kind
            ) from None

    def _gave_up(self, exc: Retryable) -> LLMError:
        tried = f"tried {_times(self._attempts)}"
        detail = f"HTTP {exc.status}{exc.detail}"
        if exc.kind == "timeout":
            message = f"the language model did not answer within {self.timeout:g} s ({tried})"
        elif exc.kind == "connection":
            message = f"could not reach the language model at {_host(self.url)} ({tried})"
        elif exc.kind == "rate_limit":
            message = (
                f"the language model endpoint is rate-limiting requests ({detail}; {tried}); "
                "try again later"
            )
        else:
            message = f"the language model endpoint kept failing ({detail}; {tried})"
        return LLMError(self._scrub(message), status=exc.status, transient=True, kind=exc.kind)

    def _post(self, payload: dict[str, Any]) -> Completion:
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.TransportError as exc:
            raise transport_failure(exc) from None
        self._check_status(response)
        return self._parse(response)

    def _check_status(self, response: httpx.Response) -> None:
        check_status(response, scrub=self._scrub, keyed=bool(self.__secret))

    def _parse(self, response: httpx.Response) -> Completion:
        return parse_completion(json_body(response), model=self.model, scrub=self._scrub)

    def _note_cut(self, finish_reason: str | None) -> None:
        if finish_reason == "length":
            log.info(
                "the language model's answer was cut at LLM_MAX_TOKENS=%d tokens",
                self.max_tokens,
            )

    # -- streaming -----------------------------------------------------------------------

    def _stream(self, payload: dict[str, Any]) -> Iterator[str]:
        started = time.monotonic()
        response, first, rest = self._with_retries(self._open_stream, payload)
        first_after = time.monotonic() - started
        chars = len(first)
        try:
            yield first
            try:
                for delta in rest:
                    chars += len(delta)
                    yield delta
            except LLMError as exc:
                raise LLMError(
                    self._scrub(str(exc)), status=exc.status, transient=exc.transient, kind=exc.kind
                ) from None
        finally:
            response.close()
            log.debug(
                "language model streamed %d chars in %.2f s (first delta after %.2f s)",
                chars,
                time.monotonic() - started,
                first_after,
            )

    def _open_stream(self, payload: dict[str, Any]) -> tuple[httpx.Response, str, Iterator[str]]:
        """Up to the first text delta: everything that may still be retried."""
        request = self._client.build_request(
            "POST", self.url, json=payload, headers={"Accept": "text/event-stream"}
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise transport_failure(exc) from None
        try:
            if not 200 <= response.status_code < 300:
                with contextlib.suppress(httpx.HTTPError):  # the status alone says enough
                    response.read()
                self._check_status(response)
            content_type = response.headers.get("Content-Type", "")
            if "json" in content_type and "event-stream" not in content_type:
                # The endpoint ignored "stream": one whole answer, passed on as one delta.
                try:
                    response.read()
                except httpx.TransportError as exc:
                    raise transport_failure(exc) from None
                completion = self._parse(response)
                self._note_cut(completion.finish_reason)
                return response, completion.text, iter(())
            deltas = text_deltas(
                response, timeout=self.timeout, scrub=self._scrub, on_finish=self._note_cut
            )
            first = next(deltas)
            return response, first, deltas
        except BaseException:
            response.close()
            raise
