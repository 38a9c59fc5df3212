"""Result values of a run, shared by the CLI, the watcher and the server (rendering is theirs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TableLoad:
    table: str
    rows: int
    seconds: float  # generation and extraction of this table
    source: Path | None = None  # the pipeline file that made it

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class LoadReport:
    tables: tuple[TableLoad, ...]
    mode: str  # "replace" or "incremental"
    generate_seconds: float
    load_seconds: float
    swap_seconds: float
    destination: str = "DuckDB"
    days: tuple[date, date] | None = None  # the first and last day this load made (UTC)
    kept: tuple[str, ...] = ()  # tables left as they were: their data is what their pipelines would make

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def seconds(self) -> float:
        return self.generate_seconds + self.load_seconds + self.swap_seconds


@dataclass(frozen=True)
class NodeResult:
    unique_id: str
    name: str
    resource_type: str  # model, test, seed, snapshot
    status: str  # success, error, pass, fail, warn, skipped
    seconds: float
    message: str | None = None
    failures: int | None = None
    compiled_path: Path | None = None
    # The node's own file, relative to the dbt project (dbt's original_file_path): a model's or a
    # singular test's .sql, the YAML that declares a generic test.
    source_path: str | None = None
    relation: str | None = None  # the database relation a model or seed built, as dbt names it
    materialized: str | None = None  # table, view, incremental, ephemeral, seed, snapshot...
    # A failed data test: the relation dbt stored its failing rows in (store_failures), and the first
    # of those rows as (column names, rows).
    failures_relation: str | None = None
    failing_rows: tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]] | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("error", "fail")

    @property
    def built_table(self) -> bool:
        """A table this build wrote (worth counting; a view would be computed again to count it)."""
        kinds = ("table", "incremental", "seed", "snapshot")
        return self.status == "success" and self.relation is not None and self.materialized in kinds


@dataclass(frozen=True)
class DbtCounts:
    """How a dbt invocation's nodes ended, counted once for every place that shows or stores it."""

    models_passed: int
    models_failed: int
    models_skipped: int
    tests_passed: int
    tests_failed: int
    tests_warned: int
    tests_skipped: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class DbtReport:
    command: str
    success: bool
    nodes: tuple[NodeResult, ...]
    seconds: float
    parse_seconds: float = 0.0  # from invoke() to the first node (import, parse, compile setup)
    error: str | None = None  # dbt could not run at all (parse error, connection...)
    store_kind: str = "duckdb"  # the Store it built in ("duckdb", "postgres"): how to query what it wrote

    def count(self, resource_type: str, *statuses: str) -> int:
        return sum(1 for n in self.nodes if n.resource_type == resource_type and (not statuses or n.status in statuses))

    @property
    def failures(self) -> tuple[NodeResult, ...]:
        return tuple(n for n in self.nodes if n.failed)

    def counts(self) -> DbtCounts:
        return DbtCounts(
            models_passed=self.count("model", "success"),
            models_failed=self.count("model", "error"),
            models_skipped=self.count("model", "skipped"),
            tests_passed=self.count("test", "pass"),
            tests_failed=self.count("test", "fail", "error"),
            tests_warned=self.count("test", "warn"),
            tests_skipped=self.count("test", "skipped"),
        )

    def failure_summary(self, limit: int = 5) -> str | None:
        """The failed nodes as one line of text (None when the invocation succeeded)."""
        if self.success:
            return None
        failed = self.failures
        if not failed:
            return self.error or "dbt reported a failure"
        shown = "; ".join(f"{n.resource_type} {n.name} {n.status}: {n.message or ''}".strip() for n in failed[:limit])
        more = f" (and {len(failed) - limit} more)" if len(failed) > limit else ""
        return f"dbt: {len(failed)} failed: {shown}{more}"


class RunStatus(str, Enum):
    """How a run ended, as the history records it."""

    RUNNING = "running"  # started, not finished (yet: or killed, when its process is gone)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # it ran and something failed: a pipeline, dbt, a model or a test
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    REFUSED = "refused"  # never started: another run held the project
    KILLED = "killed"  # its process died without finishing (SIGKILL, power loss)

    def __str__(self) -> str:
        return self.value


@dataclass
class RunReport:
    run_id: str
    trigger: str
    load: LoadReport | None = None
    dbt: DbtReport | None = None
    row_counts: dict[str, int] = field(default_factory=dict)  # rows per raw table, when this run loaded
    model_rows: dict[str, int] = field(default_factory=dict)  # rows per table dbt built in this run
    seconds: float = 0.0
    error: str | None = None
    outcome: RunStatus | None = None  # set when the run stopped early (interrupted, refused)
    dbt_skipped: str | None = None  # why dbt did not run at all: nothing changed since its last build
    start_seconds: float | None = None  # starting the engine before any stage (Spark's JVM and catalog)

    @property
    def success(self) -> bool:
        return self.error is None and (self.dbt is None or self.dbt.success)

    @property
    def status(self) -> RunStatus:
        if self.outcome is not None:
            return self.outcome
        return RunStatus.SUCCEEDED if self.success else RunStatus.FAILED

    def stage_seconds(self) -> dict[str, float]:
        """Seconds per stage that ran, in order; the stages do not overlap (dbt_parse is dbt's
        import and parse up to its first node, dbt_build the rest)."""
        stages: dict[str, float] = {}
        if self.start_seconds is not None:
            stages["spark_start"] = round(self.start_seconds, 3)
        if self.load is not None:
            stages["generate"] = round(self.load.generate_seconds, 3)
            stages["load"] = round(self.load.load_seconds + self.load.swap_seconds, 3)
        if self.dbt is not None:
            parse = min(self.dbt.parse_seconds, self.dbt.seconds)
            stages["dbt_parse"] = round(parse, 3)
            stages["dbt_build"] = round(self.dbt.seconds - parse, 3)
        return stages
