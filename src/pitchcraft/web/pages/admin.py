"""The administrator's pages: Model (connect and test a model) and Users."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from pitchcraft.admin.model import KEY_UNREADABLE, MAX_KEY_CHARS, MAX_MODEL_CHARS
from pitchcraft.admin.presets import detect
from pitchcraft.admin.schemas import MAX_URL_CHARS
from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import AppError, Forbidden
from pitchcraft.llm.probe import ProbeResult
from pitchcraft.web.deps import ContainerDep
from pitchcraft.web.pages.format import when
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import PageUser

router = APIRouter(include_in_schema=False)

UrlField = Annotated[str, Form(max_length=MAX_URL_CHARS)]
ModelField = Annotated[str, Form(max_length=MAX_MODEL_CHARS)]
KeyField = Annotated[str, Form(max_length=MAX_KEY_CHARS)]


def page_admin(user: PageUser) -> User:
    if not user.is_admin:
        raise Forbidden("This page is for administrators.", code="admin_only")
    return user


PageAdmin = Annotated[User, Depends(page_admin)]


def _model_page(
    request: Request,
    container: Container,
    user: User,
    *,
    status: int = 200,
    form: dict[str, str] | None = None,
    result: ProbeResult | None = None,
    **ctx: Any,
) -> HTMLResponse:
    view = container.model.view()
    return render(
        request,
        "admin_model.html",
        user=user,
        status=status,
        active="model",
        view=view,
        unreadable=KEY_UNREADABLE if view.key_unreadable else None,
        presets=detect(container.settings.ollama_base_url),
        form=form or {"base_url": view.base_url or "", "model": view.model},
        result=result,
        **ctx,
    )


@router.get("/admin/model", response_class=HTMLResponse)
def model_page(
    request: Request, user: PageAdmin, container: ContainerDep, saved: int = 0, reset: int = 0
) -> Response:
    return _model_page(request, container, user, saved=bool(saved), reset=bool(reset))


@router.post("/admin/model/test", response_class=HTMLResponse)
def model_test(
    request: Request,
    user: PageAdmin,
    container: ContainerDep,
    base_url: UrlField = "",
    api_key: KeyField = "",
    model: ModelField = "",
) -> Response:
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        result = container.model.test(base_url=base_url, api_key=api_key or None, model=model)
    except AppError as exc:
        if wants_json:
            return JSONResponse({"ok": False, "models": [], "error": exc.message}, exc.status)
        form = {"base_url": base_url, "model": model}
        return _model_page(
            request, container, user, status=exc.status, form=form, error=exc.message
        )
    if wants_json:
        return JSONResponse(
            {
                "ok": result.ok,
                "models": result.models,
                "latency_ms": result.latency_ms,
                "error": result.error,
            }
        )
    form = {"base_url": base_url, "model": model}
    return _model_page(request, container, user, form=form, result=result, key_typed=bool(api_key))


@router.post("/admin/model", response_class=HTMLResponse)
def model_save(
    request: Request,
    user: PageAdmin,
    container: ContainerDep,
    base_url: UrlField = "",
    api_key: KeyField = "",
    model: ModelField = "",
    clear_key: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    key = "" if clear_key else (api_key or None)  # empty: keep the saved key
    try:
        container.model.save(base_url=base_url, model=model, api_key=key, by=user.id)
    except AppError as exc:
        form = {"base_url": base_url, "model": model}
        return _model_page(
            request, container, user, status=exc.status, form=form, error=exc.message
        )
    return RedirectResponse("/admin/model?saved=1", status_code=303)


@router.post("/admin/model/reset")
def model_reset(user: PageAdmin, container: ContainerDep) -> Response:
    container.model.clear()
    return RedirectResponse("/admin/model?reset=1", status_code=303)


ACTIONS: dict[str, tuple[str, bool, str]] = {
    "promote": ("is_admin", True, "is now an administrator"),
    "demote": ("is_admin", False, "is now a member"),
    "subscribe": ("is_subscribed", True, "is subscribed"),
    "unsubscribe": ("is_subscribed", False, "is no longer subscribed"),
    "disable": ("disabled", True, "is disabled and signed out"),
    "enable": ("disabled", False, "is enabled"),
}


def _users_page(
    request: Request, container: Container, user: User, *, status: int = 200, **ctx: Any
) -> HTMLResponse:
    rows, total = container.users.list(limit=500)
    return render(
        request,
        "admin_users.html",
        user=user,
        status=status,
        active="users",
        rows=rows,
        total=total,
        when=when,
        size=_size,
        **ctx,
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, user: PageAdmin, container: ContainerDep) -> Response:
    return _users_page(request, container, user)


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def users_action(
    request: Request,
    user_id: int,
    user: PageAdmin,
    container: ContainerDep,
    action: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    try:
        if action not in ACTIONS:
            raise AppError("Choose an action.", code="unknown_action")
        field, value, done = ACTIONS[action]
        row = container.users.update(user_id, **{field: value}, actor_id=user.id)
    except AppError as exc:
        return _users_page(request, container, user, status=exc.status, error=exc.message)
    return _users_page(request, container, user, done=f"{row.email} {done}.")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
