"""`sbdk init NAME`: scaffold a new project."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sbdk.ops.scaffold import InitReport


def init(
    name: Annotated[
        str | None,
        typer.Argument(help="Folder to create; its name becomes the project (and dbt) name.", show_default=False),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Use an existing, non-empty folder: add sbdk's missing files, keep every existing one."
        ),
    ] = False,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="Never prompt; use defaults (automatic without a terminal).")
    ] = False,
    users: Annotated[
        int | None, typer.Option(help="Users to generate per run (default 10,000).", show_default=False)
    ] = None,
    events: Annotated[
        int | None,
        typer.Option(
            help="Events to generate per run (default 100,000); orders follow from the purchases.", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for reproducible synthetic data.")] = 42,
    from_dbt: Annotated[
        Path | None,
        typer.Option(
            "--from-dbt",
            help="Use this existing dbt project where it is, with synthetic data for the sources it declares.",
            show_default=False,
        ),
    ] = None,
    sources: Annotated[
        str | None,
        typer.Option(
            help="With --from-dbt: only these source tables (source.table, comma-separated).", show_default=False
        ),
    ] = None,
) -> None:
    """Create a new sbdk project: config, dbt project, editable pipelines.

    Example: [bold]sbdk init demo && cd demo && sbdk dev[/]
    """
    from sbdk.errors import UsageError
    from sbdk.ops.scaffold import InitOptions, init_project
    from sbdk.settings import DEFAULTS

    if name is not None and not name.strip():
        raise UsageError("The project name is empty.", hint="Run `sbdk init my_project`.")
    if sources is not None and from_dbt is None:
        raise UsageError(
            "--sources needs --from-dbt.", hint="Run `sbdk init NAME --from-dbt ../analytics --sources shop.orders`."
        )
    interactive = not no_input and sys.stdin.isatty() and from_dbt is None
    volume = DEFAULTS["data_volume"]
    if interactive:
        name = _ask_name(name)
        users = users if users is not None else _ask_rows("Users", volume["users"])
        events = events if events is not None else _ask_rows("Events", volume["events"])
    elif name is None:
        raise UsageError("No project name given.", hint="Run `sbdk init my_project`.")
    report = init_project(
        InitOptions(
            folder=Path(name),
            users=volume["users"] if users is None else users,
            events=volume["events"] if events is None else events,
            seed=seed,
            force=force,
            from_dbt=from_dbt,
        )
    )
    only = [s.strip() for s in sources.split(",") if s.strip()] if sources else None
    _render(report, name, synthesize=(lambda: _synthesize(report, only)) if from_dbt is not None else None)


def _synthesize(report: InitReport, only: list[str] | None) -> None:
    """Infer the dbt project's sources into synth.yml and pipelines/, and say what was made."""
    from sbdk.cli.render import console
    from sbdk.cli.sources import render_synthesis
    from sbdk.errors import SbdkError
    from sbdk.settings import load_settings
    from sbdk.synth.synthesize import synthesize

    settings = load_settings(report.root / "sbdk_config.json")
    try:
        with console.status("Reading the dbt project (dbt compile)..."):
            synthesis = synthesize(settings, only)
    except SbdkError as exc:
        # The sandbox exists: say how to finish it rather than leave a project that cannot run.
        exc.hint = (exc.hint + " " if exc.hint else "") + (
            f"The sandbox {report.root} is created: once the dbt project compiles, run `sbdk sources --refresh` in it."
        )
        raise
    render_synthesis(synthesis, first=True)


def _ask_name(name: str | None) -> str:
    """The project folder, asked on a terminal, and asked again (suggesting a name) while dbt would
    refuse its name; a bad name where nobody can answer is an error (exit 2) in init_project."""
    from sbdk.cli.render import error
    from sbdk.errors import UsageError
    from sbdk.ops.scaffold import project_name, suggest_name

    retry = "Type another name, or press Enter for the one suggested."
    default = "my_project"
    while True:
        if name is None:
            name = typer.prompt("Project name", default=default)
        try:
            project_name(Path(name))
        except UsageError as exc:
            if name in (".", "./"):
                raise  # the current folder's own name: another name would be another folder
            error(UsageError(exc.message, hint=retry), verbose=False)
            default, name = str(Path(name).parent / suggest_name(name)), None
            continue
        return name


def _ask_rows(label: str, default: int) -> int:
    """A row count asked on a terminal, asked again until it is within the allowed range."""
    from sbdk.cli.render import error
    from sbdk.errors import UsageError
    from sbdk.settings.volume import MAX_ROWS, MIN_ROWS, rows_allowed

    while True:
        rows: int = typer.prompt(label, default=default, type=int)
        if rows_allowed(rows):
            return rows
        error(UsageError(f"{rows:,} {label.lower()} is outside {MIN_ROWS}..{MAX_ROWS:,}."), verbose=False)


def _render(report: InitReport, name: str, synthesize: Callable[[], None] | None = None) -> None:
    """What `init` did: a new project and the next steps, or the files it restored in an existing folder."""
    from rich.markup import escape

    from sbdk.cli.render import console
    from sbdk.settings import CONFIG_FILENAME

    here = report.root == Path.cwd().absolute()
    created = CONFIG_FILENAME in report.written
    if not report.existing:
        console.print(f"[green]Created project[/] [bold]{report.project}[/] in {report.root}")
    elif not report.files:
        console.print(f"Nothing to restore{'' if here else f' in {report.root}'}: every file sbdk writes is there.")
    else:
        files = report.written
        listing = ", ".join(files) if len(files) <= 5 else ", ".join(files[:4]) + f" and {len(files) - 4} more"
        count = f"{len(files)} file{'s' if len(files) > 1 else ''}"
        where = "" if here else f" in {report.root}"
        # A folder that was no project yet (no config) gets sbdk's files added rather than restored.
        verb = "Added" if created else "Restored"
        console.print(f"[green]{verb}[/] {escape(listing)} ({count}){where}; kept everything else.")
    if not created:
        return  # an existing project: registered (or not) when it was created
    _register(report)
    if synthesize is not None:
        synthesize()
    console.print("\nNext steps:")
    if not here:
        console.print(f"  cd {name}")
    console.print("  sbdk dev            # generate data, load it with dlt, build and test with dbt")
    console.print("  sbdk start          # rebuild on every save")
    if synthesize is not None:
        console.print("  sbdk sources        # what was inferred for each source column, and why")


def _register(report: InitReport) -> None:
    """With tracking enabled (e.g. SBDK_TRACKING__ENABLED=true), register the project and keep its UUID."""
    import json

    from sbdk.cli.render import console
    from sbdk.ops.scaffold import config_text
    from sbdk.ops.tracking import register_project
    from sbdk.settings import load_settings

    config_file = report.root / "sbdk_config.json"
    settings = load_settings(config_file)
    if not settings.tracking.enabled:
        return
    uuid = register_project(settings, report.project)
    if uuid is None:
        console.print(
            f"[yellow]Tracking is enabled but {settings.tracking.endpoint} did not answer; not registered.[/]"
        )
        return
    data = json.loads(config_file.read_text(encoding="utf-8"))
    data.setdefault("tracking", {})["uuid"] = uuid
    config_file.write_text(config_text(data), encoding="utf-8")
    console.print(f"Registered with {settings.tracking.endpoint} as {uuid}")
