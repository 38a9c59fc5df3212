"""What the page and the MCP server read from the database: row counts, rows, column profiles, charts.

Each function takes an open read-only connection (sbdk.stores.duckdb.connect_read_only) and a relation
(schema, name) from dbt's parse; values come back JSON-ready (sbdk.ops.query.json_value). Profiles and
charts of large tables look at a sample, so that every answer stays fast at 10x the default volume.
"""

from __future__ import annotations

from typing import Any

from sbdk.ops.query import json_value

SAMPLE_ROWS = 50_000  # a profile of a larger relation looks at a sample of about this many rows
TOP_VALUES = 8
BINS = 20
CHART_POINTS = 2_000
CHART_BARS = 30
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
    "DECIMAL",
)
_TEMPORAL = ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S")


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def qualified(relation: tuple[str, str]) -> str:
    return f"{quote(relation[0])}.{quote(relation[1])}"


def is_numeric(db_type: str) -> bool:
    return db_type.upper().split("(")[0] in _NUMERIC


def is_temporal(db_type: str) -> bool:
    return db_type.upper().split("(")[0] in _TEMPORAL


def relations(con: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(schema, name) -> {type: table|view, rows} of every relation a user can see (rows: of tables
    only, from DuckDB's own count; raw tables from sbdk's bookkeeping)."""
    from sbdk.stores import duckdb as duckdb_store

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for schema, name, kind in con.execute(
        "select table_schema, table_name, table_type from information_schema.tables "
        "where table_catalog = current_database() and table_schema not like '\\_sbdk%' escape '\\'"
    ).fetchall():
        found[(schema, name)] = {"type": "table" if kind == "BASE TABLE" else kind.lower(), "rows": None}
    for schema, name, size in con.execute(
        "select schema_name, table_name, estimated_size from duckdb_tables() where database_name = current_database()"
    ).fetchall():
        if (schema, name) in found:
            found[(schema, name)]["rows"] = int(size)
    for table, (_schema, rows) in duckdb_store.live_tables(con).items():
        if (duckdb_store.RAW_SCHEMA, table) in found:
            found[(duckdb_store.RAW_SCHEMA, table)]["rows"] = int(rows)
    return found


def columns(con: Any, relation: tuple[str, str]) -> list[tuple[str, str]]:
    """(name, database type) of each column of `relation`, in order; [] when it does not exist."""
    return [
        (str(name), str(kind))
        for name, kind in con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_catalog = current_database() and table_schema = ? and table_name = ? order by ordinal_position",
            list(relation),
        ).fetchall()
    ]


def count(con: Any, relation: tuple[str, str]) -> int:
    return int(con.execute(f"select count(*) from {qualified(relation)}").fetchone()[0])


def rows(con: Any, relation: tuple[str, str], offset: int, limit: int) -> dict[str, Any]:
    """One page of `relation`'s rows. DuckDB keeps a table's insertion order through LIMIT and OFFSET,
    but not the order of a view's joins or GROUP BY (its documentation, "Order Preservation"): a
    view's pages follow all its columns, so paging through it never repeats or skips a row."""
    is_view = con.execute(
        "select count(*) from duckdb_views() where database_name = current_database() and schema_name = ? "
        "and view_name = ?",
        list(relation),
    ).fetchone()[0]
    order = " order by all" if is_view else ""
    cursor = con.execute(f"select * from {qualified(relation)}{order} limit ? offset ?", [limit, offset])
    names = [str(d[0]) for d in cursor.description or ()]
    types = [str(d[1]) for d in cursor.description or ()]
    data = [[json_value(v) for v in row] for row in cursor.fetchall()]
    return {
        "columns": names,
        "types": types,
        "rows": data,
        "offset": offset,
        "limit": limit,
        "total": count(con, relation),
    }


def profile(con: Any, relation: tuple[str, str]) -> dict[str, Any]:
    """Per column: null %, distinct values, min and max, and a histogram of a number or
    a date, or the top values of anything else.

    Past `SAMPLE_ROWS` rows, of a sample of DuckDB's blocks (cheap on a table and on a plain view of
    one). The relation is read once into a temporary table of this read-only connection (DuckDB keeps
    it in memory, outside the file), so a view computes its query once, not once per column."""
    table = qualified(relation)
    cols = columns(con, relation)
    total = count(con, relation)
    pct = min(100.0, round(100.0 * SAMPLE_ROWS / total, 2)) if total else 100.0
    sample = f" using sample {pct}% (system)" if total > SAMPLE_ROWS else ""
    con.execute(f"create or replace temp table _sbdk_profile as select * from {table}{sample}")
    try:
        return _profile_of(con, "_sbdk_profile", cols, total)
    finally:
        con.execute("drop table if exists _sbdk_profile")


def _profile_of(con: Any, source: str, cols: list[tuple[str, str]], total: int) -> dict[str, Any]:
    measures = []
    for name, db_type in cols:
        column = quote(name)
        if _nested(db_type):
            measures.append(f"count({column}), null, null, null")
        else:
            measures.append(f"count({column}), count(distinct {column}), min({column}), max({column})")
    row = con.execute(f"select count(*), {', '.join(measures)} from {source}").fetchone() if cols else (0,)
    seen = int(row[0] or 0)
    out = []
    for index, (name, db_type) in enumerate(cols):
        filled, distinct, low, high = row[1 + 4 * index : 5 + 4 * index]
        entry: dict[str, Any] = {
            "name": name,
            "type": db_type,
            "nulls_pct": round(100.0 * (seen - int(filled)) / seen, 2) if seen else None,
            "distinct": int(distinct) if distinct is not None else None,
            "min": _shorten(low),
            "max": _shorten(high),
            "histogram": None,
            "top": None,
        }
        column = quote(name)
        if (is_numeric(db_type) or is_temporal(db_type)) and (distinct or 0) > TOP_VALUES:
            entry["histogram"] = _histogram(con, source, column, db_type)
        elif not _nested(db_type):
            entry["top"] = [
                {"value": _shorten(value), "count": int(n)}
                for value, n in con.execute(
                    f"select {column}, count(*) as n from {source} group by all order by n desc, 1 limit {TOP_VALUES}"
                ).fetchall()
            ]
        out.append(entry)
    return {"rows": total, "sampled": seen < total, "sample_rows": seen, "columns": out}


def _nested(db_type: str) -> bool:
    upper = db_type.upper()
    return upper.startswith(("STRUCT", "MAP", "LIST", "UNION")) or upper.endswith("]")


def _shorten(value: Any, width: int = 80) -> Any:
    text = value if isinstance(value, str) else json_value(value)
    return text[: width - 3] + "..." if isinstance(text, str) and len(text) > width else text


def _histogram(con: Any, source: str, column: str, db_type: str) -> list[dict[str, Any]]:
    as_number = f"epoch({column})" if is_temporal(db_type) else f"{column}::double"
    rows = con.execute(
        f"""with v as (select {as_number} as x from {source} where {column} is not null),
        b as (select min(x) as lo, max(x) as hi from v)
        select least(floor((x - lo) / nullif((hi - lo) / {BINS}, 0)), {BINS - 1})::int as bin, count(*), any_value(lo), any_value(hi)
        from v, b group by bin order by bin"""
    ).fetchall()
    if not rows:
        return []
    lo, hi = float(rows[0][2]), float(rows[0][3])
    width = (hi - lo) / BINS or 1.0
    counts = {int(b or 0): int(n) for b, n, _lo, _hi in rows}
    temporal = is_temporal(db_type)

    def edge(x: float) -> Any:
        if not temporal:
            return round(x, 6)
        import datetime as dt

        return dt.datetime.fromtimestamp(x, dt.timezone.utc).isoformat()

    bins = BINS if hi > lo else 1
    return [
        {"lo": edge(lo + i * width), "hi": edge(lo + (i + 1) * width), "count": counts.get(i, 0)} for i in range(bins)
    ]


CATEGORY_HINTS = ("segment", "plan", "status", "channel", "country", "type", "tier", "device", "step", "category")
MAX_BARS = 30


def categories_of(con: Any, relation: tuple[str, str], cols: list[tuple[str, str]]) -> dict[str, int]:
    """Distinct values of each text or boolean column, in the relation's first 10,000 rows."""
    names = [n for n, t in cols if _is_category(t)]
    if not names:
        return {}
    counts = ", ".join(f"approx_count_distinct({quote(n)})" for n in names)
    row = con.execute(f"select {counts} from (select * from {qualified(relation)} limit 10000)").fetchone()
    return {name: int(value or 0) for name, value in zip(names, row)}


def _is_category(db_type: str) -> bool:
    return db_type.upper().startswith("VARCHAR") or db_type.upper() == "BOOLEAN"


def default_chart(cols: list[tuple[str, str]], distinct: dict[str, int] | None = None) -> dict[str, Any] | None:
    """The chart a table gets first; None when it has no measure at all.

    A table keyed by date (a date column and no id column, like `daily_kpis`) is a time series. A table
    of things (users, orders: an id column) is bars of its measure by a category with a few values
    (a plan, a segment, a status: `distinct` says how many), when it has one."""
    dates = [n for n, t in cols if is_temporal(t)]
    measures = [n for n, t in cols if is_numeric(t) and not _is_key(n)]
    if not measures:
        return None
    keyed = any(_is_key(n) for n, _t in cols)
    if dates and not keyed:
        return {"kind": "line", "x": dates[0], "y": measures[:3]}
    few = [n for n, d in (distinct or {}).items() if 2 <= d <= MAX_BARS]
    few.sort(key=lambda n: (not any(h in n.lower() for h in CATEGORY_HINTS), (distinct or {})[n]))
    if few:
        return {"kind": "bar", "x": few[0], "y": measures[:1]}
    if dates:
        return {"kind": "line", "x": dates[0], "y": measures[:3]}
    categories = [n for n, t in cols if _is_category(t)]
    x = categories[0] if categories else next((n for n, _t in cols if n not in measures), cols[0][0])
    return {"kind": "bar", "x": x, "y": measures[:1]}


def _is_key(name: str) -> bool:
    lowered = name.lower()
    return lowered == "id" or lowered.endswith(("_id", "_key"))


def chart(con: Any, relation: tuple[str, str], x: str | None, y: list[str]) -> dict[str, Any] | None:
    """The points of a chart of `relation`: `y` against `x` (both default to `default_chart`). A date
    x is a time series in date order; anything else is bars, summed by x, the largest first."""
    from sbdk.errors import UsageError

    cols = columns(con, relation)
    types = dict(cols)
    spec = default_chart(cols, categories_of(con, relation, cols)) if x is None or not y else None
    if x is None and not y:
        if spec is None:
            return None
        x, y = spec["x"], list(spec["y"])
    x = x or (spec or {}).get("x") or cols[0][0]
    y = y or list((spec or {}).get("y") or [])
    unknown = [c for c in [x, *y] if c not in types]
    if unknown:
        raise UsageError(f"{relation[1]} has no column {unknown[0]!r}.", hint=f"Its columns: {', '.join(types)}.")
    not_numbers = [c for c in y if not is_numeric(types[c])]
    if not_numbers or not y:
        raise UsageError(
            f"A chart's y axis needs numbers; {(not_numbers or ['(none)'])[0]} is not one.",
            hint="Pick numeric columns for y: " + ", ".join(n for n, t in cols if is_numeric(t)) + ".",
        )
    table = qualified(relation)
    kind = "line" if is_temporal(types[x]) else "bar"
    measures = ", ".join(f"sum({quote(c)})::double" if kind == "bar" else f"{quote(c)}::double" for c in y)
    if kind == "line":
        sql = f"select {quote(x)}, {measures} from {table} order by 1 limit {CHART_POINTS}"
    else:
        sql = f"select {quote(x)}, {measures} from {table} group by 1 order by 2 desc nulls last limit {CHART_BARS}"
    data = con.execute(sql).fetchall()
    numeric = [n for n, t in cols if is_numeric(t)]
    return {
        "kind": kind,
        "x": x,
        "y": y,
        "columns": [n for n, _t in cols],
        "numeric": numeric,
        "data": {
            "x": [json_value(row[0]) for row in data],
            "series": {c: [json_value(row[i + 1]) for row in data] for i, c in enumerate(y)},
        },
    }
