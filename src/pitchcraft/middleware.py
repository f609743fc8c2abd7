"""ASGI layers around the app: request size limit, security headers, CSRF for forms."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from asgi_csrf import asgi_csrf

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]
ASGIApp = Callable[[Scope, Receive, Send], Any]

CSRF_PROTECTED_FORMS = {"/login", "/register", "/logout"}


async def _send_json(send: Send, status: int, detail: str, code: str) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


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
                await _send_json(
                    send, 400, "The Content-Length header is not a number.", "bad_request"
                )
                return
            if size > limit:
                await _send_json(send, 413, message, "too_large")
                return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            msg: Message = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, message, "too_large")


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
            await _send_json(send, 400, "The request body could not be read.", "bad_request")


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


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in {"/docs", "/redoc"} else PAGE_CSP

        async def with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                present = {k.lower() for k, _ in msg.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", csp))
                msg = {**msg, "headers": [*msg.get("headers", []), *extra]}
            await send(msg)

        await self.app(scope, receive, with_headers)


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g} MB"
    return f"{n / 1024:g} KB"


def csrf_secret(jwt_secret: str) -> str:
    """A key for CSRF tokens derived from the token secret, so replicas agree on it."""
    return hmac.new(jwt_secret.encode(), b"pitchcraft-csrf", hashlib.sha256).hexdigest()


CSRF_FAILED = (
    "This form has expired or was not sent from Pitchcraft. Reload the page and try again."
)


async def _send_html(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _skip_csrf(scope: Scope) -> bool:
    # The API authenticates only by bearer token, never by cookie, so forged
    # cross-site requests carry no credentials there.
    path: str = scope["path"]
    return path.startswith("/api/") or path == "/health"


def csrf_layer(
    settings: Any, container: Any, render_page: Callable[[int, str], bytes]
) -> Callable[[ASGIApp], ASGIApp]:
    """A middleware factory for app.add_middleware: asgi-csrf configured for our forms."""
    key = csrf_secret(container.accounts.tokens.secret)

    async def failed(scope: Scope, send: Send, message_id: Any) -> None:
        accept = dict(scope.get("headers") or []).get(b"accept", b"")
        if b"text/html" in accept:
            await _send_html(send, 403, render_page(403, CSRF_FAILED))
        else:
            await _send_json(send, 403, CSRF_FAILED, "csrf_failed")

    def factory(app: ASGIApp) -> ASGIApp:
        wrapped: ASGIApp = asgi_csrf(
            app,
            signing_secret=key,
            skip_if_scope=_skip_csrf,
            always_protect=CSRF_PROTECTED_FORMS,
            cookie_secure=settings.cookie_secure,
            cookie_samesite="Strict",
            send_csrf_failed=failed,
        )
        return wrapped

    return factory
