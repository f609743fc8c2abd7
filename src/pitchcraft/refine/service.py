"""Refine requests: check and queue them, read one back, the history, re-run with edits.
(The job itself runs in `runner`.)"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from pitchcraft.channels.service import Channels
from pitchcraft.core.db import Database
from pitchcraft.core.errors import Invalid, NotFound
from pitchcraft.glossary.service import Glossaries
from pitchcraft.jobs.models import Job
from pitchcraft.jobs.queue import enqueue
from pitchcraft.templates.render import validate
from pitchcraft.templates.service import Templates

REFINE = "refine"
DEFAULT_BACKGROUNDS = ("cybersecurity", "network security", "marketing", "data analytics", "SaaS")
MAX_TEXT_CHARS = 20_000
MAX_BACKGROUNDS = 20
MAX_BACKGROUND_CHARS = 100
MAX_VARIANTS = 5


def clean_backgrounds(backgrounds: Sequence[str]) -> list[str]:
    """Trimmed, without blanks or case-insensitive repeats, in the order given."""
    seen: set[str] = set()
    out: list[str] = []
    for raw in backgrounds:
        b = " ".join(raw.split())
        if not b:
            continue
        if len(b) > MAX_BACKGROUND_CHARS:
            raise Invalid(
                f"A background is at most {MAX_BACKGROUND_CHARS} characters.",
                code="invalid_background",
            )
        if b.casefold() not in seen:
            seen.add(b.casefold())
            out.append(b)
    if len(out) > MAX_BACKGROUNDS:
        raise Invalid(f"Choose at most {MAX_BACKGROUNDS} backgrounds.", code="invalid_background")
    return out


def check_text(text: str) -> str:
    if not text.strip():
        raise Invalid("Paste the marketing text to refine.", code="empty_text")
    if len(text) > MAX_TEXT_CHARS:
        raise Invalid(
            f"The marketing text is longer than {MAX_TEXT_CHARS:,} characters; refine it in parts.",
            code="text_too_long",
        )
    return text


def check_variants(variants: int) -> int:
    if isinstance(variants, bool) or not isinstance(variants, int):
        raise Invalid("`variants` is a whole number from 1 to 5.", code="invalid_variants")
    if not 1 <= variants <= MAX_VARIANTS:
        raise Invalid(
            f"Ask for 1 to {MAX_VARIANTS} variants, not {variants}.", code="invalid_variants"
        )
    return variants


@dataclass
class Refine:
    db: Database
    templates: Templates
    notify: Callable[[], None] = lambda: None
    channels: Channels = field(default=None)  # type: ignore[assignment]
    glossaries: Glossaries = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.channels is None:
            self.channels = Channels(self.db)
        if self.glossaries is None:
            self.glossaries = Glossaries(self.db)

    # Counts a submission for the user; raises RateLimited past their budget.
    admit: Callable[[int], None] = lambda user_id: None

    def submit(
        self,
        user_id: int,
        *,
        marketing_text: str,
        backgrounds: Sequence[str],
        template_override: str | None = None,
        rerun_of: str | None = None,
        channel: str | None = None,
        variants: int = 1,
        channel_snapshot: dict[str, Any] | None = None,
    ) -> Job:
        """Queue a job. The channel and the glossary are copied into it as they are now,
        so the job (and a re-run of it) reads the same whatever is edited later."""
        text = check_text(marketing_text)
        chosen = clean_backgrounds(backgrounds)
        count = check_variants(variants)
        if channel:
            picked: dict[str, Any] | None = self.channels.get(user_id, channel).as_dict()
        else:
            picked = channel_snapshot
        if template_override is not None and template_override.strip():
            template = validate(template_override)
        else:
            template = self.templates.get(user_id).template
        payload: dict[str, Any] = {
            "marketing_text": text,
            "backgrounds": chosen,
            "template": template,
            "template_override": template_override is not None and bool(template_override.strip()),
            "channel": picked,
            "variants": count,
            "glossary": self.glossaries.get(user_id).as_dict(),
        }
        if rerun_of:
            payload["rerun_of"] = rerun_of
        self.admit(user_id)  # after validation: a rejected request costs nothing
        with self.db.session() as s:
            job = enqueue(s, kind=REFINE, user_id=user_id, payload=payload)
            s.flush()
            s.expunge(job)
        self.notify()
        return job

    def rerun(
        self,
        user_id: int,
        job_id: str,
        *,
        marketing_text: str | None = None,
        backgrounds: Sequence[str] | None = None,
        template_override: str | None = None,
        channel: str | None = None,
        variants: int | None = None,
    ) -> Job:
        old = self.get(user_id, job_id)
        kept = old.payload.get("channel")
        return self.submit(
            user_id,
            marketing_text=old.payload.get("marketing_text", "")
            if marketing_text is None
            else marketing_text,
            backgrounds=old.payload.get("backgrounds", []) if backgrounds is None else backgrounds,
            template_override=old.payload.get("template")
            if template_override is None
            else template_override,
            rerun_of=old.id,
            channel=channel,
            channel_snapshot=kept if isinstance(kept, dict) and channel is None else None,
            variants=int(old.payload.get("variants") or 1) if variants is None else variants,
        )

    def get(self, user_id: int, job_id: str) -> Job:
        with self.db.session() as s:
            # No id has a NUL (which PostgreSQL cannot even compare): not found, not a 500.
            job = s.get(Job, job_id) if len(job_id) <= 64 and "\x00" not in job_id else None
            if job is None or job.user_id != user_id or job.kind != REFINE:
                raise NotFound("No such job.", code="job_not_found")
            s.expunge(job)
            return job

    def delete(self, user_id: int, job_id: str) -> None:
        """Remove one of the user's refine jobs (a running one stops being saved: its
        worker no longer holds it)."""
        with self.db.session() as s:
            job = s.get(Job, job_id) if len(job_id) <= 64 and "\x00" not in job_id else None
            if job is None or job.user_id != user_id or job.kind != REFINE:
                raise NotFound("No such job.", code="job_not_found")
            s.delete(job)

    def history(self, user_id: int, *, limit: int, offset: int) -> tuple[list[Job], int]:
        where = (Job.user_id == user_id, Job.kind == REFINE)
        with self.db.session() as s:
            total = s.scalar(select(func.count()).select_from(Job).where(*where)) or 0
            jobs = list(
                s.scalars(
                    select(Job)
                    .where(*where)
                    .order_by(Job.created_at.desc(), Job.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            for job in jobs:
                s.expunge(job)
            return jobs, total

    def recent_backgrounds(self, user_id: int, limit: int = 20) -> list[str]:
        """Backgrounds the user typed in earlier jobs, newest first (not the defaults)."""
        jobs, _ = self.history(user_id, limit=100, offset=0)
        defaults = {b.casefold() for b in DEFAULT_BACKGROUNDS}
        seen: set[str] = set()
        out: list[str] = []
        for job in jobs:
            for b in job.payload.get("backgrounds", []):
                if isinstance(b, str) and b.casefold() not in defaults | seen:
                    seen.add(b.casefold())
                    out.append(b)
        return out[:limit]
