"""The `sbdk` command: global options, command registration and the single error handler.

Import only typer, rich and the standard library at module level: `sbdk --help` must stay instant.
Every command module imports what it needs inside the function that needs it.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from sbdk.cli import backup, dev, doctor, history, init, query, start, version, webhooks
from sbdk.cli.options import ConfigFileOpt, LogFormat, LogFormatOpt, QuietOpt, VerboseOpt, state


class SbdkGroup(TyperGroup):
    """Turns every SbdkError (and Ctrl-C) into a message and an exit code, in one place."""

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


@app.callback()
def _global(
    ctx: typer.Context,
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
