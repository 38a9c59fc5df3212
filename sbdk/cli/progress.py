"""Rich rendering of runs: live progress through the Reporter interface, and the final summary."""

from __future__ import annotations

import re
import shlex
import threading
from decimal import Decimal

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.status import Status
from rich.table import Table

from sbdk.run.reporters import Reporter
from sbdk.run.results import DbtCounts, LoadReport, NodeResult, RunReport

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

    def table_kept(self, table: str) -> None:
        with self._lock:
            self.console.print(f"[dim]{escape(table)} unchanged, kept[/]")

    def node_started(self, name: str, resource_type: str) -> None:
        if self.verbose:
            self.console.print(f"  [dim]start {resource_type} {escape(name)}[/]")

    def node_finished(self, node: NodeResult) -> None:
        style, label = _STATUS_STYLE.get(node.status, ("white", node.status.upper()))
        with self._lock:
            self._done += 1
            width = len(str(self._total)) if self._total else 0
            counter = f"[dim]{self._done:>{width}}/{self._total}[/] " if self._total else ""
        from sbdk.cli.render import hanging

        # A long test name wraps under itself, clear of the status column.
        lead = f"  {counter}[{style}]{label:<5}[/] {node.resource_type:<8} "
        self.console.print(hanging(lead, f"{escape(node.name)} [dim]{node.seconds:.2f}s[/]"))

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


def describe_days(load: LoadReport) -> str:
    """What a load made, in days: "2025-01-01 to 2025-12-24", or "appended 2025-12-25"."""
    if load.days is None:
        return load.mode
    first, last = load.days
    if load.mode == "incremental":
        return f"appended {last}" if first == last else f"appended {first} to {last}"
    return f"{first} to {last}"


def render_summary(console: Console, report: RunReport) -> None:
    stages = Table(title="Summary", title_justify="left", show_edge=False)
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    stages.add_column("detail")
    # The same figures as the history and the run log's run_finished line (RunReport.stage_seconds).
    details: dict[str, str] = {}
    if report.start_seconds is not None:
        details["spark_start"] = "Spark's JVM starts, the catalog opens"
    if report.load is not None:
        load = report.load
        if load.tables:
            details["generate"] = f"{load.rows:,} rows ({describe_days(load)})"
            details["load"] = (
                "dlt -> Parquet in the lake, raw tables switched to it"
                if load.destination == "Spark"
                else f"dlt -> {load.destination}, swapped in atomically"
            )
        if load.kept:
            kept = f"{', '.join(load.kept)} unchanged, kept"
            details["generate"] = f"{details['generate']}; {kept}" if load.tables else kept
    if report.dbt is not None:
        details["dbt_parse"] = "dbt starts, parses and compiles"
        details["dbt_build"] = counts_markup(report.dbt.counts())
    for stage, seconds in report.stage_seconds().items():
        stages.add_row(stage, f"{seconds:.2f}", details.get(stage, ""))
    if report.dbt_skipped:
        stages.add_row("dbt", "-", f"up to date: {report.dbt_skipped}")
    stages.add_row("[bold]total[/]", f"[bold]{round(report.seconds, 3):.2f}[/]", "")
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
    from sbdk.cli.render import hanging, print_whole

    if report.dbt is None:
        return
    for node in report.dbt.failures:
        if spaced:
            console.print()
        console.print(f"{prefix}[bold red]{node.resource_type} {escape(node.name)} {node.status}[/]")
        if node.message:
            console.print(escape(node.message.strip()))
        if node.failing_rows is not None and node.failures_relation:
            _render_failing_rows(console, node, report.dbt.store_kind)
        if node.compiled_path:
            print_whole(console, "compiled SQL: ", str(node.compiled_path), style="dim")
    if report.dbt.error:
        console.print(hanging(f"{prefix}[bold red]dbt error:[/] ", escape(report.dbt.error)))


def _render_failing_rows(console: Console, node: NodeResult, store_kind: str) -> None:
    """A failed data test's first failing rows, and the query that shows them all."""
    columns, rows = node.failing_rows or ((), ())
    if columns and rows:
        first = f"first {len(rows)} " if (node.failures or 0) > len(rows) else ""
        console.print(f"[dim]{first}failing rows:[/]")
        table = Table(show_edge=False)
        for index, column in enumerate(columns):
            values = [row[index] for row in rows if row[index] is not None]
            numeric = values and all(isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) for v in values)
            table.add_column(escape(column), justify="right" if numeric else "left")
        for row in rows:
            table.add_row(*(escape("null" if value is None else str(value)) for value in row))
        console.print(table)
    from sbdk.cli.render import print_whole

    sql = f"select * from {_plain_relation(node.failures_relation or '')}"
    if store_kind == "duckdb":
        # Double quotes read best and suit every shell, unless the SQL itself needs them.
        command = f'sbdk query "{sql}"' if '"' not in sql else f"sbdk query {shlex.quote(sql)}"
        print_whole(console, "all of them: ", command)
    else:
        print_whole(console, "all of them, in the database's own client: ", sql)


def _plain_relation(relation: str) -> str:
    """dbt's `"dev"."main_dbt_test__audit"."t"` as dev.main_dbt_test__audit.t when no part needs quotes."""
    parts = re.findall(r'"((?:[^"]|"")*)"', relation)
    if ".".join(f'"{p}"' for p in parts) != relation or not all(re.fullmatch(r"[a-z_][a-z0-9_]*", p) for p in parts):
        return relation
    return ".".join(parts)
