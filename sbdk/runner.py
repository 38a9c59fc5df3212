"""One run of the project: pipelines, then dbt, under the project run lock.

The CLI, the watcher and the webhook server all call `run()` and render the same RunReport.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from sbdk import warehouse
from sbdk.config import DataVolume, Settings
from sbdk.lock import run_lock
from sbdk.reporting import NULL_REPORTER, Reporter, RunReport


@dataclass(frozen=True)
class RunPlan:
    """What a run does. The defaults are a full `sbdk dev`."""

    pipelines: bool = True
    dbt: bool = True
    tables: frozenset[str] | None = None  # only these pipelines (table or file names); None = all
    select: tuple[str, ...] = ()  # dbt selection; () = everything
    incremental: bool = False
    volume: DataVolume | None = None
    seed: int | None = None
    fail_fast: bool = False
    verbose: bool = False
    trigger: str = "sbdk dev"
    extra: dict = field(default_factory=dict)


def run(
    settings: Settings, plan: RunPlan, reporter: Reporter = NULL_REPORTER, *, wait: bool = False
) -> RunReport:
    """Run `plan` on the project. Raises SbdkError when the run cannot proceed; a dbt model or test
    that fails does not raise: it is in the report (`report.success` is False)."""
    from sbdk.pipelines.load import load
    from sbdk.transform import run_dbt

    report = RunReport(run_id=uuid.uuid4().hex[:12], trigger=plan.trigger)
    started = time.perf_counter()
    with run_lock(settings.paths.lock_file, plan.trigger, wait=wait, reporter=reporter):
        db = settings.paths.duckdb_path
        # Fail fast on a database held by another program, before generating anything.
        warehouse.ensure_writable(db)
        if plan.pipelines:
            report.load = load(
                settings,
                only=set(plan.tables) if plan.tables is not None else None,
                incremental=plan.incremental,
                volume=plan.volume,
                seed=plan.seed,
                reporter=reporter,
            )
        if plan.dbt:
            reporter.stage("dbt", "build" + (f" --select {' '.join(plan.select)}" if plan.select else ""))
            report.dbt = run_dbt(
                settings,
                "build",
                select=plan.select,
                fail_fast=plan.fail_fast,
                verbose=plan.verbose,
                reporter=reporter,
            )
        report.row_counts = warehouse.row_counts(db)
    report.seconds = time.perf_counter() - started
    return report
