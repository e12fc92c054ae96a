"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from lookalike import __version__
from lookalike.api.errors import ERROR_RESPONSES, install_error_handlers
from lookalike.api.limits import BodyLimit
from lookalike.api.observe import Observe
from lookalike.api.routes import analysis, images, products, search, sessions, web
from lookalike.api.routes.admin import router as admin_router
from lookalike.api.routes.ingest import router as ingest_router
from lookalike.api.routes.metrics import install_metrics
from lookalike.api.security import ReadAccess, check_security
from lookalike.api.state import Serving, serving
from lookalike.engines import Engine, open_engine
from lookalike.settings import Settings, get_settings


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; the engine is opened at startup unless one is given (tests)."""
    settings = settings or get_settings()
    check_security(settings)  # outside development: no start without strong write keys

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One BLAS thread: multi-threaded BLAS on shared cores made re-scoring 17x slower.
        threadpool_limits(1)
        own = engine is None
        app.state.serving = Serving(settings, engine or open_engine(settings))
        try:
            yield
        finally:
            if own:
                serving(app).engine.close()

    app = FastAPI(
        title="Lookalike",
        version=__version__,
        description="Visual product-similarity search: more like this, and keyword search "
        "re-sorted by similarity to anchor products.",
        lifespan=lifespan,
        dependencies=[ReadAccess],
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        Observe, metrics=install_metrics(app, settings)
    )  # outermost: sees every answer
    app.include_router(products.router)
    app.include_router(search.router)
    app.include_router(ingest_router)
    app.include_router(admin_router)
    app.include_router(images.router)
    app.include_router(web.router)
    app.include_router(analysis.router)
    app.include_router(sessions.router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, object]:
        return {"status": "ok", "products": serving(app).engine.count()}

    return app
