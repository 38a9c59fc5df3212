"""`sbdk history`: the recent runs of the project (CLI, watcher and webhook runs alike)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer

from sbdk.cli.options import ConfigFileOpt, JsonOpt, VerboseOpt, load, state
from sbdk.paths import shown as display


def history(
    ctx: typer.Context,
    run_id: Annotated[
        str | None,
        typer.Argument(help="Show this run in detail (its id, or the first characters of it).", show_default=False),
    ] = None,
    last: Annotated[int, typer.Option("--last", "-n", min=0, help="How many recent runs to list (0: all).")] = 20,
    as_json: JsonOpt = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show the last runs of this project, or one run in detail.

    Examples: [bold]sbdk history[/], [bold]sbdk history -n 5 --json[/], [bold]sbdk history 3f2a9c[/]
    """
    from sbdk.cli.render import console
    from sbdk.run import history as runs

    settings = load(ctx, config_file, verbose)
    state_dir = settings.paths.state_dir
    if run_id is not None:
        from sbdk.run.runlog import find_log

        entry = dict(runs.find(state_dir, run_id))
        log_file = find_log(settings, str(entry.get("run_id")))
        entry["log_file"] = str(log_file) if log_file else None
        if as_json:
            print(json.dumps(entry))
        else:
            shown = dict(entry)
            if log_file is not None:
                shown["log_file"] = display(log_file, settings.paths.root)
            _render_run(console, shown)
        return
    entries = runs.last(state_dir, last)
    if as_json:
        print(json.dumps(entries))
        return
    if not entries:
        console.print(f"No runs recorded yet in {runs.history_path(state_dir)}. Run [bold]sbdk dev[/] first.")
        return
    _render_list(console, entries, total=len(runs.read(state_dir)), quiet=state(ctx).quiet)


def _local(stamp: Any) -> str:
    try:
        return datetime.fromisoformat(str(stamp)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(stamp or "-")


_STATUS_STYLE = {"succeeded": "green", "running": "cyan", "interrupted": "yellow", "refused": "yellow"}


def _status(entry: dict[str, Any]) -> str:
    status = str(entry.get("status") or "unknown")
    return f"[{_STATUS_STYLE.get(status, 'red')}]{status}[/]"


def _dbt_counts(dbt: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The models and tests cells: `10 ok`, `1 failed` (in red) as parts of one cell each."""
    if not dbt:
        return ["-"], ["-"]
    models = [f"{dbt.get('models_passed', 0)} ok"]
    if dbt.get("models_failed"):
        models.append(f"[red]{dbt['models_failed']} failed[/]")
    tests = [f"{dbt.get('tests_passed', 0)} pass"]
    if dbt.get("tests_failed"):
        tests.append(f"[red]{dbt['tests_failed']} failed[/]")
    return models, tests


def _dbt_summary(dbt: dict[str, Any] | None) -> list[str]:
    """Models and tests in one cell, for a narrow terminal: `10 models`, `53 tests` (failures in red)."""
    if not dbt:
        return ["-"]

    def part(noun: str) -> str:
        failed = dbt.get(f"{noun}_failed")
        return f"{dbt.get(f'{noun}_passed', 0)} {noun}" + (f" ok, [red]{failed} failed[/]" if failed else "")

    return [part("models"), part("tests")]


def _first_line(text: Any, width: int = 60) -> str:
    line = str(text or "").strip().splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"


# How the parts of a cell are joined on one line; in a narrow terminal each part takes a line of its own.
_JOIN = {"models": ", ", "tests": ", ", "dbt": "; ", "trigger": " "}
_RIGHT = {"seconds", "rows"}
# Tried in turn until one fits the terminal: the less useful columns go first (run id, start, status
# and seconds always stay), then models and tests share one column.
_LAYOUTS = (
    ("run", "started", "trigger", "status", "seconds", "rows", "models", "tests"),
    ("run", "started", "status", "seconds", "rows", "models", "tests"),
    ("run", "started", "status", "seconds", "models", "tests"),
    ("run", "started", "status", "seconds", "dbt"),
    ("run", "started", "status", "seconds"),
)


def _cells(entry: dict[str, Any]) -> dict[str, list[str]]:
    """Each column's cell for `entry`, as the markup of its parts."""
    from rich.markup import escape

    rows = entry.get("rows") or {}
    models, tests = _dbt_counts(entry.get("dbt"))
    if entry.get("dbt_skipped") and not entry.get("dbt"):
        models, tests = ["[dim]up to date[/]"], ["[dim]-[/]"]
    return {
        "run": [escape(str(entry.get("run_id")))],
        "started": [_local(entry.get("started_at"))[:16]],
        "trigger": escape(str(entry.get("trigger") or "-")).split(),
        "status": [_status(entry)],
        "seconds": [f"{entry.get('seconds', 0):.1f}"],
        "rows": [f"{sum(rows.values()):,}" if rows else "-"],
        "models": models,
        "tests": tests,
        "dbt": _dbt_summary(entry.get("dbt")),
    }


def _layout(console: Any, cells: list[dict[str, list[str]]]) -> tuple[tuple[str, ...], list[int] | None]:
    """The columns to show and their widths: all of them when piped; on a terminal the first layout
    that fits on one line per run, else the first that fits with each part of a cell (`10 ok`,
    `1 failed`) on a line of its own."""
    from rich.text import Text

    from sbdk.cli.render import fit_columns

    def width(markup: str) -> int:
        return Text.from_markup(markup).cell_len

    def measure(layout: tuple[str, ...]) -> tuple[list[int], list[int]]:
        natural = [max(len(name), *(width(_JOIN.get(name, "").join(row[name])) for row in cells)) for name in layout]
        narrow = [max(len(name), *(width(part) for row in cells for part in row[name])) for name in layout]
        return natural, narrow

    if not console.is_terminal:
        return _LAYOUTS[0], None
    measured = [(layout, *measure(layout)) for layout in _LAYOUTS]
    # Dropping models and tests altogether is the last resort, not a way to keep lines whole.
    for layout, natural, _narrow in measured[:-1]:
        if fit_columns(natural, natural, console.width) is not None:
            return layout, natural
    for layout, natural, narrow in measured:
        widths = fit_columns(natural, narrow, console.width)
        if widths is not None:
            return layout, widths
    return _LAYOUTS[-1], None  # narrower than the four columns that always stay: Rich shrinks them


def _render_list(console: Any, entries: list[dict[str, Any]], *, total: int, quiet: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from sbdk.cli.render import hanging

    cells = [_cells(entry) for entry in entries]
    layout, widths = _layout(console, cells)
    table = Table(show_edge=False)
    for index, name in enumerate(layout):
        table.add_column(name, justify="right" if name in _RIGHT else "left", width=widths[index] if widths else None)
    for row in cells:
        shown = []
        for index, name in enumerate(layout):
            text = Text.from_markup(_JOIN.get(name, "").join(row[name]))
            if widths and text.cell_len > widths[index]:
                text = Text.from_markup("\n".join(row[name]))
            shown.append(text)
        table.add_row(*shown)
    console.print(table)
    for entry in entries:
        if entry.get("error"):
            run_id = escape(str(entry.get("run_id")))
            console.print(hanging(f"[red]{run_id}[/] ", escape(_first_line(entry["error"], 100))))
    if not quiet:
        console.print(
            f"[dim]{len(entries)} of {total} runs, newest first. `sbdk history RUN_ID` shows one in detail.[/]"
        )


def _dbt_line(entry: dict[str, Any]) -> str:
    from rich.markup import escape

    if entry.get("dbt_skipped"):
        return escape(f"up to date: {entry['dbt_skipped']}")
    return "built" if entry.get("dbt") else "[dim]not run[/]"


def _days(entry: dict[str, Any]) -> str:
    """The days the run's load made: "2025-01-01 to 2025-12-24", one day, or none (dbt only)."""
    from rich.markup import escape

    days = entry.get("days")
    if not isinstance(days, list) or len(days) != 2:
        return "[dim]none loaded[/]"
    first, last = (escape(str(day)) for day in days)
    return first if first == last else f"{first} to {last}"


def _render_run(console: Any, entry: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from sbdk.cli.render import hanging

    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold cyan")
    facts.add_column()
    options = entry.get("options") or {}
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in options.items() if v not in (None, False, [], {}))
    for label, value in (
        ("run", str(entry.get("run_id"))),
        ("trigger", escape(str(entry.get("trigger")))),
        ("status", _status(entry)),
        ("started", _local(entry.get("started_at"))),
        ("ended", _local(entry.get("ended_at"))),
        ("seconds", f"{entry.get('seconds', 0):.2f}"),
        ("days", _days(entry)),
        ("kept", escape(", ".join(str(t) for t in entry.get("kept") or ())) or "[dim]none[/]"),
        ("dbt", _dbt_line(entry)),
        ("options", escape(shown) or "[dim]defaults[/]"),
        ("log file", escape(entry["log_file"]) if entry.get("log_file") else "[dim]none[/]"),
    ):
        facts.add_row(label, value)
    console.print(facts)

    stages = entry.get("stages") or {}
    rows = entry.get("rows") or {}
    if stages or rows:
        detail = Table(show_edge=False)
        detail.add_column("stage / raw table")
        detail.add_column("seconds", justify="right")
        detail.add_column("rows", justify="right")
        for stage, seconds in stages.items():
            detail.add_row(stage, f"{seconds:.2f}", "")
        for table, count in sorted(rows.items()):
            detail.add_row(table, "", f"{count:,}")
        console.print()
        console.print(detail)

    dbt = entry.get("dbt")
    if dbt:
        console.print()
        console.print(
            f"dbt: {dbt.get('models_passed', 0)} models built, {dbt.get('models_failed', 0)} failed, "
            f"{dbt.get('models_skipped', 0)} skipped; {dbt.get('tests_passed', 0)} tests passed, "
            f"{dbt.get('tests_failed', 0)} failed, {dbt.get('tests_warned', 0)} warned"
        )
        for failure in dbt.get("failures") or ():
            console.print(f"[bold red]{escape(str(failure.get('name')))} {escape(str(failure.get('status')))}[/]")
            if failure.get("message"):
                console.print(escape(str(failure["message"]).strip()))
    if entry.get("error"):
        console.print()
        console.print(hanging("[bold red]error:[/] ", escape(str(entry["error"]))))
