"""The web application: API routers, pages, error handlers and middleware."""

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

from pitchcraft import __version__, errors_http
from pitchcraft.auth.deps import ContainerDep
from pitchcraft.auth.router import router as auth_router
from pitchcraft.container import Container, build
from pitchcraft.middleware import BodyLimit, GuardUnreadableBody, SecurityHeaders, csrf_layer
from pitchcraft.settings import Settings
from pitchcraft.web.routes import router as pages_router

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
        yield
        container.close()

    app = FastAPI(
        title="Pitchcraft",
        version=__version__,
        summary="Refine marketing copy with your own documents.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.templates = Jinja2Templates(directory=str(WEB / "pages"))
    app.mount("/static", StaticFiles(directory=str(WEB / "static")), name="static")
    errors_http.install(app)
    app.include_router(auth_router)
    app.include_router(pages_router)

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
        body = HealthOut(
            status=status, database=database, vectors="embedded", llm="none", version=__version__
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

    def render_error_page(status: int, detail: str) -> bytes:
        page = app.state.templates.get_template("error.html")
        html: str = page.render(status=status, detail=detail, user=None)
        return html.encode()

    app.add_middleware(csrf_layer(settings, container, render_error_page))
    app.add_middleware(GuardUnreadableBody)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit_for=lambda _path: limit)
    return app
