"""`GET /metrics`: the server's runs, stages, queue and deliveries for Prometheus (sbdk/telemetry/metrics.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from sbdk.server.state import ServerState


def router(state: ServerState) -> APIRouter:
    routes = APIRouter()

    @routes.get("/metrics")
    async def metrics() -> Response:
        body, content_type = state.metrics.exposition()
        return Response(body, media_type=content_type)

    return routes
