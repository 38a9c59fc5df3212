"""Rich rendering of runs: live progress through the Reporter interface, and the final summary."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.status import Status
from rich.table import Table

from sbdk.run.reporters import Reporter
from sbdk.run.results import DbtCounts, NodeResult, RunReport

_STATUS_STYLE = {
    "success": ("green", "OK"),
    "pass": ("green", "PASS"),
    "warn": ("yellow", "WARN"),
    "fail": ("red", "FAIL"),
    "error": ("red", "ERROR"),
    "skipped": ("yellow", "SKIP"),
}


class RichReporter(Reporter):
    """Progress bars per table while generating; one line per dbt node as it finishes."""

    def __init__(self, console: Console, *, verbose: bool = False) -> None:
        self.console = console
        self.verbose = verbose
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._status: Status | None = None  # the spinner while dbt parses
        self._total: int | None = None  # dbt nodes this build runs
        self._done = 0

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._status is not None:
            self._status.stop()
            self._status = None

    def stage(self, name: str, detail: str = "") -> None:
        with self._lock:
            self._stop()
            if name == "generate":
                self._progress = Progress(
                    TextColumn("  [bold]{task.description:<14}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=self.console,
                    transient=False,
                )
                self._progress.start()
                self._tasks = {}
            self.console.print(f"[bold cyan]{name}[/] {escape(detail)}")
            if name == "dbt":
                # dbt imports and parses for seconds before its first node: show that something moves.
                self._total, self._done = None, 0
                self._status = self.console.status("[dim]parsing the dbt project...[/]", spinner="dots")
                self._status.start()

    def dbt_nodes(self, total: int) -> None:
        with self._lock:
            if self._status is not None:
                self._status.stop()
                self._status = None
            self._total, self._done = total, 0

    def table_progress(self, table: str, rows: int, total: int | None) -> None:
        with self._lock:
            if self._progress is None:
                return
            if table not in self._tasks:
                self._tasks[table] = self._progress.add_task(table, total=total)
            self._progress.update(self._tasks[table], completed=rows, total=max(total or rows, rows))

    def table_done(self, table: str, rows: int, seconds: float) -> None:
        with self._lock:
            if self._progress is None:
                return
            if table not in self._tasks:
                self._tasks[table] = self._progress.add_task(table, total=rows)
            self._progress.update(self._tasks[table], completed=rows, total=rows)

    def node_started(self, name: str, resource_type: str) -> None:
        if self.verbose:
            self.console.print(f"  [dim]start {resource_type} {escape(name)}[/]")

    def node_finished(self, node: NodeResult) -> None:
        style, label = _STATUS_STYLE.get(node.status, ("white", node.status.upper()))
        with self._lock:
            self._done += 1
            width = len(str(self._total)) if self._total else 0
            counter = f"[dim]{self._done:>{width}}/{self._total}[/] " if self._total else ""
        self.console.print(
            f"  {counter}[{style}]{label:<5}[/] {node.resource_type:<8} {escape(node.name)} [dim]{node.seconds:.2f}s[/]"
        )

    def log(self, message: str) -> None:
        if self.verbose:
            self.console.print(f"  [dim]{escape(message)}[/]")

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def close(self) -> None:
        with self._lock:
            self._stop()


def counts_markup(counts: DbtCounts) -> str:
    """The counts as one line, e.g. 12 models built, 1 failed; 50 tests passed, 2 failed (zeros left out)."""
    models = f"{counts.models_passed} models built"
    if counts.models_failed:
        models += f", [red]{counts.models_failed} failed[/]"
    if counts.models_skipped:
        models += f", [yellow]{counts.models_skipped} skipped[/]"
    failed = f"[red]{counts.tests_failed} failed[/]" if counts.tests_failed else "0 failed"
    tests = f"{counts.tests_passed} tests passed, {failed}"
    if counts.tests_warned:
        tests += f", [yellow]{counts.tests_warned} warned[/]"
    if counts.tests_skipped:
        tests += f", [yellow]{counts.tests_skipped} skipped[/]"
    return f"{models}; {tests}"


def render_summary(console: Console, report: RunReport) -> None:
    stages = Table(title="Summary", title_justify="left", show_edge=False)
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    stages.add_column("detail")
    if report.load is not None:
        load = report.load
        stages.add_row("generate", f"{load.generate_seconds:.2f}", f"{load.rows:,} rows ({load.mode})")
        stages.add_row(
            "load", f"{load.load_seconds + load.swap_seconds:.2f}", f"dlt -> {load.destination}, swapped in atomically"
        )
    if report.dbt is not None:
        stages.add_row("dbt", f"{report.dbt.seconds:.2f}", counts_markup(report.dbt.counts()))
    stages.add_row("[bold]total[/]", f"[bold]{report.seconds:.2f}[/]", "")
    console.print()
    console.print(stages)

    if report.load is not None or report.row_counts:
        tables = Table(show_edge=False)
        tables.add_column("raw table")
        tables.add_column("rows", justify="right")
        tables.add_column("seconds", justify="right")
        tables.add_column("rows/s", justify="right")
        timed = {t.table: t for t in report.load.tables} if report.load else {}
        for name in sorted(set(report.row_counts) | set(timed)):
            table = timed.get(name)
            rows = report.row_counts.get(name, table.rows if table else 0)
            if table is not None:
                rate = f"{table.rows_per_second:,.0f}" if table.seconds > 0 else "-"
                tables.add_row(name, f"{rows:,}", f"{table.seconds:.2f}", rate)
            else:
                tables.add_row(name, f"{rows:,}", "-", "-")
        console.print()
        console.print(tables)

    if report.model_rows:
        built = Table(show_edge=False)
        built.add_column("table built")
        built.add_column("rows", justify="right")
        for name, rows in sorted(report.model_rows.items()):
            built.add_row(name, f"{rows:,}")
        console.print()
        console.print(built)

    render_failures(console, report, spaced=True)
    console.print()
    if report.success:
        console.print("[bold green]Done.[/]")
    else:
        console.print("[bold red]Finished with failures.[/]")


def render_failures(console: Console, report: RunReport, *, prefix: str = "", spaced: bool = False) -> None:
    """Each failed dbt node with dbt's error text and its compiled SQL path, then a run-level error."""
    if report.dbt is None:
        return
    for node in report.dbt.failures:
        if spaced:
            console.print()
        console.print(f"{prefix}[bold red]{node.resource_type} {escape(node.name)} {node.status}[/]")
        if node.message:
            console.print(escape(node.message.strip()), soft_wrap=True)
        if node.compiled_path:
            console.print(f"[dim]compiled SQL: {node.compiled_path}[/]")
    if report.dbt.error:
        console.print(f"{prefix}[bold red]dbt error:[/] {escape(report.dbt.error)}", soft_wrap=True)
