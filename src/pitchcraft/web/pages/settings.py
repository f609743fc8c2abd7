"""The Settings page: the brand glossary (edit, import a CSV, add names found in the
documents) and the user's own channels."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import AppError, Invalid
from pitchcraft.core.validation import strip_control_chars
from pitchcraft.glossary.importing import MAX_CSV_CHARS, merged, read_csv
from pitchcraft.glossary.rules import MAX_TERMS
from pitchcraft.web.api.glossary import suggested_names
from pitchcraft.web.deps import ContainerDep
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import PageUser

router = APIRouter(include_in_schema=False)

BLANK_ROWS = 3
Words = Annotated[list[str] | None, Form(max_length=MAX_TERMS + 50)]


def _split(raw: str) -> list[str]:
    return [w.strip() for w in re.split(r"[,;\n]", strip_control_chars(raw)) if w.strip()]


def _page(
    request: Request,
    container: Container,
    user: User,
    *,
    status: int = 200,
    rows: list[dict[str, Any]] | None = None,
    banned: str | None = None,
    **ctx: Any,
) -> HTMLResponse:
    g = container.glossaries.get(user.id)
    if rows is None:
        rows = [{"use": t.use, "avoid": ", ".join(t.avoid)} for t in g.terms]
    try:
        suggestions = suggested_names(container, user.id)
    except Exception:
        suggestions = []
    return render(
        request,
        "settings.html",
        user=user,
        status=status,
        active="settings",
        rows=[*rows, *({"use": "", "avoid": ""} for _ in range(BLANK_ROWS))],
        banned="\n".join(g.banned) if banned is None else banned,
        updated_at=g.updated_at,
        suggestions=suggestions,
        channels=[c for c in container.channels.list(user.id) if c.custom],
        max_csv=MAX_CSV_CHARS,
        **ctx,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, container: ContainerDep, user: PageUser) -> Response:
    return _page(request, container, user, flash=request.query_params.get("saved") and "Saved.")


@router.post("/settings/glossary", response_class=HTMLResponse)
def glossary_save(
    request: Request,
    container: ContainerDep,
    user: PageUser,
    use: Words = None,
    avoid: Words = None,
    banned: Annotated[str, Form(max_length=200_000)] = "",
) -> Response:
    uses, avoids = use or [], avoid or []
    rows = [
        {"use": " ".join(strip_control_chars(u).split()), "avoid": a}
        for u, a in zip(uses, avoids + [""] * (len(uses) - len(avoids)), strict=False)
    ]
    try:
        terms = []
        for n, row in enumerate(rows, start=1):
            words = _split(row["avoid"])
            if not row["use"] and words:
                raise Invalid(f"Row {n}: write the word to use.", code="invalid_glossary")
            if row["use"]:
                terms.append({"use": row["use"], "avoid": words})
        container.glossaries.put(user.id, terms, _split(banned))
    except AppError as exc:
        kept = [r for r in rows if r["use"] or r["avoid"]]
        return _page(
            request, container, user, status=exc.status, rows=kept, banned=banned, error=exc.message
        )
    return RedirectResponse("/settings?saved=1#glossary", status_code=303)


@router.post("/settings/glossary/import", response_class=HTMLResponse)
def glossary_import(
    request: Request,
    container: ContainerDep,
    user: PageUser,
    csv_text: Annotated[str, Form(max_length=MAX_CSV_CHARS * 4)] = "",
) -> Response:
    try:
        if not csv_text.strip():
            raise Invalid("Choose a CSV file or paste its rows first.", code="invalid_glossary")
        terms, banned = read_csv(strip_control_chars(csv_text))
        all_terms, all_banned = merged(container.glossaries.get(user.id), terms, banned)
        container.glossaries.put(user.id, all_terms, all_banned)
    except AppError as exc:
        return _page(request, container, user, status=exc.status, import_error=exc.message)
    return RedirectResponse("/settings?saved=1#glossary", status_code=303)


@router.post("/settings/glossary/add", response_class=HTMLResponse)
def glossary_add(
    request: Request,
    container: ContainerDep,
    user: PageUser,
    use: Annotated[str, Form(max_length=200)] = "",
    avoid: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Add one suggested name."""
    try:
        all_terms, all_banned = merged(
            container.glossaries.get(user.id), [{"use": use, "avoid": _split(avoid)}], []
        )
        container.glossaries.put(user.id, all_terms, all_banned)
    except AppError as exc:
        return _page(request, container, user, status=exc.status, error=exc.message)
    return RedirectResponse("/settings?saved=1#glossary", status_code=303)


@router.post("/settings/channels", response_class=HTMLResponse)
def channel_add(
    request: Request,
    container: ContainerDep,
    user: PageUser,
    name: Annotated[str, Form(max_length=400)] = "",
    max_chars: Annotated[str, Form(max_length=12)] = "",
    guidance: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    try:
        limit = int(max_chars) if max_chars.strip().isdigit() else 0
        container.channels.add(
            user.id,
            name=strip_control_chars(name),
            max_chars=limit,
            guidance=strip_control_chars(guidance),
        )
    except AppError as exc:
        return _page(request, container, user, status=exc.status, channel_error=exc.message)
    return RedirectResponse("/settings?saved=1#channels", status_code=303)


@router.post("/settings/channels/{channel_id}/delete", response_class=HTMLResponse)
def channel_delete(
    request: Request, channel_id: str, container: ContainerDep, user: PageUser
) -> Response:
    container.channels.delete(user.id, channel_id)
    return RedirectResponse("/settings?saved=1#channels", status_code=303)
