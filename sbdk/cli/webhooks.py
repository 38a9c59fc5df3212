"""`sbdk webhooks`: serve GitHub webhooks (a signed push to the watched branch rebuilds the project)
and the usage-tracking endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load, state

if TYPE_CHECKING:
    import socket

    from sbdk.settings import Settings

HostOpt = Annotated[str, typer.Option("--host", help="Address to listen on. 0.0.0.0 opens the server to your network.")]
PortOpt = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port).")]
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def webhooks(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve GitHub webhooks: each signed push to the watched branch rebuilds the project.

    Set SBDK_WEBHOOK_SECRET in the project's .env, then add a GitHub webhook with the same secret,
    content type application/json and the push event, pointing at http://HOST:PORT/webhook/github
    (through a tunnel when GitHub cannot reach this machine).

    Examples: [bold]sbdk webhooks[/], [bold]sbdk webhooks --port 9000[/]
    """
    from sbdk.server import create_app, serve
    from sbdk.server.serving import bind

    settings = load(ctx, config_file, verbose)
    verbose = state(ctx).verbose
    sock = bind(host, port)
    app = create_app(settings)
    _log_to_stdout(verbose)
    code = serve(app, sock, access_log=verbose, announce=lambda: _banner(settings, sock, host))
    if code:
        raise typer.Exit(code)


def _banner(settings: Settings, sock: socket.socket, host: str) -> None:
    import sys

    from rich.markup import escape

    from sbdk.cli.render import console
    from sbdk.server.app import ROUTES
    from sbdk.server.github import describe_branch
    from sbdk.server.serving import url

    base = url(sock)

    def say(text: str) -> None:
        console.print(text, soft_wrap=True)  # log lines must not wrap

    say(f"[bold]sbdk webhooks[/] {escape(settings.project)} [dim]{escape(str(settings.paths.root))}[/]")
    say(f"Listening on [bold]{base}[/] (Ctrl-C to stop)")
    for method, path, what in ROUTES:
        say(f"  {method:<5} {base}{path}  [dim]{what}[/]")
    if settings.webhook_secret:
        branch = settings.webhooks.branch
        watched = f"branch [bold]{escape(branch)}[/]" if branch is not None else describe_branch(branch)
        say(f"Webhook secret: configured. Signed pushes to {watched} rebuild the project.")
        if len(settings.webhook_secret) < 16:
            say("[yellow]warning:[/] the webhook secret is short; use 32 or more random characters.")
    else:
        say(
            "[yellow]Webhook secret: not configured[/]: POST /webhook/github answers 503 to every delivery. "
            f"Set SBDK_WEBHOOK_SECRET in {escape(str(settings.paths.env_file))} (or the environment) and restart."
        )
    origins = ", ".join(settings.webhooks.cors_origins) or "none"
    say(f"CORS origins: {escape(origins)}. Records: {escape(str(settings.paths.server_db))}")
    if host not in LOOPBACK:
        say(
            f"[yellow]warning:[/] listening on {escape(host)}, not only this machine: anyone who reaches it can "
            "call /register and /track/usage (only signed deliveries start runs)."
        )
    sys.stdout.flush()


def _log_to_stdout(verbose: bool) -> None:
    """The server's log (deliveries, runs) as plain timestamped lines on stdout."""
    import logging
    import sys

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    levels = {
        "sbdk.server": logging.DEBUG if verbose else logging.INFO,
        "uvicorn.error": logging.INFO if verbose else logging.WARNING,
        "uvicorn.access": logging.INFO,
    }
    for name, level in levels.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False
