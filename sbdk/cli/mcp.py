"""`sbdk mcp`: serve the project to coding agents over the Model Context Protocol (stdio)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load, state

AllowRunsOpt = Annotated[
    bool,
    typer.Option(
        "--allow-runs",
        help="Offer the `build` tool: agents may rebuild the project as `sbdk dev` does. "
        "Without it, every tool only reads.",
    ),
]


def mcp(
    ctx: typer.Context,
    allow_runs: AllowRunsOpt = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve the project to coding agents over the Model Context Protocol, on stdin and stdout.

    Agents can list models and sources, describe one (columns, docs, tests, SQL), walk lineage, read the run history and its failures, and run read-only SQL. Nothing is written unless --allow-runs offers them the `build` tool. An MCP client starts this command itself: give it `sbdk` as the command and `mcp -c /path/to/sbdk_config.json` as its arguments.

    Examples: [bold]claude mcp add sbdk -- sbdk mcp -c ~/demo/sbdk_config.json[/], [bold]sbdk mcp --allow-runs[/]
    """
    from rich.markup import escape

    from sbdk.cli.render import err_console

    settings = load(ctx, config_file, verbose)
    serve_stdio = _server()
    st = state(ctx)
    if not st.quiet:
        # stderr: stdout carries the protocol.
        runs = "tools read and may build" if allow_runs else "read-only tools"
        err_console.print(
            f"[bold]sbdk mcp[/] {escape(settings.project)} [dim]{escape(str(settings.paths.root))}[/]: {runs}, "
            "MCP on stdin/stdout (an agent starts this; Ctrl-C to stop)",
            soft_wrap=True,
        )
    serve_stdio(settings, allow_runs, verbose=st.verbose)


def _server() -> Callable[..., None]:
    """sbdk.mcp_server.serve_stdio, or a UsageError when the `mcp` package is not installed."""
    try:
        from sbdk.mcp_server import serve_stdio
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != "mcp":
            raise
        from sbdk.errors import UsageError

        raise UsageError(
            "`sbdk mcp` needs the Model Context Protocol SDK (the `mcp` package), which is not installed.",
            hint="Install it into sbdk's environment: `pip install 'mcp>=1.30,<2'`.",
        ) from exc
    return serve_stdio
