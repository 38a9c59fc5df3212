"""`sbdk notify`: where run notifications go, and `--test` to send each target a test message."""

from __future__ import annotations

from typing import Annotated

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load, state


def notify(
    ctx: typer.Context,
    test: Annotated[
        bool, typer.Option("--test", help="Send a test message to every target and say which failed.")
    ] = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """List where run notifications go, or send each target a test message.

    Targets are the "notify" entries of sbdk_config.json (Apprise URLs, `${NAME}` filled in from the
    environment or .env), each shown by its scheme and host only, never with its secrets. With
    --test every target gets a message; the exit code is 1 when any failed.

    Examples: [bold]sbdk notify[/], [bold]sbdk notify --test[/]
    """
    from rich.markup import escape

    from sbdk.cli.render import console, hanging
    from sbdk.errors import ConfigError, ExitCode
    from sbdk.notify import send_test, target_name
    from sbdk.settings import NOTIFY_EVENTS

    settings = load(ctx, config_file, verbose)
    quiet = state(ctx).quiet
    if not settings.notify:
        message = f"No notification targets in {settings.paths.config_file.name}."
        fix = 'Add a "notify" list of {"url": <Apprise URL>, "events": [...]} (see "Notifications" in the README).'
        if test:
            raise ConfigError(message + " Nothing to test.", hint=fix)
        if not quiet:
            console.print(f"{escape(message)} {escape(fix)}")
        return
    if not test:
        if not quiet:
            for target in settings.notify:
                events = ", ".join(event for event in NOTIFY_EVENTS if event in target.events)
                console.print(hanging(f"[bold]{escape(target_name(target.url))}[/]  ", escape(events)))
        return
    deliveries = send_test(settings)
    for delivery in deliveries:
        if delivery.ok and not quiet:
            console.print(f"[green]ok[/]      {escape(delivery.target)}")
        elif not delivery.ok:
            console.print(hanging(f"[red]failed[/]  {escape(delivery.target)}: ", escape(delivery.detail)))
    failed = sum(not d.ok for d in deliveries)
    if failed:
        raise typer.Exit(int(ExitCode.FAILURE))
