"""The project's DuckDB file: opening it safely, and swapping freshly loaded raw tables in atomically.

dlt's `replace` is not atomic on DuckDB (NOTES.md: killed or failed loads left tables empty). So dlt
always loads into a brand-new schema `_sbdk_load_<n>`, and the tables users see are views in schema
`raw` (`raw.raw_users` ...). One DuckDB transaction repoints the views at the new load and records it
in `_sbdk.raw_tables`; a failed or killed run never reaches that transaction, so the previous tables
stay whole. Loads no view points at any more are dropped afterwards (and before the next load, which
cleans up after a crash).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbdk.errors import LockError, NotLoadedError, PipelineError, SbdkError, causes
from sbdk.run.retry import NO_RETRY, Retry
from sbdk.stores.base import LOAD_PREFIX, META_SCHEMA, RAW_SCHEMA, append_error
from sbdk.stores.base import quote as _quote
from sbdk.testing import NO_FAULTS, Faults

if TYPE_CHECKING:
    import duckdb

# The memory DuckDB may use during dlt's load, capped as the dbt profile caps it for builds
# (templates/project/profiles); past it DuckDB writes to the file. Uncapped it keeps up to 80% of the
# machine's memory: at 100x the default volume the load peaked at 0.9-1.2 GB, about 0.8 GB with the
# cap, as fast (issue #20).
LOAD_MEMORY_LIMIT = "600MB"

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def lock_error(path: Path, exc: BaseException) -> SbdkError | None:
    """A clear LockError if `exc` says another process holds `path`, else None."""
    text = str(exc)
    if "Could not set lock" not in text and "Conflicting lock" not in text:
        return None
    match = _LOCK_HOLDER.search(text)
    holder = f"{match['program']} (PID {match['pid']})" if match else "another program"
    return LockError(
        f"The database {path} is in use by {holder}: while a program holds a DuckDB file (even read-only), "
        "no other can write it.",
        hint="Close that program's connection (a notebook, DBeaver, the DuckDB CLI), then run sbdk again; "
        "to read the data between runs, use `sbdk query`, which opens the file only for a moment.",
    )


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is (or hides) another program's lock on a DuckDB file (`lock_error`): a reader,
    a notebook or the page may let go of it in a moment, so opening it is worth trying again."""
    return any("Could not set lock" in str(c) or "Conflicting lock" in str(c) for c in causes(exc))


@contextmanager
def connect(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; lock conflicts become a LockError naming the holder."""
    if read_only and not path.exists():
        raise NotLoadedError(f"There is no database at {path} yet.", hint="Run `sbdk dev` to create and load it.")
    if not read_only:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PipelineError(
                f"Cannot create the folder {path.parent} for the database: {exc.strerror}.",
                hint="Check the permissions of the project folder, or change duckdb_path.",
            ) from exc
    same_process = LockError(
        f"The database {path} is already open in this process with other settings.",
        hint="This is a bug in sbdk: please report it with the command you ran.",
    )
    con = _open(path, same_process, read_only=read_only)
    try:
        yield con
    finally:
        con.close()


def _open(path: Path, same_process: LockError, **options: Any) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, with its errors as sbdk errors: another program's lock names it; the file
    already open in this process with other settings is `same_process`; anything else names the file."""
    import duckdb

    try:
        return duckdb.connect(str(path), **options)
    except duckdb.Error as exc:
        error = lock_error(path, exc)
        if error:
            raise error from exc
        if "different configuration" in str(exc):
            raise same_process from exc
        raise PipelineError(
            f"Cannot open the database {path}: {exc}",
            hint="If the file is damaged, move it away and run `sbdk dev` to rebuild it.",
        ) from exc


# How every read path (`sbdk query`, the page, the MCP server) opens the file: it can read the
# database and nothing else, and the SQL cannot loosen that. Checked with DuckDB 2.0.1 (issue #14):
# - read_only: no statement may change the database (CREATE, INSERT, DML in a CTE, ...).
# - enable_external_access=false: no other file or URL (read_csv/read_text/glob, COPY, ATTACH,
#   EXPORT/IMPORT DATABASE, INSTALL/LOAD, Python replacement scans). It still allows the database's own
#   files, so on its own `SET log_query_path` onto the database overwrote it with a text log.
# - lock_configuration=true: no SET/RESET/PRAGMA setting and no `CALL enable_logging(...)`, so nothing
#   can point a log, a profile or the temp folder at a file; the settings here cannot be undone.
# - temp_directory='': external access still allowed writing into `<db>.tmp/` (EXPORT DATABASE did);
#   with none, nothing spills there either (a query larger than memory fails instead).
# - allow_persistent_secrets=false: CREATE PERSISTENT SECRET is refused and ~/.duckdb is never read.
# - autoinstall/autoload_known_extensions=false: a query never fetches or loads an extension.
# allowed_directories/allowed_paths cannot be given when connecting in 2.0.1 ("before the database is
# started"); their defaults are already the database's own files only.
READ_ONLY_CONFIG: dict[str, str | bool] = {
    "enable_external_access": False,
    "lock_configuration": True,
    "temp_directory": "",
    "allow_persistent_secrets": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


@contextmanager
def connect_read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection that can only read the database at `path`, whatever SQL it runs.

    Within one process DuckDB shares one instance per file and settings: while this is open, a writer
    in the same process fails, and it fails while one is open (a LockError here), so open it per
    request and close it at once. Lock conflicts with other programs become a LockError naming them.
    """

    if not path.exists():
        raise NotLoadedError(f"There is no database at {path} yet.", hint="Run `sbdk dev` to create and load it.")
    same_process = LockError(
        f"The database {path} is open in this process for writing (or with other settings), so it cannot be read now.",
        hint="Read again when the run has finished.",
    )
    con = _open(path, same_process, read_only=True, config=dict(READ_ONLY_CONFIG))
    try:
        yield con
    finally:
        con.close()


def ensure_writable(path: Path) -> None:
    """Fail fast, before any data is generated, when the file cannot be opened for writing."""
    with connect(path) as con:
        prepare(con)


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Create sbdk's bookkeeping and drop loads left behind by failed or killed runs."""
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    con.execute(
        f"""create table if not exists {META_SCHEMA}.raw_tables (
            table_name varchar primary key,
            load_schema varchar not null,
            rows bigint not null,
            loaded_at timestamptz not null default current_timestamp,
            first_day date,
            last_day date,
            fingerprint varchar,
            content varchar
        )"""
    )
    # A file made before sbdk recorded days (issue #16) or fingerprints (issue #20): its loads read back
    # as days not recorded, and as never up to date.
    for column, kind in (
        ("first_day", "date"),
        ("last_day", "date"),
        ("fingerprint", "varchar"),
        ("content", "varchar"),
    ):
        con.execute(f"alter table {META_SCHEMA}.raw_tables add column if not exists {column} {kind}")
    drop_unused_loads(con)


def live_tables(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, int]]:
    """table -> (load schema holding it, rows), for every raw table users can see."""
    import duckdb

    try:
        rows = con.execute(f"select table_name, load_schema, rows from {META_SCHEMA}.raw_tables").fetchall()
    except duckdb.CatalogException:  # a file sbdk has not loaded yet; any other error must surface,
        return {}  # or drop_unused_loads() would take the live loads for leftovers
    return {name: (schema, count) for name, schema, count in rows}


def _load_schemas(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every schema dlt loaded into (live or left behind)."""
    rows = con.execute(
        "select schema_name from information_schema.schemata where schema_name like ?", [LOAD_PREFIX + "%"]
    ).fetchall()
    return [name for (name,) in rows]


def new_load_schema(con: duckdb.DuckDBPyConnection) -> str:
    """A schema name no live table uses. Not a DuckDB sequence: with DuckDB 2.0.1 their values
    were not durable across connections (1, 2, 2 in three connections), which reused a live schema."""
    names = _load_schemas(con) + [schema for schema, _rows in live_tables(con).values()]
    numbers = [int(n[len(LOAD_PREFIX) :]) for n in names if n[len(LOAD_PREFIX) :].isdigit()]
    return f"{LOAD_PREFIX}{max(numbers, default=0) + 1}"


def drop_unused_loads(con: duckdb.DuckDBPyConnection) -> list[str]:
    live = {schema for schema, _rows in live_tables(con).values()}
    schemas = _load_schemas(con)
    # dlt creates "<dataset>_staging" next to a dataset for some write dispositions.
    unused = [s for s in schemas if s.endswith("_staging") or s not in live]
    for schema in unused:
        con.execute(f"drop schema if exists {_quote(schema)} cascade")
    return unused


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back if a transaction is still open (a failed COMMIT has already rolled back)."""
    import duckdb

    try:
        con.execute("rollback")
    except duckdb.Error:
        pass


def swap_in(
    con: duckdb.DuckDBPyConnection,
    load_schema: str,
    tables: Iterable[str],
    faults: Faults = NO_FAULTS,
    days: tuple[date, date] | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Make `tables` of `load_schema` the live raw tables, all at once, recording `days` (first, last)
    for each (None: not day-based) and each table's fingerprint (sbdk.pipelines.fingerprint; None: no
    record, never up to date). Returns their row counts."""
    tables = list(tables)
    first, last = days or (None, None)
    fingerprints = fingerprints or {}
    counts: dict[str, int] = {}
    con.execute("begin transaction")
    try:
        for table in tables:
            rows = _count(con, f"{_quote(load_schema)}.{_quote(table)}")
            counts[table] = rows
            con.execute(
                f"create or replace view {RAW_SCHEMA}.{_quote(table)} as "
                f"select * from {_quote(load_schema)}.{_quote(table)}"
            )
            con.execute(
                f"insert or replace into {META_SCHEMA}.raw_tables "
                "(table_name, load_schema, rows, loaded_at, first_day, last_day, fingerprint, content) "
                "values (?, ?, ?, current_timestamp, ?, ?, ?, ?)",
                [table, load_schema, rows, first, last, fingerprints.get(table), _content(con, load_schema, table)],
            )
        faults.reached("swap")
        con.execute("commit")
    except BaseException:
        _rollback(con)
        raise
    _after_commit(lambda: drop_unused_loads(con))
    return counts


def _after_commit(cleanup: Callable[[], object]) -> None:
    """Tidy up after a committed swap. The new tables are live by then: a failure here (a full disk
    while dropping the old load) must not make the run report them unchanged; the next run's
    prepare() drops what is left."""
    import duckdb

    try:
        cleanup()
    except (duckdb.Error, OSError):
        pass


def _count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    return int(con.execute(f"select count(*) from {relation}").fetchall()[0][0])


def _content(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str:
    """A digest of a table's contents, whatever the order of its rows: its columns and types, its row
    count and the sum of its rows' hashes (a second or so at 10 M rows). Two loads with equal contents
    (a pipeline edit that changes no value) give equal digests, so dbt need not build again."""
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    columns = [(name, kind) for name, kind in rows if not name.startswith("_dlt_")]
    if not columns:
        return ""
    listed = ", ".join(_quote(name) for name, _kind in columns)
    count, total = con.execute(
        f"select count(*), sum(hash({listed})) from {_quote(schema)}.{_quote(table)}"
    ).fetchall()[0]
    shape = ",".join(f"{name}:{kind}" for name, kind in columns)
    return f"{count}:{total or 0}:{shape}"


def _column_names(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [name for (name,) in rows]


def append_in(
    con: duckdb.DuckDBPyConnection, load_schema: str, tables: Iterable[str], day: date | None = None
) -> dict[str, int]:
    """Append the rows of `tables` in `load_schema` to the live tables, all at once, recording `day` as
    their last day (None: their days stay as they were). Returns new rows."""
    import duckdb

    live = live_tables(con)
    added: dict[str, int] = {}
    con.execute("begin transaction")
    try:
        for table in tables:
            target, rows = live[table]
            new = _count(con, f"{_quote(load_schema)}.{_quote(table)}")
            columns = _column_names(con, target, table)
            # Read before the insert: a refused insert aborts the transaction, and nothing can be read after it.
            incoming = _column_names(con, load_schema, table)
            column_list = ", ".join(_quote(c) for c in columns)
            try:
                con.execute(
                    f"insert into {_quote(target)}.{_quote(table)} ({column_list}) "
                    f"select {column_list} from {_quote(load_schema)}.{_quote(table)}"
                )
            except duckdb.Error as exc:
                raise append_error(table, exc, columns, incoming) from exc
            con.execute(
                # An appended table is no full load's any more: its fingerprint no longer describes it.
                f"update {META_SCHEMA}.raw_tables set rows = ?, loaded_at = current_timestamp, "
                "last_day = coalesce(?, last_day), fingerprint = null, content = null where table_name = ?",
                [rows + new, day, table],
            )
            added[table] = new
        con.execute("commit")
    except BaseException:
        _rollback(con)
        raise
    _after_commit(lambda: con.execute(f"drop schema if exists {_quote(load_schema)} cascade"))
    return added


def row_counts(path: Path) -> dict[str, int]:
    """Rows per live raw table, read briefly and read-only."""
    if not path.exists():
        return {}
    with connect(path, read_only=True) as con:
        return {name: rows for name, (_schema, rows) in sorted(live_tables(con).items())}


class DuckDBSession:
    """The loader's view of one open connection (the same interface as the PostgreSQL session)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, faults: Faults = NO_FAULTS) -> None:
        self.con = con
        self.faults = faults

    def prepare(self) -> None:
        prepare(self.con)

    def live_tables(self) -> dict[str, tuple[str, int]]:
        return live_tables(self.con)

    def new_load_schema(self) -> str:
        return new_load_schema(self.con)

    def swap_in(
        self,
        load_schema: str,
        tables: Iterable[str],
        days: tuple[date, date] | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        return swap_in(self.con, load_schema, tables, self.faults, days, fingerprints)

    def append_in(self, load_schema: str, tables: Iterable[str], day: date | None = None) -> dict[str, int]:
        return append_in(self.con, load_schema, tables, day)

    def loaded_days(self) -> dict[str, tuple[date, date] | None]:
        rows = self.con.execute(f"select table_name, first_day, last_day from {META_SCHEMA}.raw_tables").fetchall()
        return {name: (first, last) if first and last else None for name, first, last in rows}

    def fingerprints(self) -> dict[str, str | None]:
        rows = self.con.execute(f"select table_name, fingerprint from {META_SCHEMA}.raw_tables").fetchall()
        return dict(rows)

    def count(self, table: str) -> int:
        return _count(self.con, f"{RAW_SCHEMA}.{_quote(table)}")

    def sessions_per_day(self, first: date, last: date) -> dict[date, int]:
        # timezone('UTC', ...) is the UTC wall clock: a plain cast to date would use the TimeZone setting.
        day = "timezone('UTC', occurred_at)::date"
        rows = self.con.execute(
            f"select {day} as day, count(distinct session_id) from {RAW_SCHEMA}.raw_events "
            f"where {day} between ? and ? group by day",
            [first, last],
        ).fetchall()
        return dict(rows)

    def max_value(self, table: str, column: str) -> Any:
        return self.con.execute(f"select max({_quote(column)}) from {RAW_SCHEMA}.{_quote(table)}").fetchall()[0][0]

    def columns(self, table: str) -> dict[str, str]:
        """column -> lower-case type of a live raw table."""
        rows = self.con.execute(
            "select column_name, lower(data_type) from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [RAW_SCHEMA, table],
        ).fetchall()
        return dict(rows)

    def user_signups(self) -> tuple[list[int], list]:
        rows = self.con.execute(f"select user_id, signup_at from {RAW_SCHEMA}.raw_users order by user_id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def expose(self, views: Mapping[str, tuple[str, str]]) -> None:
        for table, (schema, name) in views.items():
            self.con.execute(f"create schema if not exists {_quote(schema)}")
            self.con.execute(
                f"create or replace view {_quote(schema)}.{_quote(name)} as select * from {RAW_SCHEMA}.{_quote(table)}"
            )

    def tables_in(self, schema: str) -> set[str]:
        rows = self.con.execute(
            "select table_name from information_schema.tables where table_schema = ?", [schema]
        ).fetchall()
        return {name for (name,) in rows}

    def create_empty(self, schema: str, table: str, arrow_schema) -> None:
        import pyarrow as pa

        empty = pa.Table.from_batches([], schema=arrow_schema)
        self.con.register("_sbdk_empty", empty)
        try:
            self.con.execute(f"create schema if not exists {_quote(schema)}")
            self.con.execute(f"create table {_quote(schema)}.{_quote(table)} as select * from _sbdk_empty")
        finally:
            self.con.unregister("_sbdk_empty")


class DuckDBStore:
    """The project's DuckDB file as a load target."""

    kind = "duckdb"

    def __init__(self, path: Path, faults: Faults = NO_FAULTS, retry: Retry = NO_RETRY) -> None:
        self.path = path
        self.faults = faults
        self.retry = retry  # the run's policy: opening the file waits out a lock held for a moment

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def describe(self) -> str:
        return str(self.path)

    def check(self, *, load: bool = True) -> None:
        """Before a load: the file opens for writing (a lock held by another program is named).
        dbt alone needs no more than the raw tables, which run_dbt reads first."""
        if load:
            self.retry.call(
                lambda: ensure_writable(self.path), is_transient, what=f"Opening {self.path.name} for writing"
            )

    def hold(self, command: str) -> AbstractContextManager[None]:
        """Nothing more to hold: the project's run lock covers its DuckDB file."""
        return nullcontext()

    @contextmanager
    def session(self) -> Iterator[DuckDBSession]:
        with ExitStack() as opened:
            con = self.retry.call(
                lambda: opened.enter_context(connect(self.path)), is_transient, what=f"Opening {self.path.name}"
            )
            yield DuckDBSession(con, self.faults)

    def dlt_destination(self):
        import dlt
        from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

        # global_config is SET GLOBAL on the connection dlt opens for its load.
        credentials = DuckDbCredentials(str(self.path), global_config={"memory_limit": LOAD_MEMORY_LIMIT})
        return dlt.destinations.duckdb(credentials)

    def row_counts(self) -> dict[str, int]:
        return row_counts(self.path)

    def build_facts(self) -> tuple[dict[str, str | None], set[str]]:
        import duckdb

        if not self.path.exists():
            return {}, set()
        with connect(self.path, read_only=True) as con:
            try:
                recorded = con.execute(
                    f"select table_name, coalesce(content, fingerprint), rows from {META_SCHEMA}.raw_tables"
                ).fetchall()
            except (duckdb.CatalogException, duckdb.BinderException):  # nothing loaded, or loaded before #20
                recorded = []

            # A table whose rows were changed by hand since its load no longer is what its fingerprint says.
            def live_rows(table: str) -> int | None:
                try:
                    return _count(con, f"{RAW_SCHEMA}.{_quote(table)}")
                except duckdb.Error:  # dropped by hand
                    return None

            prints = {table: fingerprint if live_rows(table) == rows else None for table, fingerprint, rows in recorded}
            rows = con.execute(
                "select lower(table_schema || '.' || table_name) from information_schema.tables "
                "where table_catalog = current_database()"
            ).fetchall()
        return prints, {name for (name,) in rows}

    def count_rows(self, relations: dict[str, str]) -> dict[str, int]:
        if not relations or not self.path.exists():
            return {}
        with connect(self.path, read_only=True) as con:
            return {name: _count(con, relation) for name, relation in relations.items()}

    def failing_rows(self, relation: str, limit: int) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
        # The reading path every reader uses: a relation name from dbt runs as a read and nothing else.
        with connect_read_only(self.path) as con:
            cursor = con.execute(f"select * from {relation} limit ?", [limit])
            columns = tuple(str(d[0]) for d in cursor.description or ())
            return columns, tuple(tuple(row) for row in cursor.fetchall())

    def translate(self, exc: BaseException) -> SbdkError | None:
        return lock_error(self.path, exc)
