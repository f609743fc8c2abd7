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
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
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
    retry_after,
    retry_policy,
    retryable_status,
    scrub,
)
from pitchcraft.llm.base import Completion, LLMConfigError, LLMError

log = logging.getLogger(__name__)

T = TypeVar("T")

_DETAIL_CHARS = 200  # of the endpoint's own error message, in our messages
_CONNECT_TIMEOUT_S = 10.0
_NO_ANSWER = "the language model returned no answer"


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


def _malformed(why: str) -> LLMError:
    return LLMError(f"the language model returned a malformed answer ({why})")


def _content_text(content: Any) -> str | None:
    """A message's content: a string, or (some servers) a list of text parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    raise _malformed("the content is neither text nor a list of text parts")


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
                self._scrub(str(exc)), status=exc.status, transient=exc.transient
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
        return LLMError(self._scrub(message), status=exc.status, transient=True)

    def _post(self, payload: dict[str, Any]) -> Completion:
        try:
            response = self._client.post(self.url, json=payload)
        except httpx.TimeoutException:
            raise Retryable("timeout", "timed out") from None
        except httpx.TransportError as exc:
            raise Retryable("connection", f"connection failed: {type(exc).__name__}") from None
        self._check_status(response)
        return self._parse(self._json(response))

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = self._detail(response)
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
            if self.__secret:
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

    def _detail(self, response: httpx.Response) -> str:
        """': <the endpoint's own message>', short and without the key; '' if none."""
        try:
            message = _error_message(response)
        except httpx.ResponseNotRead:
            return ""
        message = re.sub(r"\s+", " ", self._scrub(message)).strip()
        if len(message) > _DETAIL_CHARS:
            message = message[: _DETAIL_CHARS - 1].rstrip() + "…"
        return f": {message}" if message else ""

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:  # also a body that is not UTF-8
            raise _malformed("the body is not JSON") from None

    def _parse(self, body: Any) -> Completion:
        if not isinstance(body, dict):
            raise _malformed("the body is not a JSON object")
        if body.get("error"):
            raise LLMError(
                f"the language model endpoint reported an error{_body_error(body, self._scrub)}"
            )
        choices = body.get("choices")
        if not isinstance(choices, list):
            raise _malformed("no 'choices' list")
        if not choices:
            raise LLMError(f"{_NO_ANSWER} (no choices)")
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise _malformed("no 'message' in the first choice")
        finish = choice.get("finish_reason")
        finish_reason = finish if isinstance(finish, str) else None
        text = _content_text(message.get("content"))
        if not text or not text.strip():
            raise _empty(finish_reason)
        model = body.get("model")
        usage = body.get("usage")
        return Completion(
            text=text,
            model=model if isinstance(model, str) and model else self.model,
            finish_reason=finish_reason,
            usage=usage if isinstance(usage, dict) else None,
        )

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
                    self._scrub(str(exc)), status=exc.status, transient=exc.transient
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
        except httpx.TimeoutException:
            raise Retryable("timeout", "timed out") from None
        except httpx.TransportError as exc:
            raise Retryable("connection", f"connection failed: {type(exc).__name__}") from None
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
                except httpx.TimeoutException:
                    raise Retryable("timeout", "timed out") from None
                except httpx.TransportError as exc:
                    raise Retryable(
                        "connection", f"connection failed: {type(exc).__name__}"
                    ) from None
                completion = self._parse(self._json(response))
                self._note_cut(completion.finish_reason)
                return response, completion.text, iter(())
            deltas = self._deltas(response)
            first = next(deltas)
            return response, first, deltas
        except BaseException:
            response.close()
            raise

    def _deltas(self, response: httpx.Response) -> Iterator[str]:
        """Text deltas from the `data: {...}` lines of an event stream, until [DONE]."""
        got_text = False
        leading = ""
        finish_reason: str | None = None
        done = False
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, event:/id: fields
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                text, finish = self._event(data)
                finish_reason = finish or finish_reason
                if not text:
                    continue
                if not got_text and not text.strip():
                    leading += text  # held back: only real text ends the retryable phase
                    continue
                got_text = True
                yield leading + text
                leading = ""
        except httpx.TimeoutException:
            if got_text:
                raise LLMError(
                    "the language model stopped answering part-way through (nothing for "
                    f"{self.timeout:g} s)",
                    transient=True,
                ) from None
            raise Retryable("timeout", "timed out") from None
        except httpx.TransportError as exc:
            if got_text:
                raise LLMError(
                    "the connection to the language model was lost part-way through the answer",
                    transient=True,
                ) from None
            raise Retryable("connection", f"connection failed: {type(exc).__name__}") from None
        if not got_text:
            raise _empty(finish_reason)
        if not done and finish_reason is None:
            raise LLMError(
                "the language model's answer was cut off (the stream ended early)", transient=True
            )
        self._note_cut(finish_reason)

    def _event(self, data: str) -> tuple[str | None, str | None]:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise _malformed("a streamed event is not JSON") from None
        if not isinstance(chunk, dict):
            raise _malformed("a streamed event is not a JSON object")
        if chunk.get("error"):
            raise LLMError(
                f"the language model endpoint reported an error{_body_error(chunk, self._scrub)}"
            )
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise _malformed("a streamed event has no 'choices' list")
        if not choices:
            return None, None  # e.g. the final usage-only event
        choice = choices[0]
        if not isinstance(choice, dict):
            raise _malformed("a streamed choice is not a JSON object")
        finish = choice.get("finish_reason")
        delta = choice.get("delta")
        if delta is None:
            return None, finish if isinstance(finish, str) else None
        if not isinstance(delta, dict):
            raise _malformed("a streamed delta is not a JSON object")
        return _content_text(delta.get("content")), finish if isinstance(finish, str) else None


def _empty(finish_reason: str | None) -> LLMError:
    if finish_reason == "content_filter":
        return LLMError("the language model declined to answer (its content filter stopped it)")
    return LLMError(f"{_NO_ANSWER} (empty content)")


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
        return _body_error(body, lambda s: s).removeprefix(": ")
    return ""


def _body_error(body: dict[str, Any], scrub: Callable[[str], str]) -> str:
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
    message = re.sub(r"\s+", " ", scrub(message)).strip()
    if len(message) > _DETAIL_CHARS:
        message = message[: _DETAIL_CHARS - 1].rstrip() + "…"
    return f": {message}"


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None
