"""Small readers of a project's DuckDB file used by several test modules."""

from __future__ import annotations

from pathlib import Path

import duckdb

KEYS = {"raw_users": "user_id", "raw_events": "event_id", "raw_orders": "order_id"}


def db_path(root: Path) -> Path:
    return root / "data" / "dev.duckdb"


def query(root: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db_path(root)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def checksum(root: Path, relation: str, key: str) -> str:
    """md5 of every row of `relation` in key order: equal only for identical contents."""
    sql = f"select md5(string_agg(cast(t as varchar), '\n' order by {key})) from {relation} t"
    return query(root, sql)[0][0]


def raw_checksums(root: Path) -> dict[str, str]:
    return {table: checksum(root, f"raw.{table}", key) for table, key in KEYS.items()}


def counts(root: Path) -> dict[str, int]:
    return {table: query(root, f"select count(*) from raw.{table}")[0][0] for table in KEYS}


def purchases(root: Path) -> int:
    """The purchase events loaded: each made exactly one order, so this is the number of orders a load
    should have (orders are no volume of their own, issue #16)."""
    return query(root, "select count(*) from raw.raw_events where event_type = 'purchase'")[0][0]


MARTS = {"user_metrics": "user_id", "daily_kpis": "activity_date", "funnel": "session_date"}


def mart_checksums(root: Path) -> dict[str, str]:
    return {mart: checksum(root, f"main.{mart}", key) for mart, key in MARTS.items()}


def small_sbdk_db(path: Path) -> Path:
    """A small database shaped like sbdk's at `path` (raw views over a load schema, _sbdk.raw_tables)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema _sbdk; create schema raw; create schema _sbdk_load_1")
        con.execute("create table _sbdk_load_1.raw_users as select range + 1 as user_id from range(5)")
        con.execute("create view raw.raw_users as select * from _sbdk_load_1.raw_users")
        con.execute(
            "create table _sbdk.raw_tables (table_name varchar primary key, load_schema varchar, "
            "rows bigint, loaded_at timestamptz default current_timestamp)"
        )
        con.execute("insert into _sbdk.raw_tables values ('raw_users', '_sbdk_load_1', 5, current_timestamp)")
    finally:
        con.close()
    return path
