"""`sbdk dev`: generate and load the raw tables, then build and test the dbt project."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from sbdk.cli.options import ConfigFileOpt, DbtOnlyOpt, PipelinesOnlyOpt, VerboseOpt, WaitOpt, load

if TYPE_CHECKING:
    from sbdk.errors import SbdkError
    from sbdk.run.plan import RunPlan
    from sbdk.run.results import RunReport
    from sbdk.settings import Settings


def dev(
    ctx: typer.Context,
    pipelines_only: PipelinesOnlyOpt = False,
    dbt_only: DbtOnlyOpt = False,
    select: Annotated[
        list[str] | None,
        typer.Option("--select", "-s", help="dbt selection, e.g. stg_orders+ (repeatable).", show_default=False),
    ] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop dbt at the first failure.")] = False,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental", help="Append the next day (users, events, orders) after the last loaded day, up to as_of."
        ),
    ] = False,
    users: Annotated[int | None, typer.Option(help="Users to generate this run.", show_default=False)] = None,
    events: Annotated[
        int | None,
        typer.Option(help="Events to generate this run (orders follow from the purchases).", show_default=False),
    ] = None,
    scale: Annotated[
        float | None, typer.Option(help="Multiply the configured users and events, e.g. 0.1 or 10.", show_default=False)
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for this run.", show_default=False)] = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Regenerate every raw table and build everything, even what is up to date."),
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="A full dbt build, even when nothing changed since the last one.")
    ] = False,
    wait: WaitOpt = False,
    target: Annotated[
        str | None,
        typer.Option(help='Run against this target of sbdk_config.json (default: its "target").', show_default=False),
    ] = None,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the pipeline: generate data, load it with dlt, build and test it with dbt.

    Examples: [bold]sbdk dev[/], [bold]sbdk dev --pipelines-only --scale 10[/],
    [bold]sbdk dev --dbt-only --select stg_orders+[/]
    """
    from sbdk.cli.options import state
    from sbdk.cli.progress import render_summary
    from sbdk.cli.render import console
    from sbdk.errors import ExitCode, SbdkError
    from sbdk.run.plan import RunPlan, Trigger
    from sbdk.settings import resolve_volume

    settings = load(ctx, config_file, verbose)
    if target is not None:
        settings = settings.with_target(target)
    _check_options(pipelines_only, dbt_only, incremental, select, fail_fast, users, events, scale, seed)
    if fresh and (dbt_only or incremental):
        from sbdk.errors import UsageError

        raise UsageError(
            f"--fresh regenerates every raw table; {'--dbt-only' if dbt_only else '--incremental'} keeps them.",
            hint="Drop one of them (`sbdk dev --dbt-only --full` rebuilds every model without reloading).",
        )
    if full and pipelines_only:
        from sbdk.errors import UsageError

        raise UsageError("--full is about the dbt build; --pipelines-only skips dbt.", hint="Drop one of them.")
    plan = RunPlan(
        pipelines=not dbt_only,
        dbt=not pipelines_only,
        select=tuple(select or ()),
        incremental=incremental,
        keep_unchanged=not fresh,
        full_build=full or fresh,
        volume=resolve_volume(settings.data_volume, users=users, events=events, scale=scale),
        seed=seed,
        fail_fast=fail_fast,
        verbose=state(ctx).verbose,
        trigger=Trigger.DEV,
    )
    quiet = state(ctx).quiet
    if not quiet:
        where = (
            "" if settings.target == "dev" else f" -> target {settings.target} ({settings.active_target.describe()})"
        )
        console.print(f"[bold]{settings.project}[/] [dim]{settings.paths.root}{where}[/]")
    if settings.tracking.enabled:
        from sbdk.ops.tracking import send_usage_event

        # A daemon thread with a short timeout: a slow or missing endpoint never delays the run.
        send_usage_event(
            settings, "dev", {"pipelines_only": pipelines_only, "dbt_only": dbt_only, "incremental": incremental}
        )
    if plan.pipelines:
        _refresh_synthesis(settings, quiet)
    github = state(ctx).log_format == "github"
    try:
        report = _run(ctx, settings, plan, wait=wait)
    except SbdkError as exc:
        if github:
            _github_error(exc)
        raise
    if not quiet:
        render_summary(console, report)
    elif not report.success:
        _print_failures(report)
    if github:
        _github_output(settings, report)
    if not report.success:
        # dbt that could not run at all (a parse or compilation error, nothing built) is exit 5; a
        # model or test that failed, named in the summary, is exit 1 (README, "Exit codes").
        could_not_run = report.dbt is not None and report.dbt.error is not None and not report.dbt.failures
        raise typer.Exit(int(ExitCode.DBT if could_not_run else ExitCode.FAILURE))


def _refresh_synthesis(settings: Settings, quiet: bool) -> None:
    """A project made with `sbdk init --from-dbt`: when the dbt project changed since its sources were
    inferred, infer them again (synth.yml gains new columns, never loses an edit) and say what changed."""
    from sbdk.synth.synthesize import is_synthesized, refresh

    if not is_synthesized(settings):
        return
    report = refresh(settings)
    if report is not None and not quiet and (report.changes or report.pipelines):
        from sbdk.cli.sources import render_synthesis

        render_synthesis(report, first=False)


def _check_options(
    pipelines_only: bool,
    dbt_only: bool,
    incremental: bool,
    select: list[str] | None,
    fail_fast: bool,
    users: int | None,
    events: int | None,
    scale: float | None,
    seed: int | None,
) -> None:
    """Options that exclude each other, as UsageErrors (exit code 2)."""
    from sbdk.errors import UsageError
    from sbdk.settings import MAX_SEED

    sizes = {"--users": users, "--events": events, "--scale": scale}
    given = {name: value for name, value in sizes.items() if value is not None}
    if pipelines_only and dbt_only:
        raise UsageError("--pipelines-only and --dbt-only exclude each other.", hint="Pass one of them, or neither.")
    if dbt_only and (incremental or given or seed is not None):
        raise UsageError(
            "--dbt-only does not generate data, so volume, seed and --incremental options do not apply.",
            hint="Drop --dbt-only, or drop those options.",
        )
    if incremental and given:
        *others, last = given
        names = f"{', '.join(others)} and {last}" if others else last
        # As typed: --scale 2, not 2.0.
        typed = " ".join(
            f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}" for name, value in given.items()
        )
        raise UsageError(
            "--incremental adds the next day at the rhythm of the data already loaded; "
            f"{names} {'sizes' if len(given) == 1 else 'size'} a full load.",
            hint=f"Run `sbdk dev {typed}` (without --incremental) to reload at another size.",
        )
    if pipelines_only and (select or fail_fast):
        raise UsageError(
            "--select and --fail-fast are dbt options; --pipelines-only skips dbt.", hint="Drop one of them."
        )
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise UsageError(f"--seed {seed} is outside 0..{MAX_SEED}.", hint="Give a non-negative seed.")


def _run(ctx: typer.Context, settings: Settings, plan: RunPlan, *, wait: bool) -> RunReport:
    """Run with live Rich progress (unless --quiet); the runner writes the run's log in logs/."""
    from sbdk.cli.options import state
    from sbdk.cli.progress import RichReporter
    from sbdk.cli.render import console
    from sbdk.run.reporters import NULL_REPORTER
    from sbdk.run.runner import run

    st = state(ctx)
    rich = None if st.quiet else RichReporter(console, verbose=st.verbose)
    try:
        # This process does this one run, then exits: dbt may build with the collector paused.
        return run(settings, plan, rich or NULL_REPORTER, wait=wait, log_format=st.log_format, pause_gc=True)
    finally:
        if rich is not None:
            rich.close()


def _github_output(settings: Settings, report: RunReport) -> None:
    """GitHub Actions annotations for the failures on stdout, and the job summary appended to the file
    $GITHUB_STEP_SUMMARY names (when it is set: outside a workflow there is none)."""
    import os

    from sbdk.cli import github

    folder = github.dbt_folder(settings.paths.dbt_project_dir, settings.paths.root, os.environ.get("GITHUB_WORKSPACE"))
    for line in github.annotate(report, folder):
        typer.echo(line)
    _append_step_summary(github.summary(report, folder))


def _github_error(exc: SbdkError) -> None:
    """The annotation and job summary of a run that stopped with an error (the CLI still prints it)."""
    from sbdk.cli import github

    typer.echo(github.error_annotation(exc.message, exc.hint))
    _append_step_summary(github.error_summary(exc.message, exc.hint))


def _append_step_summary(markdown: str) -> None:
    import os

    from sbdk.cli.render import warn

    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        # The file is the step's: GitHub shows what the step appended to it once the step ends.
        with open(path, "a", encoding="utf-8") as summary:
            summary.write(markdown + "\n")
    except OSError as exc:  # the summary never changes the run's outcome
        warn(f"Cannot write the job summary to {path}: {exc.strerror or exc}.")


def _print_failures(report) -> None:
    from sbdk.cli.render import err_console

    for node in report.dbt.failures if report.dbt else ():
        first = (node.message or "").strip().splitlines()[0] if node.message else ""
        err_console.print(f"error: {node.resource_type} {node.name} {node.status}: {first}", soft_wrap=True)
    if report.dbt and report.dbt.error:
        err_console.print(f"error: {report.dbt.error}", soft_wrap=True)
