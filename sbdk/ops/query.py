"""`sbdk query`: read-only SQL against the project's DuckDB file.

Every statement opens the file read-only and closes it again, so a watcher or the webhook server can
take it for their next run between two statements of an interactive session.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from dataclasses import dataclass
from typing import Any

from sbdk.errors import LockError, PipelineError, SbdkError, UsageError
from sbdk.run import lock
from sbdk.run.lock import active_run
from sbdk.settings import Settings
from sbdk.stores import duckdb as duckdb_store

DEFAULT_LIMIT = 1000
# Statement types that only read. Anything else (INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, COPY,
# ATTACH, INSTALL/LOAD, EXPORT, VACUUM, ...) is refused before it runs; the connection is read-only
# as well, so a statement that slips past this list still cannot change the file.
READ_TYPES = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL", "SET", "VARIABLE_SET"})


class QueryError(SbdkError):
    """DuckDB rejected the SQL (syntax, unknown table...)."""


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[str, ...]
    types: tuple[str, ...]
    rows: list[tuple]
    truncated: bool  # more rows than `limit` exist; only the first `limit` are in `rows`
    limit: int | None
    statement_type: str

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def _statement_name(statement: Any) -> str:
    return str(statement.type).rsplit(".", 1)[-1]


def _first_word(sql: str) -> str:
    words = sql.strip().split(None, 1)
    return words[0].upper() if words else ""


def refuse_writes(con: Any, sql: str) -> list[Any]:
    """The statements of `sql`, or a UsageError naming the first one that would change the database."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_duckdb_message(exc), hint="Fix the SQL and run it again.") from exc
    if not statements:
        raise UsageError("There is no SQL statement to run.", hint='Give one, e.g. `sbdk query "show tables"`.')
    for statement in statements:
        kind = _statement_name(statement)
        if kind not in READ_TYPES:
            raise UsageError(
                f"`sbdk query` is read-only: refused the {kind.replace('_', ' ')} statement "
                f"`{_shorten(statement.query)}`; nothing was run.",
                hint="Change data through the pipelines or the dbt models and `sbdk dev`; to explore, "
                "use SELECT (export with `--format csv` or `--format json`).",
            )
    return statements


def _shorten(sql: str, width: int = 60) -> str:
    text = " ".join(sql.split()).rstrip(";")
    return text if len(text) <= width else text[: width - 3] + "..."


def _duckdb_message(exc: BaseException) -> str:
    # DuckDB messages put a caret diagram on the lines after the first: keep them, minus blank lines.
    return "\n".join(line for line in str(exc).splitlines() if line.strip())


def _open_error(settings: Settings, exc: LockError) -> SbdkError:
    info = active_run(settings.paths.lock_file)
    if info is None:
        return exc
    return LockError(
        f"The database is busy: {lock.describe(info)} and is writing to it.",
        hint="Query again when the run has finished (a watcher releases the file between runs).",
    )


def run_query(settings: Settings, sql: str, *, limit: int | None = DEFAULT_LIMIT) -> QueryResult:
    """Run `sql` (one or more read-only statements) and return the result of the last one.

    `limit` caps the rows fetched (None or 0: all rows); `truncated` says whether more existed.
    """
    import duckdb

    path = settings.paths.duckdb_path
    target = settings.active_target
    if target.type != "duckdb" and not path.exists():
        raise PipelineError(
            f"`sbdk query` reads the project's DuckDB file {path}, which does not exist: this project "
            f"runs against target {target.name!r} ({target.describe()}).",
            hint="Query that server with its own client (e.g. psql), or run `sbdk dev --target dev` first.",
        )
    try:
        with duckdb_store.connect(path, read_only=True) as con:
            statements = refuse_writes(con, sql)
            try:
                for statement in statements[:-1]:
                    con.execute(statement)
                cursor = con.execute(statements[-1])
                if cursor.description is None:
                    return QueryResult((), (), [], False, limit, _statement_name(statements[-1]))
                columns = tuple(str(d[0]) for d in cursor.description)
                types = tuple(str(d[1]) for d in cursor.description)
                if limit:
                    rows = cursor.fetchmany(limit + 1)
                    truncated = len(rows) > limit
                    rows = rows[:limit]
                else:
                    rows, truncated = cursor.fetchall(), False
            except duckdb.Error as exc:
                if "read-only mode" in str(exc):
                    raise UsageError(
                        f"`sbdk query` is read-only: DuckDB refused `{_shorten(sql)}`.",
                        hint="Change data through the pipelines or the dbt models and `sbdk dev`.",
                    ) from exc
                raise QueryError(
                    _duckdb_message(exc),
                    hint="Fix the SQL and run it again (`.tables` or "
                    '`sbdk query "show all tables"` lists what exists).',
                ) from exc
    except LockError as exc:
        raise _open_error(settings, exc) from exc
    return QueryResult(columns, types, rows, truncated, limit, _statement_name(statements[-1]))


TABLES_SQL = """
select table_schema as schema, table_name as name,
    case table_type when 'BASE TABLE' then 'table' else lower(table_type) end as type
from information_schema.tables
where table_catalog = current_database()
  and table_schema not like '\\_sbdk%' escape '\\'
order by case table_schema when 'raw' then 0 when 'main' then 1 else 2 end, table_schema, table_name
"""


def list_tables(settings: Settings) -> QueryResult:
    """The tables and views a user can query (sbdk's own bookkeeping schemas left out)."""
    return run_query(settings, TABLES_SQL, limit=None)


def json_value(value: Any) -> Any:
    """`value` as something json.dumps writes faithfully (dates ISO 8601, decimals as numbers)."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.timedelta, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def text_value(value: Any) -> str:
    """`value` as one CSV or table cell (NULL is the empty string)."""
    if value is None:
        return ""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


class StatementBuffer:
    """Collects typed lines until they form complete statements (ended by `;` outside quotes and
    comments), like the duckdb and psql shells."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    @property
    def pending(self) -> str:
        return "\n".join(self._lines).strip()

    def feed(self, line: str) -> list[str]:
        """Add a line; returns the statements it completed (often none, sometimes several)."""
        self._lines.append(line)
        text = "\n".join(self._lines)
        complete, rest = _split_complete(text)
        if complete:
            self._lines = [rest] if rest.strip() else []
        return complete

    def flush(self) -> str:
        """What is left (a last statement without `;`), emptying the buffer."""
        text = self.pending
        self._lines = []
        return text


def _split_complete(text: str) -> tuple[list[str], str]:
    statements: list[str] = []
    start = i = 0
    quote: str | None = None
    n = len(text)
    while i < n:
        char = text[i]
        if quote:
            if char == quote:
                # A doubled quote is an escaped quote inside the literal or identifier.
                if i + 1 < n and text[i + 1] == quote:
                    i += 1
                else:
                    quote = None
        elif char in ("'", '"'):
            quote = char
        elif text.startswith("--", i):
            newline = text.find("\n", i)
            if newline == -1:
                break
            i = newline
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                break
            i = end + 1
        elif char == ";":
            statement = text[start : i + 1].strip()
            if statement.strip(";").strip():
                statements.append(statement)
            start = i + 1
        i += 1
    return statements, text[start:]
