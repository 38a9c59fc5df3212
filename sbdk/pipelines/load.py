"""Run the project's pipelines through dlt into the run's store, atomically (see sbdk.stores)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

from sbdk.disk import full_disk_error
from sbdk.errors import NothingToLoadError, PipelineError, SbdkError, causes, interrupted
from sbdk.pipelines.context import PipelineContext, release_world
from sbdk.pipelines.discovery import PipelineSpec, cursor_error, discover, where
from sbdk.pipelines.fingerprint import fingerprints, restored_marker
from sbdk.pipelines.prefetch import Prefetched
from sbdk.run.context import RunContext
from sbdk.run.plan import RunPlan
from sbdk.run.process import environment
from sbdk.run.results import LoadReport, TableLoad
from sbdk.run.retry import transient_for
from sbdk.settings import Settings

if TYPE_CHECKING:
    from sbdk.generators.world import Days
    from sbdk.stores.base import Session, Store

PIPELINE_NAME = "sbdk"
_UNCHANGED = "Your previous tables are unchanged."


class _GeneratorFailed(Exception):
    """Raised through dlt from inside a pipeline's generator, so the file and line survive."""

    def __init__(self, spec: PipelineSpec, error: SbdkError) -> None:
        super().__init__(str(error))
        self.spec = spec
        self.error = error


def _dlt_environment(settings: Settings) -> dict[str, str]:
    """dlt's configuration for a load (dlt reads it from the environment, set only around the load)."""
    return {
        # Never phone home (there may be no network at all).
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        # dlt otherwise turns the first Ctrl-C during normalize/load into a flag it may clear: sbdk
        # handles SIGINT itself (exit 130, previous tables kept).
        "RUNTIME__INTERCEPT_SIGNALS": "false",
        # Everything dlt keeps stays in the project (never ~/.dlt).
        "DLT_DATA_DIR": str(settings.paths.dlt_dir),
        # What dlt logs reaches the run's log (runner: third_party_logs), never the terminal as such.
        "RUNTIME__LOG_LEVEL": os.environ.get("RUNTIME__LOG_LEVEL", "WARNING"),
        # dlt otherwise keeps a loaded package's files, a full copy of the data, until the next run.
        "LOAD__DELETE_COMPLETED_JOBS": "true",
        # How long dlt's extract sleeps when no pipeline's batch is ready nor being made (a few times
        # a load, each table's start and end): its default, 10 ms, cost 1x loads about 60 ms.
        "EXTRACT__FUTURES_POLL_INTERVAL": "0.001",
    }


def _as_arrow(item: Any, spec: PipelineSpec) -> Any:
    import pyarrow as pa

    if isinstance(item, (pa.Table, pa.RecordBatch)):
        return item
    if isinstance(item, list) and all(isinstance(row, dict) for row in item):
        return pa.Table.from_pylist(item)
    raise PipelineError(
        f"Pipeline {spec.path} yielded a {type(item).__name__}; expected a pyarrow Table or "
        "RecordBatch, or a list of dicts.",
        hint="Yield pyarrow data from generate(ctx) (see pipelines/users.py).",
    )


@dataclass
class _Tally:
    """Rows and seconds spent generating per table, and each table's Arrow schema (from its first batch)."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    schemas: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _rows_of(
    spec: PipelineSpec, ctx: PipelineContext, items: Prefetched, run: RunContext, tally: _Tally
) -> Iterator[Any]:
    """The pipeline's batches, timed and counted, with its errors tagged with file and line."""
    total = None if ctx.incremental else getattr(ctx.volume, spec.table.removeprefix("raw_"), None)
    tally.rows[spec.table], tally.seconds[spec.table] = 0, 0.0
    converting = 0.0  # lists of dicts are made into Arrow here
    try:
        for item in items:
            started = time.perf_counter()
            batch = _as_arrow(item, spec)
            if spec.table not in tally.schemas:
                tally.schemas[spec.table] = batch.schema
                _check_cursor(spec, batch.schema)
            tally.rows[spec.table] += batch.num_rows
            converting += time.perf_counter() - started
            tally.seconds[spec.table] = items.seconds + converting
            run.reporter.table_progress(spec.table, tally.rows[spec.table], total)
            run.faults.reached("generate", spec.table)
            yield batch
    except SbdkError as exc:  # sbdk's own (a bad synth.yml is a ConfigError): as it is, with its exit code
        raise _GeneratorFailed(spec, exc) from exc
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as exc:  # sys.exit() or a BaseException subclass in a pipeline is its failure too
        error = PipelineError(
            f"Pipeline {spec.path} failed ({where(spec.path, exc)}): {type(exc).__name__}: {exc}",
            hint=f"Fix {spec.path.name}; the raw tables already loaded were left as they were.",
        )
        raise _GeneratorFailed(spec, error) from exc
    tally.seconds[spec.table] = items.seconds + converting
    run.reporter.table_done(spec.table, tally.rows[spec.table], tally.seconds[spec.table])


def _check_cursor(spec: PipelineSpec, schema: Any) -> None:
    """A CURSOR that names no timestamp column fails the first load, not a later --incremental one.

    Checked on the first batch, before anything is loaded: the columns as dlt will name them in the table.
    """
    from dlt.common.normalizers.naming.snake_case import NamingConvention

    naming = NamingConvention()
    columns = {naming.normalize_identifier(f.name): str(f.type) for f in schema}
    error = cursor_error(spec, columns, "the columns it yields are")
    if error is not None:
        raise PipelineError(error.message, hint=f"{error.hint} {_UNCHANGED}")


def _unwrap(exc: BaseException, store: Store) -> SbdkError | None:
    """The sbdk error hidden inside dlt's PipelineStepFailed chain, if any."""
    for current in causes(exc):
        if isinstance(current, _GeneratorFailed):
            return current.error
        if isinstance(current, SbdkError):
            return current
        translated = store.translate(current)
        if translated:
            return translated
    return None


def _micros(value: Any) -> int:
    """µs since the epoch of a timestamp read back from the database (aware, or naive UTC)."""
    if value is None:
        return 0
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def history_days(settings: Settings) -> Days:
    """The days a full load makes: HISTORY_DAYS before as_of, less the days kept for --incremental."""
    from sbdk.generators import HISTORY_DAYS
    from sbdk.generators.world import Days

    first = settings.as_of - timedelta(days=HISTORY_DAYS)
    stop = settings.as_of - timedelta(days=settings.data_profile.incremental_days)
    return Days(first, first, max(stop, first))


def _next_day(
    session: Session, specs: list[PipelineSpec], live: dict[str, tuple[str, int]], as_of: date
) -> tuple[date, date]:
    """(first day of the loaded history, the day to append), or a clear error when there is none."""
    recorded = session.loaded_days()
    for spec in specs:
        if spec.table not in live:
            raise PipelineError(
                f"--incremental appends to {spec.table}, which has not been loaded yet.",
                hint="Run `sbdk dev` once without --incremental.",
            )
        if recorded.get(spec.table) is None:
            raise PipelineError(
                f"--incremental appends the day after the last loaded one, but {spec.table} has no record "
                "of its days (it was loaded by an earlier version of sbdk).",
                hint="Run `sbdk dev` once without --incremental.",
            )
    spans = {spec.table: recorded[spec.table] for spec in specs}
    lasts = {span[1] for span in spans.values() if span is not None}
    if len(lasts) > 1:
        ends = ", ".join(f"{table} on {span[1]}" for table, span in sorted(spans.items()) if span is not None)
        raise PipelineError(
            f"--incremental appends the same day to every table, but they end on different days ({ends}).",
            hint="Run `sbdk dev` without --incremental to reload them together.",
        )
    first = min(span[0] for span in spans.values() if span is not None)
    last = lasts.pop()
    day = last + timedelta(days=1)
    if day >= as_of:
        raise NothingToLoadError(
            f"No day is left to append: the raw tables hold every day up to as_of ({as_of}), from {first} to {last}.",
            hint="Set a later as_of in sbdk_config.json to append more days with --incremental (one per run), "
            "or run `sbdk dev` to regenerate the history.",
        )
    return first, day


def _increment_context(
    session: Session, specs: list[PipelineSpec], live: dict[str, tuple[str, int]], base: PipelineContext
) -> PipelineContext:
    """The next day after the loaded ones: where it starts, the ids it continues, the users it knows."""
    from sbdk.generators.world import RECENT_DAYS, Days

    if "raw_users" not in live:
        raise PipelineError(
            "--incremental appends activity of the loaded users, but raw_users has not been loaded yet.",
            hint="Run `sbdk dev` once without --incremental.",
        )
    for spec in specs:
        error = cursor_error(spec, session.columns(spec.table), f"the loaded {spec.table} has the columns")
        if error is not None:
            raise error
    first, day = _next_day(session, specs, live, base.as_of)
    # An id column continues after its largest value in any loaded table: with every reference
    # intact, that is the table that owns it (event_id: raw_events, not the orders pointing at events).
    next_ids: dict[str, int] = {}
    for table in live:
        for column, kind in session.columns(table).items():
            if column.endswith("_id") and kind in ("bigint", "integer"):
                largest = int(session.max_value(table, column) or 0)
                next_ids[column] = max(next_ids.get(column, 1), largest + 1)
    recent = (
        session.sessions_per_day(day - timedelta(days=RECENT_DAYS), day - timedelta(days=1))
        if "raw_events" in live
        else {}
    )
    return replace(
        base,
        days=Days(first, day, day + timedelta(days=1)),
        incremental=True,
        next_ids=next_ids,
        known_signups=_live_signups(session),
        recent_sessions=lambda: recent,
        new_users="raw_users" in {spec.table for spec in specs},
    )


def _live_signups(session: Session) -> Callable[[], Any]:
    """Signup times of the users loaded now (user i+1 at index i, -1 for a missing id), read once."""
    import numpy as np

    user_ids, signup_times = session.user_signups()
    ids = np.asarray(user_ids, dtype=np.int64)
    signups = np.full(int(ids.max()) if len(ids) else 0, -1, dtype=np.int64)
    signups[ids - 1] = [_micros(t) for t in signup_times]
    return lambda: signups


def _create_empty_tables(
    session: Session, load_schema: str, specs: list[PipelineSpec], schemas: dict[str, Any]
) -> None:
    """dlt creates no table for a resource without rows: make it from the schema of its empty batch."""
    existing = session.tables_in(load_schema)
    for spec in specs:
        if spec.table in existing:
            continue
        schema = schemas.get(spec.table)
        if schema is None:
            raise PipelineError(
                f"Pipeline {spec.path} yielded nothing, so sbdk cannot tell the columns of {spec.table}.",
                hint="When there are no rows, yield an empty pyarrow table that has the schema.",
            )
        session.create_empty(load_schema, spec.table, schema)


def load(run: RunContext) -> LoadReport:
    """Generate and load the project's pipelines (all, or the plan's `tables`) into the run's store.

    Replace mode swaps all loaded tables in at once; incremental mode appends a new, later slice to
    the tables whose pipeline declares a CURSOR. Either way, a failure leaves every table as it was.
    """
    specs = _pipelines(run.settings, run.plan)
    prints = fingerprints(run.settings, run.plan, discover(run.settings.paths.pipelines_dir, None))
    context, load_schema, specs, kept = _prepare(run, specs, prints)
    if not specs:
        for table in kept:
            run.reporter.table_kept(table)
        return LoadReport(
            tables=(), mode="kept", generate_seconds=0.0, load_seconds=0.0, swap_seconds=0.0,
            destination=_destination(run), kept=tuple(kept),
        )  # fmt: skip
    for table in kept:
        run.reporter.table_kept(table)
    tally = _Tally()
    try:
        with environment(_dlt_environment(run.settings)):
            generated, loaded = _extract_and_load(run, specs, context, load_schema, tally)
        started = time.perf_counter()
        counts = _swap(run, specs, load_schema, tally, context.days, prints)
        if run.plan.full_reload and not kept:
            restored_marker(run.settings).unlink(missing_ok=True)  # every table is this load's now
    except BaseException:
        # A failed or interrupted load leaves no scratch files: on a full disk they are what keeps
        # the next run from fitting (the next run's drop() would discard them anyway).
        shutil.rmtree(run.settings.paths.dlt_dir / PIPELINE_NAME, ignore_errors=True)
        raise
    return LoadReport(
        tables=tuple(
            TableLoad(table=s.table, rows=counts[s.table], seconds=tally.seconds.get(s.table, 0.0), source=s.path)
            for s in specs
        ),
        mode="incremental" if run.plan.incremental else "replace",
        days=(context.days.start, context.days.last),
        generate_seconds=generated,
        load_seconds=loaded,
        swap_seconds=time.perf_counter() - started,
        destination=_destination(run),
        kept=tuple(kept),
    )


def _destination(run: RunContext) -> str:
    return {"postgres": "PostgreSQL", "spark": "Spark"}.get(run.store.kind, "DuckDB")


def _pipelines(settings: Settings, plan: RunPlan) -> list[PipelineSpec]:
    """The pipelines this run loads, or a PipelineError saying why there are none."""
    specs = discover(settings.paths.pipelines_dir, set(plan.tables) if plan.tables is not None else None)
    if plan.incremental:
        specs = [s for s in specs if s.incremental]
        if not specs:
            raise PipelineError(
                "No pipeline supports --incremental (none sets CURSOR).",
                hint="Set CURSOR = '<timestamp column>' in a pipeline, or run without --incremental.",
            )
    if not specs:
        raise PipelineError(
            f"No pipelines to run in {settings.paths.pipelines_dir}.",
            hint="Add a pipeline file (see the README), or `sbdk init --force .` for the defaults.",
        )
    return specs


def _prepare(
    run: RunContext, specs: list[PipelineSpec], prints: dict[str, str]
) -> tuple[PipelineContext, str, list[PipelineSpec], list[str]]:
    """What every pipeline's generate(ctx) receives, the new schema dlt loads into, the pipelines to
    run and the tables kept as they are (the plan keeps unchanged tables and their fingerprints match).

    Reads the store first, so a locked or unwritable database wastes no generation work.
    """
    settings, plan = run.settings, run.plan
    context = PipelineContext(
        seed=settings.seed if plan.seed is None else plan.seed,
        as_of=settings.as_of,
        volume=plan.volume or settings.data_volume,
        days=history_days(settings),
        profile=settings.data_profile,
    )
    with run.store.session() as session:
        session.prepare()
        live = session.live_tables()
        trusted = plan.keep_unchanged and not plan.incremental and not restored_marker(run.settings).exists()
        kept = _unchanged(session, specs, live, prints) if trusted else []
        specs = [spec for spec in specs if spec.table not in kept]
        if not specs:
            return context, "", specs, kept
        if plan.incremental:
            context = _increment_context(session, specs, live, context)
        elif "raw_users" not in {s.table for s in specs} and "raw_users" in live:
            # Only some tables reload (the watcher): their rows must reference the users loaded
            # now, whatever seed or volume made them.
            context = replace(context, known_signups=_live_signups(session), new_users=False)
        return context, session.new_load_schema(), specs, kept


def _unchanged(
    session: Session, specs: list[PipelineSpec], live: dict[str, tuple[str, int]], prints: dict[str, str]
) -> list[str]:
    """The tables whose live data is what their pipelines would make now: the fingerprint recorded with
    their swap equals today's, and they still hold the rows recorded then (a change by hand shows)."""
    recorded = session.fingerprints()
    kept = []
    for spec in specs:
        table = spec.table
        if table in live and recorded.get(table) is not None and recorded.get(table) == prints.get(table):
            if session.count(table) == live[table][1]:
                kept.append(table)
    return kept


def _extract_and_load(
    run: RunContext,
    specs: list[PipelineSpec],
    context: PipelineContext,
    load_schema: str,
    tally: _Tally,
) -> tuple[float, float]:
    """dlt extracts every pipeline's batches and loads them into `load_schema`: (generate, load) seconds."""
    import dlt

    run.reporter.stage("generate", ", ".join(s.table for s in specs))
    # Each pipeline makes its batches in a thread of its own (Prefetched), not in dlt's parallelized
    # resources: with those, a Ctrl-C (or the webhook server going away) waited for every worker's
    # generator to yield, and a pipeline that blocks held the run for as long as it blocked.
    makers = {spec.table: Prefetched(partial(spec.generate, context), spec.table) for spec in specs}
    resources = [
        dlt.resource(
            _rows_of(spec, context, makers[spec.table], run, tally),
            name=spec.table,
            table_name=spec.table,
            write_disposition="replace",
            **_hints(spec),
        )
        for spec in specs
    ]
    try:
        pipeline = dlt.pipeline(
            pipeline_name=PIPELINE_NAME,
            destination=run.store.dlt_destination(),
            dataset_name=load_schema,
            pipelines_dir=str(run.settings.paths.dlt_dir),
        )
        # Every run loads into a new, empty schema: local state and pending load packages from an
        # earlier (maybe killed) run must not leak into it.
        pipeline = pipeline.drop()
        started = time.perf_counter()
        try:
            # All at once: dlt asks each resource for its first batch in turn, and a pipeline that
            # waits for its first batch would otherwise keep the next ones from starting.
            for maker in makers.values():
                maker.start()
            pipeline.extract(resources)
        finally:
            for maker in makers.values():
                maker.stop()
            _release_memory(context)
        generated = time.perf_counter()
        run.reporter.stage("load", f"{tally.total:,} rows into {run.store.describe()}")
        pipeline.normalize()
        run.faults.reached("load")
        _load_retried(run, pipeline)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        # dlt wraps a Ctrl-C inside a generator into its own step error: give it back as what it is.
        if interrupted(exc):
            raise KeyboardInterrupt from exc
        error = _unwrap(exc, run.store) or full_disk_error(
            run.settings.paths.root, exc, doing="loading the data", hint=_UNCHANGED
        )
        if error is not None:
            raise error from exc
        raise PipelineError(
            f"dlt could not load the data into {run.store.describe()}: {exc}",
            hint="Run again with --verbose for dlt's full error; your previous tables are unchanged.",
        ) from exc
    return generated - started, time.perf_counter() - generated


def _release_memory(context: PipelineContext) -> None:
    """Once the batches are written, give back what made them before dlt's load and dbt's build: the
    World (about 150 MB at 100x the default volume) and what pyarrow's allocator keeps for reuse."""
    import pyarrow as pa

    release_world(context)
    pa.default_memory_pool().release_unused()


def _load_retried(run: RunContext, pipeline: Any) -> None:
    """dlt's load into the store, loaded again while the store refuses it for a moment (a server
    restarting, a file a reader holds). A failed load leaves its package pending, and a new `load()`
    resumes it (dlt's own way); a package that is no longer pending is never loaded again."""
    is_transient = transient_for(run.store)
    run.retry.call(
        lambda: pipeline.load(raise_on_failed_jobs=True),
        lambda exc: is_transient(exc) and pipeline.has_pending_data,
        what=f"Loading into {run.store.describe()}",
    )


def _hints(spec: PipelineSpec) -> dict[str, Any]:
    """The pipeline's declared hints for dlt (none unless PRIMARY_KEY is set)."""
    return {"primary_key": spec.primary_key} if spec.primary_key else {}


def _swap(
    run: RunContext, specs: list[PipelineSpec], load_schema: str, tally: _Tally, days: Days, prints: dict[str, str]
) -> dict[str, int]:
    """Make the new load live in one transaction (or append it): rows per table."""
    tables = [s.table for s in specs]
    try:
        with run.store.session() as session:
            _create_empty_tables(session, load_schema, specs, tally.schemas)
            if run.plan.incremental:
                counts = session.append_in(load_schema, tables, day=days.start)
            else:
                counts = session.swap_in(load_schema, tables, days=(days.first, days.last), fingerprints=prints)
            views = {s.table: s.relation for s in specs if s.relation}
            if views:
                session.expose(views)
            return counts
    except (SbdkError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise (
            run.store.translate(exc)
            or full_disk_error(run.settings.paths.root, exc, doing="swapping the new tables in", hint=_UNCHANGED)
            or PipelineError(
                f"Could not swap the new tables into {run.store.describe()}: {exc}",
                hint="The swap is one transaction: your previous tables are unchanged. "
                "Run again with --verbose for details.",
            )
        ) from exc
