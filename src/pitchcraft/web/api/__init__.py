"""The JSON API: one router that owns the version prefix; each module is a bare router."""

from __future__ import annotations

from fastapi import APIRouter

from pitchcraft.web.api import account, admin, auth, documents, glossary, jobs, refine, search
from pitchcraft.web.errors import ERROR_RESPONSES
from pitchcraft.web.paths import API_PREFIX

api_router = APIRouter(prefix=API_PREFIX, responses=ERROR_RESPONSES)
for module in (auth, account, documents, search, refine, jobs, glossary, admin):
    api_router.include_router(module.router)
