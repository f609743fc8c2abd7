"""Every table, imported in one place so Alembic and tests see the whole schema."""

from pitchcraft.admin.models import LlmSetting
from pitchcraft.auth.models import User, UserSession
from pitchcraft.channels.models import UserChannel
from pitchcraft.core.db import Base
from pitchcraft.core.system import AppSetting
from pitchcraft.documents.models import Document
from pitchcraft.glossary.models import GlossaryRow
from pitchcraft.jobs.models import Job
from pitchcraft.templates.models import PromptTemplate

__all__ = [
    "AppSetting",
    "Base",
    "Document",
    "GlossaryRow",
    "Job",
    "LlmSetting",
    "PromptTemplate",
    "User",
    "UserChannel",
    "UserSession",
]
