"""`sbdk dev`: generate and load the raw tables, then build and test the dbt project."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load


def dev(
    ctx: typer.Context,
    pipelines_only: Annotated[bool, typer.Option("--pipelines-only", help="Only generate and load the raw tables.")] = False,
    dbt_only: Annotated[bool, typer.Option("--dbt-only", help="Only run dbt on the data already loaded.")] = False,
    select: Annotated[
        Optional[list[str]],
        typer.Option("--select", "-s", help="dbt selection, e.g. stg_orders+ (repeatable).", show_default=False),
    ] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop dbt at the first failure.")] = False,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Append a new, later slice of events and orders.")
    ] = False,
    users: Annotated[Optional[int], typer.Option(help="Users to generate this run.", show_default=False)] = None,
    events: Annotated[Optional[int], typer.Option(help="Events to generate this run.", show_default=False)] = None,
    orders: Annotated[Optional[int], typer.Option(help="Orders to generate this run.", show_default=False)] = None,
    scale: Annotated[
        Optional[float], typer.Option(help="Multiply every configured volume, e.g. 0.1 or 10.", show_default=False)
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for this run.", show_default=False)] = None,
    wait: Annotated[bool, typer.Option("--wait", help="If another run holds the project, wait for it.")] = False,
    target: Annotated[
        Optional[str],
        typer.Option(help="Run against this target of sbdk_config.json (default: its \"target\").", show_default=False),
    ] = None,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the pipeline: generate data, load it with dlt, build and test it with dbt.

    Examples: [bold]sbdk dev[/], [bold]sbdk dev --pipelines-only --scale 10[/],
    [bold]sbdk dev --dbt-only --select stg_orders+[/]
    """
    from sbdk.cli.options import state
    from sbdk.cli.progress import RichReporter, render_summary
    from sbdk.cli.render import console
    from sbdk.errors import ExitCode, UsageError
    from sbdk.runner import RunPlan, run

    settings = load(ctx, config_file, verbose)
    if target is not None:
        settings = settings.with_target(target)
    verbose = state(ctx).verbose
    if pipelines_only and dbt_only:
        raise UsageError(
            "--pipelines-only and --dbt-only exclude each other.", hint="Pass one of them, or neither."
        )
    if dbt_only and (incremental or any(v is not None for v in (users, events, orders, scale, seed))):
        raise UsageError(
            "--dbt-only does not generate data, so volume, seed and --incremental options do not apply.",
            hint="Drop --dbt-only, or drop those options.",
        )
    if pipelines_only and (select or fail_fast):
        raise UsageError("--select and --fail-fast are dbt options; --pipelines-only skips dbt.", hint="Drop one of them.")
    volume = _volume(settings.data_volume, users, events, orders, scale)
    if seed is not None and not 0 <= seed <= 2**32 - 1:
        raise UsageError(f"--seed {seed} is outside 0..4294967295.", hint="Give a non-negative seed.")
    plan = RunPlan(
        pipelines=not dbt_only,
        dbt=not pipelines_only,
        select=tuple(select or ()),
        incremental=incremental,
        volume=volume,
        seed=seed,
        fail_fast=fail_fast,
        verbose=verbose,
        trigger="sbdk dev",
    )
    where = "" if settings.target == "dev" else f" -> target {settings.target} ({settings.active_target.describe()})"
    console.print(f"[bold]{settings.project}[/] [dim]{settings.paths.root}{where}[/]")
    reporter = RichReporter(console, verbose=verbose)
    try:
        report = run(settings, plan, reporter, wait=wait)
    finally:
        reporter.close()
    render_summary(console, report)
    if not report.success:
        raise typer.Exit(int(ExitCode.FAILURE))


def _volume(configured, users, events, orders, scale):
    from sbdk.config import MAX_ROWS_PER_TABLE, DataVolume
    from sbdk.errors import UsageError

    if scale is not None and not (0 <= scale and scale * max(configured.as_dict().values()) <= MAX_ROWS_PER_TABLE):
        raise UsageError(
            f"--scale {scale} must be between 0 and {MAX_ROWS_PER_TABLE // max(1, max(configured.as_dict().values())):,} "
            f"for this project (at most {MAX_ROWS_PER_TABLE:,} rows per table).",
            hint="Give a positive factor such as 0.1, 2 or 10.",
        )
    factor = 1.0 if scale is None else scale
    values = {}
    for name, given in (("users", users), ("events", events), ("orders", orders)):
        if given is not None and not 0 <= given <= MAX_ROWS_PER_TABLE:
            raise UsageError(
                f"--{name} {given} is outside 0..{MAX_ROWS_PER_TABLE:,}.", hint="Give a number of rows in that range."
            )
        values[name] = given if given is not None else round(getattr(configured, name) * factor)
    if values["users"] == 0 and (values["events"] or values["orders"]):
        raise UsageError(
            "0 users with events or orders: every event and order belongs to a user.",
            hint="Give --users 1 or more, or --events 0 --orders 0.",
        )
    return DataVolume(**values)
