"""What the API shows of a prompt template."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from pitchcraft.core.validation import CleanStr
from pitchcraft.templates.render import MAX_TEMPLATE_CHARS, PLACEHOLDERS
from pitchcraft.templates.service import TemplateView


class TemplateIn(BaseModel):
    template: CleanStr = Field(max_length=MAX_TEMPLATE_CHARS)


class TemplateOut(BaseModel):
    template: str
    is_default: bool
    updated_at: datetime | None
    placeholders: list[str] = Field(default_factory=lambda: list(PLACEHOLDERS))

    @classmethod
    def of(cls, view: TemplateView) -> TemplateOut:
        return cls(template=view.template, is_default=view.is_default, updated_at=view.updated_at)
