"""`sbdk backup` and `sbdk restore`: consistent copies of the project's DuckDB file, and putting one back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sbdk.cli.options import ConfigFileOpt, JsonOpt, VerboseOpt, WaitOpt, load, state
from sbdk.paths import shown, user_path


def backup(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(
            help="File (or folder) to write; default: backups/<db>-<UTC time>.duckdb in the project.",
            show_default=False,
        ),
    ] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the backups in the project's backups/ folder.")] = False,
    as_json: JsonOpt = False,
    wait: WaitOpt = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Write a consistent copy of the project's DuckDB file, or list the backups.

    The copy is taken under the run lock, after a CHECKPOINT, and checked to open.

    Examples: [bold]sbdk backup[/], [bold]sbdk backup ~/safe/demo.duckdb[/], [bold]sbdk backup --list[/]
    """
    from sbdk.cli.render import console
    from sbdk.errors import UsageError
    from sbdk.ops import backup as ops

    settings = load(ctx, config_file, verbose)
    quiet = state(ctx).quiet
    if list_:
        if path is not None:
            raise UsageError("--list takes no PATH.", hint="Run `sbdk backup --list` or `sbdk backup PATH`.")
        _render_list(console, settings, ops.list_backups(settings), as_json)
        return
    result = ops.backup(settings, path, wait=wait)
    if as_json:
        print(json.dumps({"path": str(result.path), "bytes": result.bytes, "tables": result.tables}))
    elif not quiet:
        console.print(
            f"Backed up {shown(settings.paths.duckdb_path, settings.paths.root)} to [bold]{shown(result.path, settings.paths.root)}[/] "
            f"({_size(result.bytes)}; {_tables(result.tables)})."
        )
        console.print(f"[dim]Put it back with: sbdk restore {shown(result.path, settings.paths.root)}[/]")


def restore(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="The backup to put back (see `sbdk backup --list`).", show_default=False)
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    wait: WaitOpt = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Put a backup back as the project's DuckDB file, after checking that it opens.

    The current file is first saved to backups/ (as …-before-restore.duckdb). Asks for confirmation unless --yes.

    Example: [bold]sbdk restore backups/dev-20261130T070147Z.duckdb --yes[/]
    """
    from sbdk.cli.render import console, warn
    from sbdk.errors import SbdkError, UsageError
    from sbdk.ops import backup as ops

    settings = load(ctx, config_file, verbose)
    quiet = state(ctx).quiet
    db = settings.paths.duckdb_path
    incoming = ops.inspect(user_path(path).absolute())
    if not yes:
        if not _can_prompt():
            raise UsageError(
                f"Restoring replaces {db} and needs confirmation, but there is no terminal to ask in.",
                hint="Pass --yes to confirm.",
            )
        try:
            current = _tables(ops.inspect(db)) if db.is_file() else "no file yet"
        except SbdkError as exc:
            current = f"cannot be read: {exc.message}"
        console.print(f"Current database {shown(db, settings.paths.root)}: {current}.")
        console.print(f"Backup {shown(path.absolute(), settings.paths.root)}: {_tables(incoming)}.")
        if not typer.confirm("Replace the current database with the backup (it is saved to backups/ first)?"):
            console.print("Nothing restored.")
            raise typer.Exit(1)

    from sbdk.run.reporters import Reporter

    class _Reporter(Reporter):
        def warn(self, message: str) -> None:
            warn(message)

    result = ops.restore(settings, path, wait=wait, reporter=_Reporter())
    if not quiet:
        console.print(
            f"Restored {shown(result.source, settings.paths.root)} to {shown(result.target, settings.paths.root)} ({_tables(result.tables)})."
        )
        if result.saved_current:
            console.print(
                f"[dim]The replaced database was saved as {shown(result.saved_current, settings.paths.root)}.[/]"
            )


def _can_prompt() -> bool:
    return sys.stdin.isatty()


def _size(count: int) -> str:
    from sbdk.ops import human_size

    return human_size(count)


def _tables(tables: dict[str, int]) -> str:
    return ", ".join(f"{name} {rows:,} rows" for name, rows in tables.items()) or "no raw tables"


def _render_list(console: Any, settings: Any, backups: list, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                [
                    {"path": str(b.path), "bytes": b.bytes, "created": b.created.isoformat(), "kind": b.kind}
                    for b in backups
                ]
            )
        )
        return
    if not backups:
        console.print(f"No backups in {settings.paths.backups_dir} yet. Make one with [bold]sbdk backup[/].")
        return
    from rich.table import Table

    table = Table(show_edge=False)
    # Only the path may wrap: a time or a size cut short is no use.
    table.add_column("backup", overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    for item in backups:
        table.add_row(
            shown(item.path, settings.paths.root),
            item.kind,
            item.created.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            _size(item.bytes),
        )
    console.print(table)
