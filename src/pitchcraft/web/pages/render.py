"""Rendering a page template with what every page needs (the user, the CSRF token)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from pitchcraft.auth.models import User


def render(
    request: Request, name: str, *, user: User | None = None, status: int = 200, **ctx: Any
) -> HTMLResponse:
    csrf = request.scope.get("csrftoken")
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        name,
        {"user": user, "csrftoken": csrf() if csrf else "", **ctx},
        status_code=status,
    )
    return response
