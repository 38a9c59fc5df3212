"""A PostgreSQL server as a load target (`"type": "postgres"` under `targets`).

Same guarantee as on DuckDB: dlt loads into a new schema `_sbdk_load_<n>`; one PostgreSQL transaction
then replaces the contents of the real tables `raw.<table>` (TRUNCATE + INSERT, or DROP + CREATE when
the columns changed). PostgreSQL's DDL is transactional, so a failed or killed run leaves the previous
tables whole, and dbt's views on `raw` keep pointing at the same tables.

Needs the `postgres` extra: `pip install -e '.[postgres]'` (psycopg2, dbt-postgres, dlt's postgres
destination).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import Any

from sbdk.errors import LockError, SbdkError, TargetError, UsageError, causes
from sbdk.run.retry import NO_RETRY, Retry
from sbdk.settings import Target
from sbdk.stores.base import LOAD_PREFIX, META_SCHEMA, RAW_SCHEMA, append_error
from sbdk.stores.base import quote as _quote
from sbdk.testing import NO_FAULTS, Faults

EXTRA_HINT = "Install the PostgreSQL extra: pip install -e '.[postgres]' (or pip install 'sbdk[postgres]')."


def require_driver() -> Any:
    try:
        import psycopg2
    except ImportError as exc:
        raise UsageError("The PostgreSQL driver (psycopg2) is not installed.", hint=EXTRA_HINT) from exc
    return psycopg2


def connection_error(target: Target, exc: BaseException) -> TargetError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f"{target.host}:{target.port}"
    if "password authentication failed" in text or "no password supplied" in text:
        return TargetError(
            f"PostgreSQL at {where} refused the login of user {target.user!r}: {text}",
            hint=f"Set the right password in {target.password_variable} (in .env or the environment).",
        )
    return TargetError(
        f"Cannot connect to PostgreSQL at {where} (database {target.database!r}): {text}",
        hint="Check that the server is running and reachable, and the host, port and database of "
        f"target {target.name!r} in sbdk_config.json.",
    )


# What a server that is starting, restarting or dropping connections for a moment makes libpq say
# (there is no error code before a session exists): worth connecting again. A refused login, an unknown
# host or database, or a timeout to an unreachable host is none of these, and fails at once.
_TRANSIENT = (
    "Connection refused",
    "Connection reset",
    "server closed the connection unexpectedly",
    "could not receive data from server",
    "the database system is starting up",
    "the database system is not yet accepting connections",
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or an error behind it: dlt and dbt wrap the driver's) is a passing connection failure."""
    return any(text in str(c) for c in causes(exc) for text in _TRANSIENT)


class PostgresSession:
    def __init__(self, con: Any, faults: Faults = NO_FAULTS) -> None:
        self.con = con
        self.faults = faults

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self.con.cursor() as cur:
            cur.execute(sql, tuple(params))
            return cur.fetchall() if cur.description else []

    def _run(self, sql: str, params: Iterable[Any] = ()) -> None:
        with self.con.cursor() as cur:
            cur.execute(sql, tuple(params))

    def prepare(self) -> None:
        self._run(f"create schema if not exists {META_SCHEMA}")
        self._run(f"create schema if not exists {RAW_SCHEMA}")
        self._run(
            f"""create table if not exists {META_SCHEMA}.raw_tables (
                table_name varchar primary key,
                load_schema varchar not null,
                rows bigint not null,
                loaded_at timestamptz not null default now(),
                first_day date,
                last_day date,
                fingerprint varchar
            )"""
        )
        # A database loaded before sbdk recorded days (issue #16): its loads read back as days not recorded.
        # Only when missing: ALTER TABLE locks the table against readers even when it changes nothing.
        present = {
            name
            for (name,) in self._all(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
                [META_SCHEMA, "raw_tables"],
            )
        }
        for column, kind in (("first_day", "date"), ("last_day", "date"), ("fingerprint", "varchar")):
            if column not in present:
                self._run(f"alter table {META_SCHEMA}.raw_tables add column if not exists {column} {kind}")
        self.con.commit()
        # Loads left by failed or killed runs (the live data is in raw, never in a load schema).
        for (schema,) in self._all(
            "select schema_name from information_schema.schemata where schema_name like %s", [LOAD_PREFIX + "%"]
        ):
            self._run(f"drop schema if exists {_quote(schema)} cascade")
        self.con.commit()

    def live_tables(self) -> dict[str, tuple[str, int]]:
        rows = self._all(f"select table_name, load_schema, rows from {META_SCHEMA}.raw_tables")
        return {name: (schema, count) for name, schema, count in rows}

    def new_load_schema(self) -> str:
        names = [n for (n,) in self._all("select load_schema from _sbdk.raw_tables")]
        numbers = [int(n[len(LOAD_PREFIX) :]) for n in names if n[len(LOAD_PREFIX) :].isdigit()]
        return f"{LOAD_PREFIX}{max(numbers, default=0) + 1}"

    def _columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        return self._all(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = %s and table_name = %s order by ordinal_position",
            [schema, table],
        )

    def swap_in(
        self,
        load_schema: str,
        tables: Iterable[str],
        days: tuple[date, date] | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        first, last = days or (None, None)
        fingerprints = fingerprints or {}
        try:
            for table in tables:
                source = f"{_quote(load_schema)}.{_quote(table)}"
                target = f"{RAW_SCHEMA}.{_quote(table)}"
                incoming = [c for c in self._columns(load_schema, table) if not c[0].startswith("_dlt_")]
                current = self._columns(RAW_SCHEMA, table)
                names = ", ".join(_quote(c) for c, _type in incoming)
                if current == incoming:
                    self._run(f"truncate {target}")
                    self._run(f"insert into {target} ({names}) select {names} from {source}")
                else:
                    # New or changed columns: dependent dbt views are rebuilt by the next dbt run.
                    self._run(f"drop table if exists {target} cascade")
                    self._run(f"create table {target} as select {names} from {source}")
                (rows,) = self._all(f"select count(*) from {target}")[0]
                counts[table] = rows
                self._run(
                    f"insert into {META_SCHEMA}.raw_tables "
                    "(table_name, load_schema, rows, loaded_at, first_day, last_day, fingerprint) "
                    "values (%s, %s, %s, now(), %s, %s, %s) "
                    "on conflict (table_name) do update set load_schema = excluded.load_schema, rows = excluded.rows, "
                    "loaded_at = now(), first_day = excluded.first_day, last_day = excluded.last_day, "
                    "fingerprint = excluded.fingerprint",
                    [table, load_schema, rows, first, last, fingerprints.get(table)],
                )
            self.faults.reached("swap")
            self._run(f"drop schema if exists {_quote(load_schema)} cascade")
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        return counts

    def append_in(self, load_schema: str, tables: Iterable[str], day: date | None = None) -> dict[str, int]:
        added: dict[str, int] = {}
        live = self.live_tables()
        try:
            for table in tables:
                live_columns = [c for c, _t in self._columns(RAW_SCHEMA, table)]
                names = ", ".join(_quote(c) for c in live_columns)
                (new,) = self._all(f"select count(*) from {_quote(load_schema)}.{_quote(table)}")[0]
                try:
                    self._run(
                        f"insert into {RAW_SCHEMA}.{_quote(table)} ({names}) "
                        f"select {names} from {_quote(load_schema)}.{_quote(table)}"
                    )
                except require_driver().Error as exc:
                    self.con.rollback()  # a failed statement aborts the transaction: read the columns after it
                    incoming = [c for c, _t in self._columns(load_schema, table) if not c.startswith("_dlt_")]
                    raise append_error(table, exc, live_columns, incoming) from exc
                self._run(
                    f"update {META_SCHEMA}.raw_tables set rows = %s, loaded_at = now(), "
                    "last_day = coalesce(%s, last_day), fingerprint = null where table_name = %s",
                    [live[table][1] + new, day, table],
                )
                added[table] = new
            self._run(f"drop schema if exists {_quote(load_schema)} cascade")
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        return added

    def loaded_days(self) -> dict[str, tuple[date, date] | None]:
        rows = self._all(f"select table_name, first_day, last_day from {META_SCHEMA}.raw_tables")
        return {name: (first, last) if first and last else None for name, first, last in rows}

    def fingerprints(self) -> dict[str, str | None]:
        return dict(self._all(f"select table_name, fingerprint from {META_SCHEMA}.raw_tables"))

    def count(self, table: str) -> int:
        return int(self._all(f"select count(*) from {RAW_SCHEMA}.{_quote(table)}")[0][0])

    def sessions_per_day(self, first: date, last: date) -> dict[date, int]:
        # `at time zone 'UTC'` is the UTC wall clock: a plain cast to date would use the session's TimeZone.
        day = "(occurred_at at time zone 'UTC')::date"
        rows = self._all(
            f"select {day} as day, count(distinct session_id) from {RAW_SCHEMA}.raw_events "
            f"where {day} between %s and %s group by day",
            [first, last],
        )
        return dict(rows)

    def max_value(self, table: str, column: str) -> Any:
        return self._all(f"select max({_quote(column)}) from {RAW_SCHEMA}.{_quote(table)}")[0][0]

    def columns(self, table: str) -> dict[str, str]:
        return {name: kind.lower() for name, kind in self._columns(RAW_SCHEMA, table)}

    def user_signups(self) -> tuple[list[int], list]:
        rows = self._all(f"select user_id, signup_at from {RAW_SCHEMA}.raw_users order by user_id")
        return [r[0] for r in rows], [r[1] for r in rows]

    def expose(self, views: Mapping[str, tuple[str, str]]) -> None:
        for table, (schema, name) in views.items():
            self._run(f"create schema if not exists {_quote(schema)}")
            # PostgreSQL replaces a view only with the same columns: a new one after a changed table.
            self._run(f"drop view if exists {_quote(schema)}.{_quote(name)}")
            self._run(f"create view {_quote(schema)}.{_quote(name)} as select * from {RAW_SCHEMA}.{_quote(table)}")

    def tables_in(self, schema: str) -> set[str]:
        return {
            n
            for (n,) in self._all("select table_name from information_schema.tables where table_schema = %s", [schema])
        }

    def create_empty(self, schema: str, table: str, arrow_schema: Any) -> None:
        import pyarrow as pa

        types = {
            pa.types.is_integer: "bigint",
            pa.types.is_floating: "double precision",
            pa.types.is_boolean: "boolean",
            pa.types.is_date: "date",
            pa.types.is_timestamp: "timestamptz",
            pa.types.is_decimal: "numeric",
        }
        columns = []
        for field in arrow_schema:
            sql_type = next((t for check, t in types.items() if check(field.type)), "varchar")
            columns.append(f"{_quote(field.name)} {sql_type}")
        self._run(f"create schema if not exists {_quote(schema)}")
        self._run(f"create table {_quote(schema)}.{_quote(table)} ({', '.join(columns)})")
        self.con.commit()


# One advisory lock per database for every sbdk run into it (a constant: crc32 of "sbdk raw tables").
ADVISORY_LOCK_KEY = 0x5BD4_0001


def _holder_name(command: str) -> str:
    import os
    import socket

    return f"sbdk {command} pid {os.getpid()} on {socket.gethostname()}"[:63]


def _lock_holder(cursor: Any) -> str:
    """Who holds sbdk's advisory lock, as PostgreSQL knows it (the holder's application_name)."""
    cursor.execute(
        "select a.application_name, a.client_addr, a.backend_start from pg_locks l "
        "join pg_stat_activity a on a.pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.objid = %s limit 1",
        [ADVISORY_LOCK_KEY & 0xFFFFFFFF],
    )
    row = cursor.fetchone()
    if row is None:
        return "its holder has just finished"
    name, address, since = row
    return f"held by `{name or 'an unnamed session'}` from {address or 'a local socket'} since {since:%H:%M:%S}"


class PostgresStore:
    kind = "postgres"

    def __init__(self, target: Target, faults: Faults = NO_FAULTS, retry: Retry = NO_RETRY) -> None:
        self.target = target
        self.faults = faults
        self.retry = retry  # the run's policy: connecting waits out a server that restarts

    def is_transient(self, exc: BaseException) -> bool:
        return is_transient(exc)

    def describe(self) -> str:
        return self.target.describe()

    def _connect(self) -> Any:
        """A new connection (every session, and the run lock's), tried again while the server refuses."""
        psycopg2 = require_driver()

        def attempt() -> Any:
            try:
                return psycopg2.connect(
                    host=self.target.host,
                    port=self.target.port,
                    dbname=self.target.database,
                    user=self.target.user,
                    password=self.target.password or "",
                    connect_timeout=self.target.connect_timeout,
                )
            except psycopg2.Error as exc:
                raise connection_error(self.target, exc) from exc

        where = f"Connecting to PostgreSQL at {self.target.host}:{self.target.port}"
        return self.retry.call(attempt, is_transient, what=where)

    @contextmanager
    def session(self) -> Iterator[PostgresSession]:
        con = self._connect()
        try:
            yield PostgresSession(con, self.faults)
        finally:
            con.close()

    def check(self, *, load: bool = True) -> None:
        """The adapter is installed and the server answers, for a load or for dbt alone."""
        for module, extra in (("dbt.adapters.postgres", "dbt-postgres"),):
            try:
                __import__(module)
            except ImportError as exc:
                raise UsageError(f"{extra} is not installed.", hint=EXTRA_HINT) from exc
        with self.session() as session:
            session.prepare()

    @contextmanager
    def hold(self, command: str) -> Iterator[None]:
        """Hold the target's run lock for the duration of the block: a PostgreSQL advisory lock, so
        two projects or machines loading into the same database never interleave their loads.

        The run lock of a project is a file on one machine; the database may be shared by several.
        The lock lives in its own session, so the server releases it if this process dies.
        """
        psycopg2 = require_driver()
        con = self._connect()
        try:
            try:
                con.autocommit = True
                with con.cursor() as cur:
                    cur.execute("set application_name = %s", [_holder_name(command)])
                    cur.execute("select pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
                    (taken,) = cur.fetchone()
                    holder = None if taken else _lock_holder(cur)
            except psycopg2.Error as exc:
                raise connection_error(self.target, exc) from exc
            if holder is not None:
                raise LockError(
                    f"Another sbdk run is loading into {self.target.describe()} ({holder}).",
                    hint="Wait for it to finish, then run again: runs into one database take turns.",
                )
            yield
        finally:
            con.close()  # ends the session, and the advisory lock with it

    def credentials(self) -> str:
        from urllib.parse import quote

        t = self.target
        return (
            f"postgresql://{quote(t.user or '', safe='')}:{quote(t.password or '', safe='')}@{t.host}:{t.port}/"
            f"{quote(t.database or '', safe='')}?connect_timeout={t.connect_timeout}"
        )

    def dlt_destination(self) -> Any:
        import dlt

        require_driver()
        return dlt.destinations.postgres(credentials=self.credentials())

    def row_counts(self) -> dict[str, int]:
        psycopg2 = require_driver()
        with self.session() as session:
            try:
                return {name: rows for name, (_s, rows) in sorted(session.live_tables().items())}
            except psycopg2.errors.UndefinedTable:  # sbdk's bookkeeping is not there: nothing loaded yet
                return {}

    def build_facts(self) -> tuple[dict[str, str | None], set[str]]:
        psycopg2 = require_driver()
        with self.session() as session:
            try:
                recorded = session._all(f"select table_name, fingerprint, rows from {META_SCHEMA}.raw_tables")
            except (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedColumn):
                session.con.rollback()
                recorded = []
            # A table whose rows were changed by hand since its load no longer is what its fingerprint says.
            prints = {
                table: fingerprint if session.count(table) == rows else None for table, fingerprint, rows in recorded
            }
            rows = session._all("select lower(table_schema || '.' || table_name) from information_schema.tables")
        return prints, {name for (name,) in rows}

    def count_rows(self, relations: dict[str, str]) -> dict[str, int]:
        if not relations:
            return {}
        with self.session() as session:
            return {
                name: int(session._all(f"select count(*) from {relation}")[0][0])
                for name, relation in relations.items()
            }

    def failing_rows(self, relation: str, limit: int) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
        with self.session() as session, session.con.cursor() as cur:
            cur.execute(f"select * from {relation} limit %s", [limit])
            columns = tuple(str(d[0]) for d in cur.description or ())
            return columns, tuple(tuple(row) for row in cur.fetchall())

    def translate(self, exc: BaseException) -> SbdkError | None:
        text = str(exc)
        if "could not connect" in text or "Connection refused" in text or "password authentication" in text:
            return connection_error(self.target, exc)
        return None
