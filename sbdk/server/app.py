"""The FastAPI app of `sbdk webhooks`, built by `create_app(settings)` (DESIGN.md §6).

FastAPI is imported inside `create_app`, and so are the route modules (sbdk/server/routes/),
which import it at their top, and prometheus-client (the state's metrics): importing this module
costs nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sbdk import __version__
from sbdk.server.state import ServerState, state_of
from sbdk.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ROUTES", "create_app"]

ROUTES = (
    ("POST", "/webhook/github", "GitHub deliveries (signed with the webhook secret)"),
    ("POST", "/register", "register a project, answers its UUID"),
    ("POST", "/track/usage", "store a usage event of a registered project"),
    ("GET", "/health", "version, queue and last run"),
    ("GET", "/runs/{id}", "status and timings of a queued run"),
    ("GET", "/metrics", "runs, stage durations, queue and deliveries for Prometheus"),
)


def create_app(settings: Settings) -> FastAPI:
    """The server's ASGI app. Its lifespan opens `.sbdk/server.duckdb` and starts the run worker."""
    from fastapi import FastAPI

    from sbdk.server.routes import metrics, status, tracking, webhook

    app = FastAPI(
        title="sbdk webhooks",
        version=__version__,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    state = ServerState(settings)
    app.state.sbdk = state
    _allow_origins(app, settings.webhooks.cors_origins)
    for group in (webhook, tracking, status, metrics):
        app.include_router(group.router(state))
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    import asyncio

    from anyio import to_thread

    state = state_of(app)
    await to_thread.run_sync(state.start)
    try:
        yield
    finally:
        stopping = asyncio.ensure_future(to_thread.run_sync(state.stop))
        # Wake up every 0.1 s while the current run finishes: Python runs a signal handler only
        # when the main thread runs, and a second Ctrl-C that the OS hands to another thread
        # would otherwise wait for the run to end (uvicorn sets no signal wakeup fd).
        while not stopping.done():
            await asyncio.wait({stopping}, timeout=0.1)
        stopping.result()


def _allow_origins(app: FastAPI, origins: Sequence[str]) -> None:
    """CORS for the configured origins only; none configured, no CORS headers at all."""
    if not origins:
        return
    from fastapi.middleware.cors import CORSMiddleware

    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type"],
    )
