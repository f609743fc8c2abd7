"""The HTML pages (Jinja2 + htmx): each module a router over the same services as the API."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from pitchcraft.web.pages import (
    account,
    account_page,
    admin,
    compose,
    documents,
    results,
    settings,
    sources,
)
from pitchcraft.web.pages.session import SignInRequired, to_login

pages_router = APIRouter(include_in_schema=False)
for module in (account, account_page, documents, compose, results, sources, settings, admin):
    pages_router.include_router(module.router)


def install(app: FastAPI) -> None:
    app.include_router(pages_router)
    app.add_exception_handler(SignInRequired, to_login)
