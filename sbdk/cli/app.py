"""The `sbdk` command: global options, command registration and the single error handler.

Import only typer, rich and the standard library at module level: `sbdk --help` must stay instant.
Every command module imports what it needs inside the function that needs it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from sbdk.cli import (
    backup,
    clean,
    dev,
    doctor,
    history,
    init,
    mcp,
    notify,
    query,
    sources,
    start,
    ui,
    version,
    webhooks,
)
from sbdk.cli.options import ConfigFileOpt, LogFormat, LogFormatOpt, QuietOpt, VerboseOpt, state

# Global options, accepted before the command (`sbdk -q dev`) and after it (`sbdk dev -q`), as users
# type them: flags, then options that take a value.
_GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}
_GLOBAL_VALUED = {"-c", "--config-file", "--log-format"}


def hoist_global_options(args: list[str]) -> list[str]:
    """`args` with the global options that follow the command name moved in front of it."""
    command = _command_index(args)
    if command is None:
        return args
    hoisted: list[str] = []
    rest: list[str] = []
    tail = args[command + 1 :]
    index = 0
    while index < len(tail):
        token = tail[index]
        if token == "--":  # everything after it is an argument, whatever it looks like
            rest += tail[index:]
            break
        missing_value = token in _GLOBAL_VALUED and index + 1 == len(tail)  # left for Click to report
        if not missing_value and (token in _GLOBAL_FLAGS or token.split("=", 1)[0] in _GLOBAL_VALUED):
            width = 2 if token in _GLOBAL_VALUED else 1
            hoisted += tail[index : index + width]
            index += width
            continue
        rest.append(token)
        index += 1
    return [*args[:command], *hoisted, args[command], *rest]


def _command_index(args: list[str]) -> int | None:
    """Where the command name is: the first word that is neither an option nor an option's value."""
    for index, token in enumerate(args):
        if not token.startswith("-") and (index == 0 or args[index - 1] not in _GLOBAL_VALUED):
            return index
    return None


class SbdkGroup(TyperGroup):
    """Turns every SbdkError (and Ctrl-C) into a message and an exit code, in one place."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args)))

    def invoke(self, ctx: Any) -> Any:
        from sbdk.errors import ExitCode, SbdkError

        try:
            return super().invoke(ctx)
        except SbdkError as exc:
            from sbdk.cli.render import error

            error(exc, verbose=state(ctx).verbose)
            raise typer.Exit(int(exc.exit_code)) from None
        except BrokenPipeError:
            # Output piped into `head` and the like: stop quietly, as Unix tools do.
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(0) from None
        except KeyboardInterrupt:
            from sbdk.cli.render import err_console

            err_console.print("[yellow]Interrupted.[/] Nothing was half-written; run again when ready.")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


def _flag_type_hidden(option: TyperOption, ctx: Any) -> str | None:
    """Typer 0.29 prints a type column for every option; for a flag (`--wait <bool>`) it is noise."""
    return None if option.is_flag else _typer_display_type(option, ctx)


_typer_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type_hidden  # type: ignore[method-assign,assignment]


app = typer.Typer(
    name="sbdk",
    cls=SbdkGroup,
    help="sbdk: a local-first data pipeline sandbox (Faker -> dlt -> DuckDB -> dbt).",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"sbdk {version('sbdk')}")
        raise typer.Exit(0)


@app.callback()
def _global(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print sbdk's version and exit (details: sbdk version).",
        ),
    ] = False,
    verbose: VerboseOpt = False,
    config_file: ConfigFileOpt = None,
    quiet: QuietOpt = False,
    log_format: LogFormatOpt = LogFormat.text,
) -> None:
    """sbdk: a local-first data pipeline sandbox (Faker -> dlt -> DuckDB -> dbt).

    Start with [bold]sbdk init demo && cd demo && sbdk dev[/].
    """
    st = state(ctx)
    st.verbose = verbose
    st.config_file = config_file
    st.quiet = quiet
    st.log_format = log_format.value


app.command("init")(init.init)
app.command("dev")(dev.dev)
app.command("start")(start.start)
app.command("webhooks")(webhooks.webhooks)
app.command("version")(version.version)
app.command("history")(history.history)
app.command("query")(query.query)
app.command("doctor")(doctor.doctor)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.command("clean")(clean.clean)
app.command("notify")(notify.notify)
app.command("sources")(sources.sources)
app.command("ui")(ui.ui)
app.command("mcp")(mcp.mcp)


def main() -> None:
    from sbdk.cli.streams import guard_standard_streams, lost_output
    from sbdk.run.process import exit_now, tune_gc

    guard_standard_streams()
    tune_gc()
    code: Any = 0
    try:
        app(prog_name="sbdk")
    except SystemExit as exc:
        code = exc.code
    lost = lost_output()
    if lost:
        from sbdk.cli.render import warn

        warn(lost)
    exit_now(code)
