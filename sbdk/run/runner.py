"""One run of the project: pipelines, then dbt, under the project run lock.

The CLI, the watcher and the webhook server all call `run()` and render the same RunReport; every
run, failed ones included, is appended to the project's run history.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sbdk.errors import SbdkError
from sbdk.run import history
from sbdk.run.lock import run_lock
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.run.results import RunReport
from sbdk.settings import DataVolume, Settings


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

    def options(self) -> dict:
        return {
            "pipelines": self.pipelines,
            "dbt": self.dbt,
            "tables": sorted(self.tables) if self.tables is not None else None,
            "select": list(self.select),
            "incremental": self.incremental,
            "volume": self.volume.as_dict() if self.volume else None,
            "seed": self.seed,
            "fail_fast": self.fail_fast,
        }


def run(
    settings: Settings,
    plan: RunPlan,
    reporter: Reporter = NULL_REPORTER,
    *,
    wait: bool = False,
    run_id: str | None = None,
) -> RunReport:
    """Run `plan` on the project. Raises SbdkError when the run cannot proceed; a dbt model or test
    that fails does not raise: it is in the report (`report.success` is False)."""
    report = RunReport(run_id=run_id or uuid.uuid4().hex[:12], trigger=plan.trigger)
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    try:
        with run_lock(settings.paths.lock_file, plan.trigger, wait=wait, reporter=reporter):
            _run_locked(settings, plan, reporter, report)
    except SbdkError as exc:
        report.error = str(exc)
        raise
    except KeyboardInterrupt:
        report.error = "interrupted"
        raise
    except Exception as exc:  # an sbdk bug: recorded as a failed run, then shown with its traceback
        report.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        report.seconds = time.perf_counter() - started
        try:
            history.record(settings.paths.state_dir, report, started_at=started_at, options=plan.options())
        except OSError as exc:  # a read-only project must not hide the run's own outcome
            reporter.warn(f"Could not record the run in the history: {exc}")
    return report


def _run_locked(settings: Settings, plan: RunPlan, reporter: Reporter, report: RunReport) -> None:
    from sbdk.dbt.invoke import run_dbt
    from sbdk.pipelines.load import load
    from sbdk.stores import store_for

    store = store_for(settings)
    # Fail fast on a database held by another program (or a server that is down, or a missing
    # adapter), before generating anything.
    store.check(load=plan.pipelines)
    if plan.pipelines and not plan.incremental and plan.tables is None:
        from sbdk.ops.backup import auto_backup

        # Before a full reload, when `backups.keep` asks for it (a no-op by default).
        auto_backup(settings, reporter)
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
    report.row_counts = store.row_counts()
