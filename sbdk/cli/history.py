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


def _dbt_counts(dbt: dict[str, Any] | None) -> tuple[str, str]:
    if not dbt:
        return "-", "-"
    models = f"{dbt.get('models_passed', 0)} ok"
    if dbt.get("models_failed"):
        models += f", [red]{dbt['models_failed']} failed[/]"
    tests = f"{dbt.get('tests_passed', 0)} pass"
    if dbt.get("tests_failed"):
        tests += f", [red]{dbt['tests_failed']} failed[/]"
    return models, tests


def _first_line(text: Any, width: int = 60) -> str:
    line = str(text or "").strip().splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 3] + "..."


def _render_list(console: Any, entries: list[dict[str, Any]], *, total: int, quiet: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table

    from sbdk.cli.query import print_table

    table = Table(show_edge=False)
    table.add_column("run", no_wrap=True, min_width=12)
    table.add_column("started", no_wrap=True)
    table.add_column("trigger")
    table.add_column("status", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("models")
    table.add_column("tests")
    errors = []
    for entry in entries:
        rows = entry.get("rows") or {}
        models, tests = _dbt_counts(entry.get("dbt"))
        table.add_row(
            str(entry.get("run_id")),
            _local(entry.get("started_at"))[:16],
            escape(str(entry.get("trigger") or "-")),
            _status(entry),
            f"{entry.get('seconds', 0):.1f}",
            f"{sum(rows.values()):,}" if rows else "-",
            models,
            tests,
        )
        if entry.get("error"):
            errors.append((entry.get("run_id"), entry["error"]))
    print_table(console, table)
    for run_id, text in errors:
        console.print(f"[red]{run_id}[/] {escape(_first_line(text, 100))}", soft_wrap=True)
    if not quiet:
        console.print(
            f"[dim]{len(entries)} of {total} runs, newest first. `sbdk history RUN_ID` shows one in detail.[/]"
        )


def _render_run(console: Any, entry: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from sbdk.cli.query import print_table

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
        ("options", escape(shown) or "[dim]defaults[/]"),
        ("log file", escape(entry["log_file"]) if entry.get("log_file") else "[dim]none[/]"),
    ):
        facts.add_row(label, value)
    print_table(console, facts)

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
                console.print(escape(str(failure["message"]).strip()), soft_wrap=True)
    if entry.get("error"):
        console.print()
        console.print(f"[bold red]error:[/] {escape(str(entry['error']))}", soft_wrap=True)
