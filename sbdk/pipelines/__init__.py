"""Pipelines: the project's `pipelines/*.py` files, loaded by dlt into the DuckDB file.

The contract of a pipeline file (every `*.py` in `pipelines/` whose name does not start with `_`):

    TABLE = "raw_visits"        # optional: the raw table it fills (default: raw_<file name>)
    PRIMARY_KEY = "visit_id"    # optional: declared to dlt and checked by nothing else
    CURSOR = "visited_at"       # optional: a timestamp column; makes the table --incremental

    def generate(ctx):          # required: yields pyarrow Tables/RecordBatches (or lists of dicts)
        ...

`ctx` is a `PipelineContext`: seed, as_of, the row volumes, the users' signup times and, in
incremental mode, the time window and next ids to continue from.
"""
