"""`sbdk sources`: what sbdk synthesizes for each source column of the user's dbt project, and why."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sbdk.cli.options import ConfigFileOpt, JsonOpt, VerboseOpt, load

if TYPE_CHECKING:
    from rich.console import Console

    from sbdk.synth.synthesize import SynthReport


def sources(
    ctx: typer.Context,
    refresh: Annotated[
        bool,
        typer.Option("--refresh", help="Read the dbt project again first (adds new source tables and columns)."),
    ] = False,
    as_json: JsonOpt = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Show each synthesized source column: its type, generator and where each came from.

    Examples: [bold]sbdk sources[/], [bold]sbdk sources --refresh[/], [bold]sbdk sources --json[/]
    """
    from sbdk.cli.render import console
    from sbdk.errors import UsageError
    from sbdk.synth.synthesize import is_synthesized, read_state, synthesize

    settings = load(ctx, config_file, verbose)
    if not is_synthesized(settings) and not refresh:
        raise UsageError(
            "This project synthesizes no sources (it has no synth.yml).",
            hint="Create one with `sbdk init NAME --from-dbt PATH`, or run `sbdk sources --refresh` here to "
            "synthesize the sources of the dbt project dbt_path names.",
        )
    if refresh:
        with console.status("Reading the dbt project (dbt compile)..."):
            report = synthesize(settings)
        if not as_json:
            render_synthesis(report, first=False)
    rows = describe(settings, read_state(settings))
    if as_json:
        print(json.dumps(rows, indent=1, default=str))
        return
    render_sources(console, rows)


def describe(settings: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Per table and column: what synth.yml says, what was inferred and why, and whether it was edited."""
    from sbdk.synth import spec

    current = spec.read_raw(spec.spec_path(settings.paths.root))
    inferred = state.get("tables") or {}
    origins = state.get("origins") or {}
    defaults = state.get("defaults") or {}
    tables = []
    for key, entry in current.items():
        columns = []
        for name, column in (entry.get("columns") or {}).items():
            was = ((inferred.get(key) or {}).get("columns") or {}).get(name)
            columns.append(
                {
                    "column": name,
                    "type": column.get("type"),
                    "generator": column.get("generator"),
                    "constraints": _constraints(column),
                    "from": list((origins.get(key) or {}).get(name) or []),
                    "default": (defaults.get(key) or {}).get(name),
                    "edited": was is not None and was != column,
                    "in_dbt_project": was is not None,
                }
            )
        tables.append({"table": key, "rows": entry.get("rows"), "columns": columns})
    return {
        "tables": tables,
        "unsatisfied": [{"test": t, "why": w} for t, w in state.get("unsatisfied") or []],
        "warnings": list(state.get("warnings") or []),
    }


def _constraints(column: dict[str, Any]) -> str:
    parts = []
    if column.get("unique"):
        parts.append("unique")
    if column.get("nulls"):
        parts.append(f"{column['nulls']:.0%} null")
    if column.get("values") is not None:
        parts.append("one of " + ", ".join(map(str, column["values"])))
    if column.get("references"):
        parts.append(f"-> {column['references']}")
    if column.get("min") is not None or column.get("max") is not None:
        parts.append(f"{column.get('min', '')}..{column.get('max', '')}")
    if column.get("expression"):
        parts.append(f"= {column['expression']}")
    return "; ".join(parts)


def render_sources(console: Console, rows: dict[str, Any]) -> None:
    """`describe`'s tables, one Rich table per source table, then what may fail and the warnings."""
    from rich.markup import escape
    from rich.table import Table

    for table in rows["tables"]:
        grid = Table(title=f"{table['table']} ({table['rows']:,} rows at 1x)", title_justify="left")
        for header in ("column", "type", "generator", "constraints", "from"):
            grid.add_column(header, overflow="fold")
        for column in table["columns"]:
            reasons = list(column["from"])
            if column["default"]:
                reasons.append(f"default: {column['default']}")
            if column["edited"]:
                reasons.insert(0, "edited in synth.yml")
            if not column["in_dbt_project"]:
                reasons.insert(0, "not in the dbt project (kept from synth.yml)")
            grid.add_row(
                escape(column["column"]),
                escape(str(column["type"])),
                escape(str(column["generator"])),
                escape(column["constraints"]),
                # One fact a line: a column read by many models stays readable, on a terminal and piped.
                escape("\n".join(reasons) or "-"),
            )
        console.print(grid)
    if rows["unsatisfied"]:
        console.print("\n[yellow]Tests that may fail on synthesized data[/]")
        for item in rows["unsatisfied"]:
            console.print(f"  {escape(item['test'])}: {escape(item['why'])}")
    if rows["warnings"]:
        console.print("\n[yellow]Warnings[/]")
        for warning in rows["warnings"]:
            console.print(f"  {escape(warning)}")


def render_synthesis(report: SynthReport, *, first: bool) -> None:
    """What a synthesis did: tables described, pipelines written, what changed, what may not hold."""
    from rich.markup import escape

    from sbdk.cli.render import console

    count = len(report.tables)
    if first:
        console.print(
            f"Synthesized {count} source table{'s' if count != 1 else ''} into synth.yml "
            f"and {len(report.pipelines)} pipeline file{'s' if len(report.pipelines) != 1 else ''} "
            f"({report.seconds:.1f} s)."
        )
    for change in report.changes:
        console.print(f"  {escape(str(change))}")
    for path in report.pipelines if not first else ():
        console.print(f"  wrote {escape(path.name)}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    if report.unsatisfied:
        console.print(
            f"[yellow]{len(report.unsatisfied)} data test(s) may fail on synthesized data[/]; "
            "`sbdk sources` lists them and why."
        )
