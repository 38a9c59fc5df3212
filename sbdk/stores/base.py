"""What every store shares: the schema names sbdk owns, and quoting of identifiers."""

from __future__ import annotations

RAW_SCHEMA = "raw"  # the raw tables users and dbt read
META_SCHEMA = "_sbdk"  # sbdk's bookkeeping (which load is live)
LOAD_PREFIX = "_sbdk_load_"  # dlt loads into a new schema with this prefix, swapped in afterwards


def quote(name: str) -> str:
    """`name` as a double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
