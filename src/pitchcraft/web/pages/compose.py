"""The Compose page: marketing text, backgrounds, the prompt template, Process."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import Invalid, NotFound
from pitchcraft.core.validation import strip_control_chars
from pitchcraft.documents.sample_library import example_text
from pitchcraft.refine.service import (
    DEFAULT_BACKGROUNDS,
    MAX_BACKGROUND_CHARS,
    MAX_BACKGROUNDS,
    MAX_TEXT_CHARS,
    MAX_VARIANTS,
)
from pitchcraft.templates.render import MAX_TEMPLATE_CHARS, PLACEHOLDERS
from pitchcraft.web.deps import ContainerDep
from pitchcraft.web.pages.format import iso, when
from pitchcraft.web.pages.render import render
from pitchcraft.web.pages.session import PageUser

router = APIRouter(include_in_schema=False)

# What each placeholder becomes, for the help next to the template editor.
PLACEHOLDER_HELP = {
    "backgrounds": "the backgrounds you chose, joined by commas (e.g. “cybersecurity, SaaS”)",
    "marketing_text": "your marketing text, exactly as you typed it (required)",
    "context": "the numbered passages found in your documents, each with its source, "
    "e.g. “[1] brochure.pdf, page 3: …”",
    "channel": "where the copy will be published: the channel, its character limit and "
    "guidance (or, with no channel, to keep about the original's length)",
    "glossary": "your brand glossary from Settings: the words to use, avoid and never use",
}
assert set(PLACEHOLDER_HELP) == set(PLACEHOLDERS)
TEMPLATE_ERRORS = {"unknown_placeholder", "invalid_template"}

TextField = Annotated[str, Form(max_length=MAX_TEXT_CHARS * 4)]
TemplateField = Annotated[str | None, Form(max_length=MAX_TEMPLATE_CHARS * 4)]
ShortField = Annotated[str, Form(max_length=4000)]


@dataclass(frozen=True)
class ComposeForm:
    """The Compose form's fields, as every button of the page posts them."""

    marketing_text: str
    backgrounds: list[str]
    new_background: str
    template: str | None
    rerun_of: str
    channel: str = ""
    variants: str = "1"


def compose_form(
    marketing_text: TextField = "",
    backgrounds: Annotated[list[str] | None, Form()] = None,
    new_background: ShortField = "",
    template: TemplateField = None,
    rerun_of: Annotated[str, Form(max_length=64)] = "",
    channel: Annotated[str, Form(max_length=64)] = "",
    variants: Annotated[str, Form(max_length=8)] = "1",
) -> ComposeForm:
    return ComposeForm(
        marketing_text, backgrounds or [], new_background, template, rerun_of, channel, variants
    )


ComposeFields = Annotated[ComposeForm, Depends(compose_form)]


def split_backgrounds(raw: str) -> list[str]:
    return [b for b in re.split(r"[,\n;]", raw) if b.strip()]


def _chips(
    container: Container, user: User, chosen: Sequence[str], added: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The five defaults, the user's recent ones, then any other chosen ones (those typed
    in just now): each once, case-insensitively, checked when chosen."""
    picked = {" ".join(b.split()).casefold() for b in chosen}
    new = {" ".join(b.split()).casefold() for b in added}
    seen: set[str] = set()
    chips: list[dict[str, Any]] = []
    recent = container.refine.recent_backgrounds(user.id)
    groups = (
        (DEFAULT_BACKGROUNDS, "default"),
        (recent, "recent"),
        (chosen, "custom"),
    )
    for values, kind in groups:
        for value in values:
            value = " ".join(value.split())
            key = value.casefold()
            if not value or key in seen:
                continue
            seen.add(key)
            chips.append(
                {
                    "value": value,
                    "checked": key in picked,
                    "kind": "custom" if key in new and kind != "default" else kind,
                    "id": f"bg-{len(chips)}",
                }
            )
    return chips


def _compose(
    request: Request,
    container: Container,
    user: User,
    *,
    status: int = 200,
    text: str = "",
    chosen: Sequence[str] = (),
    added: Sequence[str] = (),
    template: str | None = None,
    channel: str = "",
    variants: int = 1,
    **ctx: Any,
) -> HTMLResponse:
    saved = container.templates.get(user.id)
    editor = saved.template if template is None else template
    edited = editor != saved.template
    # The editor is open when there is something to see in it: an edit, or a message.
    ctx["template_open"] = bool(ctx.get("template_open") or edited or ctx.get("template_error"))
    return render(
        request,
        "compose.html",
        user=user,
        status=status,
        active="compose",
        text=text,
        chips=_chips(container, user, chosen, added),
        editor=editor,
        saved=saved,
        edited=edited,
        placeholders=PLACEHOLDER_HELP,
        model=container.model.model_name(),
        max_text=MAX_TEXT_CHARS,
        max_backgrounds=MAX_BACKGROUNDS,
        max_background_chars=MAX_BACKGROUND_CHARS,
        max_template=MAX_TEMPLATE_CHARS,
        channels=container.channels.list(user.id),
        channel=channel,
        variants=variants,
        max_variants=MAX_VARIANTS,
        when=when,
        iso=iso,
        **ctx,
    )


def _template_panel(
    request: Request,
    container: Container,
    user: User,
    *,
    editor: str,
    status: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    saved = container.templates.get(user.id)
    return render(
        request,
        "_compose_template.html",
        user=user,
        status=status,
        model=container.model.model_name(),
        editor=editor,
        saved=saved,
        edited=editor != saved.template,
        placeholders=PLACEHOLDER_HELP,
        max_template=MAX_TEMPLATE_CHARS,
        **ctx,
    )


@router.get("/compose", response_class=HTMLResponse)
def compose_page(request: Request, container: ContainerDep, user: PageUser) -> Response:
    source_id = request.query_params.get("from", "")
    if request.query_params.get("example") == "samples":
        # The sample library's example text, to check against the sample documents.
        return _compose(request, container, user, text=example_text(), example=True)
    if not source_id:
        return _compose(request, container, user)
    # "Re-run with edits": the earlier job's text, backgrounds and exact template.
    try:
        job = container.refine.get(user.id, source_id)
    except NotFound:
        return _compose(
            request,
            container,
            user,
            status=404,
            error="That earlier run was not found, so the form starts empty.",
        )
    payload = job.payload or {}
    backgrounds = [str(b) for b in payload.get("backgrounds", [])]
    used = payload.get("channel") if isinstance(payload.get("channel"), dict) else {}
    return _compose(
        request,
        container,
        user,
        text=str(payload.get("marketing_text", "")),
        chosen=backgrounds,
        template=str(payload.get("template") or "") or None,
        channel=str((used or {}).get("id") or ""),
        variants=_count(str(payload.get("variants") or 1)),
        from_job=job,
    )


def _count(raw: str) -> int:
    """The variants field; anything but a whole number is 1 (the select offers 1 to 5)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 3 else 1


def _backgrounds(backgrounds: list[str], new_background: str) -> tuple[list[str], list[str]]:
    def tidy(b: str) -> str:
        return " ".join(strip_control_chars(b).split())

    chosen = [tidy(b) for b in backgrounds]
    added = [tidy(b) for b in split_backgrounds(new_background)]
    return [b for b in chosen + added if b], [b for b in added if b]


@router.post("/compose", response_class=HTMLResponse)
def compose_submit(
    request: Request, container: ContainerDep, user: PageUser, form: ComposeFields
) -> Response:
    rerun_of = form.rerun_of
    text = strip_control_chars(form.marketing_text)
    chosen, added = _backgrounds(form.backgrounds, form.new_background)
    editor = strip_control_chars(form.template) if form.template is not None else None
    saved = container.templates.get(user.id).template
    # The editor's text is used for this run only when it differs from the saved template.
    override = editor if editor is not None and editor.strip() and editor != saved else None
    earlier: str | None = None
    if rerun_of:
        try:
            earlier = container.refine.get(user.id, rerun_of).id
        except NotFound:
            earlier = None
    variants = _count(form.variants)
    try:
        job = container.refine.submit(
            user.id,
            marketing_text=text,
            backgrounds=chosen,
            template_override=override,
            rerun_of=earlier,
            channel=form.channel or None,
            variants=variants,
        )
    except Invalid as exc:
        from_job = None
        if earlier:
            from_job = container.refine.get(user.id, earlier)
        return _compose(
            request,
            container,
            user,
            status=exc.status,
            text=text,
            chosen=chosen,
            added=added,
            template=editor,
            channel=form.channel,
            variants=variants,
            error=exc.message,
            error_field=_field_of(exc.code),
            template_error=exc.message if _field_of(exc.code) == "template" else "",
            from_job=from_job,
        )
    return RedirectResponse(f"/results/{job.id}", status_code=303)


def _field_of(code: str) -> str:
    if code in TEMPLATE_ERRORS:
        return "template"
    if code == "invalid_background":
        return "backgrounds"
    if code in ("unknown_channel", "invalid_variants"):
        return "channel"
    return "text"


def _template_action(
    request: Request,
    container: Container,
    user: User,
    *,
    action: str,
    form: ComposeForm,
) -> Response:
    editor = strip_control_chars(form.template or "")
    status, flash, error = 200, "", ""
    try:
        if action == "save":
            editor = container.templates.save(user.id, editor).template
            flash = "Saved as your template. Every run uses it from now on."
        else:
            editor = container.templates.reset(user.id).template
            flash = "Your template is back to the default."
    except Invalid as exc:
        status, error = exc.status, exc.message
    if request.headers.get("hx-request"):
        return _template_panel(
            request,
            container,
            user,
            editor=editor,
            status=status,
            template_flash=flash,
            template_error=error,
        )
    # Without JavaScript the whole page comes back, with everything typed so far.
    chosen, added = _backgrounds(form.backgrounds, form.new_background)
    from_job = None
    if form.rerun_of:
        try:
            from_job = container.refine.get(user.id, form.rerun_of)
        except NotFound:
            from_job = None
    return _compose(
        request,
        container,
        user,
        status=status,
        text=strip_control_chars(form.marketing_text),
        chosen=chosen,
        added=added,
        template=editor,
        channel=form.channel,
        variants=_count(form.variants),
        template_flash=flash,
        template_error=error,
        template_open=True,
        from_job=from_job,
    )


@router.post("/compose/template/save", response_class=HTMLResponse)
def template_save(
    request: Request, container: ContainerDep, user: PageUser, form: ComposeFields
) -> Response:
    return _template_action(request, container, user, action="save", form=form)


@router.post("/compose/template/reset", response_class=HTMLResponse)
def template_reset(
    request: Request, container: ContainerDep, user: PageUser, form: ComposeFields
) -> Response:
    return _template_action(request, container, user, action="reset", form=form)
