"""Errors the services raise, and how the API and pages render them."""

from __future__ import annotations


class AppError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers = headers or {}


class Unauthorized(AppError):
    status = 401
    code = "not_authenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class TooLarge(AppError):
    status = 413
    code = "too_large"


class Unsupported(AppError):
    status = 415
    code = "unsupported_media_type"


class Invalid(AppError):
    status = 422
    code = "invalid_request"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


class Unavailable(AppError):
    status = 503
    code = "unavailable"


class BadGateway(AppError):
    """A service we depend on (the language model endpoint) failed or could not be reached."""

    status = 502
    code = "bad_gateway"


class GatewayTimeout(AppError):
    status = 504
    code = "gateway_timeout"


class Internal(AppError):
    """Our own failure, already logged where it happened (a job that crashed its worker)."""

    status = 500
    code = "internal_error"
