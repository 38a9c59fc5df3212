"""`sbdk dev` rebuilds exactly what changed (issue #20): every input leads to the rebuild it must.

One real project per module gets a first `sbdk dev` (every table loaded, a full dbt build, dbt's state
kept); each test changes one input of a copy and runs `sbdk dev` again through the runner, then
checks which raw tables were reloaded or kept, whether dbt built everything, only the changed
subgraph or nothing, and that the data equals what a full run makes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from conftest import edit_config
from helpers import db_path, mart_checksums, query, raw_checksums

from sbdk.dbt.state import state_dir
from sbdk.ops.scaffold import InitOptions, init_project
from sbdk.run import history
from sbdk.run.plan import RunPlan, Trigger
from sbdk.run.results import RunReport
from sbdk.run.runner import run
from sbdk.settings import DataVolume, load_settings

pytestmark = pytest.mark.slow

TABLES = ("raw_users", "raw_events", "raw_orders")
MODELS = frozenset(
    {
        "stg_users", "stg_events", "stg_orders",
        "int_sessions", "int_order_facts", "int_user_orders", "int_user_activity",
        "user_metrics", "daily_kpis", "funnel",
    }
)  # fmt: skip
UNCHANGED = "nothing changed since the last successful build"


def dev(root: Path, **plan) -> RunReport:
    """`sbdk dev` (options as RunPlan fields), as the CLI runs it."""
    options = {"keep_unchanged": True, "trigger": Trigger.DEV, **plan}
    return run(load_settings(root / "sbdk_config.json"), RunPlan(**options))


def fresh(root: Path) -> RunReport:
    """`sbdk dev --fresh`."""
    return dev(root, keep_unchanged=False, full_build=True)


def reloaded(report: RunReport) -> set[str]:
    return {t.table for t in report.load.tables}


def models(report: RunReport) -> set[str]:
    return {n.name for n in report.dbt.nodes if n.resource_type == "model"}


def data_tests(report: RunReport) -> set[str]:
    return {n.unique_id for n in report.dbt.nodes if n.resource_type == "test"}


def statuses(root: Path) -> dict[str, str]:
    """unique_id -> status of the last dbt invocation (dbt/target/run_results.json)."""
    results = json.loads((root / "dbt" / "target" / "run_results.json").read_text())
    return {r["unique_id"]: r["status"] for r in results["results"]}


@dataclass(frozen=True)
class First:
    """The module's project after its first `sbdk dev`, and what that run made."""

    root: Path
    raw: dict[str, str]
    marts: dict[str, str]
    tests: frozenset[str]  # unique ids of every data test of a full build
    statuses: dict[str, str]
    manifest: dict

    def tests_on(self, *names: str) -> set[str]:
        """The data tests that depend on any of the models `names`."""
        nodes = self.manifest["nodes"]
        chosen = {uid for uid, node in nodes.items() if node["resource_type"] == "model" and node["name"] in names}
        return {
            uid
            for uid, node in nodes.items()
            if node["resource_type"] == "test" and chosen & set(node["depends_on"]["nodes"])
        }


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> First:
    root = init_project(
        InitOptions(folder=tmp_path_factory.mktemp("first") / "demo", as_of=date(2026, 11, 1), users=200, events=1_000)
    ).root
    report = dev(root)
    assert report.success, report.dbt.failure_summary()
    assert reloaded(report) == set(TABLES) and report.load.kept == ()
    assert models(report) == MODELS and report.dbt_skipped is None
    manifest = json.loads((root / "dbt" / "target" / "manifest.json").read_text())
    return First(
        root, raw_checksums(root), mart_checksums(root), frozenset(data_tests(report)), statuses(root), manifest
    )


@pytest.fixture
def root(first: First, tmp_path: Path) -> Path:
    """A copy of the module's project to change (dbt's state in .sbdk/ comes with it)."""
    target = tmp_path / "demo"
    shutil.copytree(first.root, target, ignore=shutil.ignore_patterns("logs", "dlt"))
    return target


def assert_full_build(report: RunReport, first: First) -> None:
    assert report.success, report.dbt and report.dbt.failure_summary()
    assert report.dbt_skipped is None
    assert models(report) == MODELS
    assert data_tests(report) == first.tests


def assert_skipped(report: RunReport) -> None:
    assert report.success
    assert report.dbt is None
    assert report.dbt_skipped == UNCHANGED


def assert_kept_all(report: RunReport) -> None:
    assert reloaded(report) == set()
    assert report.load.kept == TABLES


def assert_reloaded_all(report: RunReport) -> None:
    assert reloaded(report) == set(TABLES)
    assert report.load.kept == ()


def append_line(path: Path, line: str) -> None:
    path.write_text(path.read_text() + line + "\n")


# -- an unchanged project


def test_an_unchanged_project_keeps_every_table_and_skips_dbt(first: First, root: Path, cli) -> None:
    again = dev(root)

    assert_kept_all(again)
    assert_skipped(again)
    assert raw_checksums(root) == first.raw
    assert mart_checksums(root) == first.marts
    last = history.read(root / ".sbdk")[-1]
    assert last["kept"] == list(TABLES) and last["dbt_skipped"] == UNCHANGED
    shown = cli("dev", cwd=root)
    assert shown.exit_code == 0, shown.output
    assert "raw_users unchanged, kept" in shown.output
    assert f"up to date: {UNCHANGED}" in " ".join(shown.output.split())


def test_a_skipped_run_holds_the_data_and_test_results_of_a_full_run(first: First, root: Path) -> None:
    assert_skipped(dev(root))
    skipped = raw_checksums(root), mart_checksums(root)

    full = fresh(root)

    assert_reloaded_all(full)
    assert_full_build(full, first)
    assert (raw_checksums(root), mart_checksums(root)) == skipped == (first.raw, first.marts)
    assert statuses(root) == first.statuses
    assert set(first.statuses.values()) == {"success", "pass"}
    # A full build keeps dbt's state too: the next run has nothing to do.
    after = dev(root)
    assert_kept_all(after)
    assert_skipped(after)


# -- pipelines and the helpers they import


@pytest.mark.parametrize(
    ("pipeline", "tables"),
    [
        ("events.py", {"raw_events"}),
        ("orders.py", {"raw_orders"}),
        # Events and orders reference the users: they follow.
        ("users.py", set(TABLES)),
    ],
)
def test_an_edited_pipeline_reloads_its_table_and_those_that_reference_it(
    first: First, root: Path, pipeline: str, tables: set[str]
) -> None:
    append_line(root / "pipelines" / pipeline, "# edited")

    report = dev(root)

    assert reloaded(report) == tables
    assert set(report.load.kept) == set(TABLES) - tables
    # New fingerprints, so the tables are made again; but a comment changes no value, and the digest of
    # the reloaded tables' contents says so: nothing for dbt to build.
    assert_skipped(report)
    assert raw_checksums(root) == first.raw
    assert mart_checksums(root) == first.marts
    assert_skipped(dev(root))


HELPER_IMPORT = """
import sys
from pathlib import Path

# The pipelines folder is not on sys.path: a pipeline that shares code puts it there.
sys.path.insert(0, str(Path(__file__).parent))
import {name}  # noqa: E402
"""


@pytest.fixture
def helper(root: Path, monkeypatch: pytest.MonkeyPatch):
    """pipelines/<name>.py, a helper module events.py imports (sys.path and sys.modules restored)."""
    import sys

    monkeypatch.setattr(sys, "path", list(sys.path))
    names: list[str] = []

    def make(name: str, imported_by: str | None = "events.py") -> Path:
        names.append(name)
        path = root / "pipelines" / f"{name}.py"
        path.write_text("VALUE = 1\n")
        if imported_by:
            append_line(root / "pipelines" / imported_by, HELPER_IMPORT.format(name=name))
        return path

    yield make
    for name in names:
        sys.modules.pop(name, None)


def test_an_edited_helper_reloads_the_pipelines_that_import_it(first: First, root: Path, helper) -> None:
    shared = helper("_shared")
    assert reloaded(dev(root)) == {"raw_events"}
    assert_skipped(dev(root))

    append_line(shared, "# edited")
    report = dev(root)

    assert reloaded(report) == {"raw_events"}
    assert report.load.kept == ("raw_users", "raw_orders")
    assert_skipped(report)  # the same values: nothing for dbt to build
    assert raw_checksums(root) == first.raw


def test_an_edited_pipeline_that_changes_values_builds_everything(first: First, root: Path) -> None:
    events = root / "pipelines" / "events.py"
    events.write_text(
        events.read_text()
        .replace(
            "    yield from events.generate(ctx.world)",
            "    for batch in events.generate(ctx.world):\n"
            "        yield batch.set_column(6, 'device', pa.array(['desktop'] * batch.num_rows))",
        )
        .replace("from sbdk.generators import events", "import pyarrow as pa\n\nfrom sbdk.generators import events")
    )

    report = dev(root)

    assert reloaded(report) == {"raw_events"}
    assert_full_build(report, first)
    assert query(root, "select distinct device from main.stg_events") == [("desktop",)]


def test_a_helper_no_pipeline_imports_reloads_nothing(root: Path, helper) -> None:
    unused = helper("_unused", imported_by=None)
    append_line(unused, "# edited")

    report = dev(root)

    assert_kept_all(report)
    assert_skipped(report)


# -- settings that shape every table


def _profile_knob(data: dict) -> dict:
    profile = data["data_profile"]
    profile["funnel"]["purchase"] = round(profile["funnel"]["purchase"] - 0.1, 2)
    return {"data_profile": profile}


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda data: {"seed": data["seed"] + 1}, id="seed"),
        pytest.param(lambda data: {"data_volume": {**data["data_volume"], "events": 1_200}}, id="volume"),
        pytest.param(lambda data: {"as_of": "2026-10-25"}, id="as_of"),
        pytest.param(_profile_knob, id="data_profile"),
    ],
)
def test_a_setting_that_shapes_the_data_reloads_everything(first: First, root: Path, change) -> None:
    config = json.loads((root / "sbdk_config.json").read_text())
    edit_config(root, **change(config))

    report = dev(root)

    assert_reloaded_all(report)
    assert_full_build(report, first)
    assert raw_checksums(root) != first.raw
    assert_skipped(dev(root))


def test_a_seed_or_volume_for_one_run_reloads_everything_then_back(first: First, root: Path) -> None:
    settings = load_settings(root / "sbdk_config.json")
    same = dev(root, seed=settings.seed, volume=settings.data_volume)
    assert_kept_all(same)
    assert_skipped(same)

    other = dev(root, seed=settings.seed + 1)
    assert_reloaded_all(other)
    assert_full_build(other, first)
    bigger = dev(root, seed=settings.seed + 1, volume=DataVolume(users=200, events=1_200))
    assert_reloaded_all(bigger)
    assert_full_build(bigger, first)

    back = dev(root)
    assert_reloaded_all(back)
    assert_full_build(back, first)
    assert raw_checksums(root) == first.raw
    assert mart_checksums(root) == first.marts


def test_a_new_sbdk_version_reloads_everything(first: First, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sbdk
    from sbdk.pipelines.fingerprint import _versions

    monkeypatch.setattr(sbdk, "__version__", "99.0.0")
    _versions.cache_clear()
    try:
        report = dev(root)
        again = dev(root)
    finally:
        monkeypatch.undo()
        _versions.cache_clear()

    assert_reloaded_all(report)
    assert_full_build(report, first)
    assert_kept_all(again)
    assert_skipped(again)


# -- the dbt project


def test_an_edited_model_builds_it_and_what_depends_on_it(first: First, root: Path) -> None:
    funnel = root / "dbt" / "models" / "marts" / "funnel.sql"
    append_line(funnel, "-- edited")

    report = dev(root)

    assert report.success, report.dbt.failure_summary()
    assert_kept_all(report)
    assert models(report) == {"funnel"}
    assert data_tests(report) == first.tests_on("funnel")
    assert mart_checksums(root) == first.marts
    assert_skipped(dev(root))


def test_a_model_built_alone_equals_a_full_build(first: First, root: Path) -> None:
    funnel = root / "dbt" / "models" / "marts" / "funnel.sql"
    sql = funnel.read_text()
    changed = "{{ safe_divide('purchase_sessions', 'page_view_sessions', 2) }} as view_to_purchase_rate"
    funnel.write_text(
        sql.replace("{{ safe_divide('purchase_sessions', 'page_view_sessions') }} as view_to_purchase_rate", changed)
    )
    assert funnel.read_text() != sql

    report = dev(root)

    assert models(report) == {"funnel"}
    assert report.success, report.dbt.failure_summary()
    partial = mart_checksums(root)
    assert partial["funnel"] != first.marts["funnel"]
    assert fresh(root).success
    assert mart_checksums(root) == partial
    assert set(statuses(root).values()) == {"success", "pass"}


def test_an_edited_macro_builds_the_models_that_use_it(first: First, root: Path) -> None:
    macro = root / "dbt" / "macros" / "safe_divide.sql"
    macro.write_text(macro.read_text().replace("scale=4", "scale=3"))

    report = dev(root)

    assert report.success, report.dbt.failure_summary()
    assert_kept_all(report)
    users_of_it = {"user_metrics", "daily_kpis", "funnel"}
    assert models(report) == users_of_it
    assert data_tests(report) == first.tests_on(*users_of_it)
    partial = mart_checksums(root)
    assert partial != first.marts
    assert_skipped(dev(root))
    # What the three models built alone hold is what a full build makes.
    assert fresh(root).success
    assert mart_checksums(root) == partial


def test_a_changed_var_builds_everything(first: First, root: Path) -> None:
    project = root / "dbt" / "dbt_project.yml"
    project.write_text(project.read_text().replace("high_value_threshold_usd: 1000", "high_value_threshold_usd: 500"))

    report = dev(root)

    assert_kept_all(report)
    assert_full_build(report, first)
    assert mart_checksums(root)["user_metrics"] != first.marts["user_metrics"]
    assert_skipped(dev(root))


def test_a_changed_profile_builds_everything(first: First, root: Path) -> None:
    profile = root / "profiles" / "profiles.yml"
    profile.write_text(profile.read_text().replace("threads: 4", "threads: 2"))

    report = dev(root)

    assert_kept_all(report)
    assert_full_build(report, first)
    assert mart_checksums(root) == first.marts
    assert_skipped(dev(root))


def local_package(root: Path) -> Path:
    """A dbt package in the project folder (no network), declared in dbt/packages.yml."""
    package = root / "local_pkg"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text(
        "name: local_pkg\nversion: '1.0.0'\nconfig-version: 2\nmacro-paths: ['macros']\n"
    )
    (package / "macros" / "answer.sql").write_text("{% macro answer() %}42{% endmacro %}\n")
    (root / "dbt" / "packages.yml").write_text("packages:\n  - local: ../local_pkg\n")
    return package


def test_a_new_package_is_installed_and_builds_everything(first: First, root: Path) -> None:
    local_package(root)
    assert not (root / "dbt" / "dbt_packages").exists()

    report = dev(root)

    assert_kept_all(report)
    # dbt_packages was missing: `dbt deps` ran before the build.
    assert (root / "dbt" / "dbt_packages" / "local_pkg").exists()
    assert_full_build(report, first)
    assert_skipped(dev(root))


def test_an_edited_local_package_builds_the_models_that_use_it(root: Path) -> None:
    package = local_package(root)
    (root / "dbt" / "models" / "marts" / "answer.sql").write_text("select {{ local_pkg.answer() }} as answer\n")
    assert dev(root).success
    assert query(root, "select answer from main.answer") == [(42,)]
    assert_skipped(dev(root))

    (package / "macros" / "answer.sql").write_text("{% macro answer() %}43{% endmacro %}\n")
    report = dev(root)

    assert report.dbt is not None and "answer" in models(report)
    assert query(root, "select answer from main.answer") == [(43,)]


# -- the database


def test_a_restored_backup_reloads_everything_and_builds_everything(first: First, root: Path) -> None:
    from sbdk.ops.backup import backup, restore

    settings = load_settings(root / "sbdk_config.json")
    copy = backup(settings)
    restore(settings, copy.path)
    assert not state_dir(settings).exists()

    report = dev(root)

    assert_reloaded_all(report)
    assert_full_build(report, first)
    assert raw_checksums(root) == first.raw
    assert mart_checksums(root) == first.marts
    assert_skipped(dev(root))


def delete_some_orders(root: Path) -> int:
    """Deletes every tenth order from the table raw.raw_orders shows (as a user could): orders left."""
    (schema,) = query(root, "select load_schema from _sbdk.raw_tables where table_name = 'raw_orders'")[0]
    con = duckdb.connect(str(db_path(root)))
    try:
        con.execute(f"delete from {schema}.raw_orders where order_id % 10 = 0")
        return con.execute("select count(*) from raw.raw_orders").fetchone()[0]
    finally:
        con.close()


def test_a_raw_table_changed_by_hand_is_reloaded(first: First, root: Path) -> None:
    before = query(root, "select count(*) from raw.raw_orders")[0][0]
    assert delete_some_orders(root) < before

    report = dev(root)

    assert reloaded(report) == {"raw_orders"}
    assert report.load.kept == ("raw_users", "raw_events")
    assert raw_checksums(root) == first.raw
    # The reloaded orders are those the marts were built from: nothing for dbt to do.
    assert_skipped(report)
    assert mart_checksums(root) == first.marts


def test_dbt_only_after_a_raw_table_changed_by_hand_builds_the_marts_again(first: First, root: Path) -> None:
    left = delete_some_orders(root)

    report = dev(root, pipelines=False)

    # dbt runs again (it is not skipped), and its reconciliation tests catch the orders deleted by hand.
    assert report.dbt is not None and models(report) == MODELS
    assert left < query(root, "select count(*) from raw.raw_events where event_type = 'purchase'")[0][0]
    assert "assert_orders_match_purchase_events" in {n.name for n in report.dbt.failures}
    assert not report.success


def test_a_dropped_mart_builds_everything(first: First, root: Path) -> None:
    con = duckdb.connect(str(db_path(root)))
    try:
        con.execute("drop table main.daily_kpis")
    finally:
        con.close()

    report = dev(root)

    assert_kept_all(report)
    assert_full_build(report, first)
    assert mart_checksums(root) == first.marts
    assert_skipped(dev(root))


# -- failed and interrupted runs


def test_after_a_failed_model_the_next_run_builds_everything(first: First, root: Path) -> None:
    funnel = root / "dbt" / "models" / "marts" / "funnel.sql"
    sql = funnel.read_text()
    funnel.write_text("select * from no_such_relation\n")
    failed = dev(root)
    assert not failed.success
    assert [n.name for n in failed.dbt.failures] == ["funnel"]
    assert not state_dir(load_settings(root / "sbdk_config.json")).exists()

    funnel.write_text(sql)
    report = dev(root)

    assert_kept_all(report)
    assert_full_build(report, first)
    assert mart_checksums(root) == first.marts
    assert_skipped(dev(root))


def test_after_a_failed_data_test_the_next_run_builds_everything(first: First, root: Path) -> None:
    failing = root / "dbt" / "tests" / "assert_nothing_fails.sql"
    failing.write_text("select 1 as broken\n")
    failed = dev(root)
    assert not failed.success
    assert [n.name for n in failed.dbt.failures] == ["assert_nothing_fails"]

    failing.unlink()
    report = dev(root)

    assert report.dbt is not None
    assert_full_build(report, first)
    assert_skipped(dev(root))


def test_after_a_failed_load_nothing_is_rebuilt(first: First, root: Path) -> None:
    from sbdk.errors import PipelineError

    events = root / "pipelines" / "events.py"
    source = events.read_text()
    events.write_text(source.replace("yield from events.generate(ctx.world)", "raise RuntimeError('broken')"))
    with pytest.raises(PipelineError):
        dev(root)

    events.write_text(source)
    report = dev(root)

    assert_kept_all(report)
    assert_skipped(report)
    assert (raw_checksums(root), mart_checksums(root)) == (first.raw, first.marts)


def test_after_a_build_killed_part_way_the_next_run_builds_again(first: First, root: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    funnel = root / "dbt" / "models" / "marts" / "funnel.sql"
    sql = funnel.read_text()
    funnel.write_text(sql.replace("count(*) as sessions", "count(*) + 1 as sessions"))
    marker = tmp_path / "paused"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK")}
    env.update(SBDKTEST_PAUSE_AT="dbt:funnel", SBDKTEST_PAUSE_FILE=str(marker), SBDKTEST_PAUSE_SECONDS="60")
    victim = subprocess.Popen([sys.executable, "-m", "sbdk", "dev"], cwd=root, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while not marker.exists():
        assert victim.poll() is None and time.monotonic() < deadline, "the run never reached funnel"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert mart_checksums(root)["funnel"] != first.marts["funnel"]

    funnel.write_text(sql)
    report = dev(root)

    assert report.dbt is not None and "funnel" in models(report)
    assert mart_checksums(root) == first.marts


def test_a_selection_forgets_the_state_and_the_next_run_builds_everything(first: First, root: Path) -> None:
    selected = dev(root, select=("funnel",))
    assert models(selected) == {"funnel"}
    assert not state_dir(load_settings(root / "sbdk_config.json")).exists()

    report = dev(root)

    assert_kept_all(report)
    assert_full_build(report, first)
    assert_skipped(dev(root))


def test_full_builds_everything_even_when_nothing_changed(first: First, root: Path) -> None:
    report = dev(root, full_build=True)

    assert_kept_all(report)
    assert_full_build(report, first)
    assert_skipped(dev(root))


def test_incremental_appends_then_the_next_run_reloads_the_appended_tables(first: First, root: Path) -> None:
    appended = dev(root, incremental=True)

    assert appended.load.mode == "incremental"
    assert reloaded(appended) == set(TABLES) and appended.load.kept == ()
    assert_full_build(appended, first)
    assert query(root, "select count(*) from _sbdk.raw_tables where fingerprint is not null") == [(0,)]

    report = dev(root)

    assert_reloaded_all(report)
    assert_full_build(report, first)
    assert (raw_checksums(root), mart_checksums(root)) == (first.raw, first.marts)
    assert_skipped(dev(root))


def test_a_change_no_model_sees_skips_dbt(root: Path) -> None:
    append_line(root / "dbt" / "models" / "docs.md", "Notes outside any doc block.")

    report = dev(root)

    assert_kept_all(report)
    assert report.success and report.dbt is None
    assert report.dbt_skipped == "no model, test or seed changed since the last successful build"
    assert_skipped(dev(root))


def test_a_helper_edited_between_runs_of_one_process_is_used(root: Path, helper) -> None:
    events = root / "pipelines" / "events.py"
    events.write_text(
        events.read_text().replace(
            "yield from events.generate(ctx.world)",
            "for batch in events.generate(ctx.world):\n        yield batch.slice(_dropped.FIRST)",
        )
    )
    dropped = helper("_dropped")
    dropped.write_text("FIRST = 0\n")
    assert dev(root, dbt=False).load.tables
    assert query(root, "select count(*) from raw.raw_events") == [(1_000,)]

    dropped.write_text("FIRST = 5\n")
    report = dev(root, dbt=False)

    assert reloaded(report) == {"raw_events"}
    assert query(root, "select count(*) from raw.raw_events") == [(995,)]
