"""Operations on real projects after real runs: history of a success, a dbt failure and lock failures,
`query` in every format, `doctor` on healthy and locked projects, backup -> damage -> restore."""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import checksum, counts, db_path, purchases, query, raw_checksums

from sbdk.errors import LockError
from sbdk.run import history
from sbdk.run.runlog import find_log
from sbdk.run.runner import RunPlan, run
from sbdk.settings import load_settings

pytestmark = pytest.mark.slow
MARTS = {"user_metrics": "user_id", "daily_kpis": "activity_date"}
FAILING_TEST = "select user_id from {{ ref('stg_users') }} where user_id <= 3\n"


def plain(output: str) -> str:
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_checksums(root: Path) -> dict[str, str]:
    marts = {mart: checksum(root, f"main.{mart}", key) for mart, key in MARTS.items()}
    return {**raw_checksums(root), **marts}


@pytest.fixture
def copy(project_copy: Path) -> Path:
    return project_copy


@contextmanager
def database_held(path: Path) -> Iterator[int]:
    """Another program (a Python process) holds the DuckDB file open for writing; yields its pid."""
    ready = path.parent / "held.ready"
    code = (
        "import duckdb, sys, pathlib\n"
        f"con = duckdb.connect({str(path)!r})\n"
        f"pathlib.Path({str(ready)!r}).write_text('ok')\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert holder.poll() is None, "the holder process died"
            assert time.monotonic() < deadline, "the holder process did not open the database"
            time.sleep(0.05)
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        ready.unlink(missing_ok=True)


@contextmanager
def run_lock_held(root: Path) -> Iterator[None]:
    """Another sbdk run holds the project's run lock (an flock on its own open file)."""
    lock_file = root / ".sbdk" / "run.lock"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info = {"pid": os.getppid(), "command": "sbdk start", "started": time.time()}
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        os.ftruncate(fd, 0)
        os.close(fd)


# -- history


def test_history_records_a_successful_run(built: Path, cli) -> None:
    (entry,) = history.read(built / ".sbdk")

    assert re.fullmatch(r"[0-9a-f]{12}", entry["run_id"])
    assert entry["trigger"] == "sbdk dev"
    assert entry["status"] == "succeeded" and entry["error"] is None
    assert entry["options"]["pipelines"] is True and entry["options"]["dbt"] is True
    assert entry["started_at"] < entry["ended_at"]
    assert list(entry["stages"]) == ["generate", "load", "dbt_parse", "dbt_build"]
    assert entry["stages"]["dbt_parse"] > 0 and entry["stages"]["dbt_build"] > 0
    # The stages do not overlap: together they are (nearly) the whole run.
    assert sum(entry["stages"].values()) <= entry["seconds"]
    assert entry["rows"] == counts(built) == {"raw_users": 200, "raw_events": 1000, "raw_orders": purchases(built)}
    dbt = entry["dbt"]
    assert dbt["models_passed"] > 0 and dbt["tests_passed"] > 0
    assert dbt["models_failed"] == dbt["tests_failed"] == 0 and dbt["failures"] == []

    listing = cli("history", cwd=built)
    detail = json.loads(cli("history", entry["run_id"][:6], "--json", cwd=built).stdout)

    assert listing.exit_code == 0
    assert entry["run_id"] in listing.stdout and "succeeded" in listing.stdout
    # Runs made through the runner directly (not the CLI) write their log file too.
    (log_file,) = (built / "logs").glob(f"*_{entry['run_id']}.log")
    assert detail == {**entry, "log_file": str(log_file)}
    assert "run_finished" in log_file.read_text() and "status=succeeded" in log_file.read_text()


def test_history_and_json_log_of_a_dbt_failure(copy: Path, cli) -> None:
    (copy / "dbt" / "tests" / "no_early_users.sql").write_text(FAILING_TEST)
    settings = load_settings(copy / "sbdk_config.json")
    plan = RunPlan(pipelines=False, select=("stg_users", "no_early_users"))
    report = run(settings, plan, run_id="dbtfail00001", log_format="json")
    path = find_log(settings, "dbtfail00001")
    assert path is not None and path.parent == copy / "logs"

    assert not report.success
    entry = history.last(copy / ".sbdk", 1)[0]
    assert entry["run_id"] == "dbtfail00001" and entry["status"] == "failed"
    assert entry["error"] is None  # dbt ran; a failing test is a result, not an error
    assert entry["options"]["pipelines"] is False and entry["options"]["select"] == ["stg_users", "no_early_users"]
    assert set(entry["stages"]) == {"dbt_parse", "dbt_build"}
    assert entry["rows"] == {}  # dbt alone loads nothing
    assert entry["dbt"]["models_passed"] == 1 and entry["dbt"]["models_failed"] == 0
    assert entry["dbt"]["tests_failed"] == 1 and entry["dbt"]["tests_passed"] > 0
    (failure,) = entry["dbt"]["failures"]
    assert failure["name"] == "no_early_users" and failure["status"] == "fail"
    assert "Got 3 results" in failure["message"]

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all({"ts", "run_id", "stage", "event"} <= set(line) and line["run_id"] == "dbtfail00001" for line in lines)
    failed = [line for line in lines if line["event"] == "node_finished" and line["status"] == "fail"]
    assert [line["node"] for line in failed] == ["no_early_users"]
    assert lines[-1]["event"] == "run_finished" and lines[-1]["status"] == "failed"
    assert lines[-1]["failed_nodes"] == ["no_early_users"]

    listing = cli("history", cwd=copy)
    detail = cli("history", "dbtfail00001", cwd=copy)
    assert "dbtfail00001" in listing.stdout and "failed" in listing.stdout
    assert "no_early_users fail" in plain(detail.stdout)
    assert f"log file logs/{path.name}" in plain(detail.stdout)


def test_history_records_lock_failures(copy: Path) -> None:
    settings = load_settings(copy / "sbdk_config.json")

    with run_lock_held(copy), pytest.raises(LockError):
        run(settings, RunPlan(trigger="watch"), run_id="runlocked001")
    with database_held(db_path(copy)) as pid:
        with pytest.raises(LockError):
            run(settings, RunPlan(), run_id="dblocked0001")
        with pytest.raises(LockError):  # dbt alone: refused before dbt starts, too
            run(settings, RunPlan(pipelines=False), run_id="dblocked0002")

    by_id = {entry["run_id"]: entry for entry in history.read(copy / ".sbdk")}
    # Refused by the run lock: it never started. Stopped by another program's database lock: it
    # started (it held the run lock) and failed before changing anything.
    assert [by_id[r]["status"] for r in ("runlocked001", "dblocked0001", "dblocked0002")] == [
        "refused",
        "failed",
        "failed",
    ]
    for run_id in ("runlocked001", "dblocked0001", "dblocked0002"):
        entry = by_id[run_id]
        assert entry["stages"] == {} and entry["rows"] == {} and entry["dbt"] is None
        assert entry["started_at"] <= entry["ended_at"]
    assert by_id["runlocked001"]["trigger"] == "watch"
    assert "another sbdk run" in by_id["runlocked001"]["error"]
    assert "`sbdk start`" in by_id["runlocked001"]["error"]
    for run_id in ("dblocked0001", "dblocked0002"):
        assert "is in use by" in by_id[run_id]["error"]
        assert f"(PID {pid})" in by_id[run_id]["error"]


# -- query


SQL = "select user_id, email, signup_at, country from raw.raw_users order by user_id limit 5"


def test_query_returns_the_rows_in_every_format(built: Path, cli) -> None:
    expected = query(built, SQL)

    table = cli("query", SQL, cwd=built)
    as_csv = cli("query", SQL, "--format", "csv", cwd=built)
    as_json = cli("query", SQL, "--format", "json", cwd=built)

    assert table.exit_code == as_csv.exit_code == as_json.exit_code == 0
    text = plain(table.stdout)
    for user_id, email, _signup, country in expected:
        assert f"{user_id} │ {email} │" in text and f"│ {country}" in text
    assert text.endswith("5 rows")
    rows = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert rows[0] == ["user_id", "email", "signup_at", "country"]
    assert rows[1:] == [[str(u), e, s.isoformat(), c] for u, e, s, c in expected]
    records = json.loads(as_json.stdout)
    assert records == [{"user_id": u, "email": e, "signup_at": s.isoformat(), "country": c} for u, e, s, c in expected]
    total = cli("query", "select count(*) as n from main.user_metrics", "-f", "json", cwd=built)
    assert json.loads(total.stdout) == [{"n": 200}]


def test_query_truncates_big_results_with_a_note(built: Path, cli) -> None:
    result = cli("query", "select * from raw.raw_events", "--limit", "10", "-f", "csv", cwd=built)

    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 11
    assert "showing the first 10 rows only" in plain(result.stderr)


def test_query_refuses_delete_and_changes_nothing(built: Path, cli) -> None:
    before = counts(built)

    result = cli("query", "DELETE FROM raw.raw_users WHERE user_id < 100", cwd=built)

    assert result.exit_code == 2
    assert plain(result.stderr).startswith(
        "error: `sbdk query` is read-only: refused the DELETE statement "
        "`DELETE FROM raw.raw_users WHERE user_id < 100`; nothing was run."
    )
    assert counts(built) == before


def test_interactive_query_reads_statements_tables_and_dot_commands(built: Path, cli) -> None:
    script = ".tables\nselect count(*) as n\n  from raw.raw_users;\nselect 'a;b' as s; delete from raw.raw_orders;\nselect 42 as last\n"

    before = counts(built)

    result = cli("query", cwd=built, input=script)

    out = plain(result.stdout)
    assert "raw │ raw_users │ view" in out and "main │ user_metrics │ table" in out
    assert "_sbdk" not in out  # sbdk's bookkeeping is left out of .tables
    assert "n ━━━━━ 200 1 row" in out
    assert "a;b" in out
    assert "42" in out  # the last statement needs no semicolon at end of input
    assert "refused the DELETE statement" in plain(result.stderr)
    assert result.exit_code == 1  # piped input: a failed statement shows in the exit code
    assert counts(built) == before


def test_query_from_another_process_while_a_runner_process_idles(built: Path) -> None:
    # This test process ran dlt and dbt (the `built` fixture) and is still alive, like an idle watcher.
    result = subprocess.run(
        [sys.executable, "-m", "sbdk", "query", "select count(*) as n from main.user_metrics", "-f", "csv"],
        cwd=built,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == "n\n200\n"


def test_query_names_the_program_holding_the_database(copy: Path, cli) -> None:
    with database_held(db_path(copy)) as pid:
        result = cli("query", "select 1", cwd=copy)

    assert result.exit_code == 6
    assert f"(PID {pid})" in plain(result.stderr)


def test_query_during_a_run_says_a_run_is_writing(copy: Path, cli) -> None:
    with run_lock_held(copy), database_held(db_path(copy)):
        result = cli("query", "select 1", cwd=copy)

    assert result.exit_code == 6
    assert "The database is busy: another sbdk run" in plain(result.stderr)
    assert "`sbdk start`" in result.stderr


# -- doctor


def test_doctor_passes_on_a_fresh_project_and_on_a_built_one(project: Path, built: Path, cli) -> None:
    fresh = cli("doctor", "--json", cwd=project)
    loaded = cli("doctor", cwd=built)

    assert fresh.exit_code == 0, fresh.output
    report = json.loads(fresh.stdout)
    assert report["ok"] is True and report["failed"] == []
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {
        "python": "pass",
        "packages": "pass",
        "dbt-duckdb": "pass",
        "config": "pass",
        "database": "warn",  # no database before the first `sbdk dev`
        "dbt project": "pass",
        "dbt profile": "pass",
        "pipelines": "pass",
        "disk space": statuses["disk space"],
        "webhook secret": "warn",
    }
    assert statuses["disk space"] in ("pass", "warn")
    assert loaded.exit_code == 0, loaded.output
    out = plain(loaded.stdout)
    assert "PASS database data/dev.duckdb" in out and "raw_users 200" in out
    assert "No failures" in out


def test_doctor_names_a_locked_database_and_who_holds_it(copy: Path, cli) -> None:
    before = sha256(db_path(copy))
    with database_held(db_path(copy)) as pid:
        result = cli("doctor", "--json", cwd=copy)

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["failed"] == ["database"]
    (check,) = [c for c in report["checks"] if c["name"] == "database"]
    assert f"(PID {pid})" in check["detail"]
    assert "Close that program's connection" in check["fix"]
    assert sha256(db_path(copy)) == before


# -- backup and restore


def test_backup_then_damage_then_restore_gives_identical_data(copy: Path, cli, monkeypatch) -> None:
    import duckdb

    db = db_path(copy)
    before = data_checksums(copy)
    made = cli("backup", cwd=copy)
    assert made.exit_code == 0, made.output
    (backup,) = (copy / "backups").glob("dev-*.duckdb")
    assert plain(made.stdout).startswith(f"Backed up data/dev.duckdb to backups/{backup.name}")
    backup_sum = sha256(backup)

    # The damage: rows deleted under the raw views, a mart dropped.
    orders = counts(copy)["raw_orders"]
    con = duckdb.connect(str(db))
    (schema,) = con.execute("select load_schema from _sbdk.raw_tables where table_name = 'raw_orders'").fetchone()
    con.execute(f'delete from "{schema}".raw_orders where order_id % 2 = 0')
    con.execute("drop table main.daily_kpis")
    con.close()
    damaged = counts(copy)["raw_orders"]
    assert damaged < orders

    monkeypatch.setattr("sbdk.cli.backup._can_prompt", lambda: True)
    declined = cli("restore", str(backup), cwd=copy, input="n\n")
    assert declined.exit_code == 1
    assert "Backup backups/" in plain(declined.stdout) and f"raw_orders {orders:,} rows" in plain(declined.stdout)
    assert "Nothing restored." in declined.stdout
    assert counts(copy)["raw_orders"] == damaged

    restored = cli("restore", str(backup), cwd=copy, input="y\n")

    assert restored.exit_code == 0, restored.output
    assert sha256(db) == backup_sum
    assert data_checksums(copy) == before
    (saved,) = (copy / "backups").glob("*-before-restore.duckdb")
    assert f"saved as backups/{saved.name}" in plain(restored.stdout)
    assert duckdb.connect(str(saved), read_only=True).execute("select count(*) from raw.raw_orders").fetchone() == (
        damaged,
    )
    kinds = [b["kind"] for b in json.loads(cli("backup", "--list", "--json", cwd=copy).stdout)]
    assert kinds == ["manual", "before-restore"]


def test_restore_is_refused_while_another_program_holds_the_database(copy: Path, cli) -> None:
    backup = copy / "b.duckdb"
    assert cli("backup", str(backup), cwd=copy).exit_code == 0
    before = sha256(db_path(copy))

    with database_held(db_path(copy)) as pid:
        result = cli("restore", str(backup), "--yes", cwd=copy)

    assert result.exit_code == 6
    assert f"(PID {pid})" in plain(result.stderr)
    assert sha256(db_path(copy)) == before
    leftovers = list((copy / "backups").glob("*")) if (copy / "backups").exists() else []
    assert leftovers == [] and not list(db_path(copy).parent.glob(".*.tmp"))
