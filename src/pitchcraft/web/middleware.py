"""ASGI layers around the app: request size limit, unreadable bodies, security headers, CORS.
(CSRF for the forms is in `csrf`.)"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, cast

from pitchcraft.web.asgi import ASGIApp, Message, Receive, Scope, Send, send_json
from pitchcraft.web.paths import is_api

log = logging.getLogger(__name__)


class _BodyTooLarge(Exception):
    pass


# How much of a refused body is read and thrown away before the 413 goes out.
DRAIN_MAX_BYTES = 32 * 1024 * 1024
DRAIN_MAX_SECONDS = 10.0


async def drain_refused_body(
    receive: Receive,
    headers: dict[bytes, bytes],
    *,
    max_bytes: int = DRAIN_MAX_BYTES,
    max_seconds: float = DRAIN_MAX_SECONDS,
) -> None:
    """Read and discard the rest of a request body that is being refused, within bounds.

    A client that sends its whole body before reading the answer (Python's urllib, most
    libraries) sees a connection reset instead of the 413 when the server answers and closes
    while it is still sending. Mature servers read a moderately oversized body to its end
    first; so does this, up to `max_bytes` and `max_seconds`. A client that asked
    `Expect: 100-continue` is answered at once: it has not sent the body, and reading it
    would tell the server to send "100 Continue" and invite it."""
    if headers.get(b"expect", b"").lower() == b"100-continue":
        return
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        return  # far too large: not worth reading
    deadline = time.monotonic() + max_seconds
    read = 0
    while read <= max_bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            msg = await asyncio.wait_for(receive(), timeout=left)
        except TimeoutError:
            return
        if msg["type"] != "http.request":
            return  # the client went away
        read += len(msg.get("body", b""))
        if not msg.get("more_body", False):
            return


class BodyLimit:
    """Refuse request bodies over a limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        message = f"The request body is larger than the {_human(limit)} this endpoint accepts."
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await send_json(
                    send, 400, "The Content-Length header is not a number.", "bad_request"
                )
                return
            if size > limit:
                await drain_refused_body(receive, headers)
                await send_json(send, 413, message, "too_large")
                return

        received = 0
        started = exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            msg: Message = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if exceeded:
                # The app caught the exception and answers on its own (FastAPI turns any
                # error while reading a JSON or form body into a 400): the answer is a 413.
                if msg["type"] == "http.response.start" and not started:
                    started = True
                    await drain_refused_body(receive, headers)
                    await send_json(send, 413, message, "too_large")
                return
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await drain_refused_body(receive, headers)
                await send_json(send, 413, message, "too_large")


class GuardUnreadableBody:
    """A body that the CSRF layer cannot parse (bad encoding, broken multipart) is a 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, receive, tracking_send)
        except (UnicodeDecodeError, ValueError, AssertionError, IndexError, KeyError):
            if started or scope["type"] != "http":
                raise
            log.info("unreadable request body on %s", scope.get("path"))
            await send_json(send, 400, "The request body could not be read.", "bad_request")


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
PAGE_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
)
# Swagger UI boots from an inline script.
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; frame-ancestors 'none'"
)
DOCS_PATHS = {"/docs", "/redoc"}


# Pages, JSON answers, downloads and previews hold a user's data: no browser or proxy keeps
# a copy. Only the static files (the same for everyone) may be cached.
NO_STORE = (b"cache-control", b"no-store")
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def security_headers(path: str, *, hsts: bool = False) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (the CSP depends on the page). `hsts` when the
    cookies are marked secure, i.e. the site is served over HTTPS."""
    csp = DOCS_CSP if path in DOCS_PATHS else PAGE_CSP
    headers = [*SECURITY_HEADERS, (b"content-security-policy", csp)]
    if not path.startswith("/static/"):
        headers.append(NO_STORE)
    if hsts:
        headers.append(HSTS)
    return headers


class SecurityHeaders:
    """Outermost layer, so that every answer carries the headers: the app's, and those the
    other layers send themselves (413, 400, CSRF refusals, CORS preflights). Responses of
    Starlette's last-resort 500 handler get them in `errors`."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = security_headers(scope["path"], hsts=self.hsts)

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                present = {k.lower() for k, _ in msg.get("headers", [])}
                extra = [(k, v) for k, v in wanted if k not in present]
                msg = {**msg, "headers": [*msg.get("headers", []), *extra]}
            await send(msg)

        await self.app(scope, receive, with_headers)


class ApiCors:
    """CORS for ALLOWED_ORIGINS, on the JSON API only (and /health): the pages are signed in
    by cookie and carry CSRF tokens, so no other site's script may read them.

    Only the listed origins get CORS headers and answered preflights. With `*` any origin
    may read, but never with credentials; the API authenticates by bearer token anyway."""

    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        from starlette.middleware.cors import CORSMiddleware

        self.app = app
        any_origin = "*" in origins
        self.cors: Any = CORSMiddleware(
            cast(Any, app),
            allow_origins=["*"] if any_origin else origins,
            allow_credentials=not any_origin,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Total-Count", "Retry-After"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_api(scope["path"]):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    return f"{n / 1024:g} KB"
