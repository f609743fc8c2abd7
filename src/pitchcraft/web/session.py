"""The browser session: the access token in an HttpOnly, SameSite cookie."""

from __future__ import annotations

from fastapi import Request, Response

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import Unauthorized

SESSION_COOKIE = "pitchcraft_session"


def set_session(response: Response, container: Container, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=container.accounts.tokens.lifetime_seconds,
        httponly=True,
        samesite="lax",
        secure=container.settings.cookie_secure,
        path="/",
    )


def clear_session(response: Response, container: Container) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=container.settings.cookie_secure,
    )


def session_user(request: Request, container: Container) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return container.accounts.user_for_token(token)
    except Unauthorized:
        return None
