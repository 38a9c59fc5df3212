"""A dbt project the user already has, run as it is (issue #17, part 1): `dbt_path` pointing outside the
sbdk project, its own profile name, seeds, snapshots, custom schemas, vars, hooks and a package, with
the same nodes and statuses as plain dbt, and nothing in the dbt project changed but dbt's own folders."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from helpers import query

from sbdk.settings import load_settings

pytestmark = pytest.mark.slow

PROJECTS = Path(__file__).parent / "dbt_projects"
DBT_OWN = {"target", "logs", "dbt_packages"}


def _tree(folder: Path) -> dict[str, str]:
    """Every file of the dbt project outside dbt's own folders, with a digest of its bytes."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not DBT_OWN & set(path.relative_to(folder).parts)
    }


@pytest.fixture
def acme(tmp_path: Path, make_project) -> tuple[Path, Path]:
    """(sbdk project, the dbt project it points at, outside it)."""
    shutil.copytree(PROJECTS / "acme", tmp_path / "analytics")
    shutil.copytree(PROJECTS / "acme_helpers", tmp_path / "acme_helpers")
    root = make_project("sandbox")
    config = json.loads((root / "sbdk_config.json").read_text())
    config["dbt_path"] = "../analytics"
    (root / "sbdk_config.json").write_text(json.dumps(config, indent=2))
    return root, tmp_path / "analytics"


def _statuses(run_results: Path) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in json.loads(run_results.read_text())["results"]}


def test_a_dbt_project_outside_the_sandbox_builds_as_plain_dbt_builds_it(acme, cli, tmp_path) -> None:
    root, analytics = acme
    before = _tree(analytics)

    result = cli("dev", "--dbt-only", cwd=root)

    assert result.exit_code == 0, result.output
    assert "Finished with failures" not in result.output
    # Seeds, the snapshot and the custom schema of the marts, in the sandbox's DuckDB file.
    assert query(root, "select count(*) from main.customers") == [(3,)]
    assert query(root, "select count(*) from snapshots.customers_snapshot") == [(3,)]
    assert query(root, "select customer_id, revenue from reporting.customer_revenue order by 1") == [
        (1, 13.75),
        (2, 7.0),
        (3, 1.0),
    ]
    # The package macro (a local package, installed by sbdk's `dbt deps`) ran.
    assert query(root, "select sum(amount_cents) from main.stg_payments") == [(2175,)]
    # Nothing of the dbt project changed but dbt's own folders (no package-lock.yml left behind).
    assert _tree(analytics) == before
    profile = (root / ".sbdk" / "profiles" / "dev" / "profiles.yml").read_text()
    assert profile.splitlines()[1] == "acme_warehouse:" and "DBT_DUCKDB_PATH" in profile

    # Plain dbt on a copy of the same project, with a profile of its own: the same nodes, the same statuses.
    sbdk_statuses = _statuses(analytics / "target" / "run_results.json")
    plain = tmp_path / "plain"
    shutil.copytree(analytics, plain, ignore=shutil.ignore_patterns("target", "logs"))
    profiles = tmp_path / "plain_profiles"
    profiles.mkdir()
    (profiles / "profiles.yml").write_text(
        "acme_warehouse:\n  target: dev\n  outputs:\n    dev:\n"
        f"      type: duckdb\n      path: {tmp_path / 'plain.duckdb'}\n      schema: main\n"
    )
    from dbt.cli.main import dbtRunner

    outcome = dbtRunner().invoke(["build", "--project-dir", str(plain), "--profiles-dir", str(profiles), "-q"])
    assert outcome.success
    assert _statuses(plain / "target" / "run_results.json") == sbdk_statuses
    assert len(sbdk_statuses) == 11


def test_whole_dev_selections_and_doctor_work_on_it(acme, cli) -> None:
    root, _analytics = acme

    assert cli("dev", cwd=root).exit_code == 0  # the sandbox's own pipelines load too; the project reads none
    selected = cli("dev", "--dbt-only", "--select", "customer_revenue", cwd=root)
    assert selected.exit_code == 0, selected.output
    assert "customer_revenue" in selected.output and "stg_customers " not in selected.output

    from sbdk.ops.doctor import PASS, check_profile

    check = check_profile(load_settings(root / "sbdk_config.json"))
    assert check.status == PASS and "asks for the profile 'acme_warehouse'" in check.detail


def test_dbt_only_checks_only_the_raw_tables_the_projects_sources_name(acme, cli) -> None:
    root, analytics = acme
    (analytics / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n    tables:\n      - name: raw_users\n      - name: raw_invoices\n"
    )
    (analytics / "models" / "staging" / "stg_invoices.sql").write_text(
        "select * from {{ source('raw', 'raw_invoices') }}\n"
    )

    nothing = cli("dev", "--dbt-only", cwd=root)
    assert nothing.exit_code != 0
    assert "The raw tables do not exist yet" in nothing.output

    assert cli("dev", "--pipelines-only", cwd=root).exit_code == 0
    missing = cli("dev", "--dbt-only", cwd=root)
    assert missing.exit_code != 0
    assert "The dbt project's sources read raw.raw_invoices, which" in missing.output
    assert "raw_users" not in missing.output.split("hint")[0].split("sources read")[1].split(",")[0]


def test_a_package_that_cannot_be_downloaded_is_named_and_nothing_is_changed(acme, cli) -> None:
    root, analytics = acme
    (analytics / "packages.yml").write_text(
        "packages:\n  - local: ../acme_helpers\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n"
    )
    before = _tree(analytics)

    result = cli("dev", "--dbt-only", cwd=root)

    assert result.exit_code != 0
    assert "`dbt deps` could not download dbt-labs/dbt_utils 1.3.0 for" in result.output
    assert "keep its dbt_packages/ folder; sbdk then builds offline" in result.output
    assert "Traceback" not in result.output
    assert _tree(analytics) == before
