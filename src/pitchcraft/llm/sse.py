"""Reading a streamed chat completion: the `data: {...}` lines of a server-sent event
stream become text deltas. Until the first real text arrives a failure is `Retryable`
(the caller has shown nothing yet); after it, a failure is an `LLMError`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx

from pitchcraft.llm.answers import content_text, empty, malformed
from pitchcraft.llm.base import LLMError
from pitchcraft.llm.errors import body_error, transport_failure


def text_deltas(
    response: httpx.Response,
    *,
    timeout: float,
    scrub: Callable[[str], str],
    on_finish: Callable[[str | None], None],
) -> Iterator[str]:
    """Text deltas from the `data: {...}` lines of an event stream, until [DONE].
    `timeout` is named in the message when the stream stalls; `on_finish` gets the
    finish_reason of an answer that ended well."""
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
            text, finish = _event(data, scrub)
            finish_reason = finish or finish_reason
            if not text:
                continue
            if not got_text and not text.strip():
                leading += text  # held back: only real text ends the retryable phase
                continue
            got_text = True
            yield leading + text
            leading = ""
    except httpx.TransportError as exc:
        if not got_text:
            raise transport_failure(exc) from None
        if isinstance(exc, httpx.TimeoutException):
            raise LLMError(
                "the language model stopped answering part-way through (nothing for "
                f"{timeout:g} s)",
                transient=True,
            ) from None
        raise LLMError(
            "the connection to the language model was lost part-way through the answer",
            transient=True,
        ) from None
    if not got_text:
        raise empty(finish_reason)
    if not done and finish_reason is None:
        raise LLMError(
            "the language model's answer was cut off (the stream ended early)", transient=True
        )
    on_finish(finish_reason)


def _event(data: str, scrub: Callable[[str], str]) -> tuple[str | None, str | None]:
    """One event's text (None if it carries none) and finish_reason."""
    try:
        chunk = json.loads(data)
    except ValueError:
        raise malformed("a streamed event is not JSON") from None
    if not isinstance(chunk, dict):
        raise malformed("a streamed event is not a JSON object")
    if chunk.get("error"):
        raise LLMError(f"the language model endpoint reported an error{body_error(chunk, scrub)}")
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise malformed("a streamed event has no 'choices' list")
    if not choices:
        return None, None  # e.g. the final usage-only event
    choice = choices[0]
    if not isinstance(choice, dict):
        raise malformed("a streamed choice is not a JSON object")
    finish = choice.get("finish_reason")
    delta = choice.get("delta")
    if delta is None:
        return None, finish if isinstance(finish, str) else None
    if not isinstance(delta, dict):
        raise malformed("a streamed delta is not a JSON object")
    return content_text(delta.get("content")), finish if isinstance(finish, str) else None
