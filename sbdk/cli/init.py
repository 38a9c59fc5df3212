"""`sbdk init NAME`: scaffold a new project."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


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
        int | None, typer.Option(help="Events to generate per run (default 50,000).", show_default=False)
    ] = None,
    orders: Annotated[
        int | None, typer.Option(help="Orders to generate per run (default 20,000).", show_default=False)
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for reproducible synthetic data.")] = 42,
) -> None:
    """Create a new sbdk project: config, dbt project, editable pipelines.

    Example: [bold]sbdk init demo && cd demo && sbdk dev[/]
    """
    from sbdk.cli.render import console
    from sbdk.errors import UsageError
    from sbdk.ops.scaffold import InitOptions, init_project, validate_name
    from sbdk.settings import DEFAULTS

    if name is not None and not name.strip():
        raise UsageError("The project name is empty.", hint="Run `sbdk init my_project`.")
    interactive = not no_input and sys.stdin.isatty()
    volume = DEFAULTS["data_volume"]
    if name is None:
        if not interactive:
            raise UsageError("No project name given.", hint="Run `sbdk init my_project`.")
        name = typer.prompt("Project name", default="my_project")
        validate_name(name)
    if interactive:
        users = users if users is not None else typer.prompt("Users", default=volume["users"], type=int)
        events = events if events is not None else typer.prompt("Events", default=volume["events"], type=int)
        orders = orders if orders is not None else typer.prompt("Orders", default=volume["orders"], type=int)
    report = init_project(
        InitOptions(
            folder=Path(name),
            users=volume["users"] if users is None else users,
            events=volume["events"] if events is None else events,
            orders=volume["orders"] if orders is None else orders,
            seed=seed,
            force=force,
        )
    )
    console.print(f"[green]Created project[/] [bold]{report.project}[/] in {report.root}")
    _register(report)
    console.print("\nNext steps:")
    console.print(f"  cd {name}")
    console.print("  sbdk dev            # generate data, load it with dlt, build and test with dbt")
    console.print("  sbdk start          # rebuild on every save")


def _register(report) -> None:
    """With tracking enabled (e.g. SBDK_TRACKING__ENABLED=true), register the project and keep its UUID."""
    import json

    from sbdk.cli.render import console
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
    config_file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    console.print(f"Registered with {settings.tracking.endpoint} as {uuid}")
