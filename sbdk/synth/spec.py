"""synth.yml: the one declarative, editable description of the synthesized sources.

Per table its rows (at 1x) and, per column, its type, generator, nulls, uniqueness, values, range,
reference or expression. sbdk writes it from what it inferred and never changes an entry that is
there: a new source table or column is added, one the dbt project no longer has is reported and kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbdk.errors import ConfigError
from sbdk.synth.model import ColumnSpec, Kind, TableSpec

SPEC_FILE = "synth.yml"
_OPTIONAL = ("nulls", "unique", "values", "weights", "min", "max", "references", "expression", "distribution")
_HEADER = """\
# How sbdk makes data for the sources of the dbt project at {dbt_path}.
# Written by `sbdk init --from-dbt` from what the project declares and reads; `sbdk sources` shows why.
# Yours to edit: sbdk never changes an entry here. When the dbt project gains a source table or column,
# `sbdk dev` adds it; one it no longer has is reported and kept (delete it when you like).
#
# Per table: rows (at 1x; --scale multiplies them). Per column: type (bigint, double, decimal(18,2),
# varchar, boolean, date, timestamp) and generator:
{generators}
# and optionally nulls (share 0..1), unique, values (+ weights), min/max, references
# (source.table.column), expression (DuckDB SQL over the row's other columns), distribution
# (uniform, normal, skewed).
"""


@dataclass(frozen=True)
class Change:
    """What changed in the dbt project since synth.yml was written, as `sbdk dev` reports it."""

    what: str  # "added" or "gone"
    table: str
    column: str | None = None

    def __str__(self) -> str:
        name = f"{self.table}.{self.column}" if self.column else self.table
        if self.what == "added":
            return f"{'column' if self.column else 'table'} {name} added to synth.yml (new in the dbt project)"
        return f"{name} is no longer in the dbt project; kept in synth.yml (delete it if unused)"


def spec_path(root: Path) -> Path:
    return root / SPEC_FILE


def column_entry(column: ColumnSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": column.kind.value, "generator": column.generator}
    defaults = ColumnSpec(column.name, column.kind, column.generator)
    for name in _OPTIONAL:
        value = getattr(column, name)
        if value != getattr(defaults, name):
            entry[name] = value
    return entry


def table_entry(table: TableSpec) -> dict[str, Any]:
    return {"rows": table.rows, "columns": {c.name: column_entry(c) for c in table.columns}}


def render(tables: dict[str, Any], dbt_path: str, generators: list[str]) -> str:
    """synth.yml's text: the header, then one line per column (a flow mapping), tables in order."""
    import textwrap

    import yaml

    listing = "\n".join(textwrap.wrap(", ".join(generators), 100, initial_indent="#   ", subsequent_indent="#   "))
    lines = [_HEADER.format(dbt_path=dbt_path, generators=listing), "tables:"]
    for key, table in tables.items():
        lines.append(f"  {_scalar(key)}:")
        lines.append(f"    rows: {table.get('rows', 0)}")
        lines.append("    columns:")
        for name, entry in (table.get("columns") or {}).items():
            flow = yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=10_000).strip()
            lines.append(f"      {_scalar(name)}: {flow}")
    return "\n".join(lines) + "\n"


def _scalar(value: str) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def read_raw(path: Path) -> dict[str, Any]:
    """synth.yml's tables as written (key -> {rows, columns}), or a ConfigError naming the line."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path} is missing.",
            hint="Run `sbdk sources --refresh` to write it again from the dbt project.",
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        from sbdk.synth.project import yaml_error

        raise yaml_error(
            path.name, exc, "Fix it, or delete it and run `sbdk sources --refresh` to write it again."
        ) from exc
    tables = data.get("tables") if isinstance(data, dict) else None
    if not isinstance(tables, dict):
        raise ConfigError(f"{path.name} has no `tables:` mapping.", hint="Run `sbdk sources --refresh` to write one.")
    return tables


def load(path: Path, generators: set[str]) -> dict[str, TableSpec]:
    """Every table of synth.yml as a TableSpec, checked: a bad entry is a ConfigError naming it."""
    specs: dict[str, TableSpec] = {}
    for key, entry in read_raw(path).items():
        where = f"{path.name}: {key}"
        if not isinstance(entry, dict) or "." not in str(key):
            raise ConfigError(f"{where} is not a table entry.", hint="Tables are `source.table: {rows, columns}`.")
        source, table = str(key).split(".", 1)
        rows = entry.get("rows", 0)
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
            raise ConfigError(f"{where}: rows must be a whole number >= 0, not {rows!r}.", hint="E.g. `rows: 10000`.")
        spec = TableSpec(source, table, rows)
        for name, column in (entry.get("columns") or {}).items():
            spec.columns.append(_column(f"{where}.{name}", str(name), column, generators))
        specs[str(key)] = spec
    _check_references(path, specs)
    return specs


def _column(where: str, name: str, entry: Any, generators: set[str]) -> ColumnSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not a mapping.", hint="Write it as `{type: bigint, generator: sequence}`.")
    kind = Kind.of(str(entry.get("type", "")))
    if kind is None:
        raise ConfigError(
            f"{where} has type {entry.get('type')!r}, which sbdk cannot make.",
            hint=f"Use one of {', '.join(k.value for k in Kind)}.",
        )
    generator = str(entry.get("generator", ""))
    if generator not in generators:
        raise ConfigError(
            f"{where} has generator {generator!r}, which does not exist.",
            hint=f"Use one of {', '.join(sorted(generators))}.",
        )
    unknown = sorted(set(entry) - {"type", "generator", *_OPTIONAL})
    if unknown:
        raise ConfigError(
            f"{where} has unknown key {unknown[0]!r}.", hint=f"Known keys: type, generator, {', '.join(_OPTIONAL)}."
        )
    nulls = entry.get("nulls", 0.0)
    if not isinstance(nulls, (int, float)) or isinstance(nulls, bool) or not 0 <= nulls <= 1:
        raise ConfigError(f"{where}: nulls must be a share between 0 and 1, not {nulls!r}.", hint="E.g. `nulls: 0.05`.")
    values = entry.get("values")
    if generator == "choice" and (not isinstance(values, list) or not values):
        raise ConfigError(f"{where}: the generator choice needs a list of values.", hint="E.g. `values: [a, b]`.")
    weights = entry.get("weights")
    if weights is not None and (
        not isinstance(values, list) or not isinstance(weights, list) or len(weights) != len(values)
    ):
        raise ConfigError(f"{where}: weights must list one number per value.", hint="Or remove weights.")
    return ColumnSpec(
        name=name,
        kind=kind,
        generator=generator,
        nulls=float(nulls),
        unique=bool(entry.get("unique", False)),
        values=values,
        weights=weights,
        min=entry.get("min"),
        max=entry.get("max"),
        references=entry.get("references"),
        expression=entry.get("expression"),
        distribution=str(entry.get("distribution", "uniform")),
    )


def _check_references(path: Path, specs: dict[str, TableSpec]) -> None:
    for key, table in specs.items():
        for column in table.columns:
            if not column.references:
                continue
            parent_key, _, parent_column = column.references.rpartition(".")
            parent = specs.get(parent_key)
            if parent is None or parent.column(parent_column) is None:
                raise ConfigError(
                    f"{path.name}: {key}.{column.name} references {column.references}, which synth.yml does not define.",
                    hint="Point it at a `source.table.column` listed in synth.yml, or remove `references`.",
                )


def merge(existing: dict[str, Any], inferred: list[TableSpec]) -> tuple[dict[str, Any], list[Change]]:
    """synth.yml's tables with what is new in `inferred` added; every existing entry kept as it is."""
    merged = dict(existing)
    changes: list[Change] = []
    known = {t.key: t for t in inferred}
    for table in inferred:
        if table.key not in merged:
            merged[table.key] = table_entry(table)
            changes.append(Change("added", table.key))
            continue
        entry = merged[table.key]
        columns = dict(entry.get("columns") or {})
        for column in table.columns:
            if column.name not in columns:
                columns[column.name] = column_entry(column)
                changes.append(Change("added", table.key, column.name))
        for name in columns:
            if table.column(str(name)) is None:
                changes.append(Change("gone", table.key, str(name)))
        merged[table.key] = {**entry, "columns": columns}
    changes += [Change("gone", key) for key in existing if key not in known]
    return merged, changes
