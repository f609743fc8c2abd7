"""Sign-in throttling, per email and per client, on the `limits` library.

The storage is in-process by default; point RATE_LIMIT_STORAGE_URL at Redis
(`redis://host:6379`) so several API replicas share the counters.
"""

from __future__ import annotations

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from pitchcraft.errors import RateLimited


class LoginThrottle:
    def __init__(self, *, per_email: str, per_client: str, storage_url: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        self._per_email = parse(per_email)
        self._per_client = parse(per_client)

    def hit(self, *, email: str, client: str) -> None:
        """Count one sign-in attempt; raise RateLimited once either budget is spent."""
        for item, namespace, key in (
            (self._per_client, "login-client", client),
            (self._per_email, "login-email", email),
        ):
            if not self._limiter.hit(item, namespace, key):
                reset = self._limiter.get_window_stats(item, namespace, key).reset_time
                wait = math.ceil(reset - time.time())
                raise RateLimited(
                    f"Too many sign-in attempts. Try again in {max(1, wait)} seconds.",
                    retry_after=wait,
                )
