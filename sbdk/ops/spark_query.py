"""`sbdk query` on a spark target: read-only SQL against the lake's catalog.

Spark has no read-only session, so every statement is parsed by Spark's own parser first and runs only
when its plan is a query, or one of the few commands that only describe (SHOW, DESCRIBE, EXPLAIN).
Writes (INSERT, CREATE, DROP, ALTER, DELETE, MERGE, CACHE...), settings (SET, USE, ADD JAR) and calls
of Java methods (reflect, java_method) are refused, and SQL directly on files (`parquet.`/path``)
is switched off for the session.
"""

from __future__ import annotations

import re
from typing import Any

from sbdk.ops.query import QueryError, QueryResult, StatementBuffer
from sbdk.settings import Settings

# Commands that only read the catalog or show a plan (Spark runs a Command when it is planned).
READ_COMMANDS = frozenset(
    {
        "DescribeRelation",
        "DescribeColumn",
        "DescribeNamespace",
        "DescribeFunction",
        "ShowTables",
        "ShowTablesExtended",
        "ShowViews",
        "ShowColumns",
        "ShowNamespaces",
        "ShowFunctions",
        "ShowTableProperties",
        "ShowCreateTable",
        "ShowPartitions",
        "ExplainCommand",
    }
)
# Plans that write although they are no Command.
WRITE_PLANS = frozenset({"InsertIntoStatement", "InsertIntoDir", "InsertIntoDataSourceDirCommand"})
# Functions that call any static Java method: a way out of SQL.
_JAVA_CALLS = re.compile(r"'(reflect|java_method|try_reflect)\(", re.IGNORECASE)


def _statements(sql: str) -> list[str]:
    """The statements of `sql`, split as the interactive prompt splits them (a last one may lack `;`)."""
    buffer = StatementBuffer()
    statements = [*buffer.feed(sql), buffer.flush()]
    return [s.rstrip(";").strip() for s in statements if s.rstrip(";").strip()]


def _refusal(spark: Any, sql: str) -> str | None:
    """Why `sql` may not run here (what it does besides reading), or None."""
    plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(sql)
    jvm = spark._jvm
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    command = jvm.java.lang.Class.forName("org.apache.spark.sql.catalyst.plans.logical.Command", True, loader)
    name = str(plan.getClass().getSimpleName())
    if name in WRITE_PLANS or (command.isInstance(plan) and name not in READ_COMMANDS):
        return f"it is a {name} statement, not a read"
    match = _JAVA_CALLS.search(str(plan.toString()))
    if match:
        return f"it calls {match.group(1)}(), which runs Java code"
    return None


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_statements(settings: Settings, sql: str, *, limit: int | None) -> list[QueryResult]:
    """Like sbdk.ops.query.run_statements, on the active spark target. All or nothing: every statement
    is checked before the first runs."""
    from pyspark.errors import PySparkException

    from sbdk.stores.spark import SparkStore

    target = settings.active_target
    if target.master.startswith("sc://"):
        raise QueryError(
            f"`sbdk query` cannot read through Spark Connect ({target.master}): it checks that a statement only "
            "reads with Spark's own parser, which a Connect client cannot reach.",
            hint="Query the tables with the server's own tools, or declare a target with a local or spark:// master.",
        )
    store = SparkStore(target, settings)
    spark = store.spark()
    spark.conf.set("spark.sql.runSQLOnFiles", "false")
    statements = _statements(sql)
    if not statements:
        raise QueryError(
            "There is no SQL statement to run.", hint='Pass a SELECT, e.g. sbdk query "show tables in raw".'
        )
    numbered = len(statements) > 1
    for number, statement in enumerate(statements, 1):
        where = f"statement {number} of {len(statements)}: " if numbered else ""
        try:
            refusal = _refusal(spark, statement)
        except Exception as exc:
            raise QueryError(f"{where}{_message(exc)}", hint="Fix the SQL (Spark SQL) and run it again.") from exc
        if refusal:
            raise QueryError(
                f"{where}refused, {refusal}: `sbdk query` only reads.",
                hint="Use SELECT (or SHOW, DESCRIBE, EXPLAIN); change the data through pipelines and dbt models.",
            )
    results = []
    for number, statement in enumerate(statements, 1):
        where = f"statement {number} of {len(statements)}: " if numbered else ""
        try:
            frame = spark.sql(statement)
            rows = [tuple(row) for row in (frame.take(limit + 1) if limit else frame.collect())]
        except (PySparkException, Exception) as exc:
            translated = store.translate(exc)
            if translated is not None:
                raise translated from exc
            raise QueryError(f"{where}{_message(exc)}", hint="Fix the SQL (Spark SQL) and run it again.") from exc
        truncated = bool(limit) and len(rows) > (limit or 0)
        results.append(
            QueryResult(
                columns=tuple(frame.columns),
                types=tuple(t for _c, t in frame.dtypes),
                rows=rows[:limit] if limit else rows,
                truncated=truncated,
                limit=limit,
                statement_type="SELECT",
            )
        )
    return results


def list_tables(settings: Settings) -> QueryResult:
    """The tables and views of the lake's catalog (schema, name, type)."""
    from sbdk.stores.spark import SparkStore

    spark = SparkStore(settings.active_target, settings).spark()
    rows = []
    for database in sorted(row[0] for row in spark.sql("show databases").collect()):
        for table in spark.catalog.listTables(database):
            kind = "view" if table.tableType == "VIEW" else "table"
            rows.append((database, table.name, kind))
    rows.sort(key=lambda r: (r[0] != "raw", r[0], r[1]))
    return QueryResult(("schema", "name", "type"), ("string", "string", "string"), rows, False, None, "SELECT")
