"""The Account page: subscription status, what the account holds, password change, export
and deletion (behind a typed confirmation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitchcraft.auth.models import User
from pitchcraft.auth.schemas import PASSWORD_MAX_LENGTH
from pitchcraft.container import Container
from pitchcraft.core.errors import AppError
from pitchcraft.web.api.account import export_response
from pitchcraft.web.deps import ContainerDep, client_key
from pitchcraft.web.pages.format import human_size
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import PageUser, clear_session

router = APIRouter(include_in_schema=False)

PasswordField = Annotated[str, Form(max_length=PASSWORD_MAX_LENGTH)]


def _page(
    request: Request, container: Container, user: User, *, status: int = 200, **ctx: Any
) -> HTMLResponse:
    return render(
        request,
        "account.html",
        user=user,
        active="account",
        status=status,
        account=container.account_data.summary(user.id),
        human_size=human_size,
        min_length=container.settings.password_min_length,
        changed=request.query_params.get("changed") == "1",
        **ctx,
    )


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, container: ContainerDep, user: PageUser) -> Response:
    return _page(request, container, user)


@router.post("/account/password", response_class=HTMLResponse)
def account_password(
    request: Request,
    container: ContainerDep,
    user: PageUser,
    current_password: PasswordField = "",
    new_password: PasswordField = "",
    new_password_confirm: PasswordField = "",
) -> Response:
    try:
        if not current_password or not new_password:
            raise AppError("Enter your current password and a new one.")
        if new_password != new_password_confirm:
            raise AppError("The two new passwords do not match.")
        container.accounts.change_password(
            user_id=user.id,
            session_id=request.state.session_id,
            current=current_password,
            new=new_password,
            client=client_key(request),
        )
    except AppError as exc:
        return _page(request, container, user, status=exc.status, password_error=exc.message)
    return RedirectResponse("/account?changed=1", status_code=303)


@router.get("/account/export")
def account_export(container: ContainerDep, user: PageUser) -> Response:
    return export_response(container, user.id)


@router.post("/account/delete", response_class=HTMLResponse)
def account_delete(
    request: Request,
    container: ContainerDep,
    user: PageUser,
    confirm_email: Annotated[str, Form(max_length=320)] = "",
    password: PasswordField = "",
) -> Response:
    try:
        if confirm_email.strip().lower() != user.email:
            raise AppError(
                "Type your email address exactly as shown to confirm.", code="confirmation"
            )
        if not password:
            raise AppError("Enter your password to confirm.")
        container.account_data.delete(user.id, password=password, client=client_key(request))
    except AppError as exc:
        return _page(
            request,
            container,
            user,
            status=exc.status,
            delete_error=exc.message,
            # Kept only when it was right (the password was not): a wrong one is typed again.
            confirm_email=user.email if confirm_email.strip().lower() == user.email else "",
        )
    response = RedirectResponse("/login?deleted=1", status_code=303)
    clear_session(response, container)
    return response
