"""Real dbt through dbtRunner on a real project: full builds, selections, failures, many runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import MARTS, db_path, mart_checksums, query, raw_checksums

from sbdk.run.runner import RunPlan, run
from sbdk.settings import load_settings

pytestmark = pytest.mark.slow


def test_full_dev_builds_and_tests_everything(built):
    assert query(built, "select count(*) from main.user_metrics") == [(200,)]
    for mart in MARTS:
        assert query(built, f"select count(*) from main.{mart}")[0][0] > 0


def test_cli_dev_reports_models_and_tests(project_copy, cli):
    result = cli("dev", "--fresh", cwd=project_copy)
    assert result.exit_code == 0, result.output
    assert "failed" in result.stdout and " 0 failed" in result.stdout
    assert "user_metrics" in result.stdout
    assert "Done." in result.stdout


def test_dbt_only_rebuilds_without_touching_raw_tables(project_copy, cli):
    before = raw_checksums(project_copy)
    loads = query(project_copy, "select load_schema from _sbdk.raw_tables order by 1")
    result = cli("dev", "--dbt-only", cwd=project_copy)
    assert result.exit_code == 0, result.output
    assert "generate" not in result.stdout
    assert raw_checksums(project_copy) == before
    assert query(project_copy, "select load_schema from _sbdk.raw_tables order by 1") == loads


def test_select_builds_only_the_selected_nodes(project_copy):
    settings = load_settings(project_copy / "sbdk_config.json")
    report = run(settings, RunPlan(pipelines=False, select=("stg_orders+",)))
    assert report.success
    models = {n.name for n in report.dbt.nodes if n.resource_type == "model"}
    assert "stg_orders" in models
    assert "stg_users" not in models and "stg_events" not in models
    assert models <= {"stg_orders", "int_order_facts", "int_user_orders", "user_metrics", "daily_kpis"}


def test_select_naming_nothing_is_an_error(project_copy, cli):
    result = cli("dev", "--dbt-only", "--select", "no_such_model", cwd=project_copy)
    assert result.exit_code == 5
    assert "--select no_such_model matched no models" in result.stderr


def test_sql_error_names_the_model_and_keeps_previous_marts(project_copy, cli):
    before = mart_checksums(project_copy)
    model = project_copy / "dbt" / "models" / "staging" / "stg_orders.sql"
    model.write_text(model.read_text() + "\nthis is not sql\n")
    result = cli("dev", "--dbt-only", cwd=project_copy)
    assert result.exit_code == 1
    assert "model stg_orders error" in result.stdout
    assert "Finished with failures." in result.stdout
    assert mart_checksums(project_copy) == before


def test_a_project_dbt_cannot_compile_exits_5_not_1(project_copy, cli):
    model = project_copy / "dbt" / "models" / "marts" / "funnel.sql"
    model.write_text("select * from {{ ref('no_such_model') }}\n")
    result = cli("dev", "--dbt-only", cwd=project_copy)
    assert result.exit_code == 5, result.output
    assert "no_such_model" in result.stdout + result.stderr


def test_failing_data_test_exits_non_zero_and_names_it(project_copy, cli):
    (project_copy / "dbt" / "tests" / "assert_no_users_at_all.sql").write_text("select * from {{ ref('stg_users') }}\n")
    result = cli("dev", "--dbt-only", cwd=project_copy)
    assert result.exit_code == 1
    assert "test assert_no_users_at_all fail" in result.stdout


def test_dbt_only_before_any_load_says_to_run_dev(project, cli):
    result = cli("dev", "--dbt-only", cwd=project)
    assert result.exit_code == 5
    assert "The raw tables do not exist yet" in result.stderr
    assert "sbdk dev" in result.stderr
    assert not db_path(project).exists()  # nothing was created on the way


def test_pipeline_dbt_pipeline_dbt_in_one_process_then_another_process_opens_the_file(project_copy):
    settings = load_settings(project_copy / "sbdk_config.json")
    for seed in (1, 2):
        report = run(settings, RunPlan(seed=seed))
        assert report.success, report.dbt.failures
        assert report.row_counts["raw_users"] == 200
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import duckdb; c = duckdb.connect({str(db_path(project_copy))!r}); print(c.execute('select count(*) from main.user_metrics').fetchone()[0])",
        ],
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "200"
