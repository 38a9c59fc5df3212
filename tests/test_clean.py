"""`sbdk clean`: build artefacts removed, stale relations dropped, and nothing else touched.

What counts as owned and defined is decided from a small manifest (fast); the command runs on a
copy of a built project, with real dbt and DuckDB (slow).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import duckdb
import pytest
from helpers import counts, db_path, purchases, query, raw_checksums

from sbdk.ops.clean import owned_and_defined, relation_key
from sbdk.run.lock import run_lock


def plain(output: str) -> str:
    """CLI output without colour codes and with Rich's line wrapping undone."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def node(resource_type: str, schema: str, name: str, materialized: str = "view") -> dict:
    return {
        "resource_type": resource_type,
        "database": "dev",
        "schema": schema,
        "name": name,
        "alias": name,
        "config": {"materialized": materialized},
    }


def test_only_the_schemas_models_build_into_are_owned():
    manifest = {
        "nodes": {
            "model.p.stg": node("model", "main", "stg"),
            "seed.p.countries": node("seed", "Seeds", "countries", "seed"),
            "model.p.eph": node("model", "scratch", "eph", "ephemeral"),
            "model.p.in_raw": node("model", "raw", "in_raw"),
            "model.p.in_load": node("model", "_sbdk_load_3", "in_load"),
            "model.p.beside_source": node("model", "landing", "beside_source"),
            "test.p.not_null": node("test", "main_dbt_test__audit", "not_null_stg", "test"),
        },
        "sources": {
            "source.p.raw.users": {"database": "dev", "schema": "raw", "name": "users", "identifier": "users"},
            "source.p.landing.orders": {"database": "dev", "schema": "landing", "name": "orders", "identifier": "o"},
        },
    }

    owned, defined = owned_and_defined(manifest)

    # Never raw, sbdk's or dlt's schemas, a schema a source reads, or one only ephemeral models name.
    assert owned == {("dev", "main"), ("dev", "seeds")}
    assert relation_key("DEV", "Main", "STG") in defined
    assert relation_key("dev", "landing", "o") in defined
    assert relation_key("dev", "main_dbt_test__audit", "not_null_stg") in defined


# On a copy of a built project (dbt's target/ and logs/ and dlt's working folder included).


@pytest.fixture
def copy(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "demo"))


def execute(root: Path, *statements: str) -> None:
    con = duckdb.connect(str(db_path(root)))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def relations(root: Path) -> set[str]:
    rows = query(root, "select table_schema, table_name from information_schema.tables")
    return {f"{schema}.{name}" for schema, name in rows}


def test_a_model_switched_off_is_still_defined():
    # dbt lists `enabled: false` models under "disabled": their tables are the project's, kept.
    manifest = {
        "nodes": {"model.p.stg": node("model", "main", "stg")},
        "disabled": {"model.p.funnel": [node("model", "main", "funnel", "table")]},
    }

    _owned, defined = owned_and_defined(manifest)

    assert relation_key("dev", "main", "funnel") in defined


def rename_a_model(root: Path, cli) -> None:
    """Build a mart, then rename its file and build again: its first table is left behind."""
    marts = root / "dbt/models/marts"
    (marts / "old_name.sql").write_text("select 1 as id\n")
    assert cli("dev", "--dbt-only", "--select", "old_name", cwd=root).exit_code == 0
    (marts / "old_name.sql").rename(marts / "new_name.sql")
    assert cli("dev", "--dbt-only", "--select", "new_name", cwd=root).exit_code == 0
    assert {"main.old_name", "main.new_name"} <= relations(root)


@pytest.mark.slow
def test_a_dry_run_lists_what_clean_removes_and_removes_nothing(copy, cli):
    rename_a_model(copy, cli)
    before = relations(copy)

    result = cli("clean", "--dry-run", cwd=copy)

    assert result.exit_code == 0, result.output + result.stderr
    out = plain(result.output)
    assert "Would remove dbt/target/" in out and "Would remove dbt/logs/" in out
    assert "Would remove .sbdk/dlt/" in out
    assert "Would drop stale table main.old_name" in out
    assert "Dry run: nothing was removed" in out
    assert relations(copy) == before
    assert all((copy / p).is_dir() for p in ("dbt/target", "dbt/logs", ".sbdk/dlt"))


@pytest.mark.slow
def test_clean_removes_artefacts_and_stale_relations_and_keeps_everything_else(copy, cli):
    rename_a_model(copy, cli)
    # Data the project does not own, and a stale table holding snapshot history.
    execute(
        copy,
        "create schema analyst",
        "create table analyst.notes as select 1 as id",
        "create table main.old_snapshot (id int, dbt_scd_id varchar, dbt_valid_from timestamp)",
    )
    (copy / "backups").mkdir()
    (copy / "backups/keep.duckdb").write_bytes(b"a backup")
    raw, run_logs = raw_checksums(copy), sorted((copy / "logs").iterdir())
    history = (copy / ".sbdk/history.jsonl").read_text()
    before = relations(copy)

    result = cli("clean", cwd=copy)

    assert result.exit_code == 0, result.output + result.stderr
    out = plain(result.output)
    assert "Removed dbt/target/" in out and "Removed .sbdk/dlt/" in out
    assert "Dropped stale table main.old_name" in out
    assert "Kept stale table main.old_snapshot: it holds snapshot history" in out
    assert relations(copy) == before - {"main.old_name"}
    assert not any((copy / p).exists() for p in ("dbt/target", "dbt/logs", ".sbdk/dlt"))
    assert raw_checksums(copy) == raw
    assert sorted((copy / "logs").iterdir()) == run_logs
    assert (copy / "backups/keep.duckdb").read_bytes() == b"a backup"
    assert (copy / ".sbdk/history.jsonl").read_text() == history

    again = cli("clean", cwd=copy)
    assert again.exit_code == 0 and plain(again.output).endswith("Nothing to clean.")
    assert "Removed" not in again.output and "Dropped" not in again.output
    # Nothing the next run needs was removed.
    rebuilt = cli("dev", cwd=copy)
    assert rebuilt.exit_code == 0, rebuilt.output + rebuilt.stderr
    assert counts(copy) == {"raw_users": 200, "raw_events": 1_000, "raw_orders": purchases(copy)}


@pytest.mark.slow
def test_clean_refuses_while_a_run_holds_the_project(copy, cli):
    with run_lock(copy / ".sbdk/run.lock", "sbdk dev"):
        result = cli("clean", cwd=copy)

    assert result.exit_code == 6
    assert "another sbdk run" in plain(result.stderr) and "sbdk dev" in plain(result.stderr)
    assert (copy / "dbt/target/manifest.json").is_file()


@pytest.mark.slow
def test_relations_are_left_alone_when_the_project_does_not_parse(copy, cli):
    rename_a_model(copy, cli)
    (copy / "dbt/models/marts/broken.sql").write_text("select * from {{ ref('no_such_model') }}\n")

    result = cli("clean", cwd=copy)

    assert result.exit_code == 5
    assert "dbt cannot parse the project" in plain(result.stderr)
    assert "Removed dbt/target/" in plain(result.output)
    assert "main.old_name" in relations(copy)


def test_clean_on_a_project_never_run_creates_no_database(make_project, cli) -> None:
    project = make_project("never_run")
    result = cli("clean", "--dry-run", cwd=project)
    assert result.exit_code == 0, result.output
    assert not (project / "data" / "dev.duckdb").exists()
