"""Throttling of sign-in (per email, per client and per pair), registration (per client),
uploads and refine jobs (per user: a flood from one user never fills the refine lane for everyone).

Built on the `limits` library.

Sign-in is throttled so that nobody can lock a chosen user out: failed attempts are counted
per (email, client), and a client that spends that budget is refused (429) for that address
only. The per-email budget counts failures from everywhere; once it is spent, further
attempts on that address are slowed down (each waits `slowdown_s` before its password is
checked) but never refused, so the real user, from a client with no failures of its own,
still signs in with the right password. Every attempt also counts against its client's
budget, which caps how much one client can try across addresses.

The storage is in-process by default; point RATE_LIMIT_STORAGE_URL at Redis
(`redis://host:6379`) so several API replicas share the counters.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from limits import RateLimitItem, RateLimitItemPerHour, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from pitchcraft.core.errors import RateLimited

log = logging.getLogger(__name__)

LOGIN_SLOWDOWN_S = 2.0


class Throttle:
    def __init__(
        self,
        *,
        login_per_email: str,
        login_per_client: str,
        register_per_client: str,
        storage_url: str,
        login_per_email_client: str = "10/5minutes",
        uploads_per_hour: int = 0,
        slowdown_s: float = LOGIN_SLOWDOWN_S,
        sleep: Callable[[float], None] = time.sleep,
        refine_per_user: str = "30/minute",
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        self._login_email = parse(login_per_email)
        self._login_client = parse(login_per_client)
        self._login_pair = parse(login_per_email_client)
        self._register_client = parse(register_per_client)
        self._uploads = RateLimitItemPerHour(uploads_per_hour) if uploads_per_hour else None
        self.slowdown_s = slowdown_s
        self._sleep = sleep
        self._refine_user = parse(refine_per_user)

    def _refuse(self, item: RateLimitItem, keys: tuple[str, ...], message: str) -> RateLimited:
        reset = self._limiter.get_window_stats(item, *keys).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return RateLimited(f"{message} Try again in {wait} seconds.", retry_after=wait)

    def _hit(self, item: RateLimitItem, namespace: str, key: str, what: str) -> None:
        if not self._limiter.hit(item, namespace, key):
            raise self._refuse(item, (namespace, key), f"Too many {what}.")

    def login(self, *, email: str, client: str) -> None:
        """Before a password is checked: count the attempt against its client, refuse a
        client that failed too often on this address, slow down once the address's
        failures from everywhere are over budget."""
        self._hit(self._login_client, "login-client", client, "sign-in attempts")
        if not self._limiter.test(self._login_pair, "login-pair", email, client):
            raise self._refuse(
                self._login_pair,
                ("login-pair", email, client),
                "Too many failed sign-ins for this account from here.",
            )
        if not self._limiter.test(self._login_email, "login-email", email):
            # The address is not named: the log holds no user data at INFO.
            log.info("sign-in on an address over its failure budget: slowed down")
            self._sleep(self.slowdown_s)

    def login_failed(self, *, email: str, client: str) -> None:
        self._limiter.hit(self._login_pair, "login-pair", email, client)
        self._limiter.hit(self._login_email, "login-email", email)

    def login_succeeded(self, *, email: str, client: str) -> None:
        """The right password clears this client's failures on the address."""
        self._limiter.clear(self._login_pair, "login-pair", email, client)

    def register(self, *, client: str) -> None:
        self._hit(self._register_client, "register-client", client, "new accounts from here")

    def uploads(self, *, user_id: int, files: int) -> None:
        """Count `files` uploaded files against the user's hourly budget (none when the
        setting is 0); with `files=0`, only whether any budget is left."""
        item = self._uploads
        if item is None:
            return
        keys = ("uploads-user", str(user_id))
        allowed = (
            self._limiter.test(item, *keys)
            if files <= 0
            else self._limiter.hit(item, *keys, cost=files)
        )
        if not allowed:
            raise self._refuse(
                item,
                keys,
                f"Upload limit reached: at most {item.amount} files an hour per account "
                "(USER_UPLOADS_PER_HOUR).",
            )

    def refine(self, user_id: int) -> None:
        """Count one refine job submitted; raise RateLimited (429, Retry-After) past the
        budget."""
        self._hit(self._refine_user, "refine-user", str(user_id), "refine requests")
