"""The app of `sbdk ui`, built by `create_app(settings)`: a JSON API over `ProjectView`, live events
and the page itself (sbdk/ui/static/, served from the installed package; no CDN, works offline).

Safe by default: every answer is JSON or a static file (the page escapes every value it shows); no
request changes data (the only POSTs run read-only SQL); a POST from another origin is refused, and so
is a request whose Host is not this server's (a web page cannot reach the server by DNS rebinding).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

# Imported by `sbdk ui` and `sbdk start --ui` only (never by `sbdk --help`): FastAPI resolves the
# endpoints' annotations in this module's namespace.
from fastapi import Body, FastAPI, Query, Request

from sbdk import __version__
from sbdk.settings import Settings

STATIC = Path(__file__).parent / "static"
HEARTBEAT_SECONDS = 15.0
POLL_SECONDS = 0.2
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def create_app(
    settings: Settings, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1", "[::1]"), warm: bool = True
) -> FastAPI:
    """The page's ASGI app. `hosts`: the Host names requests may carry (any when it holds "*"); `warm`:
    work out the page's answers in the background after each build (sbdk.ui.warm), while it serves."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from sbdk.errors import LockError, NotLoadedError, SbdkError, UsageError
    from sbdk.ops.query import QueryError
    from sbdk.ui.live import Tail
    from sbdk.view import ProjectView

    view = ProjectView(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from sbdk.ui.warm import Warmer

        warmer = Warmer(view) if warm else None
        if warmer is not None:
            warmer.start()
        try:
            yield
        finally:
            if warmer is not None:
                await asyncio.to_thread(warmer.stop)

    app = FastAPI(
        title="sbdk ui", version=__version__, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.view = view
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=["*"] if "*" in hosts else list(hosts))

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Any]) -> Any:
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            return JSONResponse(
                {"error": "Refused a request from another web site.", "hint": "Use the page served by `sbdk ui`."},
                status_code=403,
            )
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(SbdkError)
    async def sbdk_error(request: Request, exc: SbdkError) -> JSONResponse:
        if isinstance(exc, LockError):
            status = 409
        elif isinstance(exc, NotLoadedError):
            status = 404
        elif isinstance(exc, (UsageError, QueryError)):
            status = 404 if getattr(exc, "not_found", False) else 400
        else:
            status = 500
        return JSONResponse({"error": exc.message, "hint": exc.hint or ""}, status_code=status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()) if part != 'body') or 'the body'}: {error.get('msg')}"
            for error in exc.errors()
        )
        return JSONResponse(
            {"error": f"The request is not valid: {problems}.", "hint": "See the page's own requests for the shape."},
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail), "hint": "Open the page at / instead."}, status_code=exc.status_code
        )

    def found(name: str) -> str:
        try:
            return view.resolve(name)
        except UsageError as exc:
            exc.not_found = True  # type: ignore[attr-defined]
            raise

    async def call(function: Callable[..., Any], *args: Any) -> Any:
        # The read model blocks (files, DuckDB): off the event loop, so live events keep flowing.
        from anyio import to_thread

        return await to_thread.run_sync(lambda: function(*args))

    @app.get("/api/project")
    async def project() -> Any:
        target = settings.active_target
        return {"project": settings.project, "target": {"name": target.name, "type": target.type}}

    @app.get("/api/overview")
    async def overview() -> Any:
        return await call(view.overview)

    @app.get("/api/runs")
    async def runs(limit: int = 50) -> Any:
        return await call(view.runs, limit)

    @app.get("/api/runs/{run_id}")
    async def run(run_id: str) -> Any:
        try:
            return await call(view.run, run_id)
        except UsageError as exc:
            exc.not_found = True  # type: ignore[attr-defined]
            raise

    @app.get("/api/lineage")
    async def lineage() -> Any:
        return await call(view.lineage)

    @app.get("/api/nodes/{unique_id:path}/rows")
    async def rows(unique_id: str, offset: int = 0, limit: int = 50) -> Any:
        return await call(view.rows, found(unique_id), offset, limit)

    @app.get("/api/nodes/{unique_id:path}/profile")
    async def profile(unique_id: str) -> Any:
        return await call(view.profile, found(unique_id))

    @app.get("/api/nodes/{unique_id:path}/chart")
    async def chart(unique_id: str, x: str | None = None, y: list[str] | None = Query(default=None)) -> Any:  # noqa: B008
        return await call(view.chart, found(unique_id), x, y or [])

    # After its sub-pages: a `:path` id would take their `/rows`, `/profile`, `/chart` for its own.
    @app.get("/api/nodes/{unique_id:path}")
    async def node(unique_id: str) -> Any:
        return await call(view.node, found(unique_id))

    def _query_args(body: dict[str, Any]) -> tuple[str, int]:
        sql = body.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise UsageError("There is no SQL to run.", hint="Type a SELECT, e.g. `select * from main.daily_kpis`.")
        limit = body.get("limit", 1000)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise UsageError("The row cap must be a whole number of rows, 1 or more.", hint="E.g. 1000.")
        return sql, limit

    @app.post("/api/query")
    async def query(body: dict[str, Any] = Body(...)) -> Any:  # noqa: B008
        sql, limit = _query_args(body)
        return await call(view.query, sql, limit)

    @app.post("/api/query.csv")
    async def query_csv(body: dict[str, Any] = Body(...)) -> Any:  # noqa: B008
        sql, limit = _query_args(body)
        result = await call(view.query, sql, limit)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(result["columns"])
        for row in result["rows"]:
            writer.writerow(["" if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else v) for v in row])
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="query.csv"'},
        )

    @app.get("/api/events")
    async def events(request: Request) -> Any:
        from sbdk.run.events import events_dir

        tail = Tail(events_dir(settings.paths.state_dir))

        async def stream() -> AsyncIterator[str]:
            yield "retry: 2000\n\n"
            quiet = 0.0
            while not await request.is_disconnected():
                for event in tail.poll():
                    name = event.pop("event")
                    yield f"event: {name}\ndata: {json.dumps(event, default=str)}\n\n"
                    quiet = 0.0
                await asyncio.sleep(POLL_SECONDS)
                quiet += POLL_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    yield ": heartbeat\n\n"
                    quiet = 0.0

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    @app.get("/")
    async def index() -> Any:
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not sent by a browser on another page (curl, tests); the Host check still holds
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")
