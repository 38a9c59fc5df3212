"""`sbdk start`: what a change is and what it rebuilds (fast, no dbt), then a real watcher
(watchdog, real files, real dbt and dlt) on a small project.

The thread tests share one watcher on one project copy, in file order, as a user's session would:
each test makes its change, waits for the rebuild it causes and leaves the project buildable.
Assertions are on what was rebuilt (dbt's node list, the tables loaded), never on timing.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import edit_config
from helpers import checksum, counts, db_path, purchases, query

from sbdk.run.plan import Trigger
from sbdk.settings import load_settings
from sbdk.testing import Recorder
from sbdk.watch import Area, Change, ChangeKind, Layout, Manifest, Scope, Watcher, classify, plan_rebuild

STG_ORDERS_DOWNSTREAM = {"stg_orders", "int_order_facts", "int_user_orders", "user_metrics", "daily_kpis"}
RAW_EVENTS_DOWNSTREAM = {"stg_events", "int_user_activity", "int_sessions", "user_metrics", "daily_kpis", "funnel"}


def copy_project(built: Path, target: Path) -> Path:
    shutil.copytree(built, target, ignore=shutil.ignore_patterns("target", "logs", "dlt"))
    return target


def dbt_file(root: Path, relative: str) -> Path:
    return root / "dbt" / relative


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(f"\n{line}\n")


def models(report) -> set[str]:
    return {n.name for n in report.dbt.nodes if n.resource_type == "model"}


def layout_of(root: Path) -> Layout:
    return Layout.of(load_settings(root / "sbdk_config.json"))


# Deciding what a change is and what it rebuilds: no watcher, no dbt run (on a project just made
# by `sbdk init`, and a small hand-written manifest).


def test_build_output_state_and_editor_files_are_never_changes(project):
    layout = layout_of(project)
    ignored = [
        "dbt/target/compiled/demo/models/staging/stg_orders.sql",
        "dbt/target/manifest.json",
        "dbt/logs/dbt.log",
        "dbt/dbt_packages/pkg/models/x.sql",
        "data/dev.duckdb",
        "data/dev.duckdb.wal",
        ".sbdk/run.lock",
        ".sbdk/dlt/pipelines/sbdk/state.json",
        "pipelines/__pycache__/events.cpython-311.pyc",
        "dbt/models/staging/.stg_orders.sql.swp",
        "dbt/models/staging/stg_orders.sql~",
        "dbt/models/staging/4913",
        "dbt/models/staging/#stg_orders.sql#",
        "dbt/models/staging/.#stg_orders.sql",
        "dbt/models/staging/stg_orders.sql___jb_tmp___",
        ".git/index",
        "README.md",
        "logs/run.log",
        "profiles/profiles.yml",
        "dbt/analyses/a.sql",
    ]
    assert [p for p in ignored if classify(project / p, layout) is not None] == []
    kinds = {
        "dbt/models/staging/stg_orders.sql": ChangeKind.MODEL,
        "dbt/models/staging/_staging.yml": ChangeKind.YAML,
        "dbt/models/docs.md": ChangeKind.DOCS,
        "dbt/macros/revenue.sql": ChangeKind.MACRO,
        "dbt/macros/_macros.yml": ChangeKind.MACRO,
        "dbt/tests/assert_funnel_steps_are_nested.sql": ChangeKind.TEST,
        "dbt/tests/generic/not_before.sql": ChangeKind.GENERIC_TEST,
        "dbt/seeds/countries.csv": ChangeKind.SEED,
        "dbt/snapshots/users_snapshot.sql": ChangeKind.SNAPSHOT,
        "dbt/dbt_project.yml": ChangeKind.PROJECT,
        "dbt/packages.yml": ChangeKind.PACKAGES,
        "pipelines/events.py": ChangeKind.PIPELINE,
        "pipelines/_shared.py": ChangeKind.PIPELINE_HELPER,
        "sbdk_config.json": ChangeKind.CONFIG,
        ".env": ChangeKind.CONFIG,
    }
    assert {p: getattr(classify(project / p, layout), "kind", None) for p in kinds} == kinds


def test_a_dbt_project_outside_the_sandbox_is_watched_too(project, tmp_path):
    """`dbt_path: ../analytics` (issue #17): its files are changes, its build output and hidden files not."""
    import shutil

    analytics = tmp_path / "analytics"
    shutil.copytree(project / "dbt", analytics)
    edit_config(project, dbt_path=str(analytics))
    layout = layout_of(project)
    assert classify(analytics / "models/staging/stg_orders.sql", layout).kind == ChangeKind.MODEL
    assert classify(analytics / "macros/revenue.sql", layout).kind == ChangeKind.MACRO
    for ignored in ("target/manifest.json", "logs/dbt.log", ".git/index", "models/staging/.stg_orders.sql.swp"):
        assert classify(analytics / ignored, layout) is None, ignored
    assert classify(tmp_path / "elsewhere.sql", layout) is None


def test_scope_drops_what_the_watcher_does_not_rebuild(project):
    layout = layout_of(project)
    model, pipeline = project / "dbt/models/staging/stg_orders.sql", project / "pipelines/events.py"

    assert classify(model, layout, Scope(dbt=False)) is None
    assert classify(pipeline, layout, Scope(pipelines=False)) is None
    config = plan_rebuild([Change(project / "sbdk_config.json", ChangeKind.CONFIG)], layout, Scope(pipelines=False))
    assert (config.plan.pipelines, config.plan.dbt, config.plan.select) == (False, True, ())


# A source feeding stg, which feeds mart; a not_null test on each model.
MANIFEST = Manifest(
    {
        "nodes": {
            "model.demo.stg": {"name": "stg", "resource_type": "model"},
            "model.demo.mart": {"name": "mart", "resource_type": "model"},
            "test.demo.not_null_stg": {
                "name": "not_null_stg",
                "resource_type": "test",
                "test_metadata": {"name": "not_null"},
            },
            "test.demo.not_null_mart": {
                "name": "not_null_mart",
                "resource_type": "test",
                "test_metadata": {"name": "not_null"},
            },
        },
        "sources": {
            "source.demo.raw.raw_events": {"source_name": "raw", "name": "raw_events", "identifier": "raw_events"}
        },
        "child_map": {
            "source.demo.raw.raw_events": ["model.demo.stg"],
            "model.demo.stg": ["model.demo.mart", "test.demo.not_null_stg"],
            "model.demo.mart": ["test.demo.not_null_mart"],
        },
    }
)


def test_the_manifest_counts_what_a_selection_builds():
    assert MANIFEST.count(()) == 4
    assert MANIFEST.count(("stg+",)) == 4
    assert MANIFEST.count(("mart",)) == 1
    assert MANIFEST.count(("source:raw.raw_events+",)) == 4
    assert MANIFEST.count(("test_name:not_null",)) == 2
    assert MANIFEST.count(("mart+", "test_name:not_null")) == 3
    # Selectors it does not resolve, and names it never parsed: unknown, not zero.
    assert MANIFEST.count(("path:models/stg.sql+",)) is None
    assert MANIFEST.count(("stg+", "gone+")) is None
    assert MANIFEST.source_selector("raw_events") == "source:raw.raw_events+"
    assert MANIFEST.source_selector("raw_other") is None


def test_every_kind_of_change_has_a_plan(project):
    layout = layout_of(project)
    for kind in ChangeKind:
        rebuild = plan_rebuild([Change(project / "dbt/models/x.sql", kind, Area.MODEL)], layout, manifest=MANIFEST)
        assert rebuild.plan is None or rebuild.plan.trigger is Trigger.WATCH, kind


def test_each_change_kind_adds_the_least_it_needs(project):
    layout = layout_of(project)
    dbt = project / "dbt"

    def plan(kind: ChangeKind, relative: str, area: Area | None = None, *, deleted: bool = False, scope=None):
        change = Change(project / relative, kind, area, deleted=deleted)
        return plan_rebuild([change], layout, scope or Scope(), MANIFEST)

    packages = plan(ChangeKind.PACKAGES, "dbt/packages.yml")
    assert (packages.plan.deps, packages.plan.select, packages.plan.pipelines) == (True, (), False)
    assert packages.summary == "packages.yml changed → installing dbt packages, building everything (4 nodes)"
    assert plan(ChangeKind.PACKAGES, "dbt/packages.yml", scope=Scope(dbt=False)).plan is None

    helper = plan(ChangeKind.PIPELINE_HELPER, "pipelines/_shared.py").plan
    assert (helper.pipelines, helper.tables, helper.dbt, helper.select) == (True, None, True, ())

    (project / "pipelines/clicks.py").write_text('TABLE: str = "raw_clicks"\n')
    clicks = plan(ChangeKind.PIPELINE, "pipelines/clicks.py")
    assert (clicks.plan.tables, clicks.plan.dbt) == (frozenset({"raw_clicks"}), False)
    assert clicks.notes == ("no dbt source reads raw_clicks",)
    gone = plan(ChangeKind.PIPELINE, "pipelines/clicks.py", deleted=True)
    assert gone.plan is None and "its table stays as last loaded" in gone.summary

    assert plan(ChangeKind.MODEL, "dbt/models/stg.sql", Area.MODEL, deleted=True).plan.select == ("mart+",)
    assert "never built" in plan(ChangeKind.MODEL, "dbt/models/new.sql", Area.MODEL, deleted=True).summary

    (dbt / "snapshots").mkdir()
    (dbt / "snapshots/users.sql").write_text("{% snapshot users_snapshot %} select 1 {% endsnapshot %}")
    (dbt / "snapshots/empty.sql").write_text("")
    assert plan(ChangeKind.SNAPSHOT, "dbt/snapshots/users.sql").plan.select == ("users_snapshot+",)
    assert plan(ChangeKind.SNAPSHOT, "dbt/snapshots/empty.sql").plan.select == ("path:snapshots/empty.sql+",)

    assert plan(ChangeKind.TEST, "dbt/tests/assert_x.sql").plan.select == ("assert_x",)
    assert plan(ChangeKind.TEST, "dbt/tests/assert_x.sql", deleted=True).plan is None
    (dbt / "tests/generic/broken.sql").write_text("not a test block")
    assert plan(ChangeKind.GENERIC_TEST, "dbt/tests/generic/broken.sql").plan.select == ()

    (dbt / "tests/_more.yml").write_text("data_tests:\n  - name: assert_y\n")
    assert plan(ChangeKind.YAML, "dbt/tests/_more.yml", Area.TEST).plan.select == ("assert_y",)
    # A properties file that cannot be read: the resources next to it instead.
    (dbt / "models/marts/_broken.yml").write_text("models: [unclosed")
    marts = plan(ChangeKind.YAML, "dbt/models/marts/_broken.yml", Area.MODEL).plan.select
    assert marts == ("daily_kpis+", "funnel+", "user_metrics+")

    (dbt / "models/empty").mkdir()
    assert plan(ChangeKind.FOLDER, "dbt/models/empty", Area.MODEL).plan is None
    assert plan(ChangeKind.FOLDER, "dbt/models/marts", Area.MODEL).plan.select == ()


def test_a_batch_gets_one_plan_for_all_its_changes(project):
    layout = layout_of(project)
    model = Change(project / "dbt/models/stg.sql", ChangeKind.MODEL, Area.MODEL)
    events = Change(project / "pipelines/events.py", ChangeKind.PIPELINE)
    docs = Change(project / "dbt/models/docs.md", ChangeKind.DOCS, Area.MODEL)

    both = plan_rebuild([model, events, docs], layout, manifest=MANIFEST)
    assert (both.plan.tables, both.plan.select) == (frozenset({"raw_events"}), ("stg+", "source:raw.raw_events+"))
    assert both.notes == ("docs.md is documentation only",)
    assert both.summary.startswith("stg, events.py, docs.md changed → reloading raw_events, building 4 nodes")
    # A macro needs the whole project built: the selection gives way to it.
    macro = Change(project / "dbt/macros/revenue.sql", ChangeKind.MACRO, Area.MACRO)
    assert plan_rebuild([model, macro], layout, manifest=MANIFEST).plan.select == ()


def test_a_properties_file_rebuilds_only_the_entries_that_changed(project):
    import yaml

    layout = layout_of(project)
    sources = project / "dbt/models/staging/_sources.yml"
    staging = project / "dbt/models/staging/_staging.yml"
    before = {sources: sources.read_bytes(), staging: staging.read_bytes()}

    def plan(path: Path, *, deleted: bool = False, previous=before):
        change = Change(path, ChangeKind.YAML, Area.MODEL, deleted=deleted)
        return plan_rebuild([change], layout, manifest=MANIFEST, previous=previous)

    edit(sources, "One row per order placed.", "One row per order placed, in any currency.")
    assert plan(sources).plan.select == ("source:raw.raw_orders+",)
    # Without what it said before, every entry of the file counts.
    assert len(plan(sources, previous=None).plan.select) == 3
    sources.write_bytes(before[sources] + b"\n# a comment changes no definition\n")
    comment = plan(sources)
    assert comment.plan is None and "nothing that is built changed" in comment.summary
    # A setting of the whole source applies to each of its tables.
    sources.write_text(before[sources].decode().replace("    schema: raw\n", "    schema: raw\n    loader: dlt\n", 1))
    assert plan(sources).plan.select == ("source:raw+",)
    # A table removed: what read it (per the last parse) is rebuilt, and dbt reports the broken reads.
    data = yaml.safe_load(before[sources])
    data["sources"][0]["tables"] = [t for t in data["sources"][0]["tables"] if t["name"] != "raw_events"]
    sources.write_text(yaml.safe_dump(data))
    assert plan(sources).plan.select == ("stg+",)
    sources.unlink()
    assert plan(sources, deleted=True).plan.select == ("stg+",)
    # Half-written: compared as a whole file (the folder's models, when it does not parse at all).
    sources.write_text("sources: [unclosed")
    assert set(plan(sources).plan.select) == {"stg_users+", "stg_events+", "stg_orders+"}

    edit(staging, "One row per order from raw_orders", "One row per order (raw_orders)")
    assert plan(staging).plan.select == ("stg_orders+",)


def test_a_write_that_changes_no_content_is_no_change(project, monkeypatch):
    from sbdk.errors import LockError

    recorder = Recorder()
    watcher = Watcher(load_settings(project / "sbdk_config.json"), listener=recorder)
    watcher.remember_contents()
    model = project / "dbt/models/staging/stg_orders.sql"
    config = project / "sbdk_config.json"

    os.utime(model)
    config.write_text(config.read_text())
    touched = watcher.plan([model, config])
    assert touched.plan is None and touched.changes == ()
    assert touched.summary == "stg_orders, sbdk_config.json saved unchanged → nothing to rebuild"

    append(model, "-- edited")
    assert watcher.plan([model]).plan.select == ("stg_orders+",)
    assert watcher.plan([model]).plan is None  # as of the last plan, nothing changed since

    # A rebuild that could not run built nothing: the next save retries it, even unchanged.
    def held(plan, changes):
        raise LockError("another sbdk run is using this project.")

    monkeypatch.setattr(watcher, "_run", held)
    watcher.execute(plan_rebuild([Change(model, ChangeKind.MODEL, Area.MODEL)], watcher.layout))
    assert recorder.kinds() == ["rebuild_started", "rebuild_failed"]
    assert watcher.plan([model]).plan.select == ("stg_orders+",)

    model.unlink()
    deleted = watcher.plan([model])
    assert [c.deleted for c in deleted.changes] == [True]


# What the last parse of a built project says.


@pytest.mark.slow
def test_each_kind_of_change_gets_the_smallest_plan(built):
    watcher = Watcher(load_settings(built / "sbdk_config.json"))
    root = built

    def plan(relative: str):
        return watcher.plan([root / relative]).plan

    rebuild = watcher.plan([root / "dbt/models/staging/stg_orders.sql"])
    stg = rebuild.plan
    assert (stg.pipelines, stg.dbt, stg.select) == (False, True, ("stg_orders+",))
    events = plan("pipelines/events.py")
    assert (events.tables, events.select) == (frozenset({"raw_events"}), ("source:raw.raw_events+",))
    assert set(plan("dbt/models/staging/_staging.yml").select) == {"stg_users+", "stg_events+", "stg_orders+"}
    macro = plan("dbt/macros/revenue.sql")
    assert macro.select == () and not macro.pipelines
    assert plan("dbt/dbt_project.yml").select == ()
    assert plan("dbt/tests/generic/not_before.sql").select == ("test_name:not_before",)
    everything = plan("sbdk_config.json")
    assert (everything.pipelines, everything.tables, everything.dbt, everything.select) == (True, None, True, ())
    docs = watcher.plan([root / "dbt/models/docs.md"])
    assert docs.plan is None and "documentation only" in docs.summary

    assert re.fullmatch(r"stg_orders changed → building \d+ nodes \(stg_orders\+\)", rebuild.summary)
    assert rebuild.nodes == Manifest.read(built / "dbt/target/manifest.json").count(("stg_orders+",))


@pytest.mark.slow
def test_dbt_partial_parse_cache_names_the_graph_its_manifest_does(built):
    # What a rebuild that skips dbt's JSON artifacts leaves the next plan (sbdk.watch.manifest).
    target = built / "dbt/target"
    written = Manifest.read(target / "manifest.json")
    cached = Manifest.read_partial_parse(target / "partial_parse.msgpack")

    assert cached is not None and (cached.nodes.keys(), cached.sources.keys()) == (
        written.nodes.keys(),
        written.sources.keys(),
    )
    for unique_id in [*written.nodes, *written.sources]:
        assert sorted(cached.child_map.get(unique_id, [])) == sorted(written.child_map.get(unique_id, []))
    selectors = [f"{node['name']}+" for node in written.nodes.values() if node["resource_type"] == "model"]
    assert [cached.count((s,)) for s in selectors] == [written.count((s,)) for s in selectors]
    assert cached.relations_from("models") == written.relations_from("models")


@pytest.mark.slow
def test_a_deleted_model_rebuilds_what_depended_on_it(built):
    watcher = Watcher(load_settings(built / "sbdk_config.json"))
    manifest = watcher.manifest()
    gone = Change(built / "dbt/models/intermediate/int_sessions.sql", ChangeKind.MODEL, Area.MODEL, deleted=True)
    leaf = Change(built / "dbt/models/marts/funnel.sql", ChangeKind.MODEL, Area.MODEL, deleted=True)

    assert plan_rebuild([gone], watcher.layout, manifest=manifest).plan.select == ("funnel+",)
    nothing = plan_rebuild([leaf], watcher.layout, manifest=manifest)
    assert nothing.plan is None and "nothing depends on it" in nothing.summary
    assert plan_rebuild([gone], watcher.layout, manifest=None).plan.select == ()


# A real watcher in a thread on one project copy, shared by the tests below (in file order).


@dataclass
class Live:
    root: Path
    watcher: Watcher
    recorder: Recorder

    def rebuild(self, *actions: Callable[[], None]):
        """Do `actions`, then wait for the one rebuild they cause: (kind, rebuild, report or error)."""
        start = len(self.recorder.events)
        for action in actions:
            action()
        index, kind, payload = self.recorder.wait_for(
            "rebuild_finished", "rebuild_failed", "rebuild_skipped", after=start
        )
        if kind == "rebuild_failed":
            raise AssertionError(f"rebuild failed: {payload[1]!r}")
        assert self.recorder.kinds()[start:index].count("rebuild_started") <= 1
        return payload

    def started_since(self, start: int) -> list:
        return [payload[0] for kind, payload in self.recorder.events[start:] if kind == "rebuild_started"]


@pytest.fixture(scope="module")
def live(built: Path, tmp_path_factory):
    root = copy_project(built, tmp_path_factory.mktemp("live") / "demo")
    recorder = Recorder()
    watcher = Watcher(load_settings(root / "sbdk_config.json"), debounce=0.3, listener=recorder)
    thread = threading.Thread(target=watcher.serve, kwargs={"initial_run": False}, daemon=True)
    thread.start()
    recorder.wait_for("watching")
    yield Live(root, watcher, recorder)
    watcher.stop()
    thread.join(timeout=120)
    assert not thread.is_alive()


@pytest.mark.slow
def test_editing_a_staging_model_rebuilds_only_it_and_its_descendants(live):
    model = dbt_file(live.root, "models/staging/stg_orders.sql")

    rebuild, report = live.rebuild(
        lambda: edit(model, "select * from cleaned", "select *, 1 as watch_marker from cleaned")
    )

    assert rebuild.plan.select == ("stg_orders+",) and not rebuild.plan.pipelines
    assert report.success, report.dbt.failures
    assert models(report) == STG_ORDERS_DOWNSTREAM
    assert all(n.status in ("success", "pass") for n in report.dbt.nodes)
    assert query(live.root, "select max(watch_marker) from main.stg_orders") == [(1,)]

    # A second edit is built from the new SQL, not from a manifest kept from the first one.
    rebuild, report = live.rebuild(lambda: edit(model, "1 as watch_marker", "2 as watch_marker"))
    assert report.success and models(report) == STG_ORDERS_DOWNSTREAM
    assert query(live.root, "select max(watch_marker) from main.stg_orders") == [(2,)]


@pytest.mark.slow
def test_editing_a_pipeline_reloads_only_its_table_and_what_reads_it(live):
    others = {"raw_users": "user_id", "raw_orders": "order_id"}
    before = {table: checksum(live.root, f"raw.{table}", key) for table, key in others.items()}

    new_column = (
        "    import pyarrow as pa\n\n"
        "    for batch in events.generate(ctx.world):\n"
        "        yield batch.append_column('channel', pa.array(['web'] * batch.num_rows))"
    )
    rebuild, report = live.rebuild(
        lambda: edit(live.root / "pipelines/events.py", "    yield from events.generate(ctx.world)", new_column)
    )

    assert rebuild.plan.tables == frozenset({"raw_events"})
    assert report.success, report.dbt.failures
    assert [t.table for t in report.load.tables] == ["raw_events"]
    assert query(live.root, "select count(*) from raw.raw_events where channel = 'web'") == [(1_000,)]
    assert {table: checksum(live.root, f"raw.{table}", key) for table, key in others.items()} == before
    assert models(report) == RAW_EVENTS_DOWNSTREAM


@pytest.mark.slow
def test_a_burst_of_saves_is_one_rebuild(live):
    files = [
        dbt_file(live.root, "models/staging/stg_users.sql"),
        dbt_file(live.root, "models/intermediate/int_sessions.sql"),
        dbt_file(live.root, "models/intermediate/_intermediate.yml"),
    ]
    start = len(live.recorder.events)

    def burst() -> None:
        for i in range(10):
            path = files[i % len(files)]
            append(path, f"# burst {i}" if path.suffix == ".yml" else f"-- burst {i}")

    rebuild, report = live.rebuild(burst)
    sentinel = dbt_file(live.root, "models/marts/funnel.sql")
    next_rebuild, _ = live.rebuild(lambda: append(sentinel, "-- sentinel"))

    assert {c.path for c in rebuild.changes} == set(files)
    assert report.success, report.dbt.failures
    assert {c.path for c in next_rebuild.changes} == {sentinel}
    assert live.started_since(start) == [rebuild, next_rebuild]


@pytest.mark.slow
def test_build_output_and_editor_files_trigger_nothing(live):
    root, start = live.root, len(live.recorder.events)

    def noise() -> None:
        for relative in (
            "dbt/target/noise.sql",
            "dbt/target/compiled/noise.sql",
            "dbt/logs/noise.log",
            ".sbdk/noise.json",
            "data/noise.duckdb",
            "pipelines/__pycache__/noise.cpython-311.pyc",
            "dbt/models/staging/.stg_orders.sql.swp",
            "dbt/models/staging/stg_orders.sql~",
            "dbt/models/staging/4913",
        ):
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text("noise")

    sentinel = dbt_file(root, "models/marts/funnel.sql")
    rebuild, report = live.rebuild(noise, lambda: append(sentinel, "-- after the noise"))

    assert {c.path for c in rebuild.changes} == {sentinel}
    assert models(report) == {"funnel"}
    assert live.started_since(start) == [rebuild]


@pytest.mark.slow
def test_a_sql_error_is_reported_and_the_next_good_save_rebuilds(live):
    model = dbt_file(live.root, "models/staging/stg_orders.sql")
    good = model.read_text()

    _, broken = live.rebuild(lambda: model.write_text(good.replace("from cleaned", "from cleaned where")))

    assert not broken.success
    assert [(n.name, n.status) for n in broken.dbt.failures] == [("stg_orders", "error")]
    assert {n.name for n in broken.dbt.nodes if n.status == "skipped"} >= {"int_order_facts", "user_metrics"}

    _, fixed = live.rebuild(lambda: model.write_text(good))
    assert fixed.success, fixed.dbt.failures
    assert models(fixed) == STG_ORDERS_DOWNSTREAM


@pytest.mark.slow
def test_a_deleted_model_is_reported_and_the_watcher_goes_on(live):
    model = dbt_file(live.root, "models/intermediate/int_sessions.sql")
    text = model.read_text()

    rebuild, report = live.rebuild(model.unlink)

    assert rebuild.plan.select == ("funnel+",)
    assert not report.success
    assert "int_sessions" in (report.dbt.error or "") + " ".join(n.message or "" for n in report.dbt.failures)

    restored_rebuild, restored = live.rebuild(lambda: model.write_text(text))
    assert restored.success, restored.dbt.failures
    assert models(restored) == {"int_sessions", "funnel"}
    # While funnel could not parse, the view was kept; it is defined again now, so it stays.
    assert restored_rebuild.dropped == ()
    assert query(live.root, "select count(*) from main.int_sessions")[0][0] > 0


def relations(root: Path) -> set[str]:
    rows = query(root, "select table_schema, table_name from information_schema.tables")
    return {f"{schema}.{name}" for schema, name in rows}


@pytest.mark.slow
def test_a_touch_rebuilds_nothing_and_an_edit_still_does(live):
    model = dbt_file(live.root, "models/marts/funnel.sql")
    start = len(live.recorder.events)

    def touch() -> None:
        os.utime(model)
        model.write_text(model.read_text())  # an editor saving an unchanged buffer

    (touched,) = live.rebuild(touch)
    rebuild, report = live.rebuild(lambda: append(model, "-- a real edit"))

    assert touched.plan is None and "saved unchanged → nothing to rebuild" in touched.summary
    assert report.success and models(report) == {"funnel"}
    assert live.started_since(start) == [rebuild]


@pytest.mark.slow
def test_changing_one_source_rebuilds_only_what_reads_it(live):
    sources = dbt_file(live.root, "models/staging/_sources.yml")

    orders, orders_report = live.rebuild(
        lambda: edit(sources, "One row per order placed.", "One row per order placed (any currency).")
    )
    events, events_report = live.rebuild(
        lambda: edit(sources, "One row per tracked product event.", "One row per product event tracked.")
    )
    (comment,) = live.rebuild(lambda: append(sources, "# a comment defines nothing"))

    assert orders.plan.select == ("source:raw.raw_orders+",)
    assert orders_report.success and models(orders_report) == STG_ORDERS_DOWNSTREAM
    assert events.plan.select == ("source:raw.raw_events+",)
    assert events_report.success and models(events_report) == RAW_EVENTS_DOWNSTREAM
    assert comment.plan is None and "nothing that is built changed" in comment.summary


@pytest.mark.slow
def test_a_deleted_model_drops_what_it_built(live):
    root = live.root
    old = dbt_file(root, "models/marts/old_mart.sql")
    _, built = live.rebuild(lambda: old.write_text("select 1 as id\n"))
    assert built.success and models(built) == {"old_mart"}
    before = relations(root)
    raw = counts(root)
    assert "main.old_mart" in before

    (deleted,) = live.rebuild(old.unlink)

    assert deleted.plan is None and deleted.dropped == ("table main.old_mart",)
    assert "dropped stale table main.old_mart" in deleted.summary
    assert relations(root) == before - {"main.old_mart"}
    assert counts(root) == raw

    # A renamed model: the new one is built, then the old one's view is dropped.
    staging = dbt_file(root, "models/staging/stg_old.sql")
    _, built = live.rebuild(lambda: staging.write_text("select 1 as id\n"))
    assert models(built) == {"stg_old"}
    renamed, report = live.rebuild(lambda: staging.rename(staging.with_name("stg_new.sql")))
    assert report.success and models(report) == {"stg_new"}
    assert renamed.dropped == ("view main.stg_old",)
    assert "main.stg_old" not in relations(root) and "main.stg_new" in relations(root)
    (gone,) = live.rebuild(staging.with_name("stg_new.sql").unlink)
    assert gone.dropped == ("view main.stg_new",)


@pytest.mark.slow
def test_an_invalid_config_is_reported_and_the_last_good_one_kept(live):
    config = live.root / "sbdk_config.json"
    start = len(live.recorder.events)
    config.write_text(config.read_text().replace('"seed": 42', '"seed": "forty-two"'))

    _, _, (error,) = live.recorder.wait_for("settings_invalid", after=start)
    assert "seed" in str(error)
    sentinel = dbt_file(live.root, "models/marts/funnel.sql")
    _rebuild, report = live.rebuild(lambda: append(sentinel, "-- with the last good settings"))
    assert report.success and models(report) == {"funnel"}
    assert live.watcher.settings.seed == 42


@pytest.mark.slow
def test_a_packages_change_runs_dbt_deps_inside_the_logged_run(live):
    from sbdk.run import history
    from sbdk.run.runlog import find_log

    packages = dbt_file(live.root, "packages.yml")
    rebuild, report = live.rebuild(lambda: packages.write_text("packages: []\n"))

    assert rebuild.summary.startswith("packages.yml changed → installing dbt packages, building everything")
    assert report.success, report.dbt.failures
    # `dbt deps` is part of the run itself: in its history entry and its log, like the build.
    entry = history.find(live.watcher.settings.paths.state_dir, report.run_id)
    assert (entry["trigger"], entry["options"]["deps"], entry["status"]) == ("sbdk start", True, "succeeded")
    log = find_log(live.watcher.settings, report.run_id).read_text().splitlines()
    assert "run_started" in log[0] and "dbt/packages.yml" in log[0]
    assert any("stage=dbt stage_started detail=deps" in line for line in log)


# The command itself, in a real process.


def test_pipelines_only_and_dbt_only_exclude_each_other(project, cli):
    result = cli("start", "--pipelines-only", "--dbt-only", cwd=project)
    assert result.exit_code == 2
    assert "exclude each other" in result.stderr

    result = cli("start", "--debounce", "-5", cwd=project)
    assert result.exit_code == 2
    assert "--debounce -5" in result.stderr


class Process:
    """`sbdk start` in a subprocess, with its output collected line by line."""

    def __init__(self, root: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DLT_DATA_DIR", "DBT_DUCKDB_PATH")}
        env["COLUMNS"] = "200"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sbdk", "start", *args],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.cond = threading.Condition()
        # Both pipes are drained all the time: a full pipe would block the process.
        self.readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self.readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self.cond:
                lines.append(line)
                self.cond.notify_all()

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.out:
                    if re.search(pattern, line):
                        return line
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no line matching {pattern!r}:\n{''.join(self.out)}\n{''.join(self.err)}")
                self.cond.wait(0.5)

    def children(self) -> set[int]:
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.proc.pid:
                found.add(int(stat.parent.name))
        return found

    def stop(self, sig: int) -> tuple[int, str, str]:
        children = self.children()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(Path(f"/proc/{pid}").exists() for pid in children), "a child process outlived sbdk start"
        for reader in self.readers:
            reader.join(timeout=30)
        with self.cond:
            return code, "".join(self.out), "".join(self.err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def start_process():
    started: list[Process] = []

    def make(root: Path, *args: str) -> Process:
        started.append(Process(root, *args))
        return started[-1]

    yield make
    for process in started:
        process.kill()


def assert_released(root: Path) -> None:
    """The run lock and the DuckDB file are free: another program can take both."""
    fd = os.open(root / ".sbdk" / "run.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    import duckdb

    duckdb.connect(str(db_path(root))).close()  # read-write


@pytest.mark.slow
def test_sigint_while_idle_stops_with_code_0_and_releases_everything(built, tmp_path, start_process):
    root = copy_project(built, tmp_path / "demo")
    process = start_process(root, "--no-initial-run", "--debounce", "100")
    process.wait_for("Watching pipelines/, dbt/")

    append(dbt_file(root, "models/marts/funnel.sql"), "-- saved")
    # No manifest.json in the copy yet, so the plan names the selection instead of a node count.
    process.wait_for(r"funnel changed → building funnel\+")
    process.wait_for(r"OK 1 models built; \d+ tests passed, 0 failed")
    # Idle between rebuilds: the database is free for other programs.
    assert_released(root)

    code, stdout, stderr = process.stop(signal.SIGINT)

    assert code == 0, stderr
    assert "Stopped watching." in stdout
    assert stderr == ""
    assert_released(root)


@pytest.mark.slow
def test_sigterm_during_a_rebuild_stops_with_code_0_and_releases_everything(built, tmp_path, start_process):
    root = copy_project(built, tmp_path / "demo")
    process = start_process(root, "--debounce", "100")
    # The initial run: pipelines, then a full dbt build, stopped while it runs.
    process.wait_for("Initial run → reloading every table, building everything")

    code, stdout, stderr = process.stop(signal.SIGTERM)

    assert code == 0, stdout + stderr
    assert "Stopped watching." in stdout
    assert "Traceback" not in stderr
    assert_released(root)
    assert counts(root) == {"raw_users": 200, "raw_events": 1_000, "raw_orders": purchases(root)}
