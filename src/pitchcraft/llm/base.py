"""The LLM port: chat messages in, an answer (whole or streamed) out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


class LLMError(Exception):
    """A language model call failed. The message is a sentence a marketing user
    understands ("the language model did not answer within 120 s (tried 5 times)") and
    never contains a secret or the prompt.

    `status` is the endpoint's HTTP status when it gave one; `transient` is True when the
    call failed for a reason that may pass (timeouts, rate limits, server errors, a dropped
    connection), so running the whole job again later may succeed. `kind` says which
    transient failure it was, after the retries ran out: "timeout", "connection" (the
    endpoint could not be reached), "rate_limit" or "server"; None otherwise."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        transient: bool = False,
        kind: str | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.transient = transient
        self.kind = kind


class LLMConfigError(LLMError):
    """The LLM settings cannot work; raised at start-up, the message names the setting."""


@dataclass(frozen=True)
class Completion:
    text: str
    model: str  # the model that answered, as the endpoint reports it
    finish_reason: str | None  # "stop", "length" (cut at LLM_MAX_TOKENS), ...
    usage: dict[str, Any] | None  # the endpoint's token counts, when it sends them


class LLM(Protocol):
    model: str

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """The whole answer to `messages` ([{"role": ..., "content": ...}, ...])."""

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """The answer as text deltas, in order; joined they are the whole answer."""
