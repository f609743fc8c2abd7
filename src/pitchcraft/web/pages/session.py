"""The browser session: the access token in an HttpOnly, SameSite cookie, and the one
dependency every signed-in page uses."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import Unauthorized
from pitchcraft.web.deps import ContainerDep

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
        signed = container.accounts.check_token(token)
    except Unauthorized:
        return None
    # Uploads record it; the Documents page reads its one-time note of cleared documents.
    request.state.session_id = signed.session_id
    return signed.user


class SignInRequired(Exception):
    """Raised by `signed_in`; answered by `to_login` with the page to come back to."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


def _local_path(url: str, request: Request) -> str:
    parts = urlsplit(url)
    return parts.path if parts.netloc in ("", request.url.netloc) else ""


def return_path(request: Request) -> str:
    """The page the person was on: a fragment (htmx) or a form's target is not a page of
    its own, so those come back to the page that loaded them."""
    if request.headers.get("hx-request"):
        path = _local_path(request.headers.get("hx-current-url", ""), request)
    elif request.method in ("GET", "HEAD"):
        path = request.url.path
    else:
        path = _local_path(request.headers.get("referer", ""), request)
    return path if path.startswith("/") and not path.startswith("//") else "/"


def signed_in(request: Request, container: ContainerDep) -> User:
    user = session_user(request, container)
    if user is None:
        raise SignInRequired(return_path(request))
    return user


PageUser = Annotated[User, Depends(signed_in)]


async def to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    target = "/login?next=" + quote(exc.back_to, safe="/")
    if request.headers.get("hx-request"):
        # htmx would follow a redirect and swap the sign-in page into a fragment of this
        # one; ask it to move the whole page instead.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
