"""Each user's saved prompt template, or the default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from pitchcraft.core.db import Database, utcnow
from pitchcraft.templates.models import PromptTemplate
from pitchcraft.templates.render import DEFAULT_TEMPLATE, validate


@dataclass(frozen=True)
class TemplateView:
    template: str
    is_default: bool
    updated_at: datetime | None


class Templates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, user_id: int) -> TemplateView:
        with self.db.session() as s:
            row = s.scalar(select(PromptTemplate).where(PromptTemplate.user_id == user_id))
            if row is None:
                return TemplateView(DEFAULT_TEMPLATE, True, None)
            return TemplateView(row.template, False, row.updated_at)

    def save(self, user_id: int, template: str) -> TemplateView:
        template = validate(template)
        try:
            return self._save(user_id, template)
        except IntegrityError:
            # Two first saves raced on PostgreSQL; the row exists now, so update it.
            return self._save(user_id, template)

    def _save(self, user_id: int, template: str) -> TemplateView:
        with self.db.session() as s:
            row = s.scalar(select(PromptTemplate).where(PromptTemplate.user_id == user_id))
            now = utcnow()
            if row is None:
                row = PromptTemplate(user_id=user_id, template=template, updated_at=now)
                s.add(row)
            else:
                row.template = template
                row.updated_at = now
            s.flush()
            return TemplateView(row.template, False, row.updated_at)

    def reset(self, user_id: int) -> TemplateView:
        with self.db.session() as s:
            s.execute(delete(PromptTemplate).where(PromptTemplate.user_id == user_id))
        return TemplateView(DEFAULT_TEMPLATE, True, None)
