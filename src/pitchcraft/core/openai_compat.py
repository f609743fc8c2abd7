"""What the OpenAI-compatible clients (embeddings and chat) share: the endpoint URL rules,
the request headers, keeping the API key out of texts, which HTTP answers are worth
retrying, and how long to wait before the next try (Retry-After, or backoff)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import urlsplit

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

# -- URLs and headers ----------------------------------------------------------------------


def endpoint_url(
    base_url: str, suffix: str, *, setting: str, example: str, error: type[Exception]
) -> str:
    """The URL to post to: `base` and `base/v1` both get `/v1/<suffix>` or `/<suffix>`; a URL
    already ending in `/<suffix>` is used as it is. Raises `error` naming `setting`."""
    base = base_url.strip().rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise error(f"{setting} must be an http(s) URL such as {example}")
    if parts.query or parts.fragment:
        raise error(f"{setting} must not have a query or fragment")
    path = parts.path
    if path.endswith(f"/{suffix}"):
        return base
    if path in ("", "/"):
        return f"{base}/v1/{suffix}"
    return f"{base}/{suffix}"


def display_url(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def json_headers(api_key: str) -> dict[str, str]:
    """JSON in and out; the key (if any) only ever goes in the Authorization header."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def scrub(text: str, secret: str) -> str:
    """`text` with the API key replaced by ***. Some servers echo the key they refused; it
    must not reach an error message or a log line."""
    return text.replace(secret, "***") if secret else text


# -- retries -------------------------------------------------------------------------------

RetryKind = Literal["timeout", "connection", "rate_limit", "server"]


class Retryable(Exception):
    """A failure worth another try. `reason` is short and safe to log (no text from the
    endpoint); `detail` is the endpoint's own message (": ..." or ""), for the final error;
    `wait` is the server's Retry-After in seconds, if it sent one."""

    def __init__(
        self,
        kind: RetryKind,
        reason: str,
        *,
        detail: str = "",
        status: int | None = None,
        wait: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.detail = detail
        self.status = status
        self.wait = wait


def retryable_status(status: int) -> bool:
    """Rate limits, timeouts and server errors; not 501/505, which will not change."""
    return status in (408, 425, 429) or (500 <= status <= 599 and status not in (501, 505))


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if unusable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN: ignore it
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retry_wait(
    attempt: int, server_wait: float | None, *, min_wait: float, max_wait: float
) -> float:
    """Seconds to wait after failed try number `attempt` (1, 2, ...).

    When the server sent Retry-After, exactly that, capped at `max_wait`: the server knows
    when it will take requests again, so waiting longer (our own backoff) only delays the
    answer, and "Retry-After: 0" means try again now. Only without one do we guess:
    exponential backoff from `min_wait`, doubling each try, stretched by up to half at
    random (jitter) so that requests that failed together do not all come back together;
    never more than `max_wait`."""
    if server_wait is not None:
        return min(server_wait, max_wait)
    backoff = min_wait * 2.0 ** min(attempt - 1, 64)  # 2**64 outgrows any max_wait
    jitter = random.uniform(1.0, 1.5)  # noqa: S311 - spreads retries, guards no secret
    return min(backoff * jitter, max_wait)


def retry_policy(
    attempts: int,
    *,
    min_wait: float,
    max_wait: float,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> Retrying:
    """Up to `attempts` tries of whatever raises `Retryable`, waiting as `retry_wait` says;
    after the last, the last `Retryable` is raised. Anything else is raised at once."""

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        server_wait = exc.wait if isinstance(exc, Retryable) else None
        return retry_wait(state.attempt_number, server_wait, min_wait=min_wait, max_wait=max_wait)

    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception_type(Retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
