"""sbdk: a local-first data pipeline sandbox (Faker -> dlt -> DuckDB -> dbt)."""

__version__ = "0.1.0"
