"""The web application: the API, the pages, error handlers and the ASGI layers, in order."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy import text

from pitchcraft import __version__
from pitchcraft.container import Container, build
from pitchcraft.runtime import start_background_work, stop_background_work
from pitchcraft.settings import Settings
from pitchcraft.web import errors, pages
from pitchcraft.web.api import api_router
from pitchcraft.web.csrf import csrf_layer
from pitchcraft.web.deps import ContainerDep
from pitchcraft.web.middleware import ApiCors, BodyLimit, GuardUnreadableBody, SecurityHeaders
from pitchcraft.web.pages.session import session_user
from pitchcraft.web.paths import UPLOAD_PATHS
from pitchcraft.web.responses import SafeJSONResponse, showable

log = logging.getLogger(__name__)

WEB = files("pitchcraft") / "web"


class HealthOut(BaseModel):
    status: str
    database: str
    vectors: str
    llm: str
    version: str


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """Build the app. Checks the data location and migrates before it returns."""
    settings = settings or Settings()
    container = container or build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = start_background_work(container) if settings.worker_in_process else None
        yield
        if worker is not None:
            stop_background_work(worker)
        container.close()

    app = FastAPI(
        title="Pitchcraft",
        version=__version__,
        summary="Refine marketing copy with your own documents.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=SafeJSONResponse,
    )
    app.state.container = container
    app.state.templates = Jinja2Templates(directory=str(WEB / "templates"))
    app.state.templates.env.finalize = showable
    app.mount("/static", StaticFiles(directory=str(WEB / "static")), name="static")
    errors.install(app, page_user=lambda request: session_user(request, container))
    app.include_router(api_router)
    pages.install(app)

    @app.get(
        "/health", response_model=HealthOut, tags=["health"], responses={503: {"model": HealthOut}}
    )
    def health(c: ContainerDep) -> Any:
        database = c.db.backend
        status = "ok"
        try:
            with c.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any driver error means the database is unreachable
            log.warning("health: database unreachable", exc_info=True)
            database, status = f"{database}: unreachable", "degraded"
        try:
            vectors = c.index().healthy()
        except Exception:  # the vector backend is down or its files are unusable
            log.warning("health: vector index unusable", exc_info=True)
            vectors, status = "unavailable", "degraded"
        try:
            llm = c.model.status()
        except Exception:  # reported with the database above
            log.warning("health: the model setting could not be read", exc_info=True)
            llm = "unknown"
        body = HealthOut(
            status=status, database=database, vectors=vectors, llm=llm, version=__version__
        )
        return JSONResponse(body.model_dump(), status_code=200 if status == "ok" else 503)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Pitchcraft API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    limit = settings.max_request_kb * 1024
    upload_limit = settings.max_files_per_upload * settings.max_upload_mb * 1024 * 1024 + limit

    def limit_for(path: str) -> int:
        return upload_limit if path in UPLOAD_PATHS else limit

    def render_error_page(status: int, detail: str) -> bytes:
        page = app.state.templates.get_template("error.html")
        html: str = page.render(status=status, detail=detail, user=None)
        return html.encode()

    # The last added is the outermost: security headers on every answer, CORS headers on
    # those of the other layers too (a 413 the browser's script can read).
    app.add_middleware(csrf_layer(settings, container, render_error_page))
    app.add_middleware(GuardUnreadableBody)
    app.add_middleware(BodyLimit, limit_for=limit_for)
    if settings.cors_origins:
        app.add_middleware(ApiCors, origins=settings.cors_origins)
    app.add_middleware(SecurityHeaders, hsts=settings.cookie_secure)
    return app
