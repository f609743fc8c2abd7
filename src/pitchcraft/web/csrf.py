"""CSRF for the page forms: asgi-csrf, plus a streaming check for multipart uploads."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

from asgi_csrf import asgi_csrf
from itsdangerous import BadData
from itsdangerous.url_safe import URLSafeSerializer
from python_multipart.multipart import parse_options_header

from pitchcraft.web.asgi import ASGIApp, Message, Receive, Scope, Send, send_html, send_json
from pitchcraft.web.multipart import PartHeaders, parser
from pitchcraft.web.paths import is_api

log = logging.getLogger(__name__)

CSRF_PROTECTED_FORMS = {"/login", "/register", "/logout"}


def csrf_secret(jwt_secret: str) -> str:
    """A key for CSRF tokens derived from the token secret, so replicas agree on it."""
    return hmac.new(jwt_secret.encode(), b"pitchcraft-csrf", hashlib.sha256).hexdigest()


CSRF_FAILED = (
    "This form has expired or was not sent from Pitchcraft. Reload the page and try again."
)


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


class _TokenReader(PartHeaders):
    """python-multipart callbacks that look for the `csrftoken` field and stop at the
    first file part; the caller stops feeding data as soon as either is seen."""

    def __init__(self) -> None:
        super().__init__()
        self._in_token = False
        self._token = bytearray()

    def on_part_begin(self) -> None:
        super().on_part_begin()
        self._in_token = False
        self._token.clear()

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self.headers.get("content-disposition", b""))
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
        stream = parser(boundary, reader)
        while seen < TOKEN_WITHIN_BYTES:
            message: Message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return None, messages
            body: bytes = message.get("body", b"")
            stream.write(body[: TOKEN_WITHIN_BYTES - seen])  # however the body is chunked
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
            await send_html(send, 403, render_page(403, CSRF_FAILED))
        else:
            await send_json(send, 403, CSRF_FAILED, "csrf_failed")

    def skip(scope: Scope) -> bool:
        return scope.get(CSRF_CHECKED) is True or is_api(scope["path"])

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
            if is_api(scope["path"]):
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
