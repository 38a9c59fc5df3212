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
