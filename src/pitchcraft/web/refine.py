"""The refine pages: Compose (text, backgrounds, template), Result (live), History."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from pitchcraft.auth.deps import ContainerDep
from pitchcraft.auth.models import User
from pitchcraft.container import Container
from pitchcraft.core.errors import Invalid, NotFound
from pitchcraft.jobs.models import QUEUED, RUNNING, Job
from pitchcraft.refine.router import JobSummary, ResultOut, Source
from pitchcraft.refine.service import (
    DEFAULT_BACKGROUNDS,
    MAX_BACKGROUND_CHARS,
    MAX_BACKGROUNDS,
    MAX_TEXT_CHARS,
)
from pitchcraft.templates.render import MAX_TEMPLATE_CHARS, PLACEHOLDERS
from pitchcraft.web.routes import render
from pitchcraft.web.session import session_user

router = APIRouter(include_in_schema=False)

PER_PAGE = 20
SNIPPET_CHARS = 420
# What each placeholder becomes, for the help next to the template editor.
PLACEHOLDER_HELP = {
    "backgrounds": "the backgrounds you chose, joined by commas (e.g. “cybersecurity, SaaS”)",
    "marketing_text": "your marketing text, exactly as you typed it (required)",
    "context": "the numbered passages found in your documents, each with its source, "
    "e.g. “[1] brochure.pdf, page 3: …”",
}
assert set(PLACEHOLDER_HELP) == set(PLACEHOLDERS)
TEMPLATE_ERRORS = {"unknown_placeholder", "invalid_template"}
STATUS_LABELS = {
    "queued": "Queued",
    "running": "Running",
    "succeeded": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}

# Typed and pasted text keeps tabs and line breaks; other control characters (a form feed
# copied out of a PDF, a NUL) are invisible, and PostgreSQL cannot store NUL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CITATION = re.compile(r"\[(\d{1,3})\]")

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


def compose_form(
    marketing_text: TextField = "",
    backgrounds: Annotated[list[str] | None, Form()] = None,
    new_background: ShortField = "",
    template: TemplateField = None,
    rerun_of: Annotated[str, Form(max_length=64)] = "",
) -> ComposeForm:
    return ComposeForm(marketing_text, backgrounds or [], new_background, template, rerun_of)


ComposeFields = Annotated[ComposeForm, Depends(compose_form)]


# ---- helpers used by the pages -----------------------------------------------------------


def clean_text(value: str) -> str:
    """Line breaks as \\n (browsers send \\r\\n from a textarea), no control characters."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def iso(dt: datetime | None) -> str:
    d = utc(dt)
    return d.strftime("%Y-%m-%dT%H:%M:%SZ") if d else ""


def when(dt: datetime | None) -> str:
    """`3 May 2025, 14:05:09 UTC`: the same for everyone, whatever their time zone."""
    d = utc(dt)
    return f"{d.day} {d.strftime('%b %Y, %H:%M:%S')} UTC" if d else ""


def took(start: datetime | None, end: datetime | None) -> str:
    a, b = utc(start), utc(end)
    if a is None or b is None:
        return ""
    seconds = max(0.0, (b - a).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def cite(text: str, numbers: Sequence[int]) -> Markup:
    """The text, escaped, with each [n] that names a listed source linked to it."""
    known = set(numbers)
    out: list[str] = []
    last = 0
    for m in _CITATION.finditer(text):
        out.append(str(escape(text[last : m.start()])))
        n = int(m.group(1))
        if n in known:
            out.append(f'<a class="cite" href="#source-{n}">[{n}]</a>')
        else:
            out.append(str(escape(m.group(0))))
        last = m.end()
    out.append(str(escape(text[last:])))
    return Markup("".join(out))  # noqa: S704 (every piece is escaped above)


def where(source: Source) -> str:
    """`deck.pptx, slide 4` (the stored label), or one made from the file and page."""
    if source.label:
        return source.label
    if source.page is not None:
        unit = "slide" if source.filename.lower().endswith((".pptx", ".ppt")) else "page"
        return f"{source.filename}, {unit} {source.page}"
    return source.filename or "unknown source"


def split_backgrounds(raw: str) -> list[str]:
    return [b for b in re.split(r"[,\n;]", raw) if b.strip()]


def _signed_in(request: Request, container: Container) -> User | None:
    return session_user(request, container)


def _to_login(request: Request, path: str) -> Response:
    target = "/login?next=" + quote(path, safe="/")
    if request.headers.get("hx-request"):
        # htmx would swap the sign-in page into a fragment; move the whole page instead.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# ---- Compose ------------------------------------------------------------------------------


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
        model=container.llm.model if container.llm is not None else None,
        max_text=MAX_TEXT_CHARS,
        max_backgrounds=MAX_BACKGROUNDS,
        max_background_chars=MAX_BACKGROUND_CHARS,
        max_template=MAX_TEMPLATE_CHARS,
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
        model=container.llm.model if container.llm is not None else None,
        editor=editor,
        saved=saved,
        edited=editor != saved.template,
        placeholders=PLACEHOLDER_HELP,
        max_template=MAX_TEMPLATE_CHARS,
        **ctx,
    )


@router.get("/compose", response_class=HTMLResponse)
def compose_page(request: Request, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, "/compose")
    source_id = request.query_params.get("from", "")
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
    return _compose(
        request,
        container,
        user,
        text=str(payload.get("marketing_text", "")),
        chosen=backgrounds,
        template=str(payload.get("template") or "") or None,
        from_job=job,
    )


def _backgrounds(backgrounds: list[str], new_background: str) -> tuple[list[str], list[str]]:
    def tidy(b: str) -> str:
        return " ".join(clean_text(b).split())

    chosen = [tidy(b) for b in backgrounds]
    added = [tidy(b) for b in split_backgrounds(new_background)]
    return [b for b in chosen + added if b], [b for b in added if b]


@router.post("/compose", response_class=HTMLResponse)
def compose_submit(request: Request, container: ContainerDep, form: ComposeFields) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, "/compose")
    rerun_of = form.rerun_of
    text = clean_text(form.marketing_text)
    chosen, added = _backgrounds(form.backgrounds, form.new_background)
    editor = clean_text(form.template) if form.template is not None else None
    saved = container.templates.get(user.id).template
    # The editor's text is used for this run only when it differs from the saved template.
    override = editor if editor is not None and editor.strip() and editor != saved else None
    earlier: str | None = None
    if rerun_of:
        try:
            earlier = container.refine.get(user.id, rerun_of).id
        except NotFound:
            earlier = None
    try:
        job = container.refine.submit(
            user.id,
            marketing_text=text,
            backgrounds=chosen,
            template_override=override,
            rerun_of=earlier,
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
    return "text"


def _template_action(
    request: Request,
    container: Container,
    user: User,
    *,
    action: str,
    form: ComposeForm,
) -> Response:
    editor = clean_text(form.template or "")
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
        text=clean_text(form.marketing_text),
        chosen=chosen,
        added=added,
        template=editor,
        template_flash=flash,
        template_error=error,
        template_open=True,
        from_job=from_job,
    )


@router.post("/compose/template/save", response_class=HTMLResponse)
def template_save(request: Request, container: ContainerDep, form: ComposeFields) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, "/compose")
    return _template_action(request, container, user, action="save", form=form)


@router.post("/compose/template/reset", response_class=HTMLResponse)
def template_reset(request: Request, container: ContainerDep, form: ComposeFields) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, "/compose")
    return _template_action(request, container, user, action="reset", form=form)


# ---- Result -------------------------------------------------------------------------------


def _job(container: Container, user: User, job_id: str) -> Job:
    try:
        return container.refine.get(user.id, job_id)
    except NotFound as exc:
        # The same page whether the job never existed or belongs to someone else.
        raise NotFound(
            "There is no result at this address in your account.", code="job_not_found"
        ) from exc


def _result_context(job: Job) -> dict[str, Any]:
    r = ResultOut.of(job)
    numbers = [s.n for s in r.sources if s.n is not None]
    by_n = {s.n: s for s in r.sources if s.n is not None}
    return {
        "r": r,
        "busy": r.status in (QUEUED, RUNNING),
        "status_label": STATUS_LABELS.get(r.status, r.status.capitalize()),
        "cited_sources": [s for s in r.sources if s.cited],
        "context_sources": [s for s in r.sources if not s.cited],
        "by_n": by_n,
        "numbers": numbers,
        "cite": cite,
        "where": where,
        "when": when,
        "iso": iso,
        "took": took,
        "snippet_chars": SNIPPET_CHARS,
        "evidence": _evidence(r),
    }


def _evidence(r: ResultOut) -> dict[str, Any] | None:
    """The evidence brief's structure, when the job has one, for a readable layout."""
    raw = r.evidence
    if r.mode != "evidence" or not isinstance(raw, dict):
        return None
    sentences = [s for s in raw.get("sentences") or [] if isinstance(s, dict)]
    backgrounds = [b for b in raw.get("backgrounds") or [] if isinstance(b, dict)]
    return {"sentences": sentences, "backgrounds": backgrounds}


@router.get("/results/{job_id}", response_class=HTMLResponse)
def result_page(request: Request, job_id: str, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, f"/results/{job_id}")
    job = _job(container, user, job_id)
    return render(
        request,
        "result.html",
        user=user,
        **_result_context(job),
    )


@router.get("/results/{job_id}/live", response_class=HTMLResponse)
def result_live(request: Request, job_id: str, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, f"/results/{job_id}")
    job = _job(container, user, job_id)
    return render(request, "_result_live.html", user=user, **_result_context(job))


@router.post("/results/{job_id}/rerun", response_class=HTMLResponse)
def result_rerun(request: Request, job_id: str, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, f"/results/{job_id}")
    _job(container, user, job_id)
    new = container.refine.rerun(user.id, job_id)
    return RedirectResponse(f"/results/{new.id}", status_code=303)


# ---- History ------------------------------------------------------------------------------


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < len(raw) < 6 and int(raw) else 1


def _history_context(container: Container, user: User, page: int) -> dict[str, Any]:
    jobs, total = container.refine.history(user.id, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    pages = max(1, -(-total // PER_PAGE))
    items = [JobSummary.of(j) for j in jobs]
    return {
        "items": items,
        "total": total,
        "page_no": page,
        "pages": pages,
        "busy": any(i.status in (QUEUED, RUNNING) for i in items),
        "status_labels": STATUS_LABELS,
        "when": when,
        "iso": iso,
        "first": (page - 1) * PER_PAGE + 1,
    }


@router.get("/history", response_class=HTMLResponse)
def history_page(request: Request, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, "/history")
    page = _page_number(request)
    ctx = _history_context(container, user, page)
    if page > ctx["pages"]:
        return RedirectResponse(f"/history?page={ctx['pages']}", status_code=303)
    return render(request, "history.html", user=user, active="history", **ctx)


@router.get("/history/list", response_class=HTMLResponse)
def history_list(request: Request, container: ContainerDep) -> Response:
    user = _signed_in(request, container)
    if user is None:
        return _to_login(request, "/history")
    ctx = _history_context(container, user, _page_number(request))
    return render(request, "_history_list.html", user=user, **ctx)
