"""Real Faker -> real dlt -> a real DuckDB file in tmp_path, at small volumes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest
from helpers import KEYS, counts, query, raw_checksums

from sbdk.errors import NothingToLoadError, PipelineError
from sbdk.pipelines.load import load
from sbdk.run import history
from sbdk.run.context import RunContext
from sbdk.run.plan import RunPlan
from sbdk.settings import DataVolume, load_settings


def run_load(root: Path, only: set[str] | None = None, **plan):
    """The loader alone (no lock, no dbt), as the runner calls it."""
    tables = frozenset(only) if only is not None else None
    context = RunContext.of(load_settings(root / "sbdk_config.json"), RunPlan(dbt=False, tables=tables, **plan))
    return load(context)


def purchases(root: Path) -> int:
    return query(root, "select count(*) from raw.raw_events where event_type = 'purchase'")[0][0]


def test_load_gives_exact_counts_and_relations_that_hold(project):
    report = run_load(project)
    bought = purchases(project)
    assert bought > 0
    assert {t.table: t.rows for t in report.tables} == {"raw_users": 200, "raw_events": 1_000, "raw_orders": bought}
    assert counts(project) == {"raw_users": 200, "raw_events": 1_000, "raw_orders": bought}
    # Every order is its purchase event's: same user and session, minutes later.
    matched = query(
        project,
        """select count(*) from raw.raw_orders o join raw.raw_events e
           on e.event_id = o.event_id and e.event_type = 'purchase' and e.user_id = o.user_id
           and e.session_id = o.session_id
           and o.ordered_at between e.occurred_at and e.occurred_at + interval 5 minute""",
    )
    assert matched == [(bought,)]
    for table, key in KEYS.items():
        assert query(project, f"select count(distinct {key}) from raw.{table}")[0][0] == counts(project)[table]
    orphans = query(
        project,
        "select count(*) from raw.raw_events e left join raw.raw_users u using (user_id) where u.user_id is null",
    )
    assert orphans == [(0,)]
    early = query(
        project,
        """select
             (select count(*) from raw.raw_events e join raw.raw_users u using (user_id)
              where e.occurred_at < u.signup_at),
             (select count(*) from raw.raw_orders o join raw.raw_users u using (user_id)
              where o.ordered_at < u.signup_at)""",
    )
    assert early == [(0, 0)]


def test_rerun_replaces_never_duplicates_and_keeps_one_copy(project):
    run_load(project)
    first = raw_checksums(project)
    run_load(project)
    assert counts(project) == {"raw_users": 200, "raw_events": 1_000, "raw_orders": purchases(project)}
    assert raw_checksums(project) == first
    loads = query(project, "select count(*) from information_schema.schemata where schema_name like '_sbdk_load_%'")
    assert loads == [(1,)]


def test_same_seed_same_checksums_other_seed_differs(make_project):
    a, b = make_project("a"), make_project("b")
    run_load(a)
    run_load(b)
    assert raw_checksums(a) == raw_checksums(b)
    run_load(b, seed=43)
    assert raw_checksums(a)["raw_events"] != raw_checksums(b)["raw_events"]


def test_volume_override_and_zero_rows(project):
    run_load(project, volume=DataVolume(users=50, events=0))
    assert counts(project) == {"raw_users": 50, "raw_events": 0, "raw_orders": 0}


def loaded_days(root: Path) -> dict[str, tuple]:
    rows = query(root, "select table_name, first_day, last_day from _sbdk.raw_tables order by 1")
    return {name: (first, last) for name, first, last in rows}


@pytest.mark.slow
def test_incremental_appends_the_next_whole_day_three_times(make_project):
    project = make_project(users=10_000, events=200_000)
    first_report = run_load(project)
    # The first load stops incremental_days (7) before as_of (2026-11-01), and says which days it holds.
    assert first_report.days == (date(2025, 11, 1), date(2026, 10, 24))
    assert set(loaded_days(project).values()) == {(date(2025, 11, 1), date(2026, 10, 24))}
    before = counts(project)
    appended = []
    for expected_day in (date(2026, 10, 25), date(2026, 10, 26), date(2026, 10, 27)):
        report = run_load(project, incremental=True)
        assert report.mode == "incremental" and report.days == (expected_day, expected_day)
        assert {t.table for t in report.tables} == {"raw_users", "raw_events", "raw_orders"}
        assert set(loaded_days(project).values()) == {(date(2025, 11, 1), expected_day)}
        appended.append({t.table: t.rows for t in report.tables})
    after = counts(project)
    for table in KEYS:
        assert after[table] == before[table] + sum(rows[table] for rows in appended)
        key = KEYS[table]
        assert query(project, f"select count(distinct {key}) from raw.{table}")[0][0] == after[table]
    # Each appended day holds only that day, and looks like an ordinary day of its weekday.
    days = query(
        project,
        """select cast(timezone('UTC', occurred_at) as date) d, count(*) from raw.raw_events
           where cast(timezone('UTC', occurred_at) as date) > date '2026-10-24' group by 1 order by 1""",
    )
    assert [d for d, _ in days] == [date(2026, 10, 25), date(2026, 10, 26), date(2026, 10, 27)]
    for day, events in days:
        usual = query(
            project,
            f"""select count(*) / 4.0 from raw.raw_events
                where cast(timezone('UTC', occurred_at) as date) in
                (date '{day}' - 7, date '{day}' - 14, date '{day}' - 21, date '{day}' - 28)""",
        )[0][0]
        assert 0.7 * usual <= events <= 1.3 * usual, (day, events, usual)
    # Orders still come one to one from purchases; nothing lies after the last appended day.
    assert after["raw_orders"] == purchases(project)
    assert query(project, "select max(occurred_at) < timestamptz '2026-10-28 00:00:00+00' from raw.raw_events") == [
        (True,)
    ]
    orphans = query(
        project,
        """select (select count(*) from raw.raw_events where user_id not in (select user_id from raw.raw_users)),
                  (select count(*) from raw.raw_events e join raw.raw_users u using (user_id)
                   where e.occurred_at < u.signup_at)""",
    )
    assert orphans == [(0, 0)]


def test_incremental_is_byte_identical_for_the_same_config(make_project):
    a, b = make_project("a"), make_project("b")
    for root in (a, b):
        run_load(root)
        run_load(root, incremental=True)
    assert raw_checksums(a) == raw_checksums(b)


def test_incremental_says_when_no_day_is_left(project):
    config = project / "sbdk_config.json"
    config.write_text(config.read_text().replace('"incremental_days": 7', '"incremental_days": 0'))
    run_load(project)
    before = raw_checksums(project)
    with pytest.raises(NothingToLoadError) as info:
        run_load(project, incremental=True)
    assert info.value.message == (
        "No day is left to append: the raw tables hold every day up to as_of (2026-11-01), "
        "from 2025-11-01 to 2026-10-31."
    )
    assert "Set a later as_of in sbdk_config.json" in info.value.hint
    assert raw_checksums(project) == before


def test_incremental_on_tables_an_earlier_sbdk_loaded_says_what_to_do(project):
    run_load(project)
    with duckdb.connect(str(project / "data" / "dev.duckdb")) as con:
        con.execute("update _sbdk.raw_tables set first_day = null, last_day = null")
    with pytest.raises(PipelineError, match="has no record of its days"):
        run_load(project, incremental=True)


def test_incremental_refuses_tables_that_end_on_different_days(project):
    run_load(project)
    with duckdb.connect(str(project / "data" / "dev.duckdb")) as con:
        con.execute("update _sbdk.raw_tables set last_day = last_day - 1 where table_name = 'raw_orders'")
    with pytest.raises(PipelineError, match="they end on different days"):
        run_load(project, incremental=True)


def test_incremental_before_any_load_says_what_to_do(project):
    with pytest.raises(PipelineError, match="has not been loaded yet"):
        run_load(project, incremental=True)


def test_generator_failing_after_first_batch_leaves_tables_byte_identical(project):
    run_load(project)
    before = raw_checksums(project)
    (project / "pipelines" / "events.py").write_text(
        textwrap.dedent(
            """
            from sbdk.generators import events

            TABLE = "raw_events"


            def generate(ctx):
                yield from events.generate(ctx.world)
                raise RuntimeError("disk on fire")
            """
        )
    )
    with pytest.raises(PipelineError) as info:
        run_load(project)
    assert "events.py, line 9" in info.value.message
    assert "RuntimeError: disk on fire" in info.value.message
    assert raw_checksums(project) == before


def test_independent_pipelines_are_generated_at_the_same_time(project):
    # Each of these two pipelines waits until the other one has started: loaded one after the other,
    # the first would wait in vain and fail when the barrier times out.
    pipelines = project / "pipelines"
    (pipelines / "_meeting.py").write_text("import threading\n\nPOINT = threading.Barrier(2, timeout=30)\n")
    for name in ("left", "right"):
        (pipelines / f"{name}.py").write_text(
            "import _meeting\n\n\ndef generate(ctx):\n    _meeting.POINT.wait()\n"
            f"    yield [{{'side': '{name}', 'n': i}} for i in range(3)]\n"
        )
    report = run_load(project)
    assert {t.table: t.rows for t in report.tables if t.table in ("raw_left", "raw_right")} == {
        "raw_left": 3,
        "raw_right": 3,
    }
    assert query(project, "select distinct side from raw.raw_right") == [("right",)]


def test_a_new_pipeline_file_becomes_a_raw_table(project):
    (project / "pipelines" / "visits.py").write_text(
        "def generate(ctx):\n    yield [{'visit_id': i, 'page': '/'} for i in range(ctx.volume.users)]\n"
    )
    report = run_load(project)
    assert "raw_visits" in {t.table for t in report.tables}
    assert query(project, "select count(*), count(distinct visit_id) from raw.raw_visits") == [(200, 200)]


def test_a_broken_pipeline_file_is_named_and_nothing_changes(project):
    run_load(project)
    before = raw_checksums(project)
    (project / "pipelines" / "broken.py").write_text("def generate(ctx):\n    yield [\n")
    with pytest.raises(PipelineError) as info:
        run_load(project)
    assert "broken.py, line 2" in info.value.message
    assert raw_checksums(project) == before


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("import sys\ndef generate(ctx):\n    sys.exit(3)\n", "exits.py, line 3"),
        ("class Stop(BaseException):\n    pass\ndef generate(ctx):\n    raise Stop('no')\n", "exits.py, line 4"),
        ("import sys\nsys.exit(3)\n", "exits.py, line 2"),
    ],
    ids=["sys.exit in generate", "BaseException subclass", "sys.exit at import"],
)
def test_a_pipeline_that_exits_is_a_pipeline_failure_recorded_as_failed(project, cli, body, where):
    run_load(project)
    before = raw_checksums(project)
    (project / "pipelines" / "exits.py").write_text(body)
    result = cli("dev", "--pipelines-only", cwd=project)
    assert result.exit_code == 4, result.output
    assert where in result.stderr and "Traceback" not in result.stderr
    assert raw_checksums(project) == before
    entry = history.last(project / ".sbdk", 1)[0]
    assert entry["status"] == "failed" and where in entry["error"]


def test_cli_pipelines_only_prints_summary(project, cli):
    result = cli("dev", "--pipelines-only", cwd=project)
    assert result.exit_code == 0, result.output
    assert "raw_events" in result.stdout and "1,000" in result.stdout
    assert "rows/s" in result.stdout
    assert "(2025-11-01 to 2026-10-24)" in result.stdout
    assert counts(project)["raw_orders"] == purchases(project)


def test_cli_rejects_zero_users_with_events(project, cli):
    result = cli("dev", "--pipelines-only", "--users", "0", cwd=project)
    assert result.exit_code == 2
    assert "0 users with events" in result.stderr


def test_cli_rejects_negative_scale(project, cli):
    result = cli("dev", "--pipelines-only", "--scale", "-1", cwd=project)
    assert result.exit_code == 2
    assert "--scale -1.0 must be between 0 and" in result.stderr


def test_database_held_by_another_program_fails_before_generating(project, cli, monkeypatch):
    # No retries: waiting out a held file is tests/test_retries.py's subject; here, the message.
    monkeypatch.setenv("SBDK_RETRIES__ATTEMPTS", "1")
    db = project / "data" / "dev.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(db)!r}); print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = cli("dev", "--pipelines-only", cwd=project)
    finally:
        holder.communicate("")
    assert result.exit_code == 6
    assert "is in use by" in result.stderr and f"PID {holder.pid}" in result.stderr
    assert "use `sbdk query`, which opens the file only for a moment" in result.stderr
    assert not (project / ".sbdk" / "dlt" / "sbdk").exists() or "generate" not in result.stdout


def test_reloading_one_table_references_the_users_loaded_now(project):
    run_load(project, volume=DataVolume(users=50, events=1_000))
    orders = raw_checksums(project)["raw_orders"]
    run_load(project, only={"raw_events"})
    assert counts(project)["raw_users"] == 50
    assert query(project, "select max(user_id) from raw.raw_events") <= [(50,)]
    early = query(
        project,
        "select count(*) from raw.raw_events e join raw.raw_users u using (user_id) where e.occurred_at < u.signup_at",
    )
    assert early == [(0,)]
    # The same users and volume make the same sessions: the orders still match the reloaded purchases.
    run_load(project, only={"raw_orders"})
    assert raw_checksums(project)["raw_orders"] == orders
    assert counts(project)["raw_orders"] == purchases(project)


def test_incremental_after_a_load_without_events_appends_a_quiet_day(project):
    run_load(project, volume=DataVolume(users=50, events=0))
    report = run_load(project, incremental=True)
    assert report.days == (date(2026, 10, 25), date(2026, 10, 25))
    assert {t.table: t.rows for t in report.tables}["raw_events"] == 0


@pytest.mark.parametrize("breakage", ["no dbt_project.yml", "dbt_path is a file"])
def test_a_run_that_cannot_build_changes_nothing_before_it_says_so(project, cli, breakage):
    run_load(project)
    before = raw_checksums(project)
    if breakage == "no dbt_project.yml":
        (project / "dbt" / "dbt_project.yml").unlink()
    else:
        config = project / "sbdk_config.json"
        (project / "not_a_folder").write_text("x")
        config.write_text(config.read_text().replace('"dbt_path": "dbt"', '"dbt_path": "not_a_folder"'))
    result = cli("dev", "--seed", "7", cwd=project)
    assert result.exit_code == 5, result.output
    assert "dbt_project.yml is missing" in result.stderr
    # Checked before generating: the raw tables were not replaced by the seed-7 data.
    assert raw_checksums(project) == before
    assert "generate" not in result.stdout


def test_a_cleanup_that_fails_after_the_swap_committed_does_not_undo_the_run(project, monkeypatch):
    # The new tables are live once the swap commits: failing to drop the old load (a full disk)
    # must not turn the run into "nothing changed"; the next run's prepare() drops it.
    from sbdk.stores import duckdb as duckdb_store

    run_load(project)
    before = raw_checksums(project)

    calls = []
    original = duckdb_store.drop_unused_loads

    def full_disk_after_the_swap(con):
        calls.append(con)
        if len(calls) == 1:  # prepare(), before the load: works
            return original(con)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(duckdb_store, "drop_unused_loads", full_disk_after_the_swap)
    report = run_load(project, seed=7)
    assert {t.table for t in report.tables} == {"raw_users", "raw_events", "raw_orders"}
    assert raw_checksums(project) != before
    assert len(calls) == 2  # the cleanup after the commit was reached, and failed
