"""The days each raw table holds, recorded by both stores with the load that brings them (issue #16),
and the distinct sessions per UTC day of the live raw_events. Real DuckDB files in tmp_path and a real,
throwaway PostgreSQL cluster."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from helpers import small_sbdk_db
from tests_support import PostgresCluster

from sbdk.errors import PipelineError
from sbdk.stores.base import Session
from sbdk.stores.duckdb import DuckDBSession, connect
from sbdk.stores.postgres import PostgresSession
from sbdk.testing import NO_FAULTS, Faults

JAN = {n: date(2026, 1, n) for n in range(1, 8)}

# What sbdk created before it recorded days (the same in both dialects).
OLD_RAW_TABLES = (
    "create schema _sbdk",
    "create table _sbdk.raw_tables (table_name varchar primary key, load_schema varchar not null, "
    "rows bigint not null, loaded_at timestamptz not null default current_timestamp)",
    "insert into _sbdk.raw_tables values ('raw_users', '_sbdk_load_1', 5, current_timestamp)",
)


class FailAt:
    """A fault point that raises when the run gets there."""

    def __init__(self, point: str) -> None:
        self.point = point

    def reached(self, point: str, detail: str = "") -> None:
        if point == self.point:
            raise RuntimeError(f"injected fault at {point}")


@dataclass
class Db:
    """One open connection to the store under test: sessions over it, and SQL to set the scene."""

    con: Any
    make: Callable[[Any, Faults], Session]
    run: Callable[[Any, str], list[tuple]]

    def session(self, faults: Faults = NO_FAULTS) -> Session:
        return self.make(self.con, faults)

    def execute(self, *statements: str) -> None:
        for sql in statements:
            self.run(self.con, sql)

    def query(self, sql: str) -> list[tuple]:
        return self.run(self.con, sql)

    def load(self, schema: str, **tables: list[int]) -> None:
        """A load schema as dlt leaves it: a table of ids per name."""
        self.execute(f"create schema {schema}")
        for table, ids in tables.items():
            self.execute(f"create table {schema}.{table} (id bigint)")
            if ids:
                self.execute(f"insert into {schema}.{table} values {', '.join(f'({i})' for i in ids)}")


def _duckdb_run(con: Any, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def _postgres_run(con: Any, sql: str) -> list[tuple]:
    with con.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall() if cur.description else []
    con.commit()
    return rows


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster.create(prefix="sbdk-pg-days-")
    if cluster is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) not found; .ci/run installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.slow)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "duckdb":
        with connect(tmp_path / "dev.duckdb") as con:
            yield Db(con, DuckDBSession, _duckdb_run)
        return
    cluster: PostgresCluster = request.getfixturevalue("cluster")
    name = f"days_{request.node.name.split('[')[0][-40:]}".lower()
    admin = cluster.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}"')
            cur.execute(f'create database "{name}"')
    finally:
        admin.close()
    con = cluster.connect(name)
    con.autocommit = False  # as PostgresStore's sessions are
    try:
        yield Db(con, PostgresSession, _postgres_run)
    finally:
        con.close()


def _rows(db: Db) -> dict[str, int]:
    return {name: rows for name, (_schema, rows) in db.session().live_tables().items()}


def test_swap_in_records_the_days_of_every_table(db: Db) -> None:
    session = db.session()
    session.prepare()
    db.load("_sbdk_load_1", raw_a=[1, 2], raw_b=[3])
    assert session.swap_in("_sbdk_load_1", ["raw_a", "raw_b"], days=(JAN[1], JAN[3])) == {"raw_a": 2, "raw_b": 1}
    assert session.loaded_days() == {"raw_a": (JAN[1], JAN[3]), "raw_b": (JAN[1], JAN[3])}

    # A pipeline that is not day-based, called as the loader calls it today: no days recorded.
    db.load("_sbdk_load_2", raw_a=[1, 2, 3])
    assert session.swap_in("_sbdk_load_2", ["raw_a"]) == {"raw_a": 3}
    assert session.loaded_days() == {"raw_a": None, "raw_b": (JAN[1], JAN[3])}


def test_append_in_moves_the_last_day(db: Db) -> None:
    session = db.session()
    session.prepare()
    db.load("_sbdk_load_1", raw_a=[1, 2], raw_b=[3])
    session.swap_in("_sbdk_load_1", ["raw_a", "raw_b"], days=(JAN[1], JAN[3]))

    db.load("_sbdk_load_2", raw_a=[4], raw_b=[5, 6])
    assert session.append_in("_sbdk_load_2", ["raw_a", "raw_b"], day=JAN[4]) == {"raw_a": 1, "raw_b": 2}
    assert session.loaded_days() == {"raw_a": (JAN[1], JAN[4]), "raw_b": (JAN[1], JAN[4])}
    assert _rows(db) == {"raw_a": 3, "raw_b": 3}

    # Without a day (as the loader calls it today) the rows are appended and the days stay.
    db.load("_sbdk_load_3", raw_a=[7])
    assert session.append_in("_sbdk_load_3", ["raw_a"]) == {"raw_a": 1}
    assert session.loaded_days() == {"raw_a": (JAN[1], JAN[4]), "raw_b": (JAN[1], JAN[4])}
    assert _rows(db) == {"raw_a": 4, "raw_b": 3}


def test_a_failed_swap_leaves_the_days_as_they_were(db: Db) -> None:
    session = db.session()
    session.prepare()
    db.load("_sbdk_load_1", raw_a=[1, 2], raw_b=[3])
    session.swap_in("_sbdk_load_1", ["raw_a", "raw_b"], days=(JAN[1], JAN[3]))
    before = session.loaded_days()

    # raw_b is missing from the new load: raw_a's new days are rolled back with it.
    db.load("_sbdk_load_2", raw_a=[1, 2, 3, 4])
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error for the missing table
        session.swap_in("_sbdk_load_2", ["raw_a", "raw_b"], days=(JAN[5], JAN[7]))
    assert session.loaded_days() == before
    assert _rows(db) == {"raw_a": 2, "raw_b": 1}

    # A fault inside the swap transaction, after every table was written.
    db.load("_sbdk_load_3", raw_a=[1, 2, 3, 4], raw_b=[5])
    with pytest.raises(RuntimeError, match="injected fault at swap"):
        db.session(FailAt("swap")).swap_in("_sbdk_load_3", ["raw_a", "raw_b"], days=(JAN[5], JAN[7]))
    assert session.loaded_days() == before
    assert _rows(db) == {"raw_a": 2, "raw_b": 1}


def test_a_failed_append_leaves_the_days_as_they_were(db: Db) -> None:
    session = db.session()
    session.prepare()
    db.load("_sbdk_load_1", raw_a=[1, 2], raw_b=[3])
    session.swap_in("_sbdk_load_1", ["raw_a", "raw_b"], days=(JAN[1], JAN[3]))
    before = session.loaded_days()

    # raw_a appends, then raw_b's rows are refused (text into a bigint): both stay as they were.
    db.execute(
        "create schema _sbdk_load_2",
        "create table _sbdk_load_2.raw_a (id bigint)",
        "insert into _sbdk_load_2.raw_a values (4)",
        "create table _sbdk_load_2.raw_b (id varchar)",
        "insert into _sbdk_load_2.raw_b values ('not a number')",
    )
    with pytest.raises(PipelineError, match="Cannot append the new rows of raw_b"):
        session.append_in("_sbdk_load_2", ["raw_a", "raw_b"], day=JAN[4])
    assert session.loaded_days() == before
    assert _rows(db) == {"raw_a": 2, "raw_b": 1}

    # raw_b is missing from the load schema.
    db.load("_sbdk_load_3", raw_a=[5])
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error for the missing table
        session.append_in("_sbdk_load_3", ["raw_a", "raw_b"], day=JAN[4])
    assert session.loaded_days() == before
    assert _rows(db) == {"raw_a": 2, "raw_b": 1}


def test_prepare_adds_the_day_columns_to_an_older_database(db: Db) -> None:
    db.execute(*OLD_RAW_TABLES)
    session = db.session()
    session.prepare()
    assert session.loaded_days() == {"raw_users": None}
    assert session.live_tables() == {"raw_users": ("_sbdk_load_1", 5)}
    session.prepare()  # a second time changes nothing

    db.load("_sbdk_load_2", raw_users=[1, 2, 3])
    session.swap_in("_sbdk_load_2", ["raw_users"], days=(JAN[1], JAN[2]))
    assert session.loaded_days() == {"raw_users": (JAN[1], JAN[2])}


def test_an_older_duckdb_file_keeps_working(tmp_path: Path) -> None:
    # The file as an earlier sbdk left it (a live load, _sbdk.raw_tables without days), reopened.
    path = small_sbdk_db(tmp_path / "dev.duckdb")
    with connect(path) as con:
        DuckDBSession(con).prepare()
    with connect(path) as con:
        session = DuckDBSession(con)
        session.prepare()
        assert session.loaded_days() == {"raw_users": None}
        assert con.execute("select count(*) from raw.raw_users").fetchall() == [(5,)]


# (session, UTC time): s1 runs over midnight UTC; s6 and s7 fall outside the days asked for. In Tokyo
# (UTC+9) the evening ones are already the next day, and s6 is 1 January.
EVENTS = [
    ("s1", "2026-01-01 10:00:00"),
    ("s1", "2026-01-01 23:30:00"),
    ("s1", "2026-01-02 00:10:00"),
    ("s2", "2026-01-01 00:10:00"),
    ("s2", "2026-01-01 20:00:00"),
    ("s3", "2026-01-02 00:30:00"),
    ("s4", "2026-01-02 15:30:00"),
    ("s5", "2026-01-03 23:59:59"),
    ("s6", "2025-12-31 23:59:59"),
    ("s7", "2026-01-04 00:00:00"),
]


def test_sessions_per_day_counts_distinct_sessions_per_utc_day(db: Db) -> None:
    session = db.session()
    session.prepare()
    values = ", ".join(f"({i}, '{sid}', timestamptz '{at}+00')" for i, (sid, at) in enumerate(EVENTS, start=1))
    db.execute(
        "create schema _sbdk_load_1",
        "create table _sbdk_load_1.raw_events (event_id bigint, session_id varchar, occurred_at timestamptz)",
        f"insert into _sbdk_load_1.raw_events values {values}",
    )
    session.swap_in("_sbdk_load_1", ["raw_events"], days=(JAN[1], JAN[3]))

    db.execute("set TimeZone = 'Asia/Tokyo'")
    # The connection now puts 23:30 UTC on the next day: the counts below are not by chance.
    assert db.query("select (timestamptz '2026-01-01 23:30:00+00')::date") == [(JAN[2],)]
    assert session.sessions_per_day(JAN[1], JAN[3]) == {JAN[1]: 2, JAN[2]: 3, JAN[3]: 1}
    assert session.sessions_per_day(JAN[2], JAN[2]) == {JAN[2]: 3}
    assert session.sessions_per_day(JAN[5], JAN[7]) == {}
