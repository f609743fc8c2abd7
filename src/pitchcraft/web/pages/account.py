"""Account pages: sign up, sign in, sign out and the signed-in home."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import EmailStr, TypeAdapter, ValidationError

from pitchcraft.auth.schemas import PASSWORD_MAX_LENGTH
from pitchcraft.core.errors import AppError
from pitchcraft.web.deps import ContainerDep, client_key
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import clear_session, session_user, set_session

router = APIRouter(include_in_schema=False)

_email = TypeAdapter(EmailStr)
EmailField = Annotated[str, Form(max_length=320)]
PasswordField = Annotated[str, Form(max_length=PASSWORD_MAX_LENGTH)]


def _safe_next(target: str | None) -> str:
    # Only local paths: never bounce a person to another site after signing in.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/", response_class=HTMLResponse)
def home(request: Request, container: ContainerDep) -> Response:
    user = session_user(request, container)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "home.html", user=user, settings=container.settings)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, container: ContainerDep, next: str | None = None) -> Response:
    if session_user(request, container) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return render(
        request,
        "login.html",
        next=_safe_next(next),
        registration_open=container.settings.registration_open,
    )


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    container: ContainerDep,
    email: EmailField = "",
    password: PasswordField = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    try:
        if not email or not password:
            raise AppError("Enter your email and password.")
        user = container.accounts.authenticate(
            email=email, password=password, client=client_key(request)
        )
    except AppError as exc:
        return render(
            request,
            "login.html",
            status=exc.status,
            error=exc.message,
            email=email,
            next=_safe_next(next),
            registration_open=container.settings.registration_open,
        )
    opened = container.accounts.open_session(user)
    # A sign-in that cleared documents shows the Documents page, which says so.
    target = _safe_next(next)
    if opened.cleared_documents and target == "/":
        target = "/documents"
    response = RedirectResponse(target, status_code=303)
    set_session(response, container, opened.token)
    return response


@router.get("/register", response_class=HTMLResponse)
def register_page(request: Request, container: ContainerDep) -> Response:
    if session_user(request, container) is not None:
        return RedirectResponse("/", status_code=303)
    return render(
        request,
        "register.html",
        registration_open=container.settings.registration_open,
        min_length=container.settings.password_min_length,
    )


@router.post("/register", response_class=HTMLResponse)
def register_submit(
    request: Request,
    container: ContainerDep,
    email: EmailField = "",
    password: PasswordField = "",
    password_confirm: PasswordField = "",
) -> Response:
    try:
        try:
            address = _email.validate_python(email.strip())
        except ValidationError as exc:
            raise AppError("Enter a valid email address, like name@company.com.") from exc
        if password != password_confirm:
            raise AppError("The two passwords do not match.")
        user = container.accounts.register(
            email=address, password=password, client=client_key(request)
        )
    except AppError as exc:
        return render(
            request,
            "register.html",
            status=exc.status,
            error=exc.message,
            email=email,
            registration_open=container.settings.registration_open,
            min_length=container.settings.password_min_length,
        )
    response = RedirectResponse("/", status_code=303)
    set_session(response, container, container.accounts.open_session(user, clear=False).token)
    return response


@router.post("/logout")
def logout(request: Request, container: ContainerDep) -> Response:
    # The session ends on the server too: a copy of the cookie is refused from now on.
    if session_user(request, container) is not None:
        container.accounts.sign_out(request.state.session_id)
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session(response, container)
    return response
