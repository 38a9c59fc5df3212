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


MARTS = {"user_metrics": "user_id", "daily_kpis": "activity_date", "funnel": "session_date"}


def mart_checksums(root: Path) -> dict[str, str]:
    return {mart: checksum(root, f"main.{mart}", key) for mart, key in MARTS.items()}
