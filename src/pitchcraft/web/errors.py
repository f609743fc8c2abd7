"""How errors reach clients: one JSON shape for the API, a page for browsers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from pitchcraft.core.errors import AppError
from pitchcraft.core.validation import NOT_UTF8
from pitchcraft.web.middleware import security_headers
from pitchcraft.web.paths import is_api

log = logging.getLogger("pitchcraft.errors")


class ErrorOut(BaseModel):
    detail: str
    code: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "Bad request",
        401: "Not signed in, or the token is invalid or expired",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        413: "Request too large",
        415: "Unsupported media type",
        422: "Invalid input",
        429: "Too many requests",
    }.items()
}

HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


# Who is signed in, for the header of an error page; set by `install` (the pages know how).
PageUser = Callable[[Request], Any]


def wants_html(request: Request) -> bool:
    if is_api(request.url.path):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request, status: int, detail: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    if wants_html(request):
        templates = request.app.state.templates
        csrf = request.scope.get("csrftoken")
        page_user: PageUser | None = getattr(request.app.state, "page_user", None)
        user = page_user(request) if page_user is not None and status != 401 else None
        page: Response = templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "detail": detail, "user": user, "csrftoken": csrf() if csrf else ""},
            status_code=status,
            headers=headers,
        )
        return page
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


PROBED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path: Starlette's 405 names only those of the
    first route that matched the path, while FastAPI makes one route per method."""
    allowed = []
    for method in PROBED_METHODS:
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


def _field(loc: tuple[Any, ...]) -> str:
    # The first element says where the value came from; a field may be named `query` too.
    rest = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    return ".".join(str(p) for p in rest)


def describe_validation(errors: list[Any]) -> str:
    sentences = []
    for err in errors[:5]:
        kind = err.get("type", "")
        where = _field(tuple(err.get("loc", ())))
        if kind == "json_invalid":
            sentences.append("The request body is not valid JSON.")
        elif kind == "missing" and not where:
            sentences.append("The request body is missing.")
        elif kind == "missing":
            sentences.append(f"{where} is required.")
        elif kind in {"model_attributes_type", "dict_type"} and not where:
            sentences.append("The request body must be a JSON object.")
        elif kind == "string_unicode":
            # pydantic's own refusal of a lone surrogate, said as our validators say it.
            sentences.append(f"{where}: {NOT_UTF8}." if where else f"The text {NOT_UTF8}.")
        else:
            msg = str(err.get("msg", "is invalid")).rstrip(".")
            sentences.append(f"{where}: {msg}." if where else f"{msg}.")
    return " ".join(dict.fromkeys(sentences))


def install(app: FastAPI, *, page_user: PageUser) -> None:
    """The handlers for every error; `page_user` finds the signed-in user of an error page."""
    app.state.page_user = page_user

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        return error_response(request, exc.status, exc.message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        # Never echo the offending input back: it may be a password.
        return error_response(
            request, 422, describe_validation(list(exc.errors())), "invalid_request"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Nothing exists at this address."
        if detail == "There was an error parsing the body":
            detail = "The request body could not be read (it must be UTF-8 JSON)."
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed here."
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(request, exc.status_code, detail, code, headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        rid = request.headers.get("x-request-id", "-")
        log.exception(
            "unhandled error on %s %s (request %s)", request.method, request.url.path, rid
        )
        response = error_response(
            request, 500, "Something went wrong on our side; it has been logged.", "internal_error"
        )
        # This answer is sent from outside every middleware, SecurityHeaders included.
        container = getattr(request.app.state, "container", None)
        hsts = bool(container is not None and container.settings.cookie_secure)
        for key, value in security_headers(request.scope["path"], hsts=hsts):
            response.headers.setdefault(key.decode(), value.decode())
        return response
