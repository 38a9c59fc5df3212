"""`sbdk start`: run once, then watch the project and rebuild what each saved change affects."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sbdk.cli.options import ConfigFileOpt, VerboseOpt, load

if TYPE_CHECKING:
    from rich.console import Console

    from sbdk.cli.progress import RichReporter
    from sbdk.errors import SbdkError
    from sbdk.run.results import RunReport
    from sbdk.settings import Settings
    from sbdk.watch import Rebuild

MAX_DEBOUNCE_MS = 60_000


def start(
    ctx: typer.Context,
    no_initial_run: Annotated[
        bool, typer.Option("--no-initial-run", help="Start watching at once, without running everything first.")
    ] = False,
    pipelines_only: Annotated[
        bool, typer.Option("--pipelines-only", help="Only reload raw tables when pipelines change; never run dbt.")
    ] = False,
    dbt_only: Annotated[
        bool, typer.Option("--dbt-only", help="Only rebuild dbt models; never reload the raw tables.")
    ] = False,
    debounce: Annotated[
        int,
        typer.Option(
            "--debounce",
            metavar="MS",
            help="Wait this long after the last change before rebuilding, so a burst of saves is one rebuild.",
        ),
    ] = 250,
    ui: Annotated[
        bool, typer.Option("--ui", help="Also serve the page of `sbdk ui`, which follows each rebuild live.")
    ] = False,
    ui_port: Annotated[
        int, typer.Option("--ui-port", min=0, max=65535, help="Port of the page with --ui (0: any free port).")
    ] = 8800,
    no_open: Annotated[bool, typer.Option("--no-open", help="With --ui: do not open the page in a browser.")] = False,
    config_file: ConfigFileOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Watch the project and rebuild what each saved change affects.

    Runs the pipeline once, then watches pipelines/, the dbt project, sbdk_config.json and .env: a
    changed model rebuilds that model and everything downstream, a changed pipeline reloads its
    table and rebuilds what reads it. Ctrl-C stops.

    With --ui, the page of `sbdk ui` is served from the same process (on 127.0.0.1) and shows each
    rebuild as it happens.

    Examples: [bold]sbdk start[/], [bold]sbdk start --ui[/], [bold]sbdk start --dbt-only --no-initial-run[/]
    """
    from sbdk.cli.options import state
    from sbdk.cli.progress import RichReporter
    from sbdk.cli.render import console
    from sbdk.run.reporters import NULL_REPORTER
    from sbdk.watch import Scope, Watcher

    settings = load(ctx, config_file, verbose)
    st = state(ctx)
    _check_options(pipelines_only, dbt_only, debounce)
    if not st.quiet:
        console.print(f"[bold]{settings.project}[/] [dim]{settings.paths.root}[/]")
    reporter = None if st.quiet else RichReporter(console, verbose=st.verbose)
    watcher = Watcher(
        settings,
        scope=Scope(pipelines=not dbt_only, dbt=not pipelines_only),
        debounce=debounce / 1000,
        reporter=reporter or NULL_REPORTER,
        listener=_Listener(console, reporter, verbose=st.verbose),
        verbose=st.verbose,
        log_format=st.log_format,
    )
    page = _page(settings, ui_port, no_open=no_open, verbose=st.verbose) if ui else None
    with _stopped_by_signals(watcher.stop):
        try:
            watcher.serve(initial_run=not no_initial_run)
        except KeyboardInterrupt:
            pass  # how a watcher is stopped, not an error: exit 0
        finally:
            if page is not None:
                page.stop()
            if reporter is not None:
                reporter.close()
    if not st.quiet:
        console.print("[bold]Stopped watching.[/]")


def _page(settings: Settings, port: int, *, no_open: bool, verbose: bool) -> Any:
    """The page of `sbdk ui`, served from a thread of this process while the watcher runs."""
    from sbdk.cli.render import console
    from sbdk.server.serving import bind
    from sbdk.ui.serving import Background, open_later

    page = Background(settings, bind("127.0.0.1", port), host="127.0.0.1", verbose=verbose)
    page.start()
    console.print(f"[bold]sbdk ui[/] on [link={page.url}]{page.url}[/link]")
    if not no_open:
        open_later(page.url)
    return page


def _check_options(pipelines_only: bool, dbt_only: bool, debounce: int) -> None:
    """Options that exclude each other or are out of range, as UsageErrors (exit code 2)."""
    from sbdk.errors import UsageError

    if pipelines_only and dbt_only:
        raise UsageError("--pipelines-only and --dbt-only exclude each other.", hint="Pass one of them, or neither.")
    if not 0 <= debounce <= MAX_DEBOUNCE_MS:
        raise UsageError(
            f"--debounce {debounce} is outside 0..{MAX_DEBOUNCE_MS} milliseconds.",
            hint="Give a few hundred milliseconds, e.g. --debounce 300.",
        )


@contextmanager
def _stopped_by_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C and SIGTERM (a supervisor, `kill`) raise _Stopped while the block runs, so the
    rebuild in progress unwinds and releases its locks; the previous handlers come back after.

    They also call `stop`: a handler can run inside a finalizer that the garbage collector calls (py4j's,
    for Spark's objects), where Python ignores the exception it raises, and the watcher must stop anyway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set signal handlers
        return
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def on_signal(signum: int, frame: Any) -> None:
        stop()
        raise _Stopped

    for sig in signals:
        signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Stopped(KeyboardInterrupt):
    """Raised by Ctrl-C or SIGTERM while watching; everything that handles Ctrl-C handles it.

    A subclass on purpose: when a plain KeyboardInterrupt interrupts code run by exec() on a
    string (dataclasses and dlt create functions that way, often during a run), CPython 3.11
    marks it "unhandled" (run_eval_code_obj in pythonrun.c) and the process then exits through
    SIGINT even after the exception was caught. It only does so for exactly KeyboardInterrupt.
    """


class _Listener:
    """The WatchListener of `sbdk start`: what changed and what is rebuilt, then a one-line result.

    Without a reporter (--quiet) only problems are printed: failed rebuilds and invalid settings.
    """

    def __init__(self, console: Console, reporter: RichReporter | None, *, verbose: bool) -> None:
        self.console = console
        self.reporter = reporter
        self.quiet = reporter is None
        self.verbose = verbose
        self.announced = False

    def _say(self, text: str, *, leading_blank: bool = False) -> None:
        if not self.quiet:
            from sbdk.cli.render import hanging

            if leading_blank:
                self.console.print()
            # A long line wraps under its text, clear of the time stamp.
            self.console.print(hanging(f"[dim]{time.strftime('%H:%M:%S')}[/] ", text))

    def _done(self) -> None:
        if self.reporter is not None:
            self.reporter.close()

    def watching(self, watched: tuple[str, ...]) -> None:
        if not self.announced and not self.quiet:
            self.console.print(f"\nWatching {', '.join(watched)} [dim](Ctrl-C to stop)[/]")
        self.announced = True

    def settings_reloaded(self, settings: Settings) -> None:
        from sbdk.cli.render import warn

        self._say(f"Settings reloaded from {settings.paths.config_file.name}.")
        for message in settings.warnings:
            warn(message)

    def settings_invalid(self, error: SbdkError) -> None:
        from sbdk.cli.render import err_console
        from sbdk.cli.render import error as show_error

        show_error(error, verbose=self.verbose)
        err_console.print("[yellow]Keeping the previous settings until the config is fixed.[/]")

    def rebuild_skipped(self, rebuild: Rebuild) -> None:
        from rich.markup import escape

        self._say(f"[dim]{escape(rebuild.summary)}[/]")

    def rebuild_started(self, rebuild: Rebuild) -> None:
        from rich.markup import escape

        self._say(f"[bold]{escape(rebuild.summary)}[/]", leading_blank=True)

    def rebuild_finished(self, rebuild: Rebuild, report: RunReport) -> None:
        from rich.markup import escape

        from sbdk.cli.progress import render_summary

        self._done()
        if self.quiet:
            if not report.success:
                self._failures(report, prefix=f"{escape(rebuild.summary)}: ")
            return
        if rebuild.initial:
            render_summary(self.console, report)
            return
        self._failures(report)
        self._say(_result_line(report))

    def rebuild_failed(self, rebuild: Rebuild, error: Exception) -> None:
        from sbdk.cli.render import error as show_error
        from sbdk.errors import SbdkError

        self._done()
        # An SbdkError is the user's to fix (a broken pipeline, a locked file); anything else is a
        # bug in sbdk, whose traceback helps the report.
        show_error(error, verbose=self.verbose or not isinstance(error, SbdkError))
        self._say("[red]Rebuild failed[/]; still watching.")

    def _failures(self, report: RunReport, prefix: str = "") -> None:
        from sbdk.cli.progress import render_failures
        from sbdk.cli.render import err_console

        render_failures(err_console if self.quiet else self.console, report, prefix=prefix)


def _result_line(report: RunReport) -> str:
    from sbdk.cli.progress import counts_markup

    parts = []
    if report.load is not None:
        parts.append(", ".join(f"{t.table} {t.rows:,} rows" for t in report.load.tables))
    if report.dbt is not None:
        parts.append(counts_markup(report.dbt.counts()))
    status = "[bold green]OK[/]" if report.success else "[bold red]FAILED[/]"
    return f"{status} {'; '.join(parts)} [dim]in {report.seconds:.2f}s[/]"
