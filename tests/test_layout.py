"""The CLI at 80 and 160 columns and through a pipe (issue #15, "80 columns").

On a terminal nothing is wider than the terminal, headers, dates and numbers are never split, a result
too wide for a table is shown as vertical records (psql's \\x), and prose wraps at word boundaries under
its label. Piped, nothing is wrapped and no line ends in spaces, so a path can be copied whole.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from helpers import small_sbdk_db

from sbdk.cli import history as history_cli
from sbdk.cli import query as query_cli
from sbdk.cli.doctor import _render_check
from sbdk.cli.progress import render_failures
from sbdk.cli.render import SbdkConsole, error, fit_columns, table_overhead
from sbdk.cli.sources import render_sources
from sbdk.errors import UsageError
from sbdk.ops.doctor import Check
from sbdk.ops.query import QueryResult
from sbdk.run import history
from sbdk.run.results import DbtReport, NodeResult, RunReport

FAILING_TEST = "select user_id from {{ ref('stg_users') }} where user_id <= 3\n"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")

DAILY_KPIS = (
    ("activity_date", "DATE"),
    ("new_users", "BIGINT"),
    ("active_users", "BIGINT"),
    ("sessions", "BIGINT"),
    ("events", "BIGINT"),
    ("orders", "BIGINT"),
    ("revenue_orders", "BIGINT"),
    ("buyers", "BIGINT"),
    ("revenue_usd", "DECIMAL(38,2)"),
    ("average_order_value_usd", "DOUBLE"),
)
KPI_ROWS = [
    (dt.date(2024, 12, 12), 1, 0, 0, 0, 0, 0, 0, Decimal("0.00"), None),
    (dt.date(2026, 10, 31), 12, 140, 310, 1520, 44, 39, 35, Decimal("3054.68"), 78.33),
]
# Shaped like the user_metrics mart: 25 columns, timestamps, too wide for a table even at 160.
USER_METRICS = (
    [("user_id", "BIGINT"), ("username", "VARCHAR"), ("country_code", "VARCHAR"), ("plan", "VARCHAR")]
    + [("acquisition_channel", "VARCHAR"), ("is_active", "BOOLEAN"), ("signed_up_at", "TIMESTAMP")]
    + [(f"metric_number_{n}", "BIGINT") for n in range(14)]
    + [("first_order_at", "TIMESTAMP"), ("last_order_at", "TIMESTAMP"), ("days_to_first_order", "BIGINT")]
    + [("segment", "VARCHAR")]
)
STAMP = dt.datetime(2026, 10, 9, 19, 7, 52, 102586)
USER_ROW = (2, "amorris2", "US", "basic", "search", True, STAMP, *range(100, 114), STAMP, STAMP, 0, "high_value")


def terminal(width: int) -> SbdkConsole:
    """A console that is a terminal `width` columns wide (no colour codes, so lines measure plainly)."""
    return SbdkConsole(file=io.StringIO(), width=width, force_terminal=True, color_system=None, highlight=False)


def piped() -> SbdkConsole:
    """A console writing to a file, as sbdk's consoles do when stdout is a pipe (Rich assumes 80 columns)."""
    return SbdkConsole(file=io.StringIO(), width=80, highlight=False)


def output(console: SbdkConsole) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def lines(text: str) -> list[str]:
    """The lines of `text` without escape codes or the padding a terminal does not show."""
    return [line.rstrip() for line in ANSI.sub("", text).splitlines()]


def screen(text: str) -> str:
    """`text` as a reader sees it: no escape codes, no padding at the line ends."""
    return "\n".join(lines(text))


def assert_fits(text: str, width: int) -> None:
    too_long = [line for line in ANSI.sub("", text).splitlines() if len(line) > width]
    assert not too_long, f"lines wider than {width} columns: {too_long}"


def assert_unpadded(text: str) -> None:
    padded = [line for line in text.splitlines() if line != line.rstrip()]
    assert not padded, f"lines ending in spaces: {padded}"


def result(columns, rows) -> QueryResult:
    names = tuple(name for name, _ in columns)
    return QueryResult(names, tuple(kind for _, kind in columns), list(rows), False, 1000, "SELECT")


def show(console: SbdkConsole, monkeypatch: pytest.MonkeyPatch, shown: QueryResult, *, vertical: bool = False) -> str:
    monkeypatch.setattr("sbdk.cli.render.console", console)
    query_cli.render(shown, query_cli.OutputFormat.table, vertical=vertical)
    return output(console)


# -- the query table at 80 and 160 columns


def test_a_table_that_fits_keeps_headers_and_dates_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    text = show(terminal(160), monkeypatch, result(DAILY_KPIS, KPI_ROWS))

    header = lines(text)[0]
    assert all(name in header.split() for name, _ in DAILY_KPIS)  # one header line, every name whole
    assert "[ RECORD" not in text
    assert any("2024-12-12" in line and "0.00" in line for line in lines(text))
    assert any(line.rstrip().endswith("78.33") for line in lines(text))  # numbers on the right, whole
    assert_fits(text, 160)


def test_a_table_too_wide_for_80_columns_becomes_vertical_records(monkeypatch: pytest.MonkeyPatch) -> None:
    text = show(terminal(80), monkeypatch, result(DAILY_KPIS, KPI_ROWS))

    shown = lines(text)
    assert shown[0].startswith("─[ RECORD 1 ]") and sum(line.startswith("─[ RECORD") for line in shown) == 2
    assert re.search(r"^activity_date +│ 2024-12-12$", screen(text), re.M)  # the name whole, the date whole
    assert re.search(r"^average_order_value_usd │ NULL$", screen(text), re.M)
    assert re.search(r"^revenue_usd +│ 3054\.68$", screen(text), re.M)
    assert shown[-1] == "2 rows"
    assert_fits(text, 80)


def test_user_metrics_is_vertical_even_at_160_and_timestamps_stay_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    for width in (80, 160):
        text = show(terminal(width), monkeypatch, result(USER_METRICS, [USER_ROW]))

        assert "[ RECORD 1 ]" in text
        assert re.search(r"^signed_up_at +│ 2026-10-09T19:07:52\.102586$", screen(text), re.M)
        assert re.search(r"^acquisition_channel +│ search$", screen(text), re.M)
        assert_fits(text, width)


def test_vertical_is_forced_by_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    small = result((("n", "INTEGER"), ("name", "VARCHAR")), [(1, "one"), (2, "two")])

    table = show(terminal(80), monkeypatch, small)
    records = show(terminal(80), monkeypatch, small, vertical=True)

    assert "[ RECORD" not in table and lines(table)[0].split() == ["n", "┃", "name"]
    assert lines(records)[:3] == ["─[ RECORD 1 ]─────", "n    │ 1", "name │ one"]
    assert "name │ two" in lines(records)


def test_long_text_is_cut_with_an_ellipsis_but_headers_never(monkeypatch: pytest.MonkeyPatch) -> None:
    long = "a very long description " * 10
    shown = result(
        (
            ("order_id", "BIGINT"),
            ("ordered_at", "TIMESTAMP"),
            ("description", "VARCHAR"),
            ("paid_by", "VARCHAR"),
        ),
        [(1, STAMP, long, "card")],
    )

    text = show(terminal(80), monkeypatch, shown)

    header, _rule, row, _count = lines(text)
    assert header.split() == ["order_id", "┃", "ordered_at", "┃", "description", "┃", "paid_by"]
    assert "2026-10-09T19:07:52.102586" in row and row.rstrip().endswith("card")
    assert "…" in row and long.strip() not in row
    assert_fits(text, 80)


def test_headers_are_never_cut_even_when_that_means_records(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"a_rather_long_column_name_{n}" for n in range(3)]
    text = show(terminal(80), monkeypatch, result([(name, "INTEGER") for name in names], [(1, 2, 3)]))

    assert "[ RECORD 1 ]" in text
    assert all(re.search(rf"^{name} │ \d$", screen(text), re.M) for name in names)


def test_fit_columns_shares_out_the_spare_width() -> None:
    assert fit_columns([10, 40], [10, 24], 80) == [10, 40]
    assert fit_columns([10, 80], [10, 24], 60) == [10, 60 - table_overhead(2) - 10]
    assert fit_columns([10, 80], [10, 60], 60) is None


# -- history at 80 columns


def run_report(run_id: str, *, failed: bool = False, trigger: str = "sbdk dev") -> RunReport:
    nodes = [NodeResult(f"model.demo.m{n}", f"m{n}", "model", "success", 0.1) for n in range(10)]
    nodes += [NodeResult(f"test.demo.t{n}", f"t{n}", "test", "pass", 0.1) for n in range(53)]
    if failed:
        nodes += [NodeResult("model.demo.broken", "broken", "model", "error", 0.1, "boom")]
        nodes += [NodeResult(f"test.demo.f{n}", f"f{n}", "test", "fail", 0.1, "Got 3 results") for n in range(2)]
    return RunReport(
        run_id=run_id,
        trigger=trigger,
        dbt=DbtReport("build", not failed, tuple(nodes), 5.0),
        row_counts={"raw_users": 10_000, "raw_events": 50_000, "raw_orders": 20_000},
        seconds=61.25,
        error="The DuckDB file is locked by another program (DBeaver, pid 4242); close it and run again."
        if failed
        else None,
    )


def history_entries(tmp_path: Path) -> list[dict]:
    started = dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.timezone.utc)
    history.record(tmp_path, run_report("3dc79d06139b"), started_at=started, options={})
    history.record(
        tmp_path,
        run_report("9f3e2a1b7c44", failed=True, trigger="webhook push a1b2c3d"),
        started_at=started,
        options={},
    )
    return history.last(tmp_path, 10)


def test_history_at_80_columns_keeps_run_started_status_and_seconds_whole(tmp_path: Path) -> None:
    console = terminal(80)

    history_cli._render_list(console, history_entries(tmp_path), total=2)

    text = output(console)
    shown = lines(text)
    assert [cell.strip() for cell in shown[0].split("┃")][:4] == ["run", "started", "status", "seconds"]
    assert re.search(r"^ 9f3e2a1b7c44 │ 2026-11-30 \d\d:\d\d │ failed +│ +61\.2 │", screen(text), re.M)
    assert re.search(
        r"^ 3dc79d06139b │ 2026-11-30 \d\d:\d\d │ succeeded │ +61\.2 │ 10 ok +│ 53 pass", screen(text), re.M
    )
    assert "1 failed" in text and "2 failed" in text  # the failures show, each whole
    table = "\n".join(line for line in shown if "│" in line or "┃" in line)
    assert "…" not in table
    assert_fits(text, 80)


def test_history_at_160_columns_shows_every_column(tmp_path: Path) -> None:
    console = terminal(160)

    history_cli._render_list(console, history_entries(tmp_path), total=2)

    header = lines(output(console))[0]
    assert [cell.strip() for cell in header.split("┃")] == [
        "run", "started", "trigger", "status", "seconds", "rows", "models", "tests",
    ]  # fmt: skip
    assert "webhook push a1b2c3d" in output(console) and "80,000" in output(console)
    assert_fits(output(console), 160)


def test_history_piped_is_whole_and_unpadded(tmp_path: Path) -> None:
    console = piped()

    history_cli._render_list(console, history_entries(tmp_path), total=2)

    text = output(console)
    assert lines(text)[0].split("┃")[2].strip() == "trigger"  # every column, at its natural width
    assert re.search(r"^9f3e2a1b7c44 The DuckDB file is locked .* run again\.$", screen(text), re.M)
    assert_unpadded(text)


# -- prose: doctor, errors


LONG_DETAIL = (
    "SBDK_WEBHOOK_SECRET is not set: `sbdk webhooks` refuses every delivery (only needed for webhooks), "
    "and /a/rather/long/path/to/the/project/.env does not exist yet."
)
LONG_FIX = (
    "Add SBDK_WEBHOOK_SECRET=... to .env (make one with `python -c 'import secrets; print(secrets.token_hex(32))'`)."
)


def test_doctor_wraps_at_word_boundaries_with_a_hanging_indent() -> None:
    console = terminal(80)

    _render_check(console, Check("webhook secret", "warn", LONG_DETAIL, LONG_FIX))

    shown = lines(output(console))
    assert_fits(output(console), 80)
    assert shown[0].startswith("WARN  webhook secret  SBDK_WEBHOOK_SECRET is not set")
    fix = next(index for index, line in enumerate(shown) if "fix:" in line)
    assert fix >= 2 and all(line.startswith(" " * 22) and line[22] != " " for line in shown[1:fix])  # under the detail
    assert shown[fix].startswith(" " * 22 + "fix: Add")
    assert all(line.startswith(" " * 27) for line in shown[fix + 1 :])  # under the text of the fix
    # No word was split: the words printed are the words given.
    assert " ".join(shown).split() == ["WARN", "webhook", "secret", *LONG_DETAIL.split(), "fix:", *LONG_FIX.split()]


def test_doctor_piped_is_one_line_per_check() -> None:
    console = piped()

    _render_check(console, Check("webhook secret", "warn", LONG_DETAIL, LONG_FIX))

    assert output(console).splitlines() == [
        f"WARN  webhook secret  {LONG_DETAIL}",
        f"{' ' * 22}fix: {LONG_FIX}",
    ]


def test_errors_wrap_under_their_label_on_a_terminal_and_not_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = UsageError(LONG_DETAIL, hint=LONG_FIX)
    on_terminal, to_pipe = terminal(80), piped()
    for console in (on_terminal, to_pipe):
        monkeypatch.setattr("sbdk.cli.render.err_console", console)
        error(exc, verbose=False)

    shown = lines(output(on_terminal))
    assert shown[0].startswith("error: SBDK_WEBHOOK_SECRET") and shown[1].startswith("       ")
    assert_fits(output(on_terminal), 80)
    assert output(to_pipe).splitlines() == [f"error: {LONG_DETAIL}", f"fix: {LONG_FIX}"]


# -- dbt failures


def failed_report(compiled: Path) -> RunReport:
    node = NodeResult(
        "test.demo.no_early_users",
        "no_early_users",
        "test",
        "fail",
        0.1,
        "Got 3 results, configured to fail if != 0",
        failures=3,
        compiled_path=compiled,
    )
    return RunReport(run_id="dbtfail00001", trigger="sbdk dev", dbt=DbtReport("build", False, (node,), 1.0))


def test_a_compiled_sql_path_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / ("deeply_nested_folder_" * 4) / "target" / "compiled" / "demo" / "tests" / "no_early_users.sql"
    assert len(str(path)) > 100
    to_pipe, on_terminal = piped(), terminal(80)

    render_failures(to_pipe, failed_report(path))
    render_failures(on_terminal, failed_report(path))

    assert f"compiled SQL: {path}" in output(to_pipe).splitlines()
    assert_unpadded(output(to_pipe))
    # On a terminal the path goes on a line of its own, never split by sbdk (the terminal wraps it
    # softly and copies it whole).
    assert str(path) in lines(output(on_terminal))


# -- through a real pipe and a real terminal


def small_project_db(root: Path) -> None:
    """A database like a built project's: the daily_kpis mart and a wide table, plus sbdk's bookkeeping."""
    path = small_sbdk_db(root / "data" / "dev.duckdb")
    con = duckdb.connect(str(path))
    try:
        columns = ", ".join(f"{name} {kind}" for name, kind in DAILY_KPIS)
        con.execute(f"create table main.daily_kpis ({columns})")
        con.executemany(f"insert into main.daily_kpis values ({', '.join('?' * len(DAILY_KPIS))})", KPI_ROWS)
    finally:
        con.close()


def sbdk_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    return {**env, "TERM": "xterm-256color", **extra}


def run_piped(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbdk", *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=sbdk_env()
    )


def run_in_terminal(*args: str, cwd: Path, columns: int, **env: str) -> str:
    """`sbdk ARGS` with stdout and stderr on a pseudo-terminal `columns` wide; what it printed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "sbdk", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=sbdk_env(**env),  # Rich asks the terminal for its width
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=300) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_query_in_a_real_terminal_and_through_a_real_pipe(project: Path) -> None:
    small_project_db(project)
    sql = "select * from daily_kpis order by 1"

    narrow = run_in_terminal("query", sql, cwd=project, columns=80)
    wide = run_in_terminal("query", sql, cwd=project, columns=160)
    plain_pipe = run_piped("query", sql, cwd=project)
    vertical_pipe = run_piped("query", sql, "--vertical", cwd=project)

    assert "[ RECORD 2 ]" in ANSI.sub("", narrow) and re.search(r"^activity_date +│ 2026-10-31$", screen(narrow), re.M)
    assert_fits(narrow, 80)
    assert "[ RECORD" not in wide and "activity_date" in lines(wide)[0].split()
    assert_fits(wide, 160)
    assert plain_pipe.returncode == 0, plain_pipe.stderr
    table = plain_pipe.stdout.splitlines()
    assert len(table) == 2 + len(KPI_ROWS) + 1  # header, rule, one line per row, the count: nothing wrapped
    assert len(table[0]) > 80 and "\x1b" not in plain_pipe.stdout
    assert_unpadded(plain_pipe.stdout)
    assert "[ RECORD 1 ]" in vertical_pipe.stdout and "activity_date           │ 2024-12-12" in vertical_pipe.stdout
    assert_unpadded(vertical_pipe.stdout)


def test_no_color_is_respected_on_a_terminal(project: Path) -> None:
    history_entries(project / ".sbdk")

    coloured = run_in_terminal("history", cwd=project, columns=80)
    plain = run_in_terminal("history", cwd=project, columns=80, NO_COLOR="1")

    assert COLOUR.search(coloured), "the status should be coloured on a terminal"
    assert COLOUR.search(plain) is None
    assert ANSI.sub("", plain) == ANSI.sub("", coloured)
    assert_fits(plain, 80)


def test_vertical_with_csv_or_json_is_a_usage_error(project: Path, cli) -> None:
    small_project_db(project)

    refused = cli("query", "select 1", "--vertical", "--format", "json", cwd=project)

    assert refused.exit_code == 2
    assert "--vertical lays out tables" in refused.stderr


# -- a failing dbt test, through a real pipe


@pytest.mark.slow
def test_a_failing_test_piped_keeps_its_compiled_sql_path_on_one_line(project_copy: Path) -> None:
    (project_copy / "dbt" / "tests" / "no_early_users.sql").write_text(FAILING_TEST)

    result = run_piped("dev", "--dbt-only", "--select", "stg_users", "--select", "no_early_users", cwd=project_copy)

    assert result.returncode == 1, result.stderr
    compiled = project_copy / "dbt" / "target" / "compiled" / "demo" / "tests" / "no_early_users.sql"
    assert len(f"compiled SQL: {compiled}") > 80  # Rich would have wrapped it at 80 columns
    assert f"compiled SQL: {compiled}" in result.stdout.splitlines()
    assert_unpadded(result.stdout)
    assert "\x1b" not in result.stdout


@pytest.mark.slow
def test_the_marts_of_a_built_project_in_a_terminal_and_piped(built: Path) -> None:
    metrics = run_in_terminal("query", "select * from user_metrics limit 1", cwd=built, columns=160)
    kpis = run_in_terminal("query", "select * from daily_kpis order by 1 limit 3", cwd=built, columns=80)
    kpis_wide = run_in_terminal("query", "select * from daily_kpis order by 1 limit 3", cwd=built, columns=160)
    metrics_piped = run_piped("query", "select * from user_metrics limit 1", cwd=built)

    assert "[ RECORD 1 ]" in metrics and re.search(r"^signed_up_at +│ \d{4}-\d\d-\d\dT[\d:.]+$", screen(metrics), re.M)
    assert_fits(metrics, 160)
    assert "[ RECORD 3 ]" in kpis and re.search(r"^activity_date +│ \d{4}-\d\d-\d\d$", screen(kpis), re.M)
    assert_fits(kpis, 80)
    assert "activity_date" in lines(kpis_wide)[0].split() and "[ RECORD" not in kpis_wide
    assert_fits(kpis_wide, 160)
    assert metrics_piped.returncode == 0, metrics_piped.stderr
    assert len(metrics_piped.stdout.splitlines()) == 4  # header, rule, the row, the count
    assert_unpadded(metrics_piped.stdout)


# `sbdk sources` for a column many models read: each fact on its own line, whatever the output.
SOURCE_FACTS = [
    "inferred in models/marts/orders.sql:38 (joined to shop.order_items.order_id)",
    "inferred in models/marts/product_sales.sql:34 (joined to shop.order_items.order_id)",
    "tests in models/staging/stg_models.yml: not_null, unique",
]
SOURCE_ROWS = {
    "tables": [
        {
            "table": "shop.orders",
            "rows": 10_000,
            "columns": [
                {
                    "column": "id", "type": "bigint", "generator": "sequence", "constraints": "unique",
                    "from": SOURCE_FACTS, "default": "type not inferred: bigint from its name",
                    "edited": False, "in_dbt_project": True,
                },
            ],
        }
    ],
    "unsatisfied": [],
    "warnings": [],
}  # fmt: skip


def test_sources_piped_puts_each_fact_on_its_own_line() -> None:
    console = piped()

    render_sources(console, SOURCE_ROWS)

    text = screen(output(console))
    for fact in [*SOURCE_FACTS, "default: type not inferred: bigint from its name"]:
        assert re.search(rf"│ {re.escape(fact)} +│$", text, re.M), text
    # As wide as its longest fact, not as all of them in one line.
    assert max(len(line) for line in lines(text)) < 150
    assert_unpadded(output(console))


def test_sources_at_100_columns_fits_and_keeps_the_facts_apart() -> None:
    console = terminal(100)

    render_sources(console, SOURCE_ROWS)

    text = output(console)
    assert_fits(text, 100)
    cells = [line.split("│")[5].strip() for line in lines(text) if line.count("│") == 6]
    assert cells[0].startswith("inferred in") and sum(c.startswith("inferred in") for c in cells) == 2
    assert any(c.startswith("tests in") for c in cells) and any(c.startswith("default:") for c in cells)
