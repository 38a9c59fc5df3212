"""`sbdk doctor`: check the installation and the project, each check with a verdict and a fix."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from sbdk.cli.options import ConfigFileOpt, JsonOpt, VerboseOpt, state

_STYLE = {"pass": ("green", "PASS"), "warn": ("yellow", "WARN"), "fail": ("red", "FAIL"), "skip": ("dim", "SKIP")}


def doctor(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    target: Annotated[
        str | None,
        typer.Option(help='Check this target of sbdk_config.json (default: its "target").', show_default=False),
    ] = None,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Check the installation and the project, and say how to fix what is wrong.

    Checks Python and packages (dbt-core and dbt-duckdb compatible), config, dbt project and profile, the DuckDB file (present, openable, locked by whom), a server or Spark target (its adapter; Java, the lake and Spark for a lake), disk space, webhook secret, pipelines.

    Each check passes, warns or fails with a fix; the exit code is 1 when any check fails.

    Examples: [bold]sbdk doctor[/], [bold]sbdk doctor --json[/]
    """
    from sbdk.cli.render import console
    from sbdk.errors import ExitCode
    from sbdk.ops.doctor import diagnose

    st = state(ctx)
    st.verbose = st.verbose or verbose
    quiet = st.quiet

    def show(check: Any) -> None:
        if not as_json and (not quiet or check.status == "fail"):
            _render_check(console, check)

    report = diagnose(config_file or st.config_file, target=target, on_check=show)
    if as_json:
        print(json.dumps(report.as_dict()))
    elif not quiet:
        console.print()
        if report.failed:
            count = len(report.failed)
            console.print(f"[bold red]{count} check{'s' if count > 1 else ''} failed:[/] {', '.join(report.failed)}.")
        elif report.warned:
            console.print(f"[bold green]No failures[/]; warnings: {', '.join(report.warned)}.")
        else:
            console.print(f"[bold green]All {len(report.checks)} checks passed.[/]")
    if not report.ok:
        raise typer.Exit(int(ExitCode.FAILURE))


def _render_check(console: Any, check: Any) -> None:
    """`PASS  name  detail`, the detail and its fix wrapped at word boundaries under their first line."""
    from rich.markup import escape

    from sbdk.cli.render import hanging

    style, label = _STYLE.get(check.status, ("white", check.status.upper()))
    console.print(hanging(f"[{style}]{label}[/]  [bold]{escape(check.name):<15}[/] ", escape(check.detail)))
    if check.fix and check.status in ("warn", "fail"):
        indent = " " * (6 + max(15, len(check.name)) + 1)
        console.print(hanging(f"{indent}[bold]fix:[/] ", escape(check.fix)))
