"""Issue #15 item 8: small things a new user met in the first hour, each reproduced as it was seen.

A CURSOR naming no column, a bad name typed at `sbdk init`'s prompt, `sbdk init --force .` saying
"Created project", exit code 4 for "no database yet", the summary and the run log disagreeing on a
stage's seconds, and a helper module in pipelines/ taken for a pipeline.
"""

from __future__ import annotations

import json
import re
import types
from pathlib import Path

import pytest
from helpers import query, raw_checksums
from rich.console import Console

from sbdk.cli.progress import render_summary
from sbdk.errors import ExitCode, NotLoadedError, PipelineError
from sbdk.ops.doctor import FAIL, PASS, check_pipelines
from sbdk.pipelines.discovery import discover
from sbdk.pipelines.load import load
from sbdk.run import history
from sbdk.run.context import RunContext
from sbdk.run.plan import RunPlan
from sbdk.run.reporters import Reporter
from sbdk.run.results import DbtReport, LoadReport, RunReport
from sbdk.run.runlog import RunLogReporter, find_log
from sbdk.settings import load_settings
from sbdk.stores import duckdb as duckdb_store


def plain(output: str) -> str:
    """CLI output without colour codes and with Rich's line wrapping undone."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def run_load(root: Path) -> LoadReport:
    """The loader alone (no lock, no dbt), as the runner calls it."""
    return load(RunContext.of(load_settings(root / "sbdk_config.json"), RunPlan(dbt=False)))


def tables(root: Path) -> set[str]:
    """The raw tables users see (live ones), whatever a failed load left in its own schema."""
    return {
        name for (name,) in query(root, "select table_name from information_schema.tables where table_schema = 'raw'")
    }


VISITS = """
import pyarrow as pa

CURSOR = {cursor!r}


def generate(ctx):
    times = pa.array([ctx.window.start + i for i in range(3)], pa.timestamp("us", tz="UTC"))
    yield pa.table({{"visit_id": [1, 2, 3], "page": ["/", "/a", "/b"], "{column}": times}})
"""


def add_visits(root: Path, cursor: str, column: str = "visited_at") -> Path:
    path = root / "pipelines" / "visits.py"
    path.write_text(VISITS.format(cursor=cursor, column=column))
    return path


# -- 1. a CURSOR that names no column is caught by the first load and by doctor


def test_a_cursor_naming_no_column_fails_the_first_load_and_nothing_is_swapped_in(project: Path, cli) -> None:
    run_load(project)
    before = raw_checksums(project)
    path = add_visits(project, cursor="visited")

    result = cli("dev", "--pipelines-only", cwd=project)

    assert result.exit_code == ExitCode.PIPELINE, result.output
    error = plain(result.stderr)
    assert (
        f"error: Pipeline {path} sets CURSOR = 'visited', but the columns it yields are visit_id, page, visited_at."
        in error
    )
    assert "fix: Set CURSOR to one of its timestamp columns (visited_at), or remove CURSOR" in error
    assert "Your previous tables are unchanged." in error
    assert raw_checksums(project) == before
    assert "raw_visits" not in tables(project)


def test_a_cursor_naming_a_column_that_is_no_timestamp_fails_the_first_load(project: Path) -> None:
    path = add_visits(project, cursor="page")

    with pytest.raises(PipelineError) as info:
        run_load(project)

    assert info.value.message == f"Pipeline {path} sets CURSOR = 'page', but that column holds string, not a timestamp."
    assert not (project / "data" / "dev.duckdb").exists() or "raw_visits" not in tables(project)


def test_a_cursor_names_the_column_as_it_is_in_the_table(project: Path) -> None:
    # dlt names the column visited_at in the table: that is the name --incremental reads.
    add_visits(project, cursor="visited_at", column="visitedAt")

    report = run_load(project)

    assert "raw_visits" in {t.table for t in report.tables}
    assert query(project, "select count(visited_at) from raw.raw_visits") == [(3,)]


def test_doctor_checks_each_cursor_against_the_loaded_table_or_leaves_it_to_the_first_load(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")

    fresh = check_pipelines(settings)
    assert fresh.status == PASS
    assert fresh.detail.endswith(
        "CURSOR checked on the first load: users.py (signup_at), events.py (occurred_at), orders.py (ordered_at)."
    )

    run_load(project)
    add_visits(project, cursor="visited_at")
    loaded = check_pipelines(settings)
    assert loaded.status == PASS
    assert (
        "CURSOR is a timestamp column of the loaded table: users.py (signup_at), events.py (occurred_at), "
        "orders.py (ordered_at)."
    ) in loaded.detail
    assert loaded.detail.endswith("CURSOR checked on the first load: visits.py (visited_at).")

    events = project / "pipelines" / "events.py"
    events.write_text(events.read_text().replace('CURSOR = "occurred_at"', 'CURSOR = "occured_at"'))
    typo = check_pipelines(settings)
    assert typo.status == FAIL
    assert typo.detail.startswith(
        f"Pipeline {events} sets CURSOR = 'occured_at', but the loaded raw_events has the columns "
    )
    assert "occurred_at" in typo.detail
    assert typo.fix is not None and "occurred_at" in typo.fix and "one `sbdk dev` (without --incremental)" in typo.fix


def test_a_cursor_that_is_no_name_is_refused_when_the_pipelines_are_read(project: Path) -> None:
    (project / "pipelines" / "visits.py").write_text("CURSOR = 3\n\ndef generate(ctx):\n    yield []\n")

    with pytest.raises(PipelineError, match="sets CURSOR = 3, which is not a column name"):
        discover(project / "pipelines")


# -- 2. a bad name typed at the prompt is asked again


@pytest.fixture
def fake_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `sbdk init` believe stdin is a terminal (CliRunner's never is)."""
    import sbdk.cli.init as init_module

    stdin = types.SimpleNamespace(isatty=lambda: True)
    monkeypatch.setattr(init_module, "sys", types.SimpleNamespace(stdin=stdin))


def test_a_bad_name_typed_at_the_prompt_is_asked_again_with_a_suggestion(tmp_path: Path, cli, fake_tty) -> None:
    result = cli("init", cwd=tmp_path, input="my-shop\n\n\n\n\n")

    assert result.exit_code == 0, result.output
    output = plain(result.output)
    assert "error: Project name 'my-shop' is not allowed" in output
    assert "Project name [my_shop]:" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_shop"]


@pytest.mark.parametrize(("name", "folder"), [("1shop", "p_1shop"), ("work/my shop", "work/my_shop")])
def test_a_bad_name_given_on_a_terminal_is_asked_again(tmp_path: Path, cli, fake_tty, name, folder) -> None:
    (tmp_path / "work").mkdir()

    result = cli("init", name, cwd=tmp_path, input="\n\n\n\n")

    assert result.exit_code == 0, result.output
    assert (tmp_path / folder / "sbdk_config.json").is_file()
    assert json.loads((tmp_path / folder / "sbdk_config.json").read_text())["project"] == Path(folder).name


def test_a_row_count_out_of_range_is_asked_again(tmp_path: Path, cli, fake_tty) -> None:
    result = cli("init", "shop", cwd=tmp_path, input="-1\n5\n\n\n")

    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "shop" / "sbdk_config.json").read_text())["data_volume"]["users"] == 5


def test_without_anyone_to_answer_a_bad_name_still_exits_2(tmp_path: Path, cli, fake_tty) -> None:
    result = cli("init", "my-shop", "--no-input", cwd=tmp_path)

    assert result.exit_code == ExitCode.USAGE
    assert "error: Project name 'my-shop' is not allowed" in plain(result.output)
    assert list(tmp_path.iterdir()) == []


# -- 3. `sbdk init --force .` lists what it restored


def test_force_dot_lists_what_it_restored(tmp_path: Path, cli) -> None:
    assert cli("init", "shop", "--no-input", cwd=tmp_path).exit_code == 0
    root = tmp_path / "shop"
    for relative in ("pipelines/users.py", "dbt/models/staging/stg_users.sql", "profiles/profiles.yml"):
        (root / relative).unlink()

    result = cli("init", "--force", ".", "--no-input", cwd=root)

    assert result.exit_code == 0, result.output
    assert plain(result.output) == (
        "Restored pipelines/users.py, profiles/profiles.yml, dbt/models/staging/stg_users.sql (3 files); "
        "kept everything else."
    )

    again = cli("init", "--force", ".", "--no-input", cwd=root)
    assert plain(again.output) == "Nothing to restore: every file sbdk writes is there."


def test_force_lists_the_first_files_of_many(tmp_path: Path, cli) -> None:
    assert cli("init", "shop", "--no-input", cwd=tmp_path).exit_code == 0
    root = tmp_path / "shop"
    for path in (root / "pipelines").glob("*.py"):
        path.unlink()
    (root / ".env.example").unlink()

    result = cli("init", "--force", "shop", "--no-input", cwd=tmp_path)

    assert plain(result.output) == (
        "Restored .env.example, pipelines/events.py, pipelines/orders.py, pipelines/users.py (4 files) "
        f"in {root}; kept everything else."
    )
    for relative in (".env.example", "dbt/dbt_project.yml", "dbt/macros/revenue.sql"):
        (root / relative).unlink()
    for path in (root / "pipelines").glob("*.py"):
        path.unlink()
    listed = plain(cli("init", "--force", ".", "--no-input", cwd=root).output)
    assert listed == (
        "Restored .env.example, pipelines/events.py, pipelines/orders.py, pipelines/users.py and 2 more "
        "(6 files); kept everything else."
    )


def test_force_into_a_folder_that_is_no_project_adds_the_files_and_shows_next_steps(tmp_path: Path, cli) -> None:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "notes.txt").write_text("mine")

    output = plain(cli("init", "shop", "--force", "--no-input", cwd=tmp_path).output)

    assert output.startswith("Added ")
    assert f"in {tmp_path / 'shop'}; kept everything else. Next steps: cd shop sbdk dev" in output


# -- 4. "no database yet" is exit code 5, not 4 (which means a pipeline failed)


def test_no_database_yet_is_exit_code_5(project: Path, cli) -> None:
    db = project / "data" / "dev.duckdb"

    result = cli("query", "select 1", cwd=project)

    assert result.exit_code == ExitCode.DBT == 5
    assert f"There is no database at {db} yet." in plain(result.stderr)
    for opening in (lambda: duckdb_store.connect(db, read_only=True), lambda: duckdb_store.connect_read_only(db)):
        with pytest.raises(NotLoadedError) as info:
            with opening():
                pass
        assert info.value.exit_code == ExitCode.DBT
    assert not db.exists()


# -- 5. the summary, the history and the run log show the same seconds per stage


def test_summary_history_and_run_log_agree_on_each_stage(project: Path, cli) -> None:
    result = cli("--log-format", "json", "dev", "--pipelines-only", cwd=project)
    assert result.exit_code == 0, result.output

    entry = history.last(project / ".sbdk", 1)[0]
    log = find_log(load_settings(project / "sbdk_config.json"), entry["run_id"])
    assert log is not None
    finished = json.loads(log.read_text().splitlines()[-1])
    assert finished["event"] == "run_finished"
    assert finished["stages"] == entry["stages"] and list(entry["stages"]) == ["generate", "load"]
    assert finished["duration"] == entry["seconds"]
    summary = plain(result.stdout)
    for stage, seconds in entry["stages"].items():
        assert f" {stage} │ {seconds:.2f} │ " in summary
    assert f" total │ {entry['seconds']:.2f} │" in summary


def test_the_run_log_carries_the_reports_figures_not_its_own(tmp_path: Path) -> None:
    report = RunReport(
        run_id="r1",
        trigger="sbdk dev",
        load=LoadReport(tables=(), mode="replace", generate_seconds=1.0004, load_seconds=2.0, swap_seconds=0.5),
        dbt=DbtReport("build", True, (), 7.25, parse_seconds=3.0),
        seconds=11.0,
    )
    path = tmp_path / "logs" / "r1.log"

    with RunLogReporter(Reporter(), path, "json", "r1") as reporter:
        reporter.stage("generate")
        reporter.finish(report)

    finished = json.loads(path.read_text().splitlines()[-1])
    assert (
        finished["stages"]
        == report.stage_seconds()
        == {
            "generate": 1.0,
            "load": 2.5,
            "dbt_parse": 3.0,
            "dbt_build": 4.25,
        }
    )
    assert finished["duration"] == 11.0
    console = Console(record=True, width=200)
    render_summary(console, report)
    shown = plain(console.export_text())
    assert "generate │ 1.00 │" in shown and "load │ 2.50 │" in shown and "total │ 11.00 │" in shown
    assert "dbt_parse │ 3.00 │" in shown and "dbt_build │ 4.25 │ 0 models built" in shown


# -- 6. a helper module in pipelines/ is told about the _ prefix


def test_a_helper_module_without_generate_is_told_about_the_underscore(project: Path) -> None:
    helper = project / "pipelines" / "helpers.py"
    helper.write_text("def shared():\n    return 1\n")

    with pytest.raises(PipelineError) as info:
        discover(project / "pipelines")

    assert str(info.value).startswith(
        f"Pipeline {helper} has no generate(ctx) function. If it is a helper module, name it _helpers.py: "
        "files starting with _ are not pipelines."
    )
    helper.rename(helper.with_name("_helpers.py"))
    assert [s.name for s in discover(project / "pipelines")] == ["users", "events", "orders"]
