"""Where a run loads and builds: the project's DuckDB file, or a server target from config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sbdk.run.retry import NO_RETRY, Retry
from sbdk.settings import Settings
from sbdk.testing import NO_FAULTS, Faults

if TYPE_CHECKING:
    from sbdk.stores.base import Store


def store_for(settings: Settings, faults: Faults = NO_FAULTS, retry: Retry = NO_RETRY) -> Store:
    """A DuckDBStore, PostgresStore or SparkStore for the settings' active target (its connects and opens retried
    under `retry`, the run's policy)."""
    target = settings.active_target
    if target.type == "spark":
        from sbdk.stores.spark import SparkStore

        return SparkStore(target, settings, faults, retry)
    if target.type == "postgres":
        from sbdk.stores.postgres import PostgresStore

        return PostgresStore(target, faults, retry)
    from sbdk.stores.duckdb import DuckDBStore

    return DuckDBStore(settings.paths.duckdb_path, faults, retry)
