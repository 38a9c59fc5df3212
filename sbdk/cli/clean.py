"""`sbdk clean`: remove build artefacts and drop the relations the dbt project no longer defines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, WaitOpt, load, state
from sbdk.paths import shown

if TYPE_CHECKING:
    from rich.console import Console

    from sbdk.ops.clean import CleanReport
    from sbdk.settings import Settings


def clean(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed, and remove nothing.")] = False,
    wait: WaitOpt = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Remove build artefacts and drop views and tables the dbt project no longer defines.

    Removes dbt's target/ and logs/ and dlt's working files in .sbdk/dlt, and drops the relations
    left by deleted or renamed models in the schemas the project builds into. Never touches the raw
    tables, other schemas, backups/ or the run logs in logs/. Takes the run lock.

    Examples: [bold]sbdk clean --dry-run[/], [bold]sbdk clean[/]
    """
    from sbdk.cli.render import console
    from sbdk.ops.clean import clean as run_clean

    settings = load(ctx, config_file, verbose)
    report = run_clean(settings, dry_run=dry_run, wait=wait)
    if not state(ctx).quiet:
        _render(console, settings, report)
    if report.error is not None:
        raise report.error


def _render(console: Console, settings: Settings, report: CleanReport) -> None:
    from rich.markup import escape

    from sbdk.ops import human_size

    root = settings.paths.root
    remove, drop = ("Would remove", "Would drop") if report.dry_run else ("Removed", "Dropped")
    for item in report.removed:
        console.print(f"{remove} {escape(shown(item.path, root))}/ [dim]({item.what}, {human_size(item.bytes)})[/]")
    orphans = report.orphans
    if orphans is not None:
        for relation in orphans.dropped:
            console.print(f"{drop} stale {escape(str(relation))}")
        for relation in orphans.kept:
            console.print(
                f"[yellow]Kept[/] stale {escape(str(relation))}: it holds snapshot history "
                "[dim](drop it yourself if you mean to)[/]"
            )
    if not report.removed and (orphans is None or not orphans.dropped):
        console.print("Nothing to clean." if report.error is None else "Nothing removed.")
    elif report.dry_run:
        console.print("[dim]Dry run: nothing was removed. Run `sbdk clean` to remove it.[/]")
