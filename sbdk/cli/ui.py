"""`sbdk ui`: serve one local page with the project's runs, lineage, tests and data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load, state

if TYPE_CHECKING:
    import socket

HostOpt = Annotated[
    str, typer.Option("--host", help="Address to listen on. Another than 127.0.0.1 shows your data to your network.")
]
PortOpt = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port to listen on (0: any free port).")]
NoOpenOpt = Annotated[bool, typer.Option("--no-open", help="Do not open the page in a browser.")]
DEFAULT_PORT = 8800


def ui(
    ctx: typer.Context,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = DEFAULT_PORT,
    no_open: NoOpenOpt = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve a local page with the project's runs, lineage, tests and data, live, and open it.

    Read-only: the page never changes data and holds the database only for a moment per request, so `sbdk dev`, the watcher and the webhook server can run while it is open. Stop it with Ctrl-C.

    Examples: [bold]sbdk ui[/], [bold]sbdk ui --port 9000 --no-open[/]
    """
    from sbdk.server.serving import bind
    from sbdk.ui.serving import serve

    settings = load(ctx, config_file, verbose)
    sock = bind(host, port)
    code = serve(settings, sock, host=host, open_browser=not no_open, verbose=state(ctx).verbose, announce=_banner)
    if code:
        raise typer.Exit(code)


def _banner(sock: socket.socket, host: str, page: str) -> None:
    from sbdk.cli.render import console, warn

    console.print(f"[bold]sbdk ui[/] on [link={page}]{page}[/link]   (Ctrl-C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        warn(
            f"The page listens on {host}: anyone who can reach this machine can read the project's data. "
            "Use the default 127.0.0.1 unless you mean it."
        )
