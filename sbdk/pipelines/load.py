"""Run the project's pipelines through dlt into the DuckDB file, atomically (see sbdk.stores.duckdb)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from sbdk.errors import PipelineError, SbdkError, causes
from sbdk.pipelines.context import PipelineContext
from sbdk.pipelines.discovery import PipelineSpec, discover, where
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.run.results import LoadReport, TableLoad
from sbdk.settings import DataVolume, Settings
from sbdk.testing import pause_point

PIPELINE_NAME = "sbdk"
# An incremental run appends at most one day of new activity, and never past the present.
INCREMENT_SPAN_MICROS = 86_400_000_000
INCREMENT_SHARE = 0.1  # default size of a slice: a tenth of the configured volume


class _GeneratorFailed(Exception):
    """Raised through dlt from inside a pipeline's generator, so the file and line survive."""

    def __init__(self, spec: PipelineSpec, error: PipelineError) -> None:
        super().__init__(str(error))
        self.spec = spec
        self.error = error


def _configure_dlt(settings: Settings) -> None:
    # dlt reads its configuration from the environment. Keep everything inside the project and
    # never phone home (there may be no network at all).
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    # dlt otherwise turns the first Ctrl-C during normalize/load into a flag it may clear: sbdk
    # handles SIGINT itself (exit 130, previous tables kept).
    os.environ["RUNTIME__INTERCEPT_SIGNALS"] = "false"
    os.environ.setdefault("DLT_DATA_DIR", str(settings.paths.dlt_dir))
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")


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


def _rows_of(
    spec: PipelineSpec, ctx: PipelineContext, reporter: Reporter, stats: dict[str, list], schemas: dict[str, Any]
):
    """The pipeline's batches, timed and counted, with its errors tagged with file and line."""
    total = getattr(ctx.volume, spec.table.removeprefix("raw_"), None)
    spent, rows = 0.0, 0
    stats[spec.table] = [0, 0.0]
    started = time.perf_counter()
    try:
        iterator = iter(spec.generate(ctx) or ())
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                break
            item = _as_arrow(item, spec)
            schemas.setdefault(spec.table, item.schema)
            rows += item.num_rows
            spent += time.perf_counter() - started
            stats[spec.table] = [rows, spent]
            reporter.table_progress(spec.table, rows, total)
            pause_point("generate")
            yield item
            started = time.perf_counter()
    except PipelineError as exc:
        raise _GeneratorFailed(spec, exc) from exc
    except Exception as exc:
        error = PipelineError(
            f"Pipeline {spec.path} failed ({where(spec.path, exc)}): {type(exc).__name__}: {exc}",
            hint=f"Fix {spec.path.name}; the raw tables already loaded were left as they were.",
        )
        raise _GeneratorFailed(spec, error) from exc
    spent += time.perf_counter() - started
    stats[spec.table] = [rows, spent]
    reporter.table_done(spec.table, rows, spent)


def _unwrap(exc: BaseException, store: Any) -> SbdkError | None:
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


def _increment_context(
    session: Any, spec: PipelineSpec, live: dict[str, tuple[str, int]], base: PipelineContext, volume: DataVolume
) -> PipelineContext:
    """Where the next slice of an incremental table starts: after its newest row and its ids."""
    from sbdk.generators.events import Window

    if spec.table not in live or "raw_users" not in live:
        raise PipelineError(
            f"--incremental appends to {spec.table}, which has not been loaded yet.",
            hint="Run `sbdk dev --pipelines-only` once without --incremental.",
        )
    columns = session.columns(spec.table)
    if "timestamp" not in columns.get(spec.cursor, ""):
        raise PipelineError(
            f"{spec.path.name} sets CURSOR = {spec.cursor!r}, but {spec.table} has no such timestamp column.",
            hint="Point CURSOR at a timestamp column of the table.",
        )
    newest = session.max_value(spec.table, spec.cursor)
    if newest is None:
        raise PipelineError(
            f"--incremental continues after the newest row of {spec.table}, but it is empty.",
            hint="Run `sbdk dev --pipelines-only` without --incremental first.",
        )
    now = int(datetime.now(timezone.utc).timestamp() * 1_000_000)
    start = _micros(newest) + 1
    end = min(start + INCREMENT_SPAN_MICROS, now)
    if end - start < 1_000_000:
        raise PipelineError(
            f"{spec.table} already holds data up to now; there is no later time to append.",
            hint="Wait a while, or run `sbdk dev` without --incremental to regenerate everything.",
        )
    next_ids = {
        column: int(session.max_value(spec.table, column) or 0) + 1
        for column, kind in columns.items()
        if column.endswith("_id") and column != "user_id" and kind in ("bigint", "integer")
    }
    return replace(
        base,
        volume=volume,
        window=Window(start, end),
        incremental=True,
        next_ids=next_ids,
        _signups=_live_signups(session, end),
    )


def _live_signups(session: Any, end: int):
    """Signup times of the users loaded now (user i+1 at index i), read once, returned lazily."""
    import numpy as np

    ids, signup_times = session.user_signups()
    ids = np.asarray(ids, dtype=np.int64)
    signups = np.full(int(ids.max()) if len(ids) else 0, end, dtype=np.int64)
    signups[ids - 1] = [_micros(t) for t in signup_times]
    return lambda: signups


def _create_empty_tables(session: Any, load_schema: str, specs: list[PipelineSpec], schemas: dict[str, Any]) -> None:
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


def load(
    settings: Settings,
    *,
    only: set[str] | None = None,
    incremental: bool = False,
    volume: DataVolume | None = None,
    seed: int | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> LoadReport:
    """Generate and load the project's pipelines (all, or those in `only`) into the DuckDB file.

    Replace mode swaps all loaded tables in at once; incremental mode appends a new, later slice to
    the tables whose pipeline declares a CURSOR. Either way, a failure leaves every table as it was.
    """
    from sbdk.generators import HISTORY_DAYS, MICROS_PER_DAY, end_micros
    from sbdk.generators.events import Window
    from sbdk.stores import store_for

    store = store_for(settings)
    specs = discover(settings.paths.pipelines_dir, only)
    if incremental:
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
    volume = volume or settings.data_volume
    seed = settings.seed if seed is None else seed
    end = end_micros(settings.as_of)
    base = PipelineContext(
        seed=seed,
        as_of=settings.as_of,
        volume=volume,
        window=Window(end - HISTORY_DAYS * MICROS_PER_DAY, end),
    )
    contexts: dict[str, PipelineContext] = {}
    # Checked before any data is generated: a locked or unwritable file wastes no work.
    with store.session() as session:
        session.prepare()
        live = session.live_tables()
        if incremental:
            slice_volume = DataVolume(
                users=volume.users,
                events=max(1, int(volume.events * INCREMENT_SHARE)),
                orders=max(1, int(volume.orders * INCREMENT_SHARE)),
            )
            for spec in specs:
                contexts[spec.table] = _increment_context(session, spec, live, base, slice_volume)
        reloading = {s.table for s in specs}
        if not incremental and "raw_users" not in reloading and "raw_users" in live:
            # Only some tables reload (the watcher): their rows must reference the users loaded
            # now, whatever seed or volume made them.
            base = replace(base, _signups=_live_signups(session, base.window.end))
        load_schema = session.new_load_schema()

    _configure_dlt(settings)
    import dlt

    reporter.stage("generate", ", ".join(s.table for s in specs))
    stats: dict[str, list] = {}
    schemas: dict[str, Any] = {}
    resources = [
        dlt.resource(
            _rows_of(spec, contexts.get(spec.table, base), reporter, stats, schemas),
            name=spec.table,
            table_name=spec.table,
            write_disposition="replace",
            primary_key=spec.primary_key,
        )
        for spec in specs
    ]
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        destination=store.dlt_destination(),
        dataset_name=load_schema,
        pipelines_dir=str(settings.paths.dlt_dir),
        progress=None,
    )
    # Every run loads into a new, empty schema: local state and pending load packages from an
    # earlier (maybe killed) run must not leak into it.
    pipeline = pipeline.drop()
    started = time.perf_counter()
    try:
        pipeline.extract(resources)
        generated = time.perf_counter()
        reporter.stage("load", f"{sum(r for r, _ in stats.values()):,} rows into {store.describe()}")
        pipeline.normalize()
        pause_point("load")
        pipeline.load(raise_on_failed_jobs=True)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        # dlt wraps a Ctrl-C inside a generator into its own step error: give it back as what it is.
        if any(isinstance(cause, KeyboardInterrupt) for cause in causes(exc)):
            raise KeyboardInterrupt from exc
        error = _unwrap(exc, store)
        if error is not None:
            raise error from exc
        raise PipelineError(
            f"dlt could not load the data into {store.describe()}: {exc}",
            hint="Run again with --verbose for dlt's full error; your previous tables are unchanged.",
        ) from exc
    loaded = time.perf_counter()

    try:
        with store.session() as session:
            _create_empty_tables(session, load_schema, specs, schemas)
            if incremental:
                counts = session.append_in(load_schema, [s.table for s in specs])
            else:
                counts = session.swap_in(load_schema, [s.table for s in specs])
    except (SbdkError, KeyboardInterrupt):
        raise
    except Exception as exc:
        raise store.translate(exc) or PipelineError(
            f"Could not swap the new tables into {store.describe()}: {exc}",
            hint="The swap is one transaction: your previous tables are unchanged. Run again with --verbose for details.",
        ) from exc
    swapped = time.perf_counter()
    tables = tuple(
        TableLoad(table=s.table, rows=counts[s.table], seconds=stats.get(s.table, [0, 0.0])[1], source=s.path)
        for s in specs
    )
    return LoadReport(
        tables=tables,
        mode="incremental" if incremental else "replace",
        generate_seconds=generated - started,
        load_seconds=loaded - generated,
        swap_seconds=swapped - loaded,
        destination="PostgreSQL" if store.kind == "postgres" else "DuckDB",
    )
