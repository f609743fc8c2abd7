"""Several versions of the copy, written at once: one model call each (many
OpenAI-compatible servers ignore `n`), all streamed side by side. A version longer than the
channel allows is sent back once with "shorten it to N characters"; if it is still too long
it is kept as written and flagged, never cut."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass, field

from pitchcraft.llm.base import LLM, LLMError
from pitchcraft.refine.copy import chars

Messages = list[dict[str, str]]
# Called with each version's text so far; False stops every call (the job was taken over).
Progress = Callable[[list[str]], bool]


class Stopped(Exception):
    """The caller asked to stop (the job is no longer this worker's)."""


@dataclass
class Draft:
    raw: str = ""  # the answer as streamed, reasoning tags and citations included
    first_chars: int | None = None  # the length before the shorten retry, when there was one
    ms: float = 0.0
    calls: int = 0
    pieces: list[str] = field(default_factory=list)


def shorten_request(text: str, *, counted: int, max_chars: int, channel: str) -> str:
    return (
        f"That copy is {counted:,} characters long, over the {max_chars:,}-character limit "
        f"of {channel} (the [n] citations are not counted). Shorten it to at most "
        f"{max_chars:,} characters: keep its facts and their [n] citations, drop the "
        "weakest words. Answer with the shortened copy only."
    )


def write(
    llm: LLM,
    messages: Messages,
    *,
    count: int,
    max_chars: int | None,
    channel: str,
    visible: Callable[[str], str],
    progress: Progress,
    every_s: float,
) -> list[Draft]:
    """`count` drafts, written concurrently; LLMError when any call fails."""
    drafts = [Draft() for _ in range(count)]
    stop = threading.Event()

    def stream(draft: Draft, convo: Messages) -> str:
        draft.pieces = []
        draft.calls += 1
        with closing(llm.stream(convo)) as deltas:  # type: ignore[type-var]
            for delta in deltas:
                if stop.is_set():
                    raise Stopped
                draft.pieces.append(delta)
        return "".join(draft.pieces)

    def one(draft: Draft) -> Draft:
        started = time.perf_counter()
        text = stream(draft, messages)
        if max_chars is not None:
            counted = chars(visible(text))
            if counted > max_chars:
                draft.first_chars = counted
                ask = shorten_request(
                    visible(text), counted=counted, max_chars=max_chars, channel=channel
                )
                retry = [
                    *messages,
                    {"role": "assistant", "content": visible(text)},
                    {"role": "user", "content": ask},
                ]
                shorter = stream(draft, retry)
                if visible(shorter).strip():
                    text = shorter
        draft.raw = text
        draft.ms = round((time.perf_counter() - started) * 1000, 1)
        return draft

    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="variant") as pool:
        futures = [pool.submit(one, d) for d in drafts]
        try:
            while True:
                done, pending = wait(futures, timeout=every_s, return_when=FIRST_EXCEPTION)
                failed = [f for f in done if f.exception() is not None]
                if failed:
                    raise failed[0].exception()  # type: ignore[misc]
                if not pending:
                    break
                if not progress([visible("".join(d.pieces)) for d in drafts]):
                    raise Stopped
        finally:
            stop.set()
    return drafts


__all__ = ["Draft", "LLMError", "Stopped", "shorten_request", "write"]
