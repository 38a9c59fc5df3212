"""Progress of a run: domain code calls a `Reporter` (a no-op by default); the CLI passes a Rich one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sbdk.run.results import NodeResult


class Reporter:
    """Receives progress from a run. Subclass and override what you want to show."""

    def stage(self, name: str, detail: str = "") -> None:
        """A stage of the run starts: 'generate', 'load', 'dbt'."""

    def table_progress(self, table: str, rows: int, total: int | None) -> None:
        """`rows` of `table` have been generated so far (of `total`, when known)."""

    def table_done(self, table: str, rows: int, seconds: float) -> None:
        """A table finished generating."""

    def table_kept(self, table: str) -> None:
        """A table is left as it is: its data is what its pipeline would make now (its fingerprint)."""

    def dbt_nodes(self, total: int) -> None:
        """dbt has parsed the project and is about to run `total` nodes."""

    def node_started(self, name: str, resource_type: str) -> None:
        """dbt started a model, test, seed or snapshot."""

    def node_finished(self, node: NodeResult) -> None:
        """dbt finished a node."""

    def log(self, message: str) -> None:
        """A line of detail (shown with --verbose)."""

    def warn(self, message: str) -> None:
        """Something the user should know that does not stop the run."""


NULL_REPORTER = Reporter()


class ForwardingReporter(Reporter):
    """Passes every call on to `inner`. A reporter that watches a run (its log file, a trace, the
    stage notifications name) subclasses this and overrides only what it watches, calling super():
    a method added to Reporter later is forwarded without anyone having to remember it."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner

    def stage(self, name: str, detail: str = "") -> None:
        self.inner.stage(name, detail)

    def table_progress(self, table: str, rows: int, total: int | None) -> None:
        self.inner.table_progress(table, rows, total)

    def table_done(self, table: str, rows: int, seconds: float) -> None:
        self.inner.table_done(table, rows, seconds)

    def table_kept(self, table: str) -> None:
        self.inner.table_kept(table)

    def dbt_nodes(self, total: int) -> None:
        self.inner.dbt_nodes(total)

    def node_started(self, name: str, resource_type: str) -> None:
        self.inner.node_started(name, resource_type)

    def node_finished(self, node: NodeResult) -> None:
        self.inner.node_finished(node)

    def log(self, message: str) -> None:
        self.inner.log(message)

    def warn(self, message: str) -> None:
        self.inner.warn(message)
