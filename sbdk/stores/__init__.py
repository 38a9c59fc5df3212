"""Where a run loads and builds: the project's DuckDB file, or a server target from config."""

from __future__ import annotations

from sbdk.settings import Settings


def store_for(settings: Settings):
    """A DuckDBStore or PostgresStore for the settings' active target."""
    target = settings.active_target
    if target.type == "postgres":
        from sbdk.stores.postgres import PostgresStore

        return PostgresStore(target)
    from sbdk.stores.duckdb import DuckDBStore

    return DuckDBStore(settings.paths.duckdb_path)
