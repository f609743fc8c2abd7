"""Every table, imported in one place so Alembic and tests see the whole schema."""

from pitchcraft.auth.models import User, UserSession
from pitchcraft.core.db import Base
from pitchcraft.core.system import AppSetting
from pitchcraft.documents.models import Document
from pitchcraft.jobs.models import Job
from pitchcraft.templates.models import PromptTemplate

__all__ = ["AppSetting", "Base", "Document", "Job", "PromptTemplate", "User", "UserSession"]
