"""What the OpenAI-compatible clients (embeddings and chat) share: the endpoint URL rules,
which HTTP answers are worth retrying, Retry-After, and URLs safe to show."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit


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
