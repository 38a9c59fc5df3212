"""`sbdk query`: read-only SQL against the project's DuckDB file.

Two walls keep it read-only (issue #14). The file is opened by `connect_read_only`, which cannot
write anything or reach any other file whatever the SQL says; and before anything runs, every
statement is checked to be a read (`refuse_writes`), so a write gets a message saying why instead of
DuckDB's error. Every call opens the file and closes it again, so a watcher or the webhook server can
take it for their next run between two statements of an interactive session.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sbdk.errors import LockError, PipelineError, SbdkError, UsageError
from sbdk.run import lock
from sbdk.run.lock import active_run
from sbdk.settings import Settings
from sbdk.stores import duckdb as duckdb_store

DEFAULT_LIMIT = 1000
# The query nodes a SELECT may hold. DuckDB also accepts INSERT, UPDATE, DELETE and COPY as the body of
# a CTE inside a SELECT, and runs them (`with x as (copy ... to 'f') select 1` writes f).
READ_NODES = frozenset({"SELECT_NODE", "SET_OPERATION_NODE", "RECURSIVE_CTE_NODE", "CTE_NODE"})
_SETTING_VERBS = frozenset({"SET", "RESET", "USE"})
_FUNCTION_VERBS = frozenset({"PRAGMA", "CALL"})


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
    try:
        return str(statement.type).rsplit(".", 1)[-1]
    except ValueError:  # a type the Python package has no name for (UPDATE EXTENSIONS in 2.0.1)
        return "UNKNOWN"


def _tokens(sql: str) -> list[tuple[int, str, Any]]:
    """(offset, text, token type) of each token of `sql`, comments left out."""
    import duckdb

    tokens = duckdb.tokenize(sql)
    ends = [start for start, _kind in tokens[1:]] + [len(sql)]
    return [
        (start, sql[start:end].strip(), kind)
        for (start, kind), end in zip(tokens, ends)
        if kind != duckdb.token_type.comment
    ]


def _verb(sql: str) -> str | None:
    """The keyword a statement starts with (`INSTALL`, `RESET`...), comments skipped."""
    import duckdb

    tokens = _tokens(sql)
    if not tokens or tokens[0][2] != duckdb.token_type.keyword:
        return None
    return tokens[0][1].split("(")[0].upper() or None


def _explained(con: Any, sql: str) -> Any | None:
    """The statement `EXPLAIN [ANALYZE] [(options)] <statement>` explains, or None if unclear."""
    import duckdb

    rest = _tokens(sql)[1:]
    if rest and rest[0][1].upper() == "ANALYZE":
        rest = rest[1:]
    starts = []
    if rest and rest[0][1].startswith("("):
        # Either options, `EXPLAIN (ANALYZE, FORMAT json) ...`, or a query in parentheses: try both.
        depth = 0
        for index, (_start, text, _kind) in enumerate(rest):
            depth += text.count("(") - text.count(")")
            if depth <= 0:
                if index + 1 < len(rest):
                    starts.append(rest[index + 1][0])
                break
    if rest:
        starts.append(rest[0][0])
    for start in starts:
        try:
            statements = con.extract_statements(sql[start:])
        except duckdb.Error:
            continue
        if len(statements) == 1:
            return statements[0]
    return None


def _query_nodes(con: Any, sql: str) -> list[str]:
    """The kinds of query node (SELECT_NODE, INSERT_QUERY_NODE...) in DuckDB's parse of `sql`."""
    (serialized,) = con.execute("select json_serialize_sql(?)", [sql]).fetchone()
    tree = json.loads(serialized)
    if tree.get("error"):
        raise QueryError(str(tree.get("error_message")), hint="Fix the SQL and run it again.")
    kinds = []
    stack: list[Any] = [tree.get("statements")]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "cte_map" in item and "modifiers" in item:
                kinds.append(str(item.get("type")))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return kinds


def _write_in(con: Any, statement: Any) -> str | None:
    """What `statement` does besides reading (`DELETE`, `SET`...), or None when it only reads.

    Only SELECT reads, and EXPLAIN of a SELECT (EXPLAIN ANALYZE runs what it explains). SET, PRAGMA and
    CALL are refused too: a setting can point a log or a profile at any file, even the database itself,
    and PRAGMA and CALL reach the same settings.
    """
    kind = _statement_name(statement)
    sql = statement.query
    if kind == "SELECT":
        for node in _query_nodes(con, sql):
            if node not in READ_NODES:
                return node.removesuffix("_NODE").removesuffix("_QUERY")
        return None
    if kind == "EXPLAIN":
        inner = _explained(con, sql)
        return "EXPLAIN" if inner is None else _write_in(con, inner)
    # Messages name the verb typed: a type covers several (SET is also RESET and USE, LOAD also INSTALL,
    # PRAGMA also IMPORT DATABASE), but `WITH ... INSERT` is an INSERT.
    verb = _verb(sql)
    return verb if verb and verb != "WITH" else kind.replace("_", " ")


def refuse_writes(con: Any, sql: str, caller: str = "`sbdk query`") -> list[Any]:
    """The statements of `sql`, or a UsageError naming the first one that does more than read
    (`caller` names who refused it: `sbdk query`, the page's query box, the MCP query tool)."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_duckdb_message(exc), hint="Fix the SQL and run it again.") from exc
    if not statements:
        raise UsageError("There is no SQL statement to run.", hint='Give one, e.g. `sbdk query "show tables"`.')
    for statement in statements:
        kind = _write_in(con, statement)
        if kind is not None:
            raise UsageError(
                f"{caller} is read-only: refused the {kind} statement `{_shorten(statement.query)}`; nothing was run.",
                hint=_refusal_hint(kind, cli=caller == "`sbdk query`"),
            )
    return statements


def _refusal_hint(kind: str, *, cli: bool = True) -> str:
    if kind == "USE":
        return "Qualify names instead, e.g. `select * from raw.raw_users`."
    if kind in _SETTING_VERBS:
        return (
            "DuckDB settings are fixed in `sbdk query`: some (log_query_path, profiling_output, "
            "temp_directory) make DuckDB write files."
        )
    if kind == "PIVOT":
        return "List the values to pivot on, e.g. `pivot t on c in ('a', 'b') using count(*)`: that is a SELECT."
    if kind in _FUNCTION_VERBS:
        return (
            "To read what a PRAGMA or function returns, select from it: "
            "`pragma table_info('t')` is `select * from pragma_table_info('t')`."
        )
    if not cli:
        return "Change data through the pipelines or the dbt models and `sbdk dev`; to explore, use SELECT."
    return (
        "Change data through the pipelines or the dbt models and `sbdk dev`; to explore, "
        "use SELECT (export with `--format csv` or `--format json`)."
    )


def _shorten(sql: str, width: int = 60) -> str:
    text = " ".join(sql.split()).rstrip(";")
    return text if len(text) <= width else text[: width - 3] + "..."


def _duckdb_message(exc: BaseException) -> str:
    # DuckDB messages put a caret diagram on the lines after the first: keep them, minus blank lines.
    return "\n".join(line for line in str(exc).splitlines() if line.strip())


def _open_error(settings: Settings, exc: LockError) -> SbdkError:
    info = active_run(settings.paths.lock_file)
    if info is None:
        # active_run leaves out this process; a run recorded by it (the webhook server's worker, while
        # its page or MCP server reads) is the one holding the file.
        own = lock.holder(settings.paths.lock_file)
        info = own if own and own.get("pid") == os.getpid() else None
    if info is None:
        return exc
    return LockError(
        f"The database is busy: {lock.describe(info)} and is writing to it.",
        hint="Query again when the run has finished (a watcher releases the file between runs).",
    )


def _run_error(exc: BaseException, sql: str, number: int, total: int, caller: str = "`sbdk query`") -> SbdkError:
    """A DuckDB error while running statement `number` of `total` as the message a user acts on."""
    import duckdb

    text = str(exc)
    where = f"statement {number} of {total}, " if total > 1 else ""
    shown = f"{where}`{_shorten(sql)}`"
    if isinstance(exc, duckdb.PermissionException):
        reason = text.splitlines()[0].removeprefix("Permission Error: ")
        return UsageError(
            f"{caller} reads only the project's database: DuckDB refused {shown} ({reason}).",
            hint="Query its tables (`.tables` lists them); to bring a file in, add a pipeline under "
            "pipelines/ and run `sbdk dev`.",
        )
    if "configuration has been locked" in text:
        return UsageError(f"{caller} cannot change DuckDB settings: refused {shown}.", hint=_refusal_hint("SET"))
    if "read-only mode" in text:
        return UsageError(
            f"{caller} is read-only: DuckDB refused {shown}.",
            hint="Change data through the pipelines or the dbt models and `sbdk dev`.",
        )
    message = _duckdb_message(exc)
    return QueryError(
        f"In {where.removesuffix(', ')}: {message}" if where else message,
        hint='Fix the SQL and run it again (`.tables` or `sbdk query "show all tables"` lists what exists).',
    )


def _fetch(con: Any, statement: Any, limit: int | None) -> QueryResult:
    cursor = con.execute(statement)
    kind = _statement_name(statement)
    if cursor.description is None:
        return QueryResult((), (), [], False, limit, kind)
    columns = tuple(str(d[0]) for d in cursor.description)
    types = tuple(str(d[1]) for d in cursor.description)
    if limit:
        rows = cursor.fetchmany(limit + 1)
        truncated = len(rows) > limit
        rows = rows[:limit]
    else:
        rows, truncated = cursor.fetchall(), False
    return QueryResult(columns, types, rows, truncated, limit, kind)


def run_statements(
    settings: Settings,
    sql: str,
    *,
    limit: int | None = DEFAULT_LIMIT,
    timeout: float | None = None,
    caller: str = "`sbdk query`",
) -> list[QueryResult]:
    """Run `sql` (one or more read-only statements) and return the result of each, in order.

    `limit` caps the rows fetched per statement (None or 0: all rows); `truncated` says whether more
    existed. `timeout` stops the statements after that many seconds (the page and the MCP server).
    All or nothing: if a statement fails, the error names it and no result is returned.
    """
    import duckdb

    path = settings.paths.duckdb_path
    target = settings.active_target
    if target.type == "spark":
        from sbdk.ops import spark_query

        return spark_query.run_statements(settings, sql, limit=limit)
    if target.type != "duckdb" and not path.exists():
        raise PipelineError(
            f"`sbdk query` reads the project's DuckDB file {path}, which does not exist: this project "
            f"runs against target {target.name!r} ({target.describe()}).",
            hint="Query that server with its own client (e.g. psql), or run `sbdk dev --target dev` first.",
        )
    results = []
    try:
        with duckdb_store.connect_read_only(path) as con, _deadline(con, timeout):
            statements = refuse_writes(con, sql, caller)
            for number, statement in enumerate(statements, 1):
                try:
                    results.append(_fetch(con, statement, limit))
                except duckdb.InterruptException as exc:
                    raise UsageError(
                        f"The query ran past its limit of {timeout:g} s and was stopped.",
                        hint="Narrow it (a filter, an aggregate, a limit), or run it with `sbdk query`, which has no limit.",
                    ) from exc
                except duckdb.Error as exc:
                    raise _run_error(exc, statement.query, number, len(statements), caller) from exc
    except LockError as exc:
        raise _open_error(settings, exc) from exc
    return results


@contextmanager
def _deadline(con: Any, timeout: float | None) -> Iterator[None]:
    """Interrupt whatever `con` runs once `timeout` seconds have passed (no limit when None)."""
    if not timeout:
        yield
        return
    timer = threading.Timer(timeout, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def run_query(settings: Settings, sql: str, *, limit: int | None = DEFAULT_LIMIT) -> QueryResult:
    """Like `run_statements`, for callers that show one table: the result of the last statement."""
    return run_statements(settings, sql, limit=limit)[-1]


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
    if settings.active_target.type == "spark":
        from sbdk.ops import spark_query

        return spark_query.list_tables(settings)
    return run_query(settings, TABLES_SQL, limit=None)


def json_value(value: Any) -> Any:
    """`value` as something json.dumps writes as strict JSON (dates ISO 8601, decimals as numbers,
    NaN and ±Infinity as null: JSON has no such numbers, and Python would write bare `NaN`)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
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
