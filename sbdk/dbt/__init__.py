"""dbt, in-process: invoking it, the profiles it reads, and releasing the DuckDB file after it."""
