"""One run of the project: pipelines, then dbt, under the project run lock.

The CLI, the watcher and the webhook server all call `run()` and render the same RunReport. Every
run, failed ones included, writes its log file (`logs/<time>_<run id>.log`) and is appended to the
project's run history: that is the runner's job, whoever triggered the run.
"""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from typing import Any

from sbdk.disk import full_disk_error
from sbdk.errors import DbtError, DiskFullError, LockError, SbdkError
from sbdk.run import history
from sbdk.run.context import RunContext
from sbdk.run.events import EventsReporter
from sbdk.run.lock import IN_PROCESS, run_lock
from sbdk.run.observers import RunObserver, guarded, observers_for
from sbdk.run.plan import RunPlan, Trigger
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.run.results import DbtReport, RunReport, RunStatus
from sbdk.run.runlog import RunLogReporter, log_path, third_party_logs
from sbdk.settings import Settings
from sbdk.testing import Faults, faults_from_env

__all__ = ["RunPlan", "Trigger", "new_run_id", "run"]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def run(
    settings: Settings,
    plan: RunPlan,
    reporter: Reporter = NULL_REPORTER,
    *,
    wait: bool = False,
    run_id: str | None = None,
    log_format: str | None = "text",
    log_context: dict[str, Any] | None = None,
    pause_gc: bool = False,
    faults: Faults | None = None,
    observers: list[RunObserver] | None = None,
) -> RunReport:
    """Run `plan` on the project. Raises SbdkError when the run cannot proceed; a dbt model or test
    that fails does not raise: it is in the report (`report.success` is False).

    `log_format` ("text" or "json") is the format of the run's log file, None for none;
    `log_context` adds fields to its first line. `pause_gc` is for processes that exit after this
    run. `faults` is the test seam (sbdk.testing); by default the environment decides. `observers`
    watch the run (notifications, traces); by default the settings decide (sbdk.run.observers).
    """
    report = RunReport(run_id=run_id or new_run_id(), trigger=str(plan.trigger))
    watching = tuple(observers_for(settings) if observers is None else observers)
    for observer in watching:
        reporter = observer.wrap(reporter)
    log = _run_log(settings, plan, reporter, report.run_id, log_format, log_context)
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    events: EventsReporter | None = None
    with log as logged, third_party_logs(logged):
        try:
            with ExitStack() as held:
                try:
                    held.enter_context(
                        run_lock(settings.paths.lock_file, str(plan.trigger), wait=wait, reporter=logged)
                    )
                except LockError:
                    report.outcome = RunStatus.REFUSED
                    raise
                _record_start(settings, plan, report.run_id, started_at, logged)
                # Reads made in this process (the page of `sbdk start --ui`) wait for the run.
                held.enter_context(IN_PROCESS.write())
                events = EventsReporter(logged, settings.paths.state_dir, report.run_id, str(plan.trigger))
                for observer in watching:
                    guarded(
                        events, "observer", partial(observer.started, report.run_id, report.trigger, log_context or {})
                    )
                context = RunContext.of(
                    settings,
                    plan,
                    reporter=events,
                    run_id=report.run_id,
                    faults=faults_from_env() if faults is None else faults,
                    pause_gc=pause_gc,
                    observers=watching,
                )
                held.enter_context(context.store.hold(str(plan.trigger)))
                _run_locked(context, report)
                _raise_if_dbt_filled_the_disk(settings, report)
        except KeyboardInterrupt:
            report.error, report.outcome = "interrupted", RunStatus.INTERRUPTED
            raise
        except BaseException as exc:  # SbdkError, or an sbdk bug shown with its traceback
            # "No space left on device" from any step (DuckDB, dlt, dbt) is one clear error.
            full = None if isinstance(exc, DiskFullError) else full_disk_error(settings.paths.root, exc)
            if full is not None:
                report.error = str(full)
                raise full from exc
            report.error = str(exc) if isinstance(exc, SbdkError) else f"{type(exc).__name__}: {exc}"
            raise
        finally:
            report.seconds = time.perf_counter() - started
            _record(settings, plan, report, started_at, logged)
            if events is not None:
                events.finish(str(report.status), report.seconds, report.error)
            for observer in watching:
                guarded(logged, "observer", partial(observer.finished, report, logged))
            if isinstance(logged, RunLogReporter):
                logged.finish(report)
    return report


def _raise_if_dbt_filled_the_disk(settings: Settings, report: RunReport) -> None:
    """dbt reports a full disk as a failed node or run, it does not raise one: make it the run's error."""
    dbt = report.dbt
    failed = dbt and "\n".join(filter(None, [dbt.error, *(n.message for n in dbt.failures)]))
    full = full_disk_error(settings.paths.root, failed or None, doing="running dbt")
    if full is not None:
        raise full


def _run_log(
    settings: Settings,
    plan: RunPlan,
    reporter: Reporter,
    run_id: str,
    log_format: str | None,
    log_context: dict[str, Any] | None,
) -> AbstractContextManager[Reporter]:
    """The reporter that also writes the run's log file (a context manager that logs the end)."""
    if log_format is None:
        return nullcontext(reporter)
    context = {"trigger": str(plan.trigger), "options": plan.options(), **(log_context or {})}
    return RunLogReporter(reporter, log_path(settings, run_id), log_format, run_id, context=context)


def _record_start(settings: Settings, plan: RunPlan, run_id: str, started_at: datetime, reporter: Reporter) -> None:
    try:
        history.started(
            settings.paths.state_dir, run_id, str(plan.trigger), started_at=started_at, options=plan.options()
        )
    except OSError as exc:  # a read-only project must not stop the run; its end is recorded if it can be
        reporter.warn(f"Could not record the run in the history: {exc}")


def _record(settings: Settings, plan: RunPlan, report: RunReport, started_at: datetime, reporter: Reporter) -> None:
    try:
        history.record(settings.paths.state_dir, report, started_at=started_at, options=plan.options())
    except OSError as exc:  # a read-only project must not hide the run's own outcome
        reporter.warn(f"Could not record the run in the history: {exc}")


def _spark_running() -> bool:
    """Whether this process runs Spark already (the watcher's and the webhook server's later runs)."""
    from sbdk.stores import spark

    return spark.running()


def _run_locked(context: RunContext, report: RunReport) -> None:
    plan, store = context.plan, context.store
    # Fail fast on a database held by another program (or a server that is down, or a missing
    # adapter), and on a dbt project that cannot run, before generating anything.
    if store.kind == "spark" and not _spark_running():
        # Seconds of a JVM starting and the catalog opening: say so, and count them.
        context.reporter.stage("spark", f"starting {context.settings.active_target.master}, opening the catalog")
        started = time.perf_counter()
        store.check(load=plan.pipelines)
        report.start_seconds = time.perf_counter() - started
    else:
        store.check(load=plan.pipelines)
    if plan.dbt:
        from sbdk.dbt.profiles import check_project

        check_project(context.settings)
    if plan.dbt and not plan.pipelines and not _watch_rebuild(plan):
        _check_raw_tables(context)
    if plan.full_reload:
        from sbdk.stores.backups import auto_backup

        # Before a full reload, when `backups.keep` asks for it (a no-op by default).
        auto_backup(context.settings, context.reporter)
    if plan.pipelines:
        from sbdk.pipelines.load import load

        report.load = load(context)
        report.row_counts = store.row_counts()
        for observer in context.observers:
            guarded(context.reporter, "observer", partial(observer.loaded, context, report.load))
    if plan.dbt:
        _build(context, report)


def _build(context: RunContext, report: RunReport) -> None:
    """dbt's part of the run: everything, the plan's selection, or (`sbdk dev`) only what changed."""
    from sbdk.dbt import state as dbt_state
    from sbdk.dbt.invoke import run_dbt, with_failing_rows
    from sbdk.errors import DbtError
    from sbdk.run.process import environment

    plan = context.plan
    # A build of the whole project (or of what changed in it) leaves the database as the project
    # describes: its manifest is kept for the next `sbdk dev` to compare with.
    whole = not plan.select
    changes_only = whole and plan.keep_unchanged and not plan.full_build and not plan.deps
    decision: dbt_state.Decision | None = None
    prints: dict[str, str | None] = {}
    if whole:
        prints, existing = context.retry.call(
            context.store.build_facts, context.store.is_transient, what=f"Reading {context.store.describe()}"
        )
        if changes_only:
            decision = dbt_state.decide(context.settings, prints, existing)
            if decision.skip:
                report.dbt_skipped = decision.reason
                context.reporter.stage("dbt", f"up to date: {decision.reason}")
                return
    else:
        # A selection (the watcher, `--select`) may leave models unlike the kept manifest: the next
        # `sbdk dev` builds everything once.
        dbt_state.forget(context.settings)
    if plan.deps:
        context.reporter.stage("dbt", "deps")
        deps = run_dbt(context, "deps")
        if not deps.success:
            raise DbtError(
                f"`dbt deps` failed: {deps.error or 'see dbt/logs/dbt.log'}",
                hint="Check packages.yml; packages must be installable from here.",
            )
    build, variables = context, {}
    if decision is not None and decision.select:
        build = replace(context, plan=replace(plan, select=(decision.select,)))
        variables = {"DBT_STATE": str(decision.state_dir)}
    selected = build.plan.select
    why = f" ({decision.reason})" if decision is not None else ""
    context.reporter.stage("dbt", "build" + (f" --select {' '.join(selected)}" if selected else "") + why)
    if whole:
        dbt_state.building(context.settings)
    try:
        with environment(variables):
            dbt = run_dbt(build, "build")
    except DbtError as exc:
        if not variables or "matched no models" not in exc.message:
            raise
        # Files changed, but no definition dbt compares did (a comment in a doc block): up to date.
        dbt_state.keep(context.settings, prints)
        report.dbt_skipped = "no model, test or seed changed since the last successful build"
        return
    # A data test that failed shows its first failing rows (dbt has released the file by now).
    report.dbt = with_failing_rows(context, dbt)
    # A watch rebuild opens the database for dbt alone (each open took 0.02 s of a 0.45 s rebuild): it
    # checks for the raw tables only after a failed build, and counts no rows (its result line shows none).
    if _watch_rebuild(plan) and not plan.pipelines and not dbt.success:
        _check_raw_tables(context)
    if not _watch_rebuild(plan):
        report.model_rows = _built_rows(context, report.dbt)
    if whole and dbt.success:
        dbt_state.keep(context.settings, prints)
    elif whole:
        dbt_state.forget(context.settings)


def _watch_rebuild(plan: RunPlan) -> bool:
    """A rebuild of what a saved change affects (`sbdk start`), not a whole build."""
    return plan.trigger == Trigger.WATCH and bool(plan.select)


def _check_raw_tables(context: RunContext) -> None:
    """dbt alone loads nothing: the report's row counts stay empty, these only check that the raw tables
    the dbt project's sources name exist (reading them waits out a file another program holds for a
    moment, as a load's open does). A project that reads none of them (its own seeds, a project the
    user brought) is not held back by their absence."""
    from sbdk.dbt.sources import declared_sources
    from sbdk.stores.base import RAW_SCHEMA
    from sbdk.watch.layout import Layout

    wanted = {s.identifier for s in declared_sources(Layout.of(context.settings)) if s.schema == RAW_SCHEMA}
    if not wanted:
        return
    store = context.store
    live = context.retry.call(store.row_counts, store.is_transient, what=f"Reading {store.describe()}")
    missing = sorted(wanted - set(live))
    if not live:
        raise DbtError(
            f"The raw tables do not exist yet in {store.describe()}.",
            hint="Run `sbdk dev` (or `sbdk dev --pipelines-only`) first to generate and load them.",
        )
    if missing:
        raise DbtError(
            f"The dbt project's sources read {', '.join(f'{RAW_SCHEMA}.{t}' for t in missing)}, which "
            f"{store.describe()} does not hold (no pipeline loaded it).",
            hint="Add a pipeline under pipelines/ that loads it and run `sbdk dev`, or fix the source's name.",
        )


def _built_rows(context: RunContext, dbt: DbtReport) -> dict[str, int]:
    """Rows of every table this build wrote (a summary shows what the marts hold, not only the raw data)."""
    built = {node.name: node.relation for node in dbt.nodes if node.built_table and node.relation}
    try:
        return context.store.count_rows(built)
    except Exception as exc:
        context.reporter.warn(f"Could not count the rows of the tables built: {exc}")
        return {}
