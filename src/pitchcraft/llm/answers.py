"""Reading a chat completion's JSON body into a `Completion`, or an `LLMError` saying what
is wrong with it (malformed, empty, refused by the content filter)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from pitchcraft.llm.base import Completion, LLMError
from pitchcraft.llm.errors import body_error

NO_ANSWER = "the language model returned no answer"


def malformed(why: str) -> LLMError:
    return LLMError(f"the language model returned a malformed answer ({why})")


def empty(finish_reason: str | None) -> LLMError:
    if finish_reason == "content_filter":
        return LLMError("the language model declined to answer (its content filter stopped it)")
    return LLMError(f"{NO_ANSWER} (empty content)")


def content_text(content: Any) -> str | None:
    """A message's content: a string, or (some servers) a list of text parts."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    raise malformed("the content is neither text nor a list of text parts")


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # also a body that is not UTF-8
        raise malformed("the body is not JSON") from None


def parse_completion(body: Any, *, model: str, scrub: Callable[[str], str]) -> Completion:
    """The first choice of a whole (not streamed) answer; `model` when the body names none."""
    if not isinstance(body, dict):
        raise malformed("the body is not a JSON object")
    if body.get("error"):
        raise LLMError(f"the language model endpoint reported an error{body_error(body, scrub)}")
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise malformed("no 'choices' list")
    if not choices:
        raise LLMError(f"{NO_ANSWER} (no choices)")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise malformed("no 'message' in the first choice")
    finish = choice.get("finish_reason")
    finish_reason = finish if isinstance(finish, str) else None
    text = content_text(message.get("content"))
    if not text or not text.strip():
        raise empty(finish_reason)
    answered_by = body.get("model")
    usage = body.get("usage")
    return Completion(
        text=text,
        model=answered_by if isinstance(answered_by, str) and answered_by else model,
        finish_reason=finish_reason,
        usage=usage if isinstance(usage, dict) else None,
    )
