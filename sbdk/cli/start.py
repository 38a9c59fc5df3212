"""`sbdk start`: not available yet (its issue has not landed)."""

from __future__ import annotations

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load


def start(ctx: typer.Context, config_file: ConfigFileOpt = None, verbose: VerboseOpt = False) -> None:
    """Not available yet in this version of sbdk."""
    from sbdk.cli.render import err_console

    load(ctx, config_file, verbose)
    err_console.print("[yellow]`sbdk start` is not available yet in this version of sbdk.[/]")
    raise typer.Exit(2)
