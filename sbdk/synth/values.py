"""Column values for synthesised source tables: seeded, vectorised, a pure function of each row's index.

Every value is computed from (seed, table key, column name, row index) by counter-based hashing rather than
drawn from a stateful random generator. So a batch's values do not depend on the batch size, adding a column
leaves the others alone, and `key_values` computes the key a parent row holds without making the parent
table. Unique columns map row indices through a keyed permutation of their range, so uniqueness holds by
construction at any volume. Faker only fills small pools of values (once per process) that rows index with
numpy; nothing here loops over rows in Python.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sbdk.generators import BATCH_ROWS, HISTORY_DAYS
from sbdk.generators._pools import Pool, pools
from sbdk.synth.errors import SynthError
from sbdk.synth.model import ColumnSpec, Kind, TableSpec

GENERATORS: dict[str, str] = {
    "sequence": "1, 2, 3... from min (default 1): keys; consecutive days or minutes for dates and timestamps",
    "integer": "whole numbers from min to max (default 1 to 100)",
    "double": "numbers with decimals from min to max (default 0 to 100)",
    "amount": "money with two decimals from min to max (default 1.00 to 500.00)",
    "boolean": "true or false, as often each",
    "date": "days from min to max (default the 365 days before as_of)",
    "timestamp": "times to the second from min to max (default the 365 days before as_of)",
    "recent_timestamp": "times in the 24 hours before as_of (loaded_at fields, freshness checks)",
    "choice": "one of `values`, the first ones more common unless `weights` say otherwise",
    "uuid": "random version-4 UUIDs, never repeated",
    "email": "addresses like anna.smith42@gmail.com",
    "first_name": "first names from ten countries",
    "last_name": "last names from ten countries",
    "name": "full names (first and last)",
    "username": "user names like asmith42",
    "city": "real city names",
    "country": "country names",
    "country_code": "two-letter ISO 3166 country codes",
    "state": "US state names",
    "postal_code": "US ZIP codes",
    "phone": "US phone numbers",
    "url": "web site addresses",
    "company": "company names",
    "address": "street addresses",
    "text": "a single word",
    "sentence": "a short sentence",
    "expression": "computed from the row's other columns by `expression` (DuckDB SQL)",
}

_ARROW: dict[Kind, pa.DataType] = {
    Kind.INTEGER: pa.int64(),
    Kind.DOUBLE: pa.float64(),
    Kind.DECIMAL: pa.decimal128(18, 2),
    Kind.VARCHAR: pa.string(),
    Kind.BOOLEAN: pa.bool_(),
    Kind.DATE: pa.date32(),
    # Naive, meaning UTC: what the sources' timestamp columns hold after loading into DuckDB.
    Kind.TIMESTAMP: pa.timestamp("us"),
}

# The kind each generator makes when the column's type does not say otherwise; string generators unlisted.
_NATURAL: dict[str, Kind] = {
    "sequence": Kind.INTEGER,
    "integer": Kind.INTEGER,
    "double": Kind.DOUBLE,
    "amount": Kind.DECIMAL,
    "boolean": Kind.BOOLEAN,
    "date": Kind.DATE,
    "timestamp": Kind.TIMESTAMP,
    "recent_timestamp": Kind.TIMESTAMP,
}
_BY_KIND: dict[Kind, str] = {
    Kind.INTEGER: "integer",
    Kind.DOUBLE: "double",
    Kind.DECIMAL: "amount",
    Kind.BOOLEAN: "boolean",
    Kind.DATE: "date",
    Kind.TIMESTAMP: "timestamp",
    Kind.VARCHAR: "text",
}
# Which declared kinds a generator's values can be written as (anything can be written as text).
_FITS: dict[Kind, frozenset[Kind]] = {
    Kind.INTEGER: frozenset({Kind.INTEGER, Kind.DOUBLE, Kind.DECIMAL, Kind.VARCHAR}),
    Kind.DOUBLE: frozenset({Kind.INTEGER, Kind.DOUBLE, Kind.DECIMAL, Kind.VARCHAR}),
    Kind.DECIMAL: frozenset({Kind.INTEGER, Kind.DOUBLE, Kind.DECIMAL, Kind.VARCHAR}),
    Kind.BOOLEAN: frozenset({Kind.BOOLEAN, Kind.INTEGER, Kind.VARCHAR}),
    Kind.DATE: frozenset({Kind.DATE, Kind.TIMESTAMP, Kind.VARCHAR}),
    Kind.TIMESTAMP: frozenset({Kind.DATE, Kind.TIMESTAMP, Kind.VARCHAR}),
    Kind.VARCHAR: frozenset({Kind.VARCHAR}),
}

# Column names -> generator, in order: the first pattern that matches the lower-cased name wins.
_NAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), generator)
    for pattern, generator in (
        (r"(^|_)(uuid|guid)($|_)", "uuid"),
        (r"^(is|has|can|was|should|did)_|_flag$|^(active|enabled|deleted|verified|subscribed)$", "boolean"),
        # Load-time columns (dbt's loaded_at_field, dlt/Fivetran/Airbyte/Singer audit columns).
        (r"(^|_)(loaded|ingested|synced|extracted)(_at|_time|_timestamp)?$", "recent_timestamp"),
        (r"^id$", "sequence"),
        (r"(^|_)id$", "integer"),
        (r"(^|_)e?mail($|_)", "email"),
        (r"(^|_)(first|given|fore)_?name($|_)", "first_name"),
        (r"(^|_)(last|family|sur)_?name($|_)", "last_name"),
        (r"(^|_)(user_?name|login|handle)$", "username"),
        (r"(^|_)(company|employer|organi[sz]ation|business)(_name)?$", "company"),
        (r"(^|_)(product|item|file|table|event|page|category|brand|plan|campaign|app|store|shop)_name$", "text"),
        (r"(^|_)(full_?)?name$", "name"),
        (r"(^|_)(city|town)$", "city"),
        (r"(^|_)country_?(code|iso|iso2)$|^iso_?country$", "country_code"),
        (r"(^|_)country(_name)?$", "country"),
        (r"(^|_)(state|province|region)$", "state"),
        (r"(^|_)(zip|zipcode|zip_code|postal|postal_code|postcode)$", "postal_code"),
        (r"(^|_)(phone|mobile|telephone|tel|fax)(_number)?$", "phone"),
        (r"(^|_)(url|website|homepage|link|uri)$", "url"),
        (r"(^|_)(address|street|street_address|address_line_?\d)$", "address"),
        (r"(^|_)(description|comments?|notes?|message|body|review|bio|summary)$", "sentence"),
        (
            r"(^|_)(status|type|category|method|kind|tier|plan|channel|segment|priority|stage|level|currency|"
            r"gender|reason)$",
            "choice",
        ),
        (r"(^|_)(quantity|qty|count|units|num|number_of)($|_)|^n_", "integer"),
        (r"(^|_)(amount|price|total|cost|revenue|subtotal|tax|fee|fees|discount|balance|salary|spend)($|_)", "amount"),
        (r"_at$|(^|_)(time|timestamp|datetime|ts)$|^(created|updated|modified|deleted)$", "timestamp"),
        (r"(^|_)(date|day|dob|birthday|birthdate)$|^date_", "date"),
    )
)
_ID = re.compile(r"(^|_)id$")

DISTRIBUTIONS = ("uniform", "normal", "skewed")
_DOUBLE_STEPS = 1 << 40  # a unique double is one of this many evenly spaced points from min to max
_POOL_SIZE = 1000
_COUNTRY_NAMES = {
    "US": "United States", "GB": "United Kingdom", "DE": "Germany", "FR": "France", "IN": "India",
    "BR": "Brazil", "ES": "Spain", "IT": "Italy", "NL": "Netherlands", "SE": "Sweden",
}  # fmt: skip
_COMPANY_SUFFIXES = ("Inc", "LLC", "Group", "Ltd", "Partners", "Labs", "Holdings", "and Sons", "Co")
_TLDS = (".com", ".com", ".com", ".net", ".org", ".io", ".co")
_EPOCH = date(1970, 1, 1)
_SECONDS_PER_DAY = 86_400

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
_ODD = (0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB, 0x8EBC6AF09C88C6E3)
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLES = np.arange(60, -1, -4, dtype=np.uint64)  # the 16 hex digits of a 64-bit word, most significant first
_UUID_DIGITS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])


def arrow_type(kind: Kind) -> pa.DataType:
    """The Arrow type `table()` gives a column of this kind."""
    return _ARROW[kind]


def choose(name: str, kind: Kind | None) -> tuple[str, Kind]:
    """A generator and kind for a column nobody described: from its name first, its type second.

    A name's generator is kept only when its values can be written as the column's type: `created_at`
    declared varchar still gets timestamps (as text), `email` declared bigint falls back to integers. With
    no type, the generator's own kind is the column's.
    """
    generator = _by_name(name.lower())
    if generator is None or kind is None:
        generator = generator or _BY_KIND[kind or Kind.VARCHAR]
        return generator, kind or _NATURAL.get(generator, Kind.VARCHAR)
    if generator in ("date", "timestamp") and kind.temporal:
        generator = "date" if kind is Kind.DATE else "timestamp"
    elif _ID.search(name.lower()) and kind is Kind.VARCHAR:
        generator = "uuid"  # text keys are usually UUIDs, not numbers written as text
    if generator != "choice" and kind not in _FITS[_NATURAL.get(generator, Kind.VARCHAR)]:
        generator = _BY_KIND[kind]
    return generator, kind


def _by_name(name: str) -> str | None:
    """The generator a column's name suggests (`customer_email` -> email), or None."""
    for pattern, generator in _NAME_RULES:
        if pattern.search(name):
            return generator
    return None


def table(
    spec: TableSpec,
    rows: int,
    *,
    seed: int,
    as_of: date,
    parents: Mapping[str, tuple[ColumnSpec, int]],
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.Table]:
    """`rows` rows of the spec's columns, in batches of at most `batch_rows` (one empty batch when rows is 0).

    Every column is checked, and a first row made, before this returns: a spec that cannot be made raises
    SynthError here, not later inside whatever consumes the batches (a dlt load would bury it). Row i's
    values do not depend on batch_rows.
    """
    maker = _Table(spec, rows, seed, as_of, parents)
    for column in spec.columns:
        maker.check(column)
    if rows > 0:
        # Two rows, so an expression that aggregates (one value for the batch) shows here too.
        with _Expressions() as expressions:
            maker.batch(np.arange(min(rows, 2), dtype=np.int64), expressions)
    return maker.batches(batch_rows)


def key_values(spec: ColumnSpec, table_key: str, indices: np.ndarray, *, seed: int, as_of: date) -> pa.Array:
    """The values rows `indices` (0-based) of column `spec` of table `table_key` hold in `table()`, nulls aside.

    A pure function of the index, so a child table draws existing keys without reading its parent. It
    holds for every generator; only computed columns (an expression) and columns that themselves reference
    another table cannot be referenced.
    """
    where = f"{table_key}.{spec.name}"
    if spec.expression is not None:
        raise SynthError(
            f"{where} is computed by an expression, so another table cannot reference it.",
            hint="Reference a column made by a generator (its key, usually), or drop the expression.",
        )
    if spec.references is not None:
        raise SynthError(
            f"{where} references {spec.references} itself, so another table cannot reference it.",
            hint=f"Reference {spec.references} directly.",
        )
    return _values(_Draw(spec, table_key, seed, as_of, np.asarray(indices, dtype=np.int64)))


@dataclass(frozen=True)
class _Draw:
    """Some rows of one column, with what their values depend on (and nothing else)."""

    column: ColumnSpec
    table_key: str
    seed: int
    as_of: date
    indices: np.ndarray

    @property
    def where(self) -> str:
        return f"{self.table_key}.{self.column.name}"

    def key(self, purpose: str) -> int:
        return _key(self.seed, self.table_key, self.column.name, purpose)

    def uniform(self, purpose: str = "value") -> np.ndarray:
        return _uniform(self.key(purpose), self.indices)

    def position(self) -> np.ndarray:
        """A number in (0, 1) per row, spread as the column's distribution says."""
        u = self.uniform()
        if self.column.distribution == "skewed":
            return u**3  # most values near min, a long tail toward max (order sizes, prices, customers' orders)
        if self.column.distribution == "normal":
            # Box-Muller; 3 standard deviations either side of the middle reach min and max.
            z = np.sqrt(-2.0 * np.log(u)) * np.cos(2.0 * np.pi * self.uniform("normal"))
            return np.clip(0.5 + z / 6.0, 0.0, np.nextafter(1.0, 0.0))
        return u

    def pick(self, size: int) -> np.ndarray:
        """An index in [0, size) per row: distinct for distinct rows when the column is unique."""
        if self.column.unique:
            return _permute(self.key("unique"), self.indices, size)
        return np.minimum((self.position() * size).astype(np.int64), size - 1)


class _Expressions:
    """A DuckDB connection for computed columns, opened only when a table has one."""

    def __init__(self) -> None:
        self.connection: Any = None

    def __enter__(self) -> _Expressions:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.connection is not None:
            self.connection.close()

    def compute(self, column: ColumnSpec, batch: pa.Table, where: str) -> pa.Array:
        """`select <expression> from batch`, cast to the column's kind: one value per row of the batch."""
        import duckdb

        if self.connection is None:
            self.connection = duckdb.connect()
        self.connection.register("batch", batch)
        sql = f"select cast(({column.expression}) as {column.kind.value}) from batch"
        try:
            result = self.connection.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            names = ", ".join(batch.column_names)
            raise SynthError(
                f"The expression of {where} failed: {str(exc).splitlines()[0]}",
                hint=f"It runs as `select {column.expression} from batch`, over the columns {names}.",
            ) from exc
        finally:
            self.connection.unregister("batch")
        if result.num_rows != batch.num_rows:
            raise SynthError(
                f"The expression of {where} gave {result.num_rows} values for {batch.num_rows} rows.",
                hint="Compute one value per row (no aggregates such as sum() or count()).",
            )
        return result.column(0).combine_chunks().cast(arrow_type(column.kind))


@dataclass(frozen=True)
class _Table:
    """One table being made: its spec, volume and everything its values depend on."""

    spec: TableSpec
    rows: int
    seed: int
    as_of: date
    parents: Mapping[str, tuple[ColumnSpec, int]]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, arrow_type(c.kind)) for c in self.spec.columns])

    def draw(self, column: ColumnSpec, indices: np.ndarray) -> _Draw:
        return _Draw(column, self.spec.key, self.seed, self.as_of, indices)

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
        """The table's rows in bounded batches (the generator behind `table()`)."""
        if self.rows == 0:
            yield self.schema.empty_table()
            return
        with _Expressions() as expressions:
            for start in range(0, self.rows, batch_rows):
                indices = np.arange(start, min(start + batch_rows, self.rows), dtype=np.int64)
                yield self.batch(indices, expressions)

    def batch(self, indices: np.ndarray, expressions: _Expressions) -> pa.Table:
        """The rows `indices`: generated columns first, then computed ones in order, each seeing those before."""
        arrays: dict[str, pa.Array] = {}
        for column in self.spec.columns:
            if column.expression is None:
                arrays[column.name] = self.column(column, indices)
        for column in self.spec.columns:
            if column.expression is not None:
                draw = self.draw(column, indices)
                # With no generated column the batch still needs its rows (for `select 1 from batch`).
                batch = pa.table(arrays) if arrays else pa.table({"row_index": pa.array(indices)})
                computed = expressions.compute(column, batch, draw.where)
                arrays[column.name] = _with_nulls(computed, _null_mask(column, draw, self.rows))
        return pa.Table.from_arrays([arrays[c.name] for c in self.spec.columns], schema=self.schema)

    def column(self, column: ColumnSpec, indices: np.ndarray) -> pa.Array:
        """A generated column's values for these rows: its own, or its parent's keys, then its nulls."""
        draw = self.draw(column, indices)
        values = self.referenced(draw) if column.references else _values(draw)
        return _with_nulls(values, _null_mask(column, draw, self.rows))

    def parent(self, draw: _Draw) -> tuple[ColumnSpec, str, int]:
        """(the referenced column, its table's key, that table's rows)."""
        target = draw.column.references or ""
        if target not in self.parents:
            raise SynthError(
                f"{draw.where} references {target}, which is not among the tables being made.",
                hint="Name an existing column as source.table.column, or remove `references`.",
            )
        parent, parent_rows = self.parents[target]
        return parent, target.rpartition(".")[0], parent_rows

    def referenced(self, draw: _Draw) -> pa.Array:
        """The parent's keys at the parent rows this column points to: every value exists in the parent."""
        parent, parent_key, parent_rows = self.parent(draw)
        picked = draw.pick(parent_rows)
        parent_draw = _Draw(parent, parent_key, self.seed, self.as_of, picked)
        picked = _skip_nulls(parent_draw, parent_rows)
        keys = key_values(parent, parent_key, picked, seed=self.seed, as_of=self.as_of)
        return _as_kind(keys, draw)

    def check(self, column: ColumnSpec) -> None:
        """Raise SynthError if the column cannot be made as specified, naming it and the fix."""
        draw = self.draw(column, np.zeros(0, dtype=np.int64))
        _check_spec(draw)
        if column.references:
            self.check_reference(draw)
        elif column.unique:
            capacity = _CAPACITY[column.generator](draw) if column.generator in _CAPACITY else None
            if capacity is not None and capacity < self.rows:
                raise SynthError(
                    f"{draw.where} is unique but its {column.generator} values have only {capacity} different "
                    f"values for {self.rows} rows.",
                    hint="Widen its min/max or values, drop `unique`, or make fewer rows.",
                )

    def check_reference(self, draw: _Draw) -> None:
        """A reference needs its parent made, with rows to point at (and enough of them when unique)."""
        parent, _, parent_rows = self.parent(draw)
        live = parent_rows - round(parent.nulls * parent_rows)
        if live <= 0 and self.rows > 0:
            raise SynthError(
                f"{draw.where} references {draw.column.references}, which has no values to point at "
                f"({parent_rows} rows, nulls {parent.nulls}).",
                hint="Give the parent table rows (and a key that is not all null).",
            )
        if draw.column.unique and (parent.nulls > 0 or parent_rows < self.rows):
            raise SynthError(
                f"{draw.where} is unique and references {draw.column.references}, which has "
                f"{live} non-null values for {self.rows} rows.",
                hint="Make fewer rows here, more in the parent, or drop `unique` (or the parent's nulls).",
            )


def _check_spec(draw: _Draw) -> None:
    """What is wrong with a column's spec on its own (generator, nulls, distribution, unique expression)."""
    column = draw.column
    if column.expression is None and column.references is None and column.generator not in _MAKERS:
        raise SynthError(
            f"{draw.where} has the generator {column.generator!r}, which sbdk does not have"
            + (" without an expression." if column.generator == "expression" else "."),
            hint=f"Use one of: {', '.join(GENERATORS)}.",
        )
    if not 0.0 <= column.nulls <= 1.0:
        raise SynthError(f"{draw.where} has nulls {column.nulls}.", hint="nulls is a share of rows, from 0 to 1.")
    if column.distribution not in DISTRIBUTIONS:
        raise SynthError(
            f"{draw.where} has the distribution {column.distribution!r}.",
            hint=f"Use one of: {', '.join(DISTRIBUTIONS)}.",
        )
    if column.unique and column.expression is not None:
        raise SynthError(
            f"{draw.where} is unique and computed by an expression: sbdk cannot make that hold.",
            hint="Drop `unique`, or make the column with a generator (sequence, uuid...).",
        )


def _values(draw: _Draw) -> pa.Array:
    """A generated column's values for the draw's rows (no nulls), as the column's kind."""
    values = _MAKERS[draw.column.generator](draw)
    if draw.column.unique and draw.column.generator in _SUFFIXED:
        # A pool holds ~1,000 values: a unique one gets the row's number after it ("Berlin-17").
        values = pc.binary_join_element_wise(values, _text_numbers(draw.indices + 1), _SUFFIXED[draw.column.generator])
    return _as_kind(values, draw)


def _as_kind(values: pa.Array, draw: _Draw) -> pa.Array:
    """Values in the column's Arrow type (an amount in a double column, a timestamp in a varchar one)."""
    target = arrow_type(draw.column.kind)
    if values.type == target:
        return values
    if pa.types.is_timestamp(values.type) and target == pa.string():
        values = values.cast(pa.timestamp("s"))  # "2025-03-01 12:00:00", not "...:00.000000"
    try:
        return pc.cast(values, target, safe=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SynthError(
            f"{draw.where} is {draw.column.kind.value}, which {draw.column.generator} values cannot be written as.",
            hint=f"Pick a generator that makes {draw.column.kind.value} values, or change the column's type.",
        ) from exc


def _null_mask(column: ColumnSpec, draw: _Draw, rows: int) -> np.ndarray | None:
    """Which of the draw's rows are null: exactly round(nulls x rows) of the table's rows, spread at random."""
    count = round(column.nulls * rows)
    if count == 0:
        return None
    return _permute(draw.key("nulls"), draw.indices, rows) < count


def _with_nulls(values: pa.Array, mask: np.ndarray | None) -> pa.Array:
    if mask is None or not mask.any():
        return values
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def _skip_nulls(parent: _Draw, parent_rows: int) -> np.ndarray:
    """Parent rows, each moved to the next one whose key is not null: a reference never points at a null."""
    picked = parent.indices.copy()
    mask = _null_mask(parent.column, parent, parent_rows)
    todo = np.flatnonzero(mask) if mask is not None else np.zeros(0, dtype=np.int64)
    while todo.size:
        picked[todo] = (picked[todo] + 1) % parent_rows
        moved = _Draw(parent.column, parent.table_key, parent.seed, parent.as_of, picked[todo])
        todo = todo[_null_mask(parent.column, moved, parent_rows)]
    return picked


# Counter-based hashing: numbers that depend only on a key and the row index.


@lru_cache(maxsize=4096)
def _key(seed: int, table_key: str, column: str, purpose: str) -> int:
    """A 64-bit key for one stream of numbers, stable across processes and Python versions (unlike hash())."""
    text = "\x1f".join((str(seed), table_key, column, purpose))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


@lru_cache(maxsize=4096)
def _round_keys(key: int) -> tuple[int, ...]:
    return tuple(_key(key, "", "", f"round {number}") for number in range(len(_ODD)))


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: a bijection of 64-bit integers in which every output bit depends on every input bit."""
    x = x ^ (x >> np.uint64(30))
    x *= _MIX[0]
    x ^= x >> np.uint64(27)
    x *= _MIX[1]
    x ^= x >> np.uint64(31)
    return x


def _uniform(key: int, indices: np.ndarray) -> np.ndarray:
    """One number in (0, 1) per row index: the same for the same key and index, however rows are batched."""
    x = _mix64(((indices.astype(np.uint64) + np.uint64(1)) * _GOLDEN) ^ np.uint64(key))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def _scramble(x: np.ndarray, key: int, bits: int) -> np.ndarray:
    """A keyed bijection of [0, 2**bits): xor a round key, multiply by an odd number, xor-shift; four rounds."""
    mask = (1 << bits) - 1
    shift = np.uint64(max(1, (bits + 1) // 2))
    for round_key, odd in zip(_round_keys(key), _ODD):
        x = ((x ^ np.uint64(round_key & mask)) * np.uint64(odd)) & np.uint64(mask)
        x = x ^ (x >> shift)
    return x


def _permute(key: int, indices: np.ndarray, size: int) -> np.ndarray:
    """Each index's image under a keyed permutation of [0, size): distinct indices give distinct values.

    Scramble within the smallest power of two holding `size`, and scramble again while the value falls
    outside (cycle walking): values spread over the whole range, with no table of the permutation, and
    index i's image needs nothing but i. Indices must lie in [0, size).
    """
    if size <= 1:
        return np.zeros(len(indices), dtype=np.int64)
    bits = (size - 1).bit_length()
    x = _scramble(indices.astype(np.uint64), key, bits)
    outside = np.flatnonzero(x >= np.uint64(size))
    while outside.size:
        x[outside] = _scramble(x[outside], key, bits)
        outside = outside[x[outside] >= np.uint64(size)]
    return x.astype(np.int64)


def _weighted(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn with the given weights from uniform numbers (searchsorted on the cumulative sum)."""
    cdf = np.cumsum(weights, dtype=np.float64)
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


# Bounds: min and max from the spec, defaults otherwise.


def _bound(draw: _Draw, name: str) -> float | None:
    value = getattr(draw.column, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad_bound(draw, name, value)
    try:
        return value if isinstance(value, int) else float(value)
    except ValueError:
        raise _bad_bound(draw, name, value) from None


def _moment(draw: _Draw, name: str) -> datetime | None:
    """A temporal bound as a naive UTC datetime: "2024-01-01", "2024-01-01 08:00:00", a YAML date."""
    value = getattr(draw.column, name)
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise _bad_bound(draw, name, value) from None
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def _bad_bound(draw: _Draw, name: str, value: object) -> SynthError:
    example = {"date": '"2024-01-01"', "timestamp": '"2024-01-01 00:00:00"'}.get(draw.column.generator, "a number")
    return SynthError(f"{draw.where} has {name} {value!r}.", hint=f"Write {name} as {example}.")


def _range(draw: _Draw, low: float | None, high: float | None, default: tuple[float, float]) -> tuple[float, float]:
    """(min, max): the spec's, or the default's; one bound alone moves the default range to start or end there."""
    span = default[1] - default[0]
    low = low if low is not None else (default[0] if high is None else min(default[0], high - span))
    high = high if high is not None else max(default[1], low + span)
    if low > high:
        raise SynthError(f"{draw.where} has min {draw.column.min} above max {draw.column.max}.", hint="Swap them.")
    return low, high


def _integer_bounds(draw: _Draw) -> tuple[int, int]:
    # A unique integer with no bounds needs room for many rows.
    default = (1, 2_147_483_647 if draw.column.unique else 100)
    low, high = _range(draw, _bound(draw, "min"), _bound(draw, "max"), default)
    return math.ceil(low), math.floor(high)


def _cent_bounds(draw: _Draw) -> tuple[int, int]:
    low, high = _range(draw, _bound(draw, "min"), _bound(draw, "max"), (1.0, 500.0))
    return math.ceil(round(low * 100, 6)), math.floor(round(high * 100, 6))


def _day_bounds(draw: _Draw) -> tuple[int, int]:
    """Days since 1970 from min to max; by default the HISTORY_DAYS days before as_of (as_of excluded)."""
    end = (draw.as_of - _EPOCH).days
    low, high = (None if m is None else (m.date() - _EPOCH).days for m in (_moment(draw, "min"), _moment(draw, "max")))
    first, last = _range(draw, low, high, (end - HISTORY_DAYS, end - 1))
    return int(first), int(last)


def _second_bounds(draw: _Draw, window_days: int) -> tuple[int, int]:
    """Seconds since 1970 from min to max; by default the `window_days` before as_of's midnight."""
    end = (draw.as_of - _EPOCH).days * _SECONDS_PER_DAY
    moments = (_moment(draw, "min"), _moment(draw, "max"))
    low, high = (None if m is None else math.floor((m - datetime(1970, 1, 1)).total_seconds()) for m in moments)
    first, last = _range(draw, low, high, (end - window_days * _SECONDS_PER_DAY, end - 1))
    return int(first), int(last)


# Generators: each makes its values for a draw's rows, in its own Arrow type.


def _sequence(draw: _Draw) -> pa.Array:
    """Row i holds min + i: keys in load order, unique at any volume; days or minutes for temporal kinds."""
    if draw.column.kind is Kind.DATE:
        return _dates(_day_bounds(draw)[0] + draw.indices)
    if draw.column.kind is Kind.TIMESTAMP:
        return _timestamps(_second_bounds(draw, HISTORY_DAYS)[0] + 60 * draw.indices)
    first = _bound(draw, "min")
    return pa.array((1 if first is None else math.ceil(first)) + draw.indices)


def _integer(draw: _Draw) -> pa.Array:
    low, high = _integer_bounds(draw)
    return pa.array(low + draw.pick(high - low + 1))


def _double(draw: _Draw) -> pa.Array:
    low, high = _range(draw, _bound(draw, "min"), _bound(draw, "max"), (0.0, 100.0))
    if draw.column.unique:
        return pa.array(low + (high - low) * (draw.pick(_DOUBLE_STEPS) / (_DOUBLE_STEPS - 1)))
    return pa.array(low + (high - low) * draw.position())


def _amount(draw: _Draw) -> pa.Array:
    low, high = _cent_bounds(draw)
    return _decimal(low + draw.pick(high - low + 1))


def _boolean(draw: _Draw) -> pa.Array:
    return pa.array(draw.pick(2) == 1)


def _date(draw: _Draw) -> pa.Array:
    first, last = _day_bounds(draw)
    return _dates(first + draw.pick(last - first + 1))


def _timestamp(draw: _Draw, window_days: int = HISTORY_DAYS) -> pa.Array:
    """Whole seconds, so unique timestamps are at least a second apart."""
    first, last = _second_bounds(draw, window_days)
    return _timestamps(first + draw.pick(last - first + 1))


def _recent_timestamp(draw: _Draw) -> pa.Array:
    return _timestamp(draw, window_days=1)


def _choice(draw: _Draw) -> pa.Array:
    values = _choice_values(draw)
    if draw.column.unique:
        return values.take(pa.array(draw.pick(len(values))))
    return values.take(pa.array(_weighted(_choice_weights(draw, len(values)), draw.uniform())))


def _choice_values(draw: _Draw) -> pa.Array:
    """The values a choice draws from, as the column's kind (text keeps `true`, not `True`)."""
    values = draw.column.values
    if not values:
        raise SynthError(
            f"{draw.where} is a choice but lists no values.",
            hint="List them in synth.yml (`values: [completed, shipped, returned]`, most common first), "
            "or pick another generator.",
        )
    if draw.column.kind is Kind.VARCHAR:
        return pa.array([str(v).lower() if isinstance(v, bool) else str(v) for v in values], pa.string())
    try:
        return pc.cast(pa.array(values), arrow_type(draw.column.kind))
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise SynthError(
            f"{draw.where} is {draw.column.kind.value} but its values {values!r} are not all {draw.column.kind.value}.",
            hint="Fix the values, or the column's type.",
        ) from exc


def _choice_weights(draw: _Draw, count: int) -> np.ndarray:
    """The spec's weights, or 1, 1/2, 1/3...: the first values most common, as real statuses are."""
    weights = draw.column.weights
    if weights is None:
        return 1.0 / np.arange(1, count + 1)
    array = np.asarray(weights, dtype=np.float64)
    if len(array) != count or not np.all(array >= 0) or not array.sum() > 0:
        raise SynthError(
            f"{draw.where} has {len(array)} weights for {count} values: {weights!r}.",
            hint="Give one weight per value, none negative (any scale: [70, 20, 10] or [0.7, 0.2, 0.1]).",
        )
    return array


def _uuid(draw: _Draw) -> pa.Array:
    """Version-4 UUIDs whose low 62 bits are a bijection of the row index: random-looking, never repeated."""
    indices = draw.indices.astype(np.uint64)
    high = _mix64(((indices + np.uint64(1)) * _GOLDEN) ^ np.uint64(draw.key("uuid")))
    high = (high & np.uint64(~0xF000 & 0xFFFFFFFFFFFFFFFF)) | np.uint64(0x4000)  # version 4
    low = _scramble(indices, draw.key("uuid low"), 62) | np.uint64(1 << 63)  # variant 10
    nibbles = np.concatenate(
        [(high[:, None] >> _NIBBLES) & np.uint64(15), (low[:, None] >> _NIBBLES) & np.uint64(15)], 1
    )
    chars = np.full((len(indices), 36), ord("-"), dtype=np.uint8)
    chars[:, _UUID_DIGITS] = _HEX[nibbles]
    offsets = np.arange(0, 36 * (len(indices) + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), len(indices), [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _countries(draw: _Draw) -> np.ndarray:
    """A country per row (an index into sbdk.generators._pools.COUNTRIES), by its share of users."""
    return _weighted(pools().country_weights, draw.uniform("country"))


def _people(draw: _Draw) -> tuple[pa.Array, pa.Array]:
    """Indices of a first and a last name per row, both from the row's country."""
    country = _countries(draw)
    p = pools()
    return (
        pa.array(p.first_names.sample(country, draw.uniform("first"))),
        pa.array(p.last_names.sample(country, draw.uniform("last"))),
    )


def _first_name(draw: _Draw) -> pa.Array:
    return pools().first_names.values.take(_people(draw)[0])


def _last_name(draw: _Draw) -> pa.Array:
    return pools().last_names.values.take(_people(draw)[1])


def _name(draw: _Draw) -> pa.Array:
    first, last = _people(draw)
    return pc.binary_join_element_wise(
        pools().first_names.values.take(first), pools().last_names.values.take(last), " "
    )


def _number_suffix(draw: _Draw) -> pa.Array:
    """The number in an email or user name: the row's number when unique (so the whole is), else 1 to 999."""
    if draw.column.unique:
        return _text_numbers(draw.indices + 1)
    return _text_numbers(1 + (draw.uniform("number") * 999).astype(np.int64))


def _email(draw: _Draw) -> pa.Array:
    first, last = _people(draw)
    p = pools()
    local = pc.binary_join_element_wise(p.first_names.slugs.take(first), p.last_names.slugs.take(last), ".")
    domain = _from_pool(draw, p.domains, "domain")
    return pc.binary_join_element_wise(pc.binary_join_element_wise(local, _number_suffix(draw), ""), domain, "@")


def _username(draw: _Draw) -> pa.Array:
    first, last = _people(draw)
    p = pools()
    initial = pc.utf8_slice_codeunits(p.first_names.slugs.take(first), 0, 1)
    return pc.binary_join_element_wise(initial, p.last_names.slugs.take(last), _number_suffix(draw), "")


def _from_country_pool(draw: _Draw, pool: Pool) -> pa.Array:
    return pool.values.take(pa.array(pool.sample(_countries(draw), draw.uniform())))


def _city(draw: _Draw) -> pa.Array:
    return _from_country_pool(draw, pools().cities)


def _country(draw: _Draw) -> pa.Array:
    names = pa.array([_COUNTRY_NAMES[code] for code in pools().country_codes.to_pylist()], pa.string())
    return names.take(pa.array(_countries(draw)))


def _country_code(draw: _Draw) -> pa.Array:
    return pools().country_codes.take(pa.array(_countries(draw)))


def _from_pool(draw: _Draw, pool: pa.Array, purpose: str = "value") -> pa.Array:
    """A uniform pick from a pool per row."""
    return pool.take(pa.array((draw.uniform(purpose) * len(pool)).astype(np.int64)))


def _company(draw: _Draw) -> pa.Array:
    """ "Lang Group" or "Lang & Moreau": built from the name pools (Faker's company() is slow, ~0.3 ms each)."""
    surnames = pools().last_names.values
    first, second = _from_pool(draw, surnames, "first"), _from_pool(draw, surnames, "second")
    suffix = _from_pool(draw, pa.array(_COMPANY_SUFFIXES), "suffix")
    paired = pa.array(draw.uniform("form") < 0.3)
    return pc.if_else(
        paired, pc.binary_join_element_wise(first, second, " & "), pc.binary_join_element_wise(first, suffix, " ")
    )


def _url(draw: _Draw) -> pa.Array:
    slugs = pools().last_names.slugs
    site = pc.binary_join_element_wise(_from_pool(draw, slugs), _from_pool(draw, pa.array(_TLDS), "tld"), "")
    return pc.binary_join_element_wise(pa.scalar("https://www"), site, ".")


def _faker_maker(method: str) -> Callable[[_Draw], pa.Array]:
    def make(draw: _Draw) -> pa.Array:
        return _from_pool(draw, _faker_pool(method))

    make.__doc__ = f"A pick from a pool of Faker's {method}() values."
    return make


_FAKER_LOCK = threading.Lock()


@cache
def _faker_pool(method: str) -> pa.Array:
    """About 1,000 distinct values of one Faker method, from an en_US Faker seeded with 0, once per process.

    The pool does not depend on the user's seed (that picks among its values), so it is built once and
    shared by every table; a seed alone fixes the data for a given Faker version. The lock keeps two
    threads from reseeding the shared Faker halfway through each other's pool.
    """
    with _FAKER_LOCK:
        fake = _faker()
        fake.seed_instance(0)
        values = dict.fromkeys(str(getattr(fake, method)()) for _ in range(_POOL_SIZE))
    return pa.array(list(values), pa.string())


@lru_cache(maxsize=1)
def _faker() -> Any:
    from faker import Faker

    return Faker("en_US")


def _dates(days: np.ndarray) -> pa.Array:
    return pa.array(days.astype(np.int32), pa.date32())


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype(np.int64) * 1_000_000, pa.timestamp("us"))


def _text_numbers(numbers: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(numbers, pa.int64()), pa.string())


def _decimal(cents: np.ndarray) -> pa.Array:
    """DECIMAL(18,2) from integer cents, negative ones too, without going through floats."""
    words = np.empty((len(cents), 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63  # the sign, extended into the high 64 bits of the 128-bit value
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(cents), [None, pa.py_buffer(words)])


_MAKERS: dict[str, Callable[[_Draw], pa.Array]] = {
    "sequence": _sequence,
    "integer": _integer,
    "double": _double,
    "amount": _amount,
    "boolean": _boolean,
    "date": _date,
    "timestamp": _timestamp,
    "recent_timestamp": _recent_timestamp,
    "choice": _choice,
    "uuid": _uuid,
    "email": _email,
    "first_name": _first_name,
    "last_name": _last_name,
    "name": _name,
    "username": _username,
    "city": _city,
    "country": _country,
    "country_code": _country_code,
    "state": _faker_maker("state"),
    "postal_code": _faker_maker("postcode"),
    "phone": _faker_maker("phone_number"),
    "url": _url,
    "company": _company,
    "address": _faker_maker("street_address"),
    "text": _faker_maker("word"),
    "sentence": _faker_maker("sentence"),
}
# Pool generators made unique by the row's number after the value, with this separator.
_SUFFIXED: dict[str, str] = {
    **dict.fromkeys(
        ("first_name", "last_name", "name", "city", "country", "country_code", "state", "postal_code", "phone"), "-"
    ),
    **dict.fromkeys(("company", "address", "text", "sentence"), " "),
    "url": "/",
}
# How many distinct values a unique column of these generators can hold (the others: any number).
_CAPACITY: dict[str, Callable[[_Draw], int]] = {
    "integer": lambda draw: _integer_bounds(draw)[1] - _integer_bounds(draw)[0] + 1,
    "double": lambda draw: _DOUBLE_STEPS,
    "amount": lambda draw: _cent_bounds(draw)[1] - _cent_bounds(draw)[0] + 1,
    "boolean": lambda draw: 2,
    "date": lambda draw: _day_bounds(draw)[1] - _day_bounds(draw)[0] + 1,
    "timestamp": lambda draw: _second_bounds(draw, HISTORY_DAYS)[1] - _second_bounds(draw, HISTORY_DAYS)[0] + 1,
    "recent_timestamp": lambda draw: _second_bounds(draw, 1)[1] - _second_bounds(draw, 1)[0] + 1,
    "choice": lambda draw: len(_choice_values(draw)),
}
