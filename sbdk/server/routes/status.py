"""`GET /health` and `GET /runs/{id}`: what the server is doing and what its runs did."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from sbdk import __version__
from sbdk.server.github import ECHOED, describe_branch, printable
from sbdk.server.state import ServerState


def router(state: ServerState) -> APIRouter:
    routes = APIRouter()
    settings = state.settings

    @routes.get("/health")
    async def health() -> dict[str, Any]:
        idle = {"running": None, "queued": None, "queue_length": 0, "last_run": None}
        queue = state.queue.status() if state.queue else idle
        return {
            "status": "ok",
            "version": __version__,
            "project": settings.project,
            # The configured branch, or "the repository's default branch" when none is.
            "branch": describe_branch(settings.webhooks.branch),
            "webhook_secret_configured": bool(settings.webhook_secret),
            **queue,
        }

    # Not async: a record of an earlier session is read from the store, which FastAPI then does
    # in its thread pool instead of on the event loop.
    @routes.get("/runs/{run_id}")
    def run_status(run_id: str) -> dict[str, Any]:
        found = state.queue.get(run_id) if state.queue else None
        if found is None and state.store.is_open:
            found = state.store.run(run_id)
        if found is None:
            raise HTTPException(404, f"No run {printable(run_id, ECHOED)!r} on this server.")
        return found

    return routes
