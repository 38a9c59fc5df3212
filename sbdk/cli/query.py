"""`sbdk query`: read-only SQL against the project's DuckDB file, once or in an interactive prompt."""

from __future__ import annotations

import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load, state

if TYPE_CHECKING:
    from sbdk.ops.query import QueryResult
    from sbdk.settings import Settings

HELP = """\
End each statement with ; (it may span several lines). Commands:
  .tables   list the tables and views
  .help     show this help
  .quit     leave (or Ctrl-D)"""


class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def query(
    ctx: typer.Context,
    sql: Annotated[
        str | None,
        typer.Argument(help="SQL to run; without it, an interactive prompt opens.", show_default=False),
    ] = None,
    fmt: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="Output: a table, CSV or JSON (a list of row objects; NaN and ±Infinity become null). "
            "Several statements print each result in turn: tables and CSV blocks apart by a blank line, "
            "JSON one document per line.",
            case_sensitive=False,
        ),
    ] = OutputFormat.table,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-l",
            min=0,
            help="Rows to show at most per statement (0: all). Default: 1000 for a table, all for csv and json.",
            show_default=False,
        ),
    ] = None,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run read-only SQL against the project's DuckDB file and print the result.

    Only reads run: writes (DELETE, CREATE, COPY, ...), settings (SET, PRAGMA, CALL), ATTACH, INSTALL/LOAD and reading other files are refused. Without SQL, an interactive prompt opens: end statements with ; and type [bold].tables[/] to list tables.

    Examples: [bold]sbdk query "select * from main.daily_kpis order by 1 desc limit 7"[/], [bold]sbdk query "select * from raw.raw_orders" --format csv > orders.csv[/], [bold]sbdk query[/]
    """
    from sbdk.ops.query import DEFAULT_LIMIT, run_statements

    settings = load(ctx, config_file, verbose)
    if limit is None:
        limit = DEFAULT_LIMIT if fmt is OutputFormat.table else 0
    if sql is None:
        failed = _interactive(ctx, settings, fmt, limit)
        if failed:
            raise typer.Exit(1)
        return
    render_all(run_statements(settings, sql, limit=limit), fmt, quiet=state(ctx).quiet)


def render_all(results: list[QueryResult], fmt: OutputFormat, *, quiet: bool = False) -> None:
    """Each statement's result in turn; a blank line between tables or CSV blocks, JSON one per line."""
    for index, result in enumerate(results):
        if index and fmt is not OutputFormat.json:
            print()
        render(result, fmt, quiet=quiet)


def render(result: QueryResult, fmt: OutputFormat, *, quiet: bool = False) -> None:
    from sbdk.cli.render import console, err_console

    if fmt is OutputFormat.json:
        import json

        from sbdk.ops.query import json_value

        rows = [{k: json_value(v) for k, v in row.items()} for row in result.records()]
        # allow_nan=False: json_value already made NaN/Infinity null; never print what is not JSON.
        print(json.dumps(rows, allow_nan=False))
    elif fmt is OutputFormat.csv:
        import csv

        from sbdk.ops.query import text_value

        if result.columns:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(result.columns)
            writer.writerows([text_value(v) for v in row] for row in result.rows)
        sys.stdout.flush()
    else:
        _table(console, result, quiet=quiet)
    if result.truncated and not quiet:
        err_console.print(
            f"[yellow]note:[/] showing the first {result.limit:,} rows only; "
            "pass --limit N (0 for all) or add a LIMIT to the SQL."
        )


def _table(console: Any, result: QueryResult, *, quiet: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from sbdk.ops.query import text_value

    if not result.columns:
        if not quiet:
            console.print(f"[dim]OK ({result.statement_type.lower()})[/]")
        return
    numeric = ("INT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "NUMERIC")
    table = Table(show_edge=False, header_style="bold")
    for name, kind in zip(result.columns, result.types):
        right = any(word in kind.upper() for word in numeric) and "[]" not in kind
        table.add_column(Text(name), justify="right" if right else "left", overflow="fold")
    for row in result.rows:
        table.add_row(*(Text("NULL", style="dim") if v is None else Text(text_value(v)) for v in row))
    print_table(console, table)
    if not quiet:
        count = len(result.rows)
        console.print(f"[dim]{count:,} row{'s' if count != 1 else ''}{' (truncated)' if result.truncated else ''}[/]")


def print_table(console: Any, table: Any) -> None:
    """A table that fits the terminal; piped or redirected, at its natural width (no folded cells)."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.console import Console
    from rich.measure import Measurement

    natural = Measurement.get(console, console.options.update_width(100_000), table).maximum
    if natural <= console.width:
        console.print(table)
        return
    # Console.print caps `width` at the console's own width: a wider one is needed.
    Console(width=natural, highlight=False, file=console.file, no_color=console.no_color).print(table)


def _interactive(ctx: typer.Context, settings: Settings, fmt: OutputFormat, limit: int) -> bool:
    """A prompt reading statements until .quit or end of input. Returns whether any statement failed.

    Without a terminal (input piped in), statements are read silently, like a script.
    """
    from sbdk.cli.render import console, error
    from sbdk.errors import SbdkError
    from sbdk.ops.query import StatementBuffer, list_tables, run_statements

    tty = sys.stdin.isatty()
    verbose = state(ctx).verbose
    history_file = settings.paths.state_dir / "query_history"
    readline = _readline(history_file) if tty else None
    if tty:
        console.print(
            f"[bold]{settings.project}[/] [dim]{settings.paths.duckdb_path} (read-only)[/]\n"
            "End statements with [bold];[/]  [bold].tables[/] lists tables, [bold].help[/], [bold].quit[/]"
        )
    buffer = StatementBuffer()
    failed = False

    def run(action: Any) -> None:
        nonlocal failed
        try:
            action()
        except SbdkError as exc:
            failed = True
            error(exc, verbose=verbose)

    try:
        while True:
            try:
                if tty:
                    line = input("sbdk> " if not buffer.pending else "  ...> ")
                else:
                    line = sys.stdin.readline()
                    if not line:
                        break
                    line = line.rstrip("\r\n")
            except EOFError:
                if tty:
                    console.print()
                break
            except KeyboardInterrupt:
                # Ctrl-C drops the statement being typed, as in psql.
                buffer.flush()
                console.print()
                continue
            command = line.strip()
            if not buffer.pending and command.startswith("."):
                name = command.split()[0].lower()
                if name in (".quit", ".exit", ".q"):
                    break
                if name == ".help":
                    console.print(HELP, markup=False)
                elif name == ".tables":
                    run(lambda: render(list_tables(settings), OutputFormat.table, quiet=True))
                else:
                    failed = True
                    console.print(f"[red]Unknown command {name}.[/] Try .help")
                continue
            for statement in buffer.feed(line):
                run(lambda statement=statement: render_all(run_statements(settings, statement, limit=limit), fmt))
        rest = buffer.flush()
        if rest:
            run(lambda: render_all(run_statements(settings, rest, limit=limit), fmt))
    finally:
        if readline is not None:
            try:
                readline.write_history_file(str(history_file))
            except OSError:
                pass
    return failed and not tty


def _readline(history_file: Any) -> Any:
    """GNU readline or libedit for line editing and history, when the platform has one."""
    try:
        import readline
    except ImportError:
        return None
    try:
        readline.read_history_file(str(history_file))
    except OSError:
        pass
    readline.set_history_length(1000)
    try:
        history_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return readline
