"""/auth: register, login, logout, me."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from pitchcraft.auth.schemas import LoginIn, RegisterIn, TokenOut, UserOut
from pitchcraft.web.deps import ContainerDep, CurrentSession, CurrentUser, client_key

router = APIRouter(prefix="/auth", tags=["accounts"])


@router.post("/register", status_code=status.HTTP_201_CREATED, response_model=TokenOut)
def register(body: RegisterIn, request: Request, container: ContainerDep) -> TokenOut:
    accounts = container.accounts
    user = accounts.register(
        email=body.email,
        password=body.password,
        client=client_key(request),
        is_subscribed=body.is_subscribed,
    )
    opened = accounts.open_session(user, clear=False)
    return TokenOut(access_token=opened.token, expires_in=accounts.tokens.lifetime_seconds)


@router.post("/login", response_model=TokenOut)
def login(body: LoginIn, request: Request, container: ContainerDep) -> TokenOut:
    accounts = container.accounts
    user = accounts.authenticate(
        email=body.email, password=body.password, client=client_key(request)
    )
    opened = accounts.open_session(user)
    return TokenOut(
        access_token=opened.token,
        expires_in=accounts.tokens.lifetime_seconds,
        cleared_documents=opened.cleared_documents,
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="End the session of this token; the token is refused from then on",
)
def logout(signed: CurrentSession, container: ContainerDep) -> Response:
    container.accounts.sign_out(signed.session_id)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
def me(user: CurrentUser) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        is_subscribed=bool(user.is_subscribed),
        created_at=user.created_at,
        is_admin=user.is_admin,
    )
