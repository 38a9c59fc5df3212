"""The values synthesis passes around: column types, where a fact came from, a column's spec."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Kind(str, Enum):
    """A source column's type, as synthesis knows it (DuckDB's spelling)."""

    INTEGER = "bigint"
    DOUBLE = "double"
    DECIMAL = "decimal(18,2)"
    VARCHAR = "varchar"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, data_type: str) -> Kind | None:
        """The kind of a SQL type name (`int`, `numeric(10,2)`, `text`, `timestamptz`...), or None."""
        name = data_type.strip().lower().split("(")[0].strip()
        for kind, names in _NAMES.items():
            if name in names:
                return kind
        return None

    @property
    def numeric(self) -> bool:
        return self in (Kind.INTEGER, Kind.DOUBLE, Kind.DECIMAL)

    @property
    def temporal(self) -> bool:
        return self in (Kind.DATE, Kind.TIMESTAMP)


_NAMES: dict[Kind, frozenset[str]] = {
    Kind.INTEGER: frozenset(
        "int integer bigint smallint tinyint int2 int4 int8 long hugeint ubigint uinteger usmallint utinyint".split()
    ),
    Kind.DOUBLE: frozenset([*"double float float4 float8 real double precision".split(), "double precision"]),
    Kind.DECIMAL: frozenset("decimal numeric number money".split()),
    Kind.VARCHAR: frozenset("varchar text string char bpchar character uuid json nvarchar".split()),
    Kind.BOOLEAN: frozenset("boolean bool logical".split()),
    Kind.DATE: frozenset(["date"]),
    Kind.TIMESTAMP: frozenset(
        [
            *"timestamp timestamptz datetime timestamp_ntz timestamp_tz timestamp_ltz".split(),
            "timestamp with time zone",
            "timestamp without time zone",
        ]
    ),
}


@dataclass(frozen=True)
class Origin:
    """Where one fact about a column came from, as `sbdk sources` shows it.

    what: "declared" (the sources YAML), "inferred" (a model's SQL), "test" (a data test), "default".
    where: a file and line relative to the dbt project ("models/staging/stg_orders.sql:7"), or "".
    detail: what was seen there ("cast to date", "compared with 'completed'", "unique").
    """

    what: str
    where: str = ""
    detail: str = ""

    def __str__(self) -> str:
        text = self.what
        if self.where:
            text += f" {'from' if self.what == 'test' else 'in'} {self.where}"
        if self.detail:
            text += f" ({self.detail})"
        return text


@dataclass
class ColumnSpec:
    """How to make one column: what `synth.yml` says of it.

    generator: a name from sbdk.synth.values.GENERATORS ("sequence", "email", "amount", "choice"...).
    nulls: share of rows that are null (0..1).
    unique: no two rows equal (nulls aside).
    values: the values a "choice" draws from; weights, if given, one per value (any positive scale).
    min, max: bounds (inclusive) for numbers, dates ("2024-01-01") and timestamps ("2024-01-01 00:00:00").
    references: "source.table.column" the values are drawn from (a foreign key): every value exists there.
    expression: SQL over the row's other columns (DuckDB) that computes this column ("subtotal + tax").
    distribution: "uniform" (default), "normal", "skewed" (a few values far more common), for numbers.
    """

    name: str
    kind: Kind
    generator: str
    nulls: float = 0.0
    unique: bool = False
    values: list[str | int | float | bool] | None = None
    weights: list[float] | None = None
    min: int | float | str | None = None
    max: int | float | str | None = None
    references: str | None = None
    expression: str | None = None
    distribution: str = "uniform"


@dataclass
class TableSpec:
    """One source table: its rows at 1x and its columns, in order."""

    source: str
    table: str
    rows: int
    columns: list[ColumnSpec] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.source}.{self.table}"

    def column(self, name: str) -> ColumnSpec | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None
