"""What a synthesized pipeline's generate(ctx) calls: the rows of one source table, as synth.yml says.

Rows in synth.yml are at 1x, the default volume (data_volume.users = 10,000); `--scale` and a changed
data_volume.users scale every table alike, so references between tables keep holding.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbdk.errors import ConfigError, PipelineError
from sbdk.synth.errors import SynthError
from sbdk.synth.model import TableSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from sbdk.pipelines.context import PipelineContext

_BASE_USERS = 10_000
_cache: dict[Path, tuple[tuple[int, int], dict[str, TableSpec]]] = {}


def specs(path: Path) -> dict[str, TableSpec]:
    """synth.yml's tables, read once per version of the file (every pipeline of a run reads it)."""
    from sbdk.synth import spec
    from sbdk.synth.values import GENERATORS

    path = path.resolve()
    stat = path.stat() if path.is_file() else None
    version = (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)
    cached = _cache.get(path)
    if cached is None or cached[0] != version:
        _cache[path] = cached = (version, spec.load(path, set(GENERATORS)))
    return cached[1]


def scale(ctx: PipelineContext) -> float:
    return ctx.volume.users / _BASE_USERS


def rows(ctx: PipelineContext, key: str, spec_file: Path) -> Iterator[pa.Table]:
    """The rows of source table `key` ("source.table") for this run, in batches."""
    from sbdk.synth import values

    tables = specs(spec_file)
    table = tables.get(key)
    if table is None:
        raise PipelineError(
            f"{spec_file.name} has no table {key}.",
            hint="Add it back (`sbdk sources --refresh` adds what the dbt project has), or delete its pipeline file.",
        )
    factor = scale(ctx)
    parents: dict[str, tuple[Any, int]] = {
        f"{t.key}.{c.name}": (c, _rows(t, factor)) for t in tables.values() for c in t.columns
    }
    try:
        yield from values.table(table, _rows(table, factor), seed=ctx.seed, as_of=ctx.as_of, parents=parents)
    except SynthError as exc:
        # The fix is in synth.yml: say so, whichever pipeline met it.
        raise ConfigError(f"{spec_file.name}: {exc.message}", hint=exc.hint or f"Fix {spec_file.name}.") from exc


def _rows(table: TableSpec, factor: float) -> int:
    return max(0, round(table.rows * factor))
