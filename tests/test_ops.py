"""Operations without a dbt run: history records, statement splitting, write refusal, run logs,
backups of a hand-made database, doctor on broken projects, and the help of every ops command."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest
import typer
from conftest import edit_config
from helpers import small_sbdk_db

from sbdk.errors import UsageError
from sbdk.ops.query import StatementBuffer, json_value, refuse_writes
from sbdk.run import history
from sbdk.run.reporters import Reporter
from sbdk.run.results import DbtReport, LoadReport, NodeResult, RunReport, TableLoad
from sbdk.run.runlog import RunLogReporter, find_log, log_path
from sbdk.settings import load_settings
from sbdk.stores import backups

OPS_COMMANDS = ("history", "query", "doctor", "backup", "restore")


def plain(output: str) -> str:
    """CLI output without colour codes and with Rich's line wrapping undone."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def fake_db(root: Path) -> Path:
    """A small database shaped like sbdk's in the project `root`."""
    return small_sbdk_db(root / "data" / "dev.duckdb")


# -- history


def node(name: str, resource_type: str, status: str, message: str | None = None) -> NodeResult:
    return NodeResult(f"{resource_type}.demo.{name}", name, resource_type, status, 0.1, message)


def test_history_record_read_last_and_find(tmp_path: Path) -> None:
    state = tmp_path / ".sbdk"
    started = datetime(2026, 11, 30, 7, 0, tzinfo=timezone.utc)
    ok = RunReport(
        run_id="aaaa11112222",
        trigger="sbdk dev",
        load=LoadReport((TableLoad("raw_users", 5, 0.1),), "replace", 0.1, 0.2, 0.01),
        dbt=DbtReport(
            "build", True, (node("stg_users", "model", "success"), node("t1", "test", "pass")), 1.5, parse_seconds=0.9
        ),
        row_counts={"raw_users": 5},
        seconds=2.0,
    )
    bad = RunReport(
        run_id="aaab33334444",
        trigger="watch",
        dbt=DbtReport("build", False, (node("t2", "test", "fail", "Got 3 results"),), 1.0),
        seconds=1.0,
    )
    history.record(state, ok, started_at=started, options={"seed": 1})
    history.record(state, bad, started_at=started, options={})
    # A torn line from a writer killed mid-write is skipped, not fatal.
    with history.history_path(state).open("a") as handle:
        handle.write('{"run_id": "torn')

    assert [r["run_id"] for r in history.last(state, 10)] == ["aaab33334444", "aaaa11112222"]
    assert [r["run_id"] for r in history.last(state, 1)] == ["aaab33334444"]
    first = history.find(state, "aaaa1")
    assert first["status"] == "succeeded"
    assert first["stages"] == {"generate": 0.1, "load": 0.21, "dbt_parse": 0.9, "dbt_build": 0.6}
    assert first["dbt"]["models_passed"] == 1 and first["dbt"]["tests_passed"] == 1
    second = history.find(state, "aaab33334444")
    assert second["status"] == "failed"
    assert second["dbt"]["tests_failed"] == 1
    assert second["dbt"]["failures"] == [{"name": "t2", "status": "fail", "message": "Got 3 results"}]
    with pytest.raises(UsageError, match="matches 2 runs"):
        history.find(state, "aaa")
    with pytest.raises(UsageError, match="No run 'zzz'"):
        history.find(state, "zzz")


def test_history_cli_on_a_project_without_runs(project: Path, cli) -> None:
    result = cli("history", cwd=project)

    assert result.exit_code == 0
    assert "No runs recorded yet" in plain(result.stdout)
    assert json.loads(cli("history", "--json", cwd=project).stdout) == []


def test_history_cli_unknown_run_is_a_usage_error(project: Path, cli) -> None:
    result = cli("history", "nope", cwd=project)

    assert result.exit_code == 2
    assert "No run 'nope' in the history of this project" in plain(result.stderr)


# -- query: statements and values


def test_statement_buffer_waits_for_a_semicolon_outside_quotes_and_comments() -> None:
    buffer = StatementBuffer()

    assert buffer.feed("select 'a;b' as x, \"c;d\"") == []
    assert buffer.feed("-- a comment; still open") == []
    assert buffer.feed("/* and ; here */ from t;") == [
        "select 'a;b' as x, \"c;d\"\n-- a comment; still open\n/* and ; here */ from t;"
    ]
    assert buffer.pending == ""
    assert buffer.feed("select 1; select 'it''s;'; select") == ["select 1;", "select 'it''s;';"]
    assert buffer.pending == "select"
    assert buffer.feed("2") == []
    assert buffer.flush() == "select\n2"
    assert buffer.pending == ""


@pytest.mark.parametrize(
    "sql, kind",
    [
        ("delete from raw.raw_users", "DELETE"),
        ("select 1; drop table x", "DROP"),
        ("insert into t values (1)", "INSERT"),
        ("update t set a = 1", "UPDATE"),
        ("create table t as select 1", "CREATE"),
        ("alter table t rename to u", "ALTER"),
        ("copy t to 'out.csv'", "COPY"),
        ("attach 'other.duckdb'", "ATTACH"),
        ("install httpfs", "INSTALL"),
        ("load httpfs", "LOAD"),
        ("pragma version", "PRAGMA"),
        ("call pragma_version()", "CALL"),
        ("set threads = 1", "SET"),
    ],
)
def test_write_statements_are_refused_before_running(sql: str, kind: str) -> None:
    con = duckdb.connect()
    with pytest.raises(UsageError) as caught:
        refuse_writes(con, sql)

    assert f"`sbdk query` is read-only: refused the {kind} statement" in caught.value.message
    assert "nothing was run" in caught.value.message


@pytest.mark.parametrize(
    "sql", ["select 1", "with a as (select 1) select * from a", "show tables", "describe select 1",
            "explain select 1", "from range(3)", "summarize select 1"]
)  # fmt: skip
def test_read_statements_are_allowed(sql: str) -> None:
    assert len(refuse_writes(duckdb.connect(), sql)) == 1


def test_json_values_are_plain_json() -> None:
    from datetime import date
    from decimal import Decimal

    assert json_value(Decimal("12.50")) == 12.5
    assert json_value(Decimal("3")) == 3
    assert json_value(datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)) == "2026-01-02T03:04:05+00:00"
    assert json_value({"d": [date(2026, 1, 2)]}) == {"d": ["2026-01-02"]}


def test_query_on_a_handmade_database(project: Path, cli) -> None:
    fake_db(project)

    table = cli("query", "select user_id from raw.raw_users order by 1", cwd=project)
    csv = cli("query", "select user_id, user_id * 2 as twice from raw.raw_users order by 1", "-f", "csv", cwd=project)
    truncated = cli("query", "select user_id from raw.raw_users order by 1", "--limit", "2", cwd=project)

    assert table.exit_code == 0, table.output
    assert plain(table.stdout).endswith("1 2 3 4 5 5 rows")
    assert csv.stdout == "user_id,twice\n1,2\n2,4\n3,6\n4,8\n5,10\n"
    assert plain(truncated.stdout).endswith("1 2 2 rows (truncated)")
    assert "showing the first 2 rows only" in plain(truncated.stderr)


def test_query_sql_error_names_the_problem(project: Path, cli) -> None:
    fake_db(project)

    result = cli("query", "select nope from raw.raw_users", cwd=project)

    assert result.exit_code == 1
    assert 'Referenced column "nope" not found' in plain(result.stderr)


def test_query_before_the_first_run_says_to_run_dev(project: Path, cli) -> None:
    result = cli("query", "select 1", cwd=project)

    assert result.exit_code == 5
    assert "There is no database at" in plain(result.stderr)
    assert "sbdk dev" in result.stderr


# -- run logs


class Recording(Reporter):
    def __init__(self) -> None:
        self.calls: list[str] = []

    def stage(self, name: str, detail: str = "") -> None:
        self.calls.append(f"stage {name}")

    def table_progress(self, table: str, rows: int, total: int | None) -> None:
        self.calls.append(f"progress {table}")

    def node_finished(self, node: NodeResult) -> None:
        self.calls.append(f"node {node.name}")

    def warn(self, message: str) -> None:
        self.calls.append(f"warn {message}")


def test_run_log_json_lines_parse_and_every_call_reaches_the_inner_reporter(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")
    inner = Recording()
    path = log_path(settings, "run000000001")
    report = RunReport(
        run_id="run000000001",
        trigger="sbdk dev",
        dbt=DbtReport("build", False, (node("t2", "test", "fail", "Got 3 results\nmore"),), 1.0),
        row_counts={"raw_users": 5},
    )

    with RunLogReporter(inner, path, "json", "run000000001", context={"trigger": "sbdk dev"}) as reporter:
        reporter.stage("generate", "raw_users")
        reporter.table_progress("raw_users", 5, 5)
        reporter.table_done("raw_users", 5, 0.25)
        reporter.stage("dbt", "build")
        reporter.node_finished(report.dbt.nodes[0])
        reporter.warn("careful")
        reporter.finish(report)

    assert inner.calls == ["stage generate", "progress raw_users", "stage dbt", "node t2", "warn careful"]
    assert path.parent == project / "logs"
    assert re.fullmatch(r"\d{8}T\d{6}Z_run000000001\.log", path.name)
    assert find_log(settings, "run000000001") == path
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        assert {"ts", "run_id", "stage", "event", "level"} <= set(line), line
        assert line["run_id"] == "run000000001"
        datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
    events = [(line["stage"], line["event"]) for line in lines]
    assert events == [
        ("run", "run_started"),
        ("generate", "stage_started"),
        ("generate", "table_done"),
        ("generate", "stage_finished"),
        ("dbt", "stage_started"),
        ("dbt", "node_finished"),
        ("dbt", "warning"),
        ("dbt", "stage_finished"),
        ("run", "run_finished"),
    ]
    assert lines[0]["trigger"] == "sbdk dev"
    assert lines[2]["rows"] == 5 and lines[2]["duration"] == 0.25
    assert lines[5]["status"] == "fail" and lines[5]["level"] == "error"
    assert lines[5]["message"] == "Got 3 results\nmore"
    assert lines[-1]["status"] == "failed" and lines[-1]["tests_failed"] == 1
    assert lines[-1]["failed_nodes"] == ["t2"] and lines[-1]["rows"] == {"raw_users": 5}
    assert all("duration" in line for line in lines if line["event"].endswith("_finished"))


def test_run_log_records_an_exception_leaving_the_block_as_a_failed_run(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "x.log"

    with pytest.raises(UsageError):
        with RunLogReporter(Reporter(), path, "text", "r1") as reporter:
            reporter.stage("load", "3 rows")
            raise UsageError("boom happened")

    lines = path.read_text().splitlines()
    assert len(lines) == 4
    assert " INFO    run=r1 stage=run run_started" in lines[0]
    assert 'stage=load stage_started detail="3 rows"' in lines[1]
    assert "stage=load stage_finished duration=" in lines[2]
    assert "ERROR   run=r1 stage=run run_finished" in lines[3]
    assert "status=failed duration=" in lines[3] and lines[3].endswith('error="boom happened"')


def test_an_unwritable_log_warns_once_and_the_run_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the folder should be")
    inner = Recording()

    with RunLogReporter(inner, blocker / "x.log", "json", "r1") as reporter:
        reporter.stage("dbt")
        reporter.finish()

    assert inner.calls[0].startswith("warn Cannot write the run log")
    assert inner.calls[1:] == ["stage dbt"]


# -- backups of a hand-made database


def test_backup_before_the_first_run_says_to_run_dev(project: Path, cli) -> None:
    result = cli("backup", cwd=project)

    assert result.exit_code == 5  # nothing loaded yet
    assert "There is no database at" in plain(result.stderr)
    assert "No backups in" in plain(cli("backup", "--list", cwd=project).stdout)


def test_backup_names_lists_and_never_overwrites(project: Path, cli) -> None:
    fake_db(project)
    settings = load_settings(project / "sbdk_config.json")

    first = cli("backup", cwd=project)
    second = backups.backup(settings)
    explicit = cli("backup", str(project / "mine.duckdb"), cwd=project)
    again = cli("backup", str(project / "mine.duckdb"), cwd=project)
    listing = json.loads(cli("backup", "--list", "--json", cwd=project).stdout)

    assert first.exit_code == 0, first.output
    assert "Backed up data/dev.duckdb to backups/dev-" in plain(first.stdout)
    assert "raw_users 5 rows" in plain(first.stdout)
    assert re.fullmatch(r"dev-\d{8}T\d{6}Z(-2)?\.duckdb", second.path.name)
    assert second.tables == {"raw_users": 5}
    assert explicit.exit_code == 0 and (project / "mine.duckdb").is_file()
    assert again.exit_code == 2
    assert "already exists; sbdk does not overwrite backups" in plain(again.stderr)
    assert [b["kind"] for b in listing] == ["manual", "manual"]
    assert listing[-1]["path"] == str(second.path)
    assert not list((project / "backups").glob(".*"))


def test_auto_backup_keeps_only_the_newest_n(project: Path) -> None:
    fake_db(project)
    settings = load_settings(project / "sbdk_config.json")
    assert backups.auto_backup(settings) is None  # backups.keep is 0 by default
    edit_config(project, backups={"keep": 2})
    settings = load_settings(project / "sbdk_config.json")
    manual = backups.backup(settings).path

    made = [backups.auto_backup(settings) for _ in range(3)]

    remaining = backups.list_backups(settings)
    assert [b.path for b in remaining if b.kind == "auto"] == made[1:]
    assert manual in [b.path for b in remaining]  # manual backups are never pruned
    assert all(p.name.endswith("-auto.duckdb") or re.search(r"-auto-\d+\.duckdb$", p.name) for p in made)


def test_restore_refuses_files_that_are_not_sbdk_databases(project: Path, cli) -> None:
    fake_db(project)
    other = project / "other.duckdb"
    duckdb.connect(str(other)).close()
    text = project / "notes.duckdb"
    text.write_text("hello")

    not_sbdk = cli("restore", str(other), "--yes", cwd=project)
    not_duckdb = cli("restore", str(text), "--yes", cwd=project)
    missing = cli("restore", "nowhere.duckdb", "--yes", cwd=project)

    assert not_sbdk.exit_code == 2
    assert "is a DuckDB database but not one made by sbdk" in plain(not_sbdk.stderr)
    assert not_duckdb.exit_code == 2
    assert "is not a DuckDB database file" in plain(not_duckdb.stderr)
    assert missing.exit_code == 2
    assert "There is no file" in plain(missing.stderr)


# -- doctor on broken projects (no dbt parse needed to find these)


def test_doctor_names_a_bad_config_and_skips_what_needs_it(project: Path, cli) -> None:
    edit_config(project, data_volume={"users": -1, "events": 0, "orders": 0})

    result = cli("doctor", "--json", cwd=project)

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["failed"] == ["config"]
    checks = {c["name"]: c for c in report["checks"]}
    assert "data_volume.users must be at least 0" in checks["config"]["detail"]
    assert checks["config"]["fix"]
    assert checks["python"]["status"] == "pass"
    assert checks["database"]["status"] == "skip"


def test_doctor_names_a_missing_dbt_project(project: Path, cli) -> None:
    (project / "dbt" / "dbt_project.yml").unlink()

    result = cli("doctor", cwd=project)

    assert result.exit_code == 1
    out = plain(result.stdout)
    assert "FAIL dbt project No dbt project at" in out
    assert "1 check failed: dbt project." in out
    assert "WARN database No database yet at data/dev.duckdb. fix: Run `sbdk dev`" in out


def test_doctor_outside_a_project_fails_the_config_check(tmp_path: Path, cli) -> None:
    result = cli("doctor", cwd=tmp_path)

    assert result.exit_code == 1
    assert "FAIL config No sbdk_config.json in" in plain(result.stdout)


def test_doctor_quiet_prints_only_failures(project: Path, cli) -> None:
    (project / "dbt" / "dbt_project.yml").unlink()

    result = cli("--quiet", "doctor", cwd=project)

    assert result.exit_code == 1
    assert plain(result.stdout).startswith("FAIL dbt project No dbt project at")
    assert "PASS" not in result.stdout and "WARN" not in result.stdout


def test_doctor_profile_pointing_elsewhere_fails(project: Path) -> None:
    from sbdk.ops.doctor import FAIL, check_profile

    profiles = project / "profiles" / "profiles.yml"
    profiles.write_text(re.sub(r'path: ".*"', "path: /tmp/elsewhere.duckdb", profiles.read_text()))

    check = check_profile(load_settings(project / "sbdk_config.json"))

    assert check.status == FAIL
    assert "points dbt at /tmp/elsewhere.duckdb" in check.detail
    assert "DBT_DUCKDB_PATH" in check.fix


def test_doctor_secret_check(project: Path, monkeypatch) -> None:
    from sbdk.ops.doctor import PASS, WARN, check_webhook_secret

    assert check_webhook_secret(load_settings(project / "sbdk_config.json")).status == WARN
    monkeypatch.setenv("SBDK_WEBHOOK_SECRET", "x" * 32)
    check = check_webhook_secret(load_settings(project / "sbdk_config.json"))
    assert check.status == PASS
    assert "x" * 32 not in check.detail


# -- the commands themselves


@pytest.mark.parametrize("name", OPS_COMMANDS)
def test_every_ops_command_has_help_with_an_example(cli, name: str) -> None:
    result = cli(name, "--help")

    assert result.exit_code == 0
    assert f"Usage: sbdk {name}" in result.output
    assert "Example" in result.output
    assert f"sbdk {name}" in plain(result.output.split("Example", 1)[1])


def test_global_quiet_and_log_format_options_reach_the_state(project: Path, cli) -> None:
    from sbdk.cli.app import app
    from sbdk.cli.options import CliState

    seen: list[CliState] = []

    @app.command("probe-state", hidden=True)
    def probe(ctx: typer.Context) -> None:
        seen.append(ctx.find_root().obj)

    try:
        result = cli("--quiet", "--log-format", "json", "probe-state", cwd=project)
    finally:
        app.registered_commands[:] = [c for c in app.registered_commands if c.name != "probe-state"]

    assert result.exit_code == 0, result.output
    assert seen[0].quiet is True and seen[0].log_format == "json"
    assert cli("--log-format", "xml", "version").exit_code == 2


def test_restore_without_yes_and_without_a_terminal_is_refused(project: Path, cli) -> None:
    fake_db(project)
    assert cli("backup", str(project / "b.duckdb"), cwd=project).exit_code == 0

    result = cli("restore", "b.duckdb", cwd=project)

    assert result.exit_code == 2
    assert "needs confirmation, but there is no terminal to ask in" in plain(result.stderr)
    assert "Pass --yes to confirm." in plain(result.stderr)


def test_backup_and_restore_wait_their_turn_behind_a_run(project: Path, cli) -> None:
    from sbdk.run.lock import run_lock

    fake_db(project)
    assert cli("backup", str(project / "b.duckdb"), cwd=project).exit_code == 0
    settings = load_settings(project / "sbdk_config.json")

    with run_lock(settings.paths.lock_file, "sbdk dev"):
        made = cli("backup", cwd=project)
        restored = cli("restore", "b.duckdb", "--yes", cwd=project)

    for result in (made, restored):
        assert result.exit_code == 6
        assert "`sbdk dev`" in plain(result.stderr) and "--wait" in result.stderr
    assert not (project / "backups").exists()


def test_a_failed_restore_leaves_the_database_and_no_half_file(project: Path, cli, monkeypatch) -> None:
    import hashlib

    db = fake_db(project)
    assert cli("backup", str(project / "b.duckdb"), cwd=project).exit_code == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    real_copy = backups._copy

    def disk_full(source: Path, target: Path) -> None:
        if ".restore-" in target.name:
            real_copy(source, target)  # part of the file reaches the disk, then the disk is full
            raise OSError(28, "No space left on device")
        real_copy(source, target)

    monkeypatch.setattr(backups, "_copy", disk_full)

    result = cli("restore", "b.duckdb", "--yes", cwd=project)

    assert result.exit_code == 1
    assert "No space left on device. The database was not changed." in plain(result.stderr)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["dev.duckdb"]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_interactive_query_in_a_terminal_prompts_and_keeps_a_history(project: Path) -> None:
    import pty
    import select
    import subprocess

    fake_db(project)
    leader, follower = pty.openpty()
    shell = subprocess.Popen(
        [sys.executable, "-m", "sbdk", "query"], cwd=project, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    seen = b""

    def until(marker: bytes) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while marker not in seen:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                seen += os.read(leader, 65536)

    try:
        until(b"sbdk> ")
        for line, marker in ((b"select count(*) as n\n", b"...> "), (b"from raw.raw_users;\n", b"1 row"),
                             (b".tables\n", b"raw_users"), (b".quit\n", None)):  # fmt: skip
            os.write(leader, line)
            if marker:
                until(marker)
        assert shell.wait(timeout=60) == 0
    finally:
        shell.kill()
        os.close(leader)

    text = plain(seen.decode(errors="replace"))
    assert "(read-only)" in text and "5 1 row" in text
    assert (project / ".sbdk" / "query_history").read_text().splitlines() == [
        "select count(*) as n",
        "from raw.raw_users;",
        ".tables",
        ".quit",
    ]


def test_doctor_checks_a_server_target_that_does_not_answer(project: Path, monkeypatch) -> None:
    import socket

    from sbdk.ops.doctor import FAIL, check_target

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    edit_config(
        project,
        target="prod",
        targets={"prod": {"type": "postgres", "host": "127.0.0.1", "port": port, "database": "shop", "user": "sbdk"}},
    )
    settings = load_settings(project / "sbdk_config.json")

    check = check_target(settings)

    assert check.name == "target prod" and check.status == FAIL
    assert f"127.0.0.1:{port}" in check.detail or "is not installed" in check.detail
    assert check.fix


def test_auto_backup_does_nothing_for_a_server_target(project: Path) -> None:
    fake_db(project)
    edit_config(
        project,
        backups={"keep": 3},
        target="prod",
        targets={"prod": {"type": "postgres", "host": "127.0.0.1", "database": "shop", "user": "sbdk"}},
    )

    assert backups.auto_backup(load_settings(project / "sbdk_config.json")) is None
    assert not (project / "backups").exists()
