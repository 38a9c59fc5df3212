"""The dbt-duckdb workaround: release the DuckDB file dbt keeps open after an in-process invoke."""

from __future__ import annotations


def release_duckdb() -> None:
    """Close the DuckDB file dbt-duckdb keeps open after invoke() returns.

    dbt-duckdb 1.11 holds one shared connection for the life of the process (its keep_open
    default), even after a failed build, so no other process - and no differently configured
    connection in this one - can open the file. dbt's cleanup_connections()/reset_adapters() do not
    release it; closing its shared environment does (NOTES.md). `_ENV` and `_LOCK` are private:
    tests/test_dbt.py checks another process can open the file after a build.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not imported yet: nothing is open
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
        if env is not None:
            env.close()
