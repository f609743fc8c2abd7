"""ASGI layers around the app: request size limit, security headers, CSRF for forms."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any, cast

from asgi_csrf import asgi_csrf
from itsdangerous import BadData
from itsdangerous.url_safe import URLSafeSerializer
from python_multipart.multipart import MultipartParser, parse_options_header

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
                    await _send_json(send, 413, message, "too_large")
                return
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
DOCS_PATHS = {"/docs", "/redoc"}


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers every response carries (the CSP depends on the page)."""
    csp = DOCS_CSP if path in DOCS_PATHS else PAGE_CSP
    return [*SECURITY_HEADERS, (b"content-security-policy", csp)]


class SecurityHeaders:
    """Outermost layer, so that every answer carries the headers: the app's, and those the
    other layers send themselves (413, 400, CSRF refusals, CORS preflights). Responses of
    Starlette's last-resort 500 handler get them in errors_http."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = security_headers(scope["path"])

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
        if scope["type"] == "http" and _skip_csrf(scope):  # /api/… and /health
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


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


# asgi-csrf's names: the cookie and form field, the header, the signing salt.
CSRF_COOKIE = "csrftoken"
CSRF_FIELD = b"csrftoken"
CSRF_HEADER = b"x-csrftoken"
CSRF_NAMESPACE = "csrftoken"
# Set on the scope of a request whose token this module has already checked.
CSRF_CHECKED = "pitchcraft.csrf_checked"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
# In a multipart form the token must come before the first file and within this many
# bytes of the body's start: an upload is never held in memory just to find the token.
TOKEN_WITHIN_BYTES = 64 * 1024
TOKEN_MAX_BYTES = 1024


class _TokenFound(Exception):
    def __init__(self, value: bytes) -> None:
        super().__init__("csrf token found")
        self.value = value


class _NoToken(Exception):
    """A file part, the end of the form, or a field too large before any token."""


class _TokenReader:
    """python-multipart callbacks that look for the `csrftoken` field and stop at the
    first file part; the caller stops feeding data as soon as either is seen."""

    def __init__(self) -> None:
        self._field = bytearray()
        self._value = bytearray()
        self._disposition = b""
        self._in_token = False
        self._token = bytearray()

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._in_token = False
        self._token.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._field).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        if b"filename" in params:
            raise _NoToken  # a file before the token
        self._in_token = params.get(b"name") == CSRF_FIELD

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_token:
            self._token += data[start:end]
            if len(self._token) > TOKEN_MAX_BYTES:
                raise _NoToken

    def on_part_end(self) -> None:
        if self._in_token:
            raise _TokenFound(bytes(self._token))

    def on_end(self) -> None:
        raise _NoToken


async def _multipart_token(boundary: bytes, receive: Receive) -> tuple[bytes | None, list[Message]]:
    """Read the body up to its `csrftoken` field; return the token (None when the form
    has none before its first file, is malformed, or the client left) and the messages
    read, to be replayed to the app."""
    messages: list[Message] = []
    reader = _TokenReader()
    seen = 0
    try:
        parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": reader.on_part_begin,
                "on_header_field": reader.on_header_field,
                "on_header_value": reader.on_header_value,
                "on_header_end": reader.on_header_end,
                "on_headers_finished": reader.on_headers_finished,
                "on_part_data": reader.on_part_data,
                "on_part_end": reader.on_part_end,
                "on_end": reader.on_end,
            },
            max_header_count=16,
        )
        while seen < TOKEN_WITHIN_BYTES:
            message: Message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return None, messages
            body: bytes = message.get("body", b"")
            parser.write(body[: TOKEN_WITHIN_BYTES - seen])  # however the body is chunked
            seen += len(body)
            if not message.get("more_body", False):
                break
    except _TokenFound as found:
        return found.value, messages
    except (_NoToken, ValueError):  # ValueError: python-multipart's parse errors
        pass
    return None, messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        message: Message = await receive()
        return message

    return replay


def csrf_layer(
    settings: Any, container: Any, render_page: Callable[[int, str], bytes]
) -> Callable[[ASGIApp], ASGIApp]:
    """A middleware factory for app.add_middleware: asgi-csrf configured for our forms.

    asgi-csrf 0.11 checks multipart forms with an API python-multipart no longer has
    (``FormParser(FileClass=...)``: every such POST would be a 500), so multipart
    requests are checked here, with python-multipart's streaming parser: the token must
    be a field before the first file (the upload form puts it first), the body is read
    only that far and then replayed to the app. asgi-csrf still checks every other form
    and issues the cookie; it skips the requests checked here (its ``skip_if_scope``).
    """
    key = csrf_secret(container.accounts.tokens.secret)
    signer = URLSafeSerializer(key)

    async def failed(scope: Scope, send: Send, message_id: Any) -> None:
        accept = dict(scope.get("headers") or []).get(b"accept", b"")
        if b"text/html" in accept:
            await _send_html(send, 403, render_page(403, CSRF_FAILED))
        else:
            await _send_json(send, 403, CSRF_FAILED, "csrf_failed")

    def skip(scope: Scope) -> bool:
        return scope.get(CSRF_CHECKED) is True or _skip_csrf(scope)

    def cookie_token(headers: dict[bytes, bytes]) -> bytes | None:
        """The CSRF cookie's value when it carries our signature."""
        raw = headers.get(b"cookie")
        if not raw:
            return None
        try:
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw.decode("latin-1"))
            morsel = jar.get(CSRF_COOKIE)
            if morsel is None:
                return None
            signer.loads(morsel.value, salt=CSRF_NAMESPACE)
            return morsel.value.encode("ascii")
        except (CookieError, BadData, UnicodeError):
            return None

    def factory(app: ASGIApp) -> ASGIApp:
        wrapped: ASGIApp = asgi_csrf(
            app,
            signing_secret=key,
            skip_if_scope=skip,
            always_protect=CSRF_PROTECTED_FORMS,
            cookie_secure=settings.cookie_secure,
            cookie_samesite="Strict",
            send_csrf_failed=failed,
        )

        async def checked(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
                await wrapped(scope, receive, send)
                return
            headers = dict(scope.get("headers") or [])
            sent = headers.get(CSRF_HEADER, b"")
            if not sent.isascii():
                # It cannot match, and asgi-csrf would fail comparing it (a TypeError).
                scope = {
                    **scope,
                    "headers": [(k, v) for k, v in scope["headers"] if k != CSRF_HEADER],
                }
                headers.pop(CSRF_HEADER)
                sent = b""
            if _skip_csrf(scope):
                await wrapped(scope, receive, send)
                return
            content_type, params = parse_options_header(headers.get(b"content-type", b""))
            if content_type != b"multipart/form-data":
                await wrapped(scope, receive, send)
                return

            # A multipart form: decide here, the way asgi-csrf decides for other forms.
            expected = cookie_token(headers)
            trusted = (
                # the header matches the cookie (the page's script sends both)
                (expected is not None and secrets.compare_digest(sent, expected))
                # no cookies at all: no session either (except on always_protect paths)
                or (not headers.get(b"cookie") and scope["path"] not in CSRF_PROTECTED_FORMS)
                # a bearer token is never sent by a browser on its own
                or headers.get(b"authorization", b"").startswith(b"Bearer ")
            )
            if not trusted:
                boundary = params.get(b"boundary")
                token: bytes | None = None
                messages: list[Message] = []
                if expected is not None and boundary:  # else nothing in the body can match
                    token, messages = await _multipart_token(boundary, receive)
                if token is None or not secrets.compare_digest(token, expected or b""):
                    log.info("multipart form without a valid CSRF token on %s", scope["path"])
                    await failed(scope, send, "multipart_mismatch")
                    return
                receive = _replay(messages, receive)
            await wrapped({**scope, CSRF_CHECKED: True}, receive, send)

        return checked

    return factory
