"""The project as an MCP server: `build_server(settings, allow_runs=...)` makes it, `serve_stdio` serves it.

Each tool is one call into the read model (`sbdk.view.ProjectView`, shared with `sbdk ui`): this module
only names the tools, bounds their arguments and turns answers and errors into tool results. Nothing
here writes data except `build`, offered only with `--allow-runs`, which starts the same run as
`sbdk dev` under the project's run lock.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from io import TextIOWrapper
from typing import TYPE_CHECKING, Annotated, Any, Literal, TextIO

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.fastmcp import Context, FastMCP
from mcp.server.stdio import stdio_server
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from sbdk.errors import SbdkError
from sbdk.run.reporters import Reporter
from sbdk.view import ProjectView

if TYPE_CHECKING:
    from sbdk.run.results import NodeResult
    from sbdk.settings import Settings

log = logging.getLogger("sbdk.mcp")

QUERY_LIMIT = 100
MAX_QUERY_LIMIT = 1000
QUERY_TIMEOUT = 10.0
MAX_QUERY_TIMEOUT = 60.0
RUNS_LIMIT = 20
MAX_RUNS_LIMIT = 200

_READS = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
# A build replaces the project's tables (with the same data when nothing changed): destructive, and
# repeatable.
_BUILDS = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)

Name = Annotated[
    str,
    Field(
        description="A model, seed, snapshot, source, test or exposure: its name (stg_orders), its dbt "
        "unique_id (model.demo.stg_orders) or, for a source, source_name.table_name (raw.raw_orders).",
    ),
]


def build_server(settings: Settings, *, allow_runs: bool) -> FastMCP:
    """The project's MCP server; `build` is among its tools only when `allow_runs`."""
    view = ProjectView(settings)
    server = FastMCP("sbdk", instructions=_instructions(settings, allow_runs), log_level="WARNING")

    @server.tool(annotations=_READS)
    async def overview() -> CallToolResult:
        """Start here. The project at a glance: its target database, the last run, every table with its
        layer (raw, staging, intermediate, mart...) and row count, dbt test totals, and the next steps
        sbdk suggests. `building` is set while a build runs (answers then show the last complete state)."""
        return await _answer(view.overview)

    @server.tool(annotations=_READS)
    async def list_models() -> CallToolResult:
        """Every dbt model, seed and snapshot: id, name, layer, materialization, description and the
        database relation it builds. Use `describe` for one model's columns, tests and SQL."""
        return await _answer(lambda: {"models": view.models()})

    @server.tool(annotations=_READS)
    async def list_sources() -> CallToolResult:
        """Every dbt source (the raw tables sbdk's pipelines load): id, name, source name, relation,
        description and columns."""
        return await _answer(lambda: {"sources": view.sources()})

    @server.tool(annotations=_READS)
    async def describe(name: Name) -> CallToolResult:
        """One model, source, seed, snapshot, test or exposure in full: description, relation, file path,
        columns with their types and docs, the tests on it and their last status, its raw and compiled
        SQL, its parents and children, its last build status and row count. An unknown name is an
        error that lists the closest names."""
        return await _answer(lambda: view.node(view.resolve(name)))

    @server.tool(annotations=_READS)
    async def lineage(
        name: Name,
        direction: Annotated[
            Literal["upstream", "downstream", "both"],
            Field(description="upstream: what it is built from; downstream: what is built from it."),
        ] = "both",
        depth: Annotated[
            int | None,
            Field(ge=1, description="How many steps to walk (1: direct parents/children); all when omitted."),
        ] = None,
    ) -> CallToolResult:
        """Walk the dependency graph from one node: the nodes upstream (down to the raw sources) and/or
        downstream (up to the marts and exposures), each with its distance in steps."""
        return await _answer(lambda: view.neighbours(view.resolve(name), direction=direction, depth=depth))

    @server.tool(annotations=_READS)
    async def runs(
        limit: Annotated[
            int, Field(ge=1, description=f"How many runs, newest first (at most {MAX_RUNS_LIMIT}).")
        ] = RUNS_LIMIT,
    ) -> CallToolResult:
        """The run history, newest first: who started each run, its status, start, duration, seconds per
        stage, rows loaded, dbt result counts and error. `building` is set while a run is in progress."""
        return await _answer(lambda: view.runs(limit=min(limit, MAX_RUNS_LIMIT)))

    @server.tool(annotations=_READS)
    async def run_details(
        run_id: Annotated[str, Field(description="A run_id from `runs` or `overview`.")],
    ) -> CallToolResult:
        """One run in full: its options, its stages, every dbt node with status and seconds, and each
        failure with its message and compiled SQL."""
        return await _answer(lambda: view.run(run_id))

    @server.tool(annotations=_READS)
    async def failures() -> CallToolResult:
        """What failed in the latest run (each failed model or test with its message and compiled SQL),
        the project's dbt test totals, and the next steps sbdk suggests. Empty failures: nothing failed."""
        return await _answer(lambda: _failures(view))

    @server.tool(annotations=_READS)
    async def query(
        sql: Annotated[str, Field(description="One or more SQL statements; only reads are allowed.")],
        limit: Annotated[
            int, Field(ge=1, description=f"Rows to return at most (capped at {MAX_QUERY_LIMIT}).")
        ] = QUERY_LIMIT,
        timeout: Annotated[
            float, Field(gt=0, description=f"Seconds before the query is stopped (capped at {MAX_QUERY_TIMEOUT:g}).")
        ] = QUERY_TIMEOUT,
    ) -> CallToolResult:
        """Run read-only SQL against the project's database (the same rules as `sbdk query`): writes,
        settings, ATTACH, INSTALL/LOAD and reading other files are refused. Tables live in schemas such as
        raw (sources) and main (models): `overview` lists them. Returns columns, types, rows, whether the
        rows were truncated at `limit`, and the seconds it took."""
        limit, timeout = min(limit, MAX_QUERY_LIMIT), min(timeout, MAX_QUERY_TIMEOUT)
        return await _answer(lambda: view.query(sql, limit=limit, timeout=timeout, caller="The query tool"))

    if allow_runs:

        @server.tool(annotations=_BUILDS)
        async def build(
            ctx: Context,
            full: Annotated[
                bool, Field(description="Rebuild every dbt model, even those unchanged since the last build.")
            ] = False,
        ) -> CallToolResult:
            """Run the project as `sbdk dev` does: regenerate and load the raw tables whose pipelines
            changed, then build and test with dbt what changed (everything with full=true). Waits for the
            run to end and returns it as `run_details` does; a run already in progress is an error.
            Progress arrives as log and progress notifications."""
            reporter = _ClientReporter(ctx, anyio.lowlevel.current_token())
            return await _answer(partial(_build, settings, view, reporter, full=full))

    return server


def serve_stdio(settings: Settings, allow_runs: bool, *, verbose: bool = False) -> None:
    """Serve the project over stdin/stdout until the client closes stdin."""
    # stdout is the protocol channel: it gets its own copy of the file descriptor, and everything else
    # that writes to stdout (a pipeline's print(), a library writing to descriptor 1) goes to stderr.
    protocol = _protocol_stdout()
    _log_to_stderr(verbose)
    server = build_server(settings, allow_runs=allow_runs)
    anyio.run(_serve, server, protocol)


def _protocol_stdout() -> TextIO:
    sys.stdout.flush()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol


async def _serve(server: FastMCP, protocol: TextIO) -> None:
    # FastMCP.run_stdio_async writes to sys.stdout, which is stderr by now: run its low-level server
    # on the protocol's stream instead, as run_stdio_async does on sys.stdout.
    stdin = anyio.wrap_file(TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace"))
    async with stdio_server(stdin, anyio.wrap_file(protocol)) as (read, write):
        lowlevel = server._mcp_server
        await lowlevel.run(read, write, lowlevel.create_initialization_options())


def _log_to_stderr(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s", "%H:%M:%S"))
    for name, level in (("sbdk.mcp", logging.INFO), ("mcp", logging.INFO if verbose else logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


async def _answer(call: Callable[[], dict[str, Any]]) -> CallToolResult:
    """The read model's answer as a tool result (JSON text and structured content), or its SbdkError as
    a tool error whose text is the message and the hint: what the agent can act on, not a traceback.

    The call runs in a worker thread: a query or a build never stops the server answering others.
    """
    try:
        result = await anyio.to_thread.run_sync(call)
    except SbdkError as exc:
        return CallToolResult(content=[TextContent(type="text", text=str(exc))], isError=True)
    text = json.dumps(result, default=str)
    return CallToolResult(content=[TextContent(type="text", text=text)], structuredContent=result)


def _failures(view: ProjectView) -> dict[str, Any]:
    overview = view.overview()
    last = overview["last_run"]
    details = view.run(last["run_id"]) if last else None
    return {
        "run": details["run"] if details else None,
        "failures": details["failures"] if details else [],
        "tests": overview["tests"],
        "next_steps": overview["next_steps"],
        "building": overview["building"],
    }


def _build(settings: Settings, view: ProjectView, reporter: Reporter, *, full: bool) -> dict[str, Any]:
    """A plain `sbdk dev` (or `sbdk dev --full`), then the run as the read model describes it."""
    from sbdk.run.plan import RunPlan, Trigger
    from sbdk.run.runner import run
    from sbdk.settings import resolve_volume

    plan = RunPlan(
        keep_unchanged=True,
        full_build=full,
        volume=resolve_volume(settings.data_volume, users=None, events=None, scale=None),
        trigger=Trigger.MCP,
    )
    report = run(settings, plan, reporter)
    return view.run(report.run_id)


class _ClientReporter(Reporter):
    """A build's progress for the client (MCP log and progress notifications) and for stderr.

    Called from the build's thread and from dbt's threads (one at a time: sbdk's dbt callback holds a
    lock), so it reaches the event loop through its token.
    """

    def __init__(self, ctx: Context, token: anyio.lowlevel.EventLoopToken) -> None:
        self._ctx = ctx
        self._token = token
        self._total: int | None = None
        self._done = 0

    def stage(self, name: str, detail: str = "") -> None:
        message = f"{name}: {detail}" if detail else name
        log.info("build %s", message)
        self._send(self._ctx.info, message)

    def dbt_nodes(self, total: int) -> None:
        self._total, self._done = total, 0

    def node_finished(self, node: NodeResult) -> None:
        self._done += 1
        what = f"{node.resource_type} {node.name} {node.status}"
        self._send(self._ctx.report_progress, self._done, self._total, what)
        if node.failed:
            first = (node.message or "").strip().splitlines()
            self.warn(f"{what}: {first[0]}" if first else what)

    def warn(self, message: str) -> None:
        log.warning("build %s", message)
        self._send(self._ctx.warning, message)

    def _send(self, notify: Callable[..., Any], *args: Any) -> None:
        try:
            anyio.from_thread.run(notify, *args, token=self._token)
        except Exception as exc:  # the client went away or the loop is closing: the build goes on
            log.debug("build progress not sent: %r", exc)


def _instructions(settings: Settings, allow_runs: bool) -> str:
    target = settings.active_target.describe()
    builds = (
        "`build` rebuilds the project as `sbdk dev` does."
        if allow_runs
        else "This server only reads: to rebuild, ask the user to run `sbdk dev` (or to start `sbdk mcp --allow-runs`)."
    )
    return (
        f"sbdk project {settings.project}: synthetic data (Faker) loaded by dlt into {target}, "
        "modelled and tested by dbt. Start with `overview`; `list_models` and `list_sources` name what "
        "exists; `describe` shows a model's columns, tests and SQL; `lineage` walks its dependencies; "
        "`runs`, `run_details` and `failures` tell what the builds did; `query` runs read-only SQL. " + builds
    )
