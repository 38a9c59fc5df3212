"""What every store shares: the schema names sbdk owns, and quoting of identifiers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import date
from typing import Any, Protocol

from sbdk.errors import SbdkError

RAW_SCHEMA = "raw"  # the raw tables users and dbt read
META_SCHEMA = "_sbdk"  # sbdk's bookkeeping (which load is live)
LOAD_PREFIX = "_sbdk_load_"  # dlt loads into a new schema with this prefix, swapped in afterwards


def quote(name: str) -> str:
    """`name` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def append_error(table: str, exc: BaseException, live: Iterable[str], incoming: Iterable[str]) -> SbdkError:
    """The error for an incremental append that the database refused, with the hint that fits:
    the columns differ since the last full load, or (they do not) the database's own reason."""
    from sbdk.errors import PipelineError

    live, incoming = set(live), set(incoming)
    if live != incoming:
        changes = [
            f"new: {', '.join(sorted(incoming - live))}" if incoming - live else "",
            f"gone: {', '.join(sorted(live - incoming))}" if live - incoming else "",
        ]
        return PipelineError(
            f"Cannot append the new rows of {table}: its columns changed since the last full load "
            f"({'; '.join(c for c in changes if c)}).",
            hint="Run `sbdk dev` without --incremental to reload it with the new columns.",
        )
    return PipelineError(
        f"Cannot append the new rows of {table}: {exc}",
        hint="The columns are unchanged, so the rows themselves were refused: check the pipeline's values "
        "(types, nulls) against the loaded table, or run `sbdk dev` without --incremental.",
    )


class Session(Protocol):
    """The loader's view of one open connection to a store.

    sbdk's bookkeeping, `_sbdk.raw_tables (table_name, load_schema, rows, loaded_at, first_day,
    last_day)`, says which load each raw table is and, for a day-based pipeline, the first and last
    (inclusive) UTC day whose data it holds (null for a pipeline that is not day-based, or a load made
    before sbdk recorded days). swap_in and append_in update it in the transaction that changes the data.
    """

    def prepare(self) -> None:
        """Create sbdk's bookkeeping (adding the day columns to a database made by an earlier sbdk) and
        drop loads left behind by failed or killed runs. Call it before anything else in a session."""

    def live_tables(self) -> dict[str, tuple[str, int]]:
        """table -> (schema holding its live load, rows)."""

    def new_load_schema(self) -> str:
        """A schema name no live table uses, for dlt to load into."""

    def swap_in(
        self,
        load_schema: str,
        tables: Iterable[str],
        days: tuple[date, date] | None = None,
        fingerprints: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Make `tables` of `load_schema` the live raw tables, all at once; their row counts. Records
        `days` (first, last UTC day, inclusive) for each of them in the same transaction; None records
        none (a pipeline that is not day-based). Records each table's fingerprint likewise (what made
        its data, sbdk.pipelines.fingerprint; a table without one is never up to date). A failure
        leaves the tables, their days and fingerprints as they were."""

    def append_in(self, load_schema: str, tables: Iterable[str], day: date | None = None) -> dict[str, int]:
        """Append the rows of `tables` in `load_schema` to the live ones, all at once; rows added. Records
        `day` as the last day of each of them in the same transaction; None leaves their days as they
        were. Clears their fingerprints (an appended table is no full load's). A failure leaves the
        tables and their days as they were."""

    def fingerprints(self) -> dict[str, str | None]:
        """table -> the fingerprint recorded when its live data was swapped in (None: none recorded)."""

    def count(self, table: str) -> int:
        """Rows of a live raw table, counted now (a change by hand shows as a count unlike the recorded one)."""

    def loaded_days(self) -> dict[str, tuple[date, date] | None]:
        """table -> (first, last) UTC day its data covers, inclusive; None when not recorded (a load by an
        earlier sbdk, or a pipeline that is not day-based). Call after prepare(), which adds the columns
        to an older database."""

    def sessions_per_day(self, first: date, last: date) -> dict[date, int]:
        """UTC day -> distinct session_id in the live raw_events whose occurred_at falls on that day, for
        the days `first` to `last` inclusive; days without events are left out. The day is taken in UTC
        whatever the connection's time zone."""

    def max_value(self, table: str, column: str) -> Any:
        """The largest value of `column` in the live raw table."""

    def columns(self, table: str) -> dict[str, str]:
        """column -> lower-case type of a live raw table."""

    def user_signups(self) -> tuple[list[int], list[Any]]:
        """(user ids, signup times) of the live raw_users, in id order."""

    def tables_in(self, schema: str) -> set[str]:
        """The tables of `schema`."""

    def expose(self, views: Mapping[str, tuple[str, str]]) -> None:
        """For each raw table -> (schema, name), a view `schema.name` over it, where a dbt project the
        user brings reads the source sbdk synthesized (issue #17); made again after each load."""

    def create_empty(self, schema: str, table: str, arrow_schema: Any) -> None:
        """An empty table with the columns of a pyarrow schema."""


class Store(Protocol):
    """Where a run loads and dbt builds: the DuckDB file or a server target."""

    kind: str

    def describe(self) -> str:
        """Where it is, for messages."""

    def check(self, *, load: bool = True) -> None:
        """Raise an SbdkError, before any work, when a run (a load, or dbt alone) cannot proceed."""

    def hold(self, command: str) -> AbstractContextManager[None]:
        """Anything beyond the project's run lock that a run must hold (a shared server's lock)."""

    def session(self) -> AbstractContextManager[Session]:
        """A short-lived connection for the loader."""

    def dlt_destination(self) -> Any:
        """dlt's destination for this store."""

    def row_counts(self) -> dict[str, int]:
        """Rows per live raw table ({} when nothing has been loaded yet)."""

    def translate(self, exc: BaseException) -> SbdkError | None:
        """A clear SbdkError for a driver error this store recognises (a lock, a refused login)."""

    def is_transient(self, exc: BaseException) -> bool:
        """Whether `exc` is a passing failure of this store, worth trying again (sbdk.run.retry)."""

    def build_facts(self) -> tuple[dict[str, str | None], set[str]]:
        """(what each live raw table holds: a digest of its contents where the store records one, else
        its fingerprint, None when its rows changed by hand; schema.name of every relation), read
        briefly: what sbdk.dbt.state compares to decide what dbt must build."""

    def count_rows(self, relations: dict[str, str]) -> dict[str, int]:
        """Rows of each named relation (name -> relation as dbt quotes it), read briefly."""

    def failing_rows(self, relation: str, limit: int) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
        """(column names, the first `limit` rows) of a relation dbt stored a test's failing rows in
        (as dbt quotes it), read briefly."""
