"""Limits on what one connection may cost the server, below the application.

uvicorn's HTTP parser keeps a request line and headers of any size in memory and waits for
them, and for a body, as long as the client likes; nothing caps open connections. Each
connection here gets:

- a size limit on the request line plus headers (HTTP_MAX_HEADER_KB): past it the answer is
  431 and the connection closes, after at most one more network read has been buffered;
- a deadline for the headers (HTTP_HEADER_TIMEOUT_S, from the connection or from the first
  byte of the next request on a kept-alive one): 408 and close;
- a limit on how long a body may pause (HTTP_BODY_TIMEOUT_S, reset by every chunk that
  arrives; not counted while the application itself is not reading): the connection closes;
- a cap on open connections (HTTP_MAX_CONNECTIONS): one more is answered 503 and closed.

This module is only about headers, timeouts and connections; what happens to an oversized
body is the application's business (web/uploads.py, web/middleware.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pitchcraft.settings import Settings

log = logging.getLogger(__name__)


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose head is too large."""


def _response(status: int, reason: str, message: str) -> bytes:
    body = message.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above (class attributes, set by
    `protocol_for`)."""

    max_head_bytes = 16 * 1024
    header_timeout_s = 10.0
    body_timeout_s = 30.0
    max_connections = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # before a request's headers are complete
        self._head_raw = 0  # bytes received while in the head (an upper bound)
        self._head_parsed = 0  # request-line and header bytes the parser reported
        self._in_body = False
        self._timer: asyncio.TimerHandle | None = None

    # -- connections ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning(
                "refused a connection: %d open (HTTP_MAX_CONNECTIONS)", self.max_connections
            )
            self._refuse(503, "Service Unavailable", "Too many open connections; try again.")
            return
        self._arm(self.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_response(status, reason, message))
            self.transport.close()

    # -- timers ----------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:  # a pipelined request waits
            self._arm(self.header_timeout_s, self._head_timed_out)
            return
        self._refuse(408, "Request Timeout", "The request headers took too long to arrive.")

    def _body_timed_out(self) -> None:
        self._timer = None
        if not self._in_body or self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:  # the application is behind
            self._arm(self.body_timeout_s, self._body_timed_out)
            return
        log.info("closed a connection whose request body stalled (HTTP_BODY_TIMEOUT_S)")
        self._disarm()
        self.transport.close()  # the application sees the client disconnect

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # As uvicorn does (the app serves no WebSocket, so this only logs a warning).
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if (
                isinstance(exc.__context__, _HeadTooLarge)
                or self._head_parsed > self.max_head_bytes
            ):
                self._head_too_large()
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        if self._in_head and not self.transport.is_closing():
            # The parser buffers a header line until it ends: count what it holds.
            self._head_raw += len(data)
            if self._head_raw > self.max_head_bytes:
                self._head_too_large()

    def _head_too_large(self) -> None:
        self._refuse(
            431,
            "Request Header Fields Too Large",
            f"The request line and headers exceed {self.max_head_bytes // 1024} KB.",
        )

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._in_body = True, False
        self._head_raw = self._head_parsed = 0
        self._arm(self.header_timeout_s, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        if self._head_parsed > self.max_head_bytes:
            raise _HeadTooLarge
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_parsed += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_parsed > self.max_head_bytes:
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._in_body = False, True
        self._arm(self.body_timeout_s, self._body_timed_out)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if self._in_body:
            self._arm(self.body_timeout_s, self._body_timed_out)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm()
        super().on_message_complete()


def protocol_for(settings: Settings) -> type[LimitedHttpProtocol]:
    """The protocol class for `uvicorn.run(http=...)`, with the limits of `settings`."""
    return type(
        "PitchcraftHttpProtocol",
        (LimitedHttpProtocol,),
        {
            "max_head_bytes": settings.http_max_header_kb * 1024,
            "header_timeout_s": settings.http_header_timeout_s,
            "body_timeout_s": settings.http_body_timeout_s,
            "max_connections": settings.http_max_connections,
        },
    )
