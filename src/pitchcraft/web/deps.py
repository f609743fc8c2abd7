"""FastAPI dependencies: the container and the signed-in user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pitchcraft.auth.models import User
from pitchcraft.auth.sessions import SignedIn
from pitchcraft.container import Container
from pitchcraft.core.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="The access_token from register or login.")


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current_session(
    request: Request,
    container: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> SignedIn:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "Sign in first: send `Authorization: Bearer <token>`.",
            code="not_authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        signed = container.accounts.check_token(credentials.credentials)
    except Unauthorized as exc:
        exc.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')
        raise
    # Uploads record the session that made them (see web/uploads.py).
    request.state.session_id = signed.session_id
    return signed


def current_user(signed: Annotated[SignedIn, Depends(current_session)]) -> User:
    return signed.user


CurrentSession = Annotated[SignedIn, Depends(current_session)]
CurrentUser = Annotated[User, Depends(current_user)]


def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise Forbidden("Only an administrator can do this.", code="admin_only")
    return user


AdminUser = Annotated[User, Depends(admin_user)]
