"""The FastAPI app of `sbdk webhooks`, built by `create_app(settings)` (DESIGN.md §6).

FastAPI and pydantic are imported inside `create_app`, so importing this module costs nothing;
for the same reason the request models are defined there and this module does not use
`from __future__ import annotations` (FastAPI must see real classes in the endpoint signatures).
"""

import json
import logging
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from sbdk import __version__
from sbdk.server import github
from sbdk.server.runs import ProcessRunner, RunQueue
from sbdk.server.store import ServerStore
from sbdk.settings import Settings

log = logging.getLogger("sbdk.server")

ROUTES = (
    ("POST", "/webhook/github", "GitHub deliveries (signed with the webhook secret)"),
    ("POST", "/register", "register a project, answers its UUID"),
    ("POST", "/track/usage", "store a usage event of a registered project"),
    ("GET", "/health", "version, queue and last run"),
    ("GET", "/runs/{id}", "status and timings of a queued run"),
)
# First answers to GitHub delivery ids, in the project's state folder beside server.duckdb.
DELIVERIES_FILE = "webhook_deliveries.jsonl"
# Registration and usage bodies are small: refuse big ones before reading them.
MAX_TRACKING_BODY = 64 * 1024
MAX_PROPERTIES_JSON = 16 * 1024
NO_SECRET = (
    "No webhook secret is configured, so this server refuses every delivery. Set SBDK_WEBHOOK_SECRET "
    "to a long random value in the project's .env (or the environment), give GitHub the same value as "
    "the webhook's secret, and restart `sbdk webhooks`."
)


class ServerState:
    """Everything the endpoints share: the store, the run queue and the delivery answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ServerStore(settings.paths.server_db)
        self.deliveries = github.DeliveryAnswers(settings.paths.state_dir / DELIVERIES_FILE)
        self.queue: RunQueue | None = None

    def start(self) -> None:
        """Open the store and start the run worker (idempotent; `serve()` calls it early so that
        errors such as a second server on the same project are reported before binding a port)."""
        if self.queue is not None:
            return
        self.store.open()
        closed = self.store.close_unfinished_runs("the server stopped before this run finished")
        if closed:
            log.warning("%d run(s) left unfinished by an earlier server are marked failed", closed)
        self.deliveries.open()
        last = self.store.last_run()
        self.queue = RunQueue(
            ProcessRunner(self.settings.paths.config_file),
            lock_file=self.settings.paths.lock_file,
            on_change=self.store.save_run,
            last_run=({k: last.get(k) for k in ("id", "status", "finished_at", "error")} if last else None),
        )
        self.queue.start()

    def stop(self) -> None:
        """Cancel the waiting run, wait for the current one, write and close the store."""
        if self.queue is not None:
            self.queue.stop()
            self.queue = None
        self.deliveries.close()
        self.store.close()


def create_app(settings: Settings):
    """The server's ASGI app. Its lifespan opens `.sbdk/server.duckdb` and starts the run worker."""
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import asyncio

        from anyio import to_thread

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

    app = FastAPI(
        title="sbdk webhooks",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.sbdk = state
    if settings.webhooks.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.webhooks.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type"],
        )

    class Registration(BaseModel):
        # Unknown fields are dropped, never stored: nothing personal can ride along.
        model_config = ConfigDict(extra="ignore")
        project: str = Field(min_length=1, max_length=200)
        sbdk_version: str | None = Field(default=None, max_length=50)

    class UsageEvent(BaseModel):
        model_config = ConfigDict(extra="ignore")
        uuid: UUID
        event: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
        properties: dict[str, Any] = Field(default_factory=dict)

        @field_validator("properties")
        @classmethod
        def small(cls, value: dict[str, Any]) -> dict[str, Any]:
            if len(json.dumps(value)) > MAX_PROPERTIES_JSON:
                raise ValueError(f"properties must be at most {MAX_PROPERTIES_JSON // 1024} KB of JSON")
            return value

    async def read_limited(request: Request, limit: int) -> bytes | None:
        """The body, or None as soon as it is longer than `limit` (the rest is never read)."""
        length = request.headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            return None
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                return None
        return bytes(body)

    async def parse(request: Request, model: type) -> Any:
        body = await read_limited(request, MAX_TRACKING_BODY)
        if body is None:
            raise HTTPException(413, f"Body over {MAX_TRACKING_BODY // 1024} KB.")
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None

    def answer(status: int, body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(body, status_code=status)

    @app.post("/webhook/github")
    async def webhook_github(request: Request) -> JSONResponse:
        delivery = request.headers.get("x-github-delivery")
        event = request.headers.get("x-github-event")
        label = f"delivery {github.printable(delivery)} ({github.printable(event, 40)})"
        secret = settings.webhook_secret
        if not secret:
            log.warning("%s refused: no webhook secret is configured", label)
            return answer(503, {"detail": NO_SECRET})
        length = request.headers.get("content-length")
        if length is not None and not length.strip().isdigit():
            return answer(400, {"detail": "Invalid Content-Length header."})
        if length is not None and int(length) > github.MAX_BODY_BYTES:
            log.warning("%s refused: body of %s bytes is over the 25 MB limit", label, length)
            return answer(413, {"detail": "Body over 25 MB: GitHub never sends deliveries that large."})
        digest = github.signature_digest(request.headers.get(github.SIGNATURE_HEADER))
        if digest is None:
            log.warning("%s refused: missing or malformed %s", label, github.SIGNATURE_HEADER)
            return answer(401, {"detail": f"Missing or malformed {github.SIGNATURE_HEADER} header (sha256=<hex>)."})
        body = await read_limited(request, github.MAX_BODY_BYTES)
        if body is None:
            log.warning("%s refused: body over the 25 MB limit", label)
            return answer(413, {"detail": "Body over 25 MB: GitHub never sends deliveries that large."})
        if not github.verify(secret, body, digest):
            log.warning("%s refused: the signature does not match", label)
            return answer(
                401,
                {"detail": "Signature does not match: the webhook's secret on GitHub must equal SBDK_WEBHOOK_SECRET."},
            )
        # Verified. From here to the end nothing awaits, so a redelivery racing this one sees the
        # answer recorded below and cannot queue a second run.
        if delivery:
            previous = state.deliveries.get(delivery)
            if previous is not None:
                log.info("%s is a redelivery: answered as the first time, nothing queued", label)
                return answer(*previous)
        status, body_out = handle(event, body, request.headers.get("content-type"), delivery, label)
        # A 503 (shutting down) is not an answer to keep: the redelivery should be handled for real.
        if delivery and status != 503:
            state.deliveries.put(delivery, status, body_out)
        return answer(status, body_out)

    def handle(
        event: str | None, body: bytes, content_type: str | None, delivery: str | None, label: str
    ) -> tuple[int, dict[str, Any]]:
        if not event:
            return 400, {"detail": "Missing X-GitHub-Event header."}
        try:
            payload = github.parse_payload(body, content_type)
            decision = github.decide(event, payload, settings.webhooks.branch)
        except github.BadPayload as exc:
            log.warning("%s refused: %s", label, exc)
            return 400, {"detail": str(exc)}
        if decision.kind == "ping":
            log.info("%s: ping, webhook connected", label)
            return 200, {"status": "pong", "branch": settings.webhooks.branch}
        if not decision.run:
            log.info("%s ignored: %s", label, decision.reason)
            return 202, {"status": "ignored", "reason": decision.reason}
        queued = state.queue.submit(delivery, decision.commit) if state.queue else None
        if queued is None:
            return 503, {"detail": "The server is shutting down; GitHub can redeliver this push later."}
        run_id, joined, busy = queued
        if joined:
            detail = f"Joined run {run_id}, which builds everything pushed so far" + (
                f" once run {busy} ends." if busy else "."
            )
        else:
            detail = f"Run {run_id} queued" + (f"; it starts when run {busy} ends." if busy else ".")
        log.info("%s: push to %s -> run %s %s", label, decision.ref, run_id, "(joined)" if joined else "queued")
        return 202, {"status": "queued", "run_id": run_id, "coalesced": joined, "detail": detail}

    @app.post("/register", status_code=201)
    async def register(request: Request) -> dict[str, Any]:
        body = await parse(request, Registration)
        new, at = await run_in_threadpool(state.store.register, body.project, body.sbdk_version)
        log.info("registered project %s as %s", github.printable(body.project, 60), new)
        return {"uuid": new, "registered_at": at.isoformat() + "Z"}

    @app.post("/track/usage", status_code=201)
    async def track_usage(request: Request) -> dict[str, Any]:
        body = await parse(request, UsageEvent)
        at = await run_in_threadpool(state.store.track, str(body.uuid), body.event, body.properties)
        if at is None:
            raise HTTPException(404, f"Unknown uuid {body.uuid}: register the project with POST /register first.")
        return {"status": "stored", "received_at": at.isoformat() + "Z"}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        idle = {"running": None, "queued": None, "queue_length": 0, "last_run": None}
        queue = state.queue.status() if state.queue else idle
        return {
            "status": "ok",
            "version": __version__,
            "project": settings.project,
            "branch": settings.webhooks.branch,
            "webhook_secret_configured": bool(settings.webhook_secret),
            **queue,
        }

    @app.get("/runs/{run_id}")
    def run_status(run_id: str) -> dict[str, Any]:
        found = state.queue.get(run_id) if state.queue else None
        if found is None and state.store.is_open:
            found = state.store.run(run_id)
        if found is None:
            raise HTTPException(404, f"No run {run_id!r} on this server.")
        return found

    return app
