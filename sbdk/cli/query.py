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
    vertical: Annotated[
        bool,
        typer.Option(
            "--vertical",
            help="Show each row as a block of `column | value` lines (like psql's \\x). A table that does not "
            "fit the terminal is shown this way by itself.",
        ),
    ] = False,
    target: Annotated[
        str | None,
        typer.Option(
            help='Read this target of sbdk_config.json (default: its "target"); a spark target reads the lake\'s '
            "catalog, a postgres one the DuckDB file.",
            show_default=False,
        ),
    ] = None,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run read-only SQL against the project's DuckDB file and print the result.

    Only reads run: writes (DELETE, CREATE, COPY, ...), settings (SET, PRAGMA, CALL), ATTACH, INSTALL/LOAD and reading other files are refused. Without SQL, an interactive prompt opens: end statements with ; and type [bold].tables[/] to list tables.

    Examples: [bold]sbdk query "select * from main.daily_kpis order by 1 desc limit 7"[/], [bold]sbdk query "select * from raw.raw_orders" --format csv > orders.csv[/], [bold]sbdk query "select * from user_metrics limit 2" --vertical[/], [bold]sbdk query[/]
    """
    from sbdk.errors import UsageError
    from sbdk.ops.query import DEFAULT_LIMIT, run_statements

    if vertical and fmt is not OutputFormat.table:
        raise UsageError(
            f"--vertical lays out tables; --format {fmt.value} has no layout to change.",
            hint="Drop --vertical, or drop --format.",
        )
    settings = load(ctx, config_file, verbose)
    if target is not None:
        settings = settings.with_target(target)
    if limit is None:
        limit = DEFAULT_LIMIT if fmt is OutputFormat.table else 0
    if sql is None:
        failed = _interactive(ctx, settings, fmt, limit, vertical=vertical)
        if failed:
            raise typer.Exit(1)
        return
    render_all(run_statements(settings, sql, limit=limit), fmt, quiet=state(ctx).quiet, vertical=vertical)


def render_all(results: list[QueryResult], fmt: OutputFormat, *, quiet: bool = False, vertical: bool = False) -> None:
    """Each statement's result in turn; a blank line between tables or CSV blocks, JSON one per line."""
    for index, result in enumerate(results):
        if index and fmt is not OutputFormat.json:
            print()
        render(result, fmt, quiet=quiet, vertical=vertical)


def render(result: QueryResult, fmt: OutputFormat, *, quiet: bool = False, vertical: bool = False) -> None:
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
        _table(console, result, quiet=quiet, vertical=vertical)
    if result.truncated and not quiet:
        err_console.print(
            f"[yellow]note:[/] showing the first {result.limit:,} rows only; "
            "pass --limit N (0 for all) or add a LIMIT to the SQL."
        )


_NUMERIC = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
    "UHUGEINT", "VARINT", "BIGNUM", "DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL",
}  # fmt: skip
# Values of these types are never split or cut: a date, a time or a number is read whole or not at all.
_WHOLE = _NUMERIC | {
    "DATE", "TIME", "TIMETZ", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "INTERVAL",
    "BOOLEAN", "UUID",
}  # fmt: skip
# A text column may shrink down to this many cells in a table (longer values end in …) before the
# result is shown as vertical records instead.
TEXT_MIN_WIDTH = 24


def _base_type(kind: str) -> str:
    """DECIMAL(38,2) -> DECIMAL, TIMESTAMP WITH TIME ZONE -> TIMESTAMP; "" for lists, structs, maps."""
    if "[" in kind:
        return ""
    return kind.split("(", 1)[0].split(" ", 1)[0].upper()


def _table(console: Any, result: QueryResult, *, quiet: bool, vertical: bool = False) -> None:
    """A table when it fits the terminal, else (or with --vertical) one block of lines per row."""
    from rich.text import Text

    from sbdk.ops.query import text_value

    if not result.columns:
        if not quiet:
            console.print(f"[dim]OK ({result.statement_type.lower()})[/]")
        return
    cells = [[Text("NULL", style="dim") if v is None else Text(text_value(v)) for v in row] for row in result.rows]
    widths = None if vertical else _column_widths(console, result, cells)
    if widths is None:
        _records(console, result.columns, cells)
    else:
        _grid(console, result, cells, widths)
    if not quiet:
        count = len(result.rows)
        console.print(f"[dim]{count:,} row{'s' if count != 1 else ''}{' (truncated)' if result.truncated else ''}[/]")


def _column_widths(console: Any, result: QueryResult, cells: list[list[Any]]) -> list[int] | None:
    """Each column's width in a table that fits the terminal, or None when none does.

    Headers are never cut; dates, times and numbers never split; text columns may shrink to
    TEXT_MIN_WIDTH, their longer values cut with …. Piped or redirected, columns keep their natural
    width (nothing is wrapped or cut there).
    """
    from rich.cells import cell_len

    from sbdk.cli.render import fit_columns

    natural, minimum = [], []
    for index, (name, kind) in enumerate(zip(result.columns, result.types)):
        header = cell_len(name)
        value = max((_width(row[index]) for row in cells), default=0)
        natural.append(max(header, value))
        cut = value if _base_type(kind) in _WHOLE else min(value, TEXT_MIN_WIDTH)
        minimum.append(max(header, cut))
    if not console.is_terminal:
        return natural
    return fit_columns(natural, minimum, console.width)


def _width(text: Any) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


def _grid(console: Any, result: QueryResult, cells: list[list[Any]], widths: list[int]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_edge=False, header_style="bold")
    for name, kind, width in zip(result.columns, result.types, widths):
        right = _base_type(kind) in _NUMERIC
        table.add_column(
            Text(name), justify="right" if right else "left", width=width, no_wrap=True, overflow="ellipsis"
        )
    for row in cells:
        table.add_row(*row)
    console.print(table)


def _records(console: Any, columns: tuple[str, ...], cells: list[list[Any]]) -> None:
    """psql's expanded display (\\x): a `-[ RECORD n ]-` line, then one `column | value` line per column;
    long values wrap at word boundaries under their first line."""
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    ascii_only = console.options.ascii_only
    line, cross, bar = ("-", "+", "|") if ascii_only else ("─", "┼", "│")
    name_width = max(cell_len(name) for name in columns)
    value_width = max((_width(value) for row in cells for value in row), default=0)
    for number, row in enumerate(cells, 1):
        head = f"{line}[ RECORD {number} ]".ljust(name_width + 1, line)
        # The cross marks the column of bars below, when the record label leaves room for it.
        rule = head + (cross if len(head) == name_width + 1 else line) + line * (value_width + 1)
        if console.is_terminal:
            rule = rule[: max(console.width, len(head) + 1)]
        console.print(Text(rule, style="dim"), soft_wrap=True)
        record = Table.grid(padding=(0, 1, 0, 0))
        record.add_column(style="bold", no_wrap=True, width=name_width)
        record.add_column(style="dim", no_wrap=True)
        record.add_column(overflow="fold")
        for name, value in zip(columns, row):
            record.add_row(Text(name), bar, value)
        console.print(record)


def _interactive(ctx: typer.Context, settings: Settings, fmt: OutputFormat, limit: int, *, vertical: bool) -> bool:
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
    spark = settings.active_target.type == "spark"
    where = settings.active_target.describe() if spark else settings.paths.duckdb_path
    if tty:
        console.print(
            f"[bold]{settings.project}[/] [dim]{where} (read-only)[/]\n"
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
                run(
                    lambda statement=statement: render_all(
                        run_statements(settings, statement, limit=limit), fmt, vertical=vertical
                    )
                )
        rest = buffer.flush()
        if rest:
            run(lambda: render_all(run_statements(settings, rest, limit=limit), fmt, vertical=vertical))
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
