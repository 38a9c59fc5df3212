"""Failures you can act on (issue #15): a failed data test shows its failing rows and the query for
all of them; a SQL error names the line of the model's own file. Real dbt on real projects."""

from __future__ import annotations

import json
import re

import pytest
from helpers import query
from rich.console import Console

from sbdk.cli.progress import render_summary
from sbdk.dbt.invoke import error_location
from sbdk.run import history
from sbdk.run.runner import RunPlan, run
from sbdk.settings import load_settings

# Fails with 7 rows, more than the 5 a summary shows.
FAILING_TEST = "select user_id, email from {{ ref('stg_users') }} where user_id <= 7\n"
AUDIT_TABLES = "select table_name from information_schema.tables where table_schema like '%dbt_test__audit'"


def plain(output: str) -> str:
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The arguments of every dbtRunner.invoke() of the test (dbt still runs)."""
    from dbt.cli.main import dbtRunner

    calls: list[list[str]] = []
    original = dbtRunner.invoke

    def invoke(self, args, **kwargs):
        calls.append(list(args))
        return original(self, args, **kwargs)

    monkeypatch.setattr(dbtRunner, "invoke", invoke)
    return calls


@pytest.mark.slow
def test_failed_test_shows_its_first_failing_rows_and_the_query_that_shows_them_all(project_copy, cli, invocations):
    (project_copy / "dbt" / "tests" / "no_early_users.sql").write_text(FAILING_TEST)
    expected = set(query(project_copy, "select user_id, email from main.stg_users where user_id <= 7"))
    assert len(expected) == 7

    report = run(load_settings(project_copy / "sbdk_config.json"), RunPlan(pipelines=False, select=("stg_users",)))

    assert not report.success
    (failed,) = report.dbt.failures
    assert failed.name == "no_early_users" and failed.failures == 7
    assert failed.failures_relation == '"dev"."main_dbt_test__audit"."no_early_users"'
    assert failed.failing_rows is not None
    columns, rows = failed.failing_rows
    assert columns == ("user_id", "email")
    assert len(rows) == 5 and len(set(rows)) == 5 and set(rows) <= expected
    # The build ran without --store-failures; the failed test alone ran again with it.
    assert [args[0] for args in invocations] == ["build", "test"]
    assert "--store-failures" not in invocations[0]
    assert "--store-failures" in invocations[1] and invocations[1][-2:] == ["--select", "no_early_users"]
    assert {name for (name,) in query(project_copy, AUDIT_TABLES)} == {"no_early_users"}
    # target/run_results.json is still the build's (the page reads it), not the test run's.
    results = json.loads((project_copy / "dbt" / "target" / "run_results.json").read_text())
    assert results["args"]["which"] == "build" and len(results["results"]) > 1

    console = Console(record=True, width=200)
    render_summary(console, report)
    summary = console.export_text()
    shown = summary[summary.index("test no_early_users fail") :]
    assert "Got 7 results" in shown and "first 5 failing rows:" in shown
    assert all(f"{user_id}" in shown and email in shown for user_id, email in rows)
    hint = 'sbdk query "select * from dev.main_dbt_test__audit.no_early_users"'
    assert hint in shown
    assert shown.index("Got 7 results") < shown.index("first 5") < shown.index(hint) < shown.index("compiled SQL:")

    result = cli("query", "select * from dev.main_dbt_test__audit.no_early_users", "--format", "json", cwd=project_copy)
    assert result.exit_code == 0, result.stderr
    assert {(row["user_id"], row["email"]) for row in json.loads(result.stdout)} == expected


@pytest.mark.slow
def test_a_test_that_stores_its_failures_itself_is_read_without_running_again(project_copy, invocations):
    config = "{{ config(store_failures=true, schema='my_audit') }}\n"
    (project_copy / "dbt" / "tests" / "no_early_users.sql").write_text(config + FAILING_TEST)

    report = run(load_settings(project_copy / "sbdk_config.json"), RunPlan(pipelines=False, select=("stg_users",)))

    (failed,) = report.dbt.failures
    assert failed.failures_relation == '"dev"."main_my_audit"."no_early_users"'
    assert failed.failing_rows is not None and len(failed.failing_rows[1]) == 5
    assert [args[0] for args in invocations] == ["build"]


@pytest.mark.slow
def test_passing_build_runs_dbt_once_without_storing_failures(project_copy, invocations):
    # Timing belongs in benchmarks: here, that a passing build does exactly what it did before this
    # feature (one `dbt build`, no --store-failures, no audit tables), so it cannot be slower.
    report = run(load_settings(project_copy / "sbdk_config.json"), RunPlan(pipelines=False, select=("stg_users",)))

    assert report.success and report.dbt.count("test", "pass") > 5
    assert len(invocations) == 1 and invocations[0][0] == "build"
    assert "--store-failures" not in invocations[0]
    assert query(project_copy, AUDIT_TABLES) == []
    assert all(n.failing_rows is None and n.failures_relation is None for n in report.dbt.nodes)


# stg_orders with Jinja above the broken line that renders to fewer lines: the database's line number
# is neither the compiled file's nor the source file's.
JINJA_ABOVE = """{#-
    A Jinja comment of several lines: none of them reach the compiled SQL.
-#}
{%- set currencies = ['USD', 'EUR', 'GBP'] %}
{%- for currency in currencies %}
{%- endfor %}
"""


@pytest.mark.slow
def test_sql_error_in_a_model_names_the_line_of_the_models_own_file(project_copy, cli):
    model = project_copy / "dbt" / "models" / "staging" / "stg_orders.sql"
    text = model.read_text().replace("with source_orders as", JINJA_ABOVE + "with source_orders as")
    text = text.replace(
        "lower(trim(payment_method)) as payment_method",
        "lower(trim(payment_method)) as payment_method,\n        no_such_column + 1 as broken",
    )
    model.write_text(text)
    line = text.splitlines().index("        no_such_column + 1 as broken") + 1

    result = cli("dev", "--dbt-only", "--select", "stg_orders", cwd=project_copy)

    assert result.exit_code == 1
    compiled = project_copy / "dbt" / "target" / "compiled" / "demo" / "models" / "staging" / "stg_orders.sql"
    compiled_line = compiled.read_text().splitlines().index("        no_such_column + 1 as broken") + 1
    assert compiled_line != line  # the Jinja made the numbering differ
    location = f"model stg_orders: models/staging/stg_orders.sql:{line}: Binder Error: "
    assert location + 'Referenced column "no_such_column" not found' in result.stdout
    assert "model stg_orders error" in result.stdout  # as before: the node, then its error
    assert f"compiled SQL: {compiled}" in plain(result.stdout)
    # dbt's LINE is renumbered to the file's, its ^^^ still under the column.
    shown = result.stdout.splitlines()
    (index,) = [i for i, text in enumerate(shown) if text.startswith(f"LINE {line}:")]
    assert shown[index + 1].index("^") == shown[index].index("no_such_column")

    (entry,) = history.last(project_copy / ".sbdk", 1)
    (failure,) = entry["dbt"]["failures"]
    assert failure["message"].startswith(location)


@pytest.mark.slow
def test_a_config_of_the_wrong_type_names_its_model_and_file(project_copy, cli):
    """dbt drops the node of this parse error (its message named no file): sbdk names the model, its
    file and, for a config set in a properties file, that file; nothing is built, the marts stay."""
    before = query(project_copy, "select count(*) from main.funnel")
    model = project_copy / "dbt" / "models" / "marts" / "funnel.sql"
    sql = model.read_text()
    model.write_text("{{ config(materialized=5) }}\n" + sql)

    result = cli("dev", "--dbt-only", cwd=project_copy)

    assert result.exit_code == 5  # dbt could not run
    shown = " ".join(result.stdout.split())
    assert "Parsing Error in model funnel (models/marts/funnel.sql) at path ['materialized']: 5" in shown
    assert "set in" not in shown

    model.write_text(sql)
    yml = project_copy / "dbt" / "models" / "marts" / "_marts.yml"
    yml.write_text(
        yml.read_text().replace("  - name: funnel\n", "  - name: funnel\n    config:\n      materialized: 5\n")
    )

    result = cli("dev", "--dbt-only", cwd=project_copy)

    assert result.exit_code == 5  # dbt could not run
    shown = " ".join(result.stdout.split())
    assert "Parsing Error in model funnel (models/marts/funnel.sql)" in shown
    assert "(set in models/marts/_marts.yml, under funnel)" in shown
    assert query(project_copy, "select count(*) from main.funnel") == before


# The location, without dbt: the database's message, the compiled SQL and the source file.


def _message(number: int, text: str) -> str:
    return f'Binder Error: Referenced column "x" not found\n\nLINE {number}: {text}\n         ^'


SOURCE = """{% set n = 2 %}
{#- a comment
    of three lines #}
select
    a,
    cast(x as {{ dbt.type_bigint() }}) as y,
    {{ broken_columns() }}
from t
where a > 1
"""
COMPILED = """select
    a,
    cast(x as bigint) as y,
    x + 1 as z
from t
where a > 1
"""


def test_plain_line_is_found_in_the_source_by_its_text():
    # DuckDB counts lines of the DDL around the compiled SQL: 4 more here.
    assert error_location(_message(10, "where a > 1"), COMPILED, SOURCE) == ("source", 9)


def test_line_with_jinja_is_found_by_what_its_jinja_rendered():
    assert error_location(_message(7, "    cast(x as bigint) as y,"), COMPILED, SOURCE) == ("source", 6)


def test_line_cut_short_by_the_database_is_found_by_the_part_shown():
    assert error_location(_message(7, "...t(x as bigint) as..."), COMPILED, SOURCE) == ("source", 6)


def test_line_made_by_a_macro_falls_back_to_the_compiled_line():
    assert error_location(_message(8, "    x + 1 as z"), COMPILED, SOURCE) == ("compiled", 4)
    assert error_location(_message(8, "    x + 1 as z"), COMPILED, None) == ("compiled", 4)


def test_repeated_text_is_told_apart_by_the_sql_that_ran_then_by_nearness():
    compiled = "select\n    a\nfrom t\nunion all\nselect\n    a\nfrom u\n"
    source = "{# two\nlines #}\nselect\n    a\nfrom t\nunion all\nselect\n    a\nfrom u\n"
    executed = "\n  \n  create view v as (\n    " + compiled + ")"
    # LINE 5 of what ran is compiled line 2 (3 lines of DDL above it), source line 4.
    assert error_location(_message(5, "a"), compiled, source, executed) == ("source", 4)
    assert error_location(_message(9, "a"), compiled, source, executed) == ("source", 8)
    # Without the SQL that ran: the compiled line nearest the number given.
    assert error_location(_message(5, "a"), compiled, source) == ("source", 8)
    # A loop repeats a line: the source line nearest the compiled one.
    looped = "select\n{% for c in ['a', 'a'] %}\n    a\n{% endfor %}\nfrom t\n"
    assert error_location(_message(6, "a"), "select\n    a\n    a\nfrom t\n", looped) == ("source", 3)


def test_message_without_a_line_or_text_has_no_location():
    assert error_location("Compilation Error in model x (models/x.sql)\n  'foo' is undefined", COMPILED, SOURCE) is None
    assert error_location(_message(3, ""), COMPILED, SOURCE) is None
    assert error_location(_message(3, "not in the sql"), COMPILED, SOURCE) is None
