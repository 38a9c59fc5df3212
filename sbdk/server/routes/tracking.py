"""`POST /register` and `POST /track/usage`: anonymous usage events of registered projects."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from sbdk.server import github
from sbdk.server.bodies import validated
from sbdk.server.models import Registration, UsageEvent
from sbdk.server.state import ServerState

log = logging.getLogger("sbdk.server")

# Registration and usage bodies are small: refuse big ones before reading them.
MAX_TRACKING_BODY = 64 * 1024
# A usage event's properties are a flat-ish JSON object: nesting past this is not one (and every
# json.dumps of it afterwards stays far from the interpreter's recursion limit).
MAX_TRACKING_DEPTH = 32


def router(state: ServerState) -> APIRouter:
    routes = APIRouter()

    @routes.post("/register", status_code=201)
    async def register(request: Request) -> dict[str, Any]:
        body = await validated(request, Registration, MAX_TRACKING_BODY, MAX_TRACKING_DEPTH)
        new, at = await run_in_threadpool(state.store.register, body.project, body.sbdk_version)
        log.info("registered project %s as %s", github.printable(body.project, 60), new)
        return {"uuid": new, "registered_at": at.isoformat() + "Z"}

    @routes.post("/track/usage", status_code=201)
    async def track_usage(request: Request) -> dict[str, Any]:
        body = await validated(request, UsageEvent, MAX_TRACKING_BODY, MAX_TRACKING_DEPTH)
        at = await run_in_threadpool(state.store.track, str(body.uuid), body.event, body.properties)
        if at is None:
            raise HTTPException(404, f"Unknown uuid {body.uuid}: register the project with POST /register first.")
        return {"status": "stored", "received_at": at.isoformat() + "Z"}

    return routes
