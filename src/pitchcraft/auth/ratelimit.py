"""Throttling of sign-in (per email and per client), registration (per client) and
refine jobs (per user: a flood from one user never fills the refine lane for everyone).

Built on the `limits` library.

The storage is in-process by default; point RATE_LIMIT_STORAGE_URL at Redis
(`redis://host:6379`) so several API replicas share the counters.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from pitchcraft.core.errors import RateLimited


class Throttle:
    def __init__(
        self,
        *,
        login_per_email: str,
        login_per_client: str,
        register_per_client: str,
        storage_url: str,
        refine_per_user: str = "30/minute",
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        self._login_email = parse(login_per_email)
        self._login_client = parse(login_per_client)
        self._register_client = parse(register_per_client)
        self._refine_user = parse(refine_per_user)

    def _hit(self, item: RateLimitItem, namespace: str, key: str, what: str) -> None:
        if not self._limiter.hit(item, namespace, key):
            reset = self._limiter.get_window_stats(item, namespace, key).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise RateLimited(f"Too many {what}. Try again in {wait} seconds.", retry_after=wait)

    def login(self, *, email: str, client: str) -> None:
        """Count one sign-in attempt; raise RateLimited once either budget is spent."""
        self._hit(self._login_client, "login-client", client, "sign-in attempts")
        self._hit(self._login_email, "login-email", email, "sign-in attempts")

    def register(self, *, client: str) -> None:
        self._hit(self._register_client, "register-client", client, "new accounts from here")

    def refine(self, user_id: int) -> None:
        """Count one refine job submitted; raise RateLimited (429, Retry-After) past the
        budget."""
        self._hit(self._refine_user, "refine-user", str(user_id), "refine requests")
