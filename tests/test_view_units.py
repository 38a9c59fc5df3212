"""The read model's parts that need no database: dbt's graph, run events, the live tail, the gate."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from sbdk.errors import LockError, UsageError
from sbdk.run.events import EventsReporter, events_path, prune, read_events
from sbdk.run.lock import ReadGate
from sbdk.run.reporters import NULL_REPORTER
from sbdk.run.results import NodeResult
from sbdk.ui.live import Tail
from sbdk.view.catalog import Catalog, layer_of, relation_of


def _node(kind: str, name: str, fqn: list[str], parents: tuple[str, ...] = (), **extra) -> dict:
    return {
        "resource_type": kind,
        "name": name,
        "fqn": fqn,
        "schema": "main",
        "depends_on": {"nodes": list(parents)},
        "config": {"materialized": extra.pop("materialized", "view")},
        **extra,
    }


MANIFEST = {
    "sources": {
        "source.p.shop.orders": {
            "resource_type": "source",
            "name": "orders",
            "source_name": "shop",
            "identifier": "orders_v2",
            "schema": "raw",
            "fqn": ["p", "shop", "orders"],
        }
    },
    "nodes": {
        "model.p.stg_orders": _node("model", "stg_orders", ["p", "staging", "stg_orders"], ("source.p.shop.orders",)),
        "model.p.order_facts": _node("model", "order_facts", ["p", "core", "order_facts"], ("model.p.stg_orders",)),
        "model.p.fct_revenue": _node(
            "model", "fct_revenue", ["p", "reporting", "fct_revenue"], ("model.p.order_facts",), materialized="table"
        ),
        "model.p.eph": _node("model", "eph", ["p", "marts", "eph"], ("model.p.stg_orders",), materialized="ephemeral"),
        "test.p.unique_stg_orders_id": _node("test", "unique_stg_orders_id", ["p", "x"], ("model.p.stg_orders",)),
        "operation.p.hook": {"resource_type": "operation", "name": "hook"},
    },
    "exposures": {
        "exposure.p.dash": {
            "resource_type": "exposure",
            "name": "dash",
            "depends_on": {"nodes": ["model.p.fct_revenue"]},
        }
    },
}


def test_layers_come_from_folders_then_name_prefixes() -> None:
    catalog = Catalog.of(MANIFEST)
    layers = {uid: layer_of(node) for uid, node in catalog.nodes.items()}
    assert layers == {
        "source.p.shop.orders": "source",
        "model.p.stg_orders": "staging",
        "model.p.order_facts": "model",
        "model.p.fct_revenue": "mart",
        "model.p.eph": "mart",
        "test.p.unique_stg_orders_id": "test",
        "exposure.p.dash": "exposure",
    }


def test_relations_are_the_sources_identifier_and_never_an_ephemeral_model() -> None:
    catalog = Catalog.of(MANIFEST)
    assert relation_of(catalog.nodes["source.p.shop.orders"]) == ("raw", "orders_v2")
    assert relation_of(catalog.nodes["model.p.fct_revenue"]) == ("main", "fct_revenue")
    assert relation_of(catalog.nodes["model.p.eph"]) is None
    assert relation_of(catalog.nodes["test.p.unique_stg_orders_id"]) is None


def test_resolve_by_id_name_source_and_relation_and_suggests_close_names() -> None:
    catalog = Catalog.of(MANIFEST)
    assert catalog.resolve("fct_revenue") == "model.p.fct_revenue"
    assert catalog.resolve("shop.orders") == "source.p.shop.orders"
    assert catalog.resolve("raw.orders_v2") == "source.p.shop.orders"
    assert catalog.resolve("model.p.stg_orders") == "model.p.stg_orders"
    with pytest.raises(UsageError) as caught:
        catalog.resolve("fct_revenu")
    assert "no model, source, seed or test called 'fct_revenu'" in caught.value.message
    assert caught.value.hint == "Did you mean fct_revenue?"


def test_neighbours_walk_the_graph_with_depths() -> None:
    catalog = Catalog.of(MANIFEST)
    up = catalog.neighbours("model.p.fct_revenue", "upstream")
    assert [(n["id"], n["depth"]) for n in up["upstream"]] == [
        ("model.p.order_facts", 1),
        ("model.p.stg_orders", 2),
        ("source.p.shop.orders", 3),
    ]
    assert "downstream" not in up
    near = catalog.neighbours("model.p.stg_orders", "both", depth=1)
    assert [n["id"] for n in near["upstream"]] == ["source.p.shop.orders"]
    assert [n["id"] for n in near["downstream"]] == [
        "model.p.eph",
        "model.p.order_facts",
        "test.p.unique_stg_orders_id",
    ]
    with pytest.raises(UsageError):
        catalog.neighbours("model.p.stg_orders", "sideways")


def _node_result(name: str, status: str) -> NodeResult:
    return NodeResult(
        unique_id=f"model.p.{name}",
        name=name,
        resource_type="model",
        status=status,
        seconds=0.25,
        message="boom" if status == "error" else None,
    )


def test_a_runs_events_file_has_its_stages_nodes_and_end(tmp_path: Path) -> None:
    events = EventsReporter(NULL_REPORTER, tmp_path, "r1", "sbdk dev")
    events.stage("dbt", "build")
    events.node_started("a", "model")
    events.node_finished(_node_result("a", "success"))
    events.node_finished(_node_result("b", "error"))
    events.finish("failed", 1.5, "b failed")
    kinds = [e["event"] for e in read_events(tmp_path, "r1")]
    assert kinds == [
        "run_started",
        "stage",
        "node_started",
        "node_finished",
        "node_finished",
        "stage_finished",
        "run_finished",
    ]
    finished = [e for e in read_events(tmp_path, "r1") if e["event"] == "node_finished"]
    assert finished[0].get("message") is None and finished[1]["message"] == "boom"
    events.write("late", x=1)  # after the end nothing more is written
    assert len(read_events(tmp_path, "r1")) == 7


def test_old_event_files_are_pruned(tmp_path: Path) -> None:
    for number in range(5):
        path = events_path(tmp_path, f"run{number}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}\n")
        time.sleep(0.01)
    prune(tmp_path, keep=2)
    assert sorted(p.stem for p in events_path(tmp_path, "x").parent.glob("*.jsonl")) == ["run3", "run4"]


def test_the_tail_hands_back_only_new_complete_lines(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "old.jsonl").write_text(json.dumps({"event": "run_started"}) + "\n")
    tail = Tail(folder)
    assert tail.poll() == []
    with open(folder / "new.jsonl", "a") as handle:
        handle.write(json.dumps({"event": "run_started", "trigger": "t"}) + "\n")
        handle.write('{"event": "node_fin')  # still being written
        handle.flush()
        assert [e["event"] for e in tail.poll()] == ["run_started"]
        handle.write('ished", "name": "a"}\n{"event": "log"}\n')
    assert tail.poll() == [{"event": "node_finished", "name": "a", "run_id": "new"}]
    assert tail.poll() == []


def test_reads_give_way_to_a_run_and_a_run_waits_for_reads() -> None:
    gate = ReadGate()
    order: list[str] = []
    writing, done = threading.Event(), threading.Event()

    def run() -> None:
        with gate.write():
            order.append("write")
            writing.set()
            done.wait(5)

    with gate.read():
        writer = threading.Thread(target=run)
        writer.start()
        time.sleep(0.1)
        order.append("read done")
    assert writing.wait(2)
    assert order == ["read done", "write"]
    assert gate.writing
    with pytest.raises(LockError, match="A run in this process is writing"):
        with gate.read():
            pass
    done.set()
    writer.join(2)
    assert not gate.writing
    with gate.read():
        pass


def test_on_a_server_target_the_view_says_which_parts_read_duckdb_only(make_project) -> None:
    from conftest import edit_config

    from sbdk.settings import load_settings
    from sbdk.view import ProjectView

    project = make_project()
    edit_config(
        project,
        target="prod",
        targets={"prod": {"type": "postgres", "host": "127.0.0.1", "port": 5432, "database": "shop", "user": "sbdk"}},
    )
    view = ProjectView(load_settings(project / "sbdk_config.json"))

    overview = view.overview()

    assert overview["target"]["type"] == "postgres"
    assert overview["tables"] == []
    assert overview["data_note"].startswith(
        "The data of target 'prod' (postgres://sbdk@127.0.0.1:5432/shop) is not shown"
    )
    assert overview["next_steps"] == ["Run `sbdk dev` to generate the data, load it and build the dbt project."]
    with pytest.raises(UsageError, match="rows, profiles, charts and SQL from the project's DuckDB file only"):
        view._reads_duckdb()


def test_a_date_keyed_table_is_a_time_series_and_a_table_of_things_is_bars_by_a_small_category() -> None:
    from sbdk.view.data import default_chart

    daily = [("activity_date", "DATE"), ("new_users", "BIGINT"), ("revenue_usd", "DECIMAL(38,2)")]
    assert default_chart(daily) == {"kind": "line", "x": "activity_date", "y": ["new_users", "revenue_usd"]}
    users = [
        ("user_id", "BIGINT"),
        ("username", "VARCHAR"),
        ("plan", "VARCHAR"),
        ("signed_up_at", "TIMESTAMP"),
        ("total_events", "BIGINT"),
    ]
    assert default_chart(users, {"username": 9_990, "plan": 4}) == {"kind": "bar", "x": "plan", "y": ["total_events"]}
    # No category with a few values: the time series after all.
    assert default_chart(users, {"username": 9_990, "plan": 900})["kind"] == "line"
    assert default_chart([("user_id", "BIGINT"), ("email", "VARCHAR")]) is None


def test_a_views_pages_follow_its_columns_and_a_tables_keep_insertion_order() -> None:
    """Paging a view (whose joins and GROUP BY keep no order in DuckDB) never repeats or skips a row."""
    import duckdb

    from sbdk.view.data import rows

    con = duckdb.connect()
    con.execute("create schema s")
    con.execute("create table s.t as select * from (values (3, 'c'), (1, 'a'), (2, 'b')) v(x, y)")
    con.execute("create view s.v as select * from (values (3, 'c'), (1, 'a'), (2, 'b')) v(x, y)")

    pages = [rows(con, ("s", "v"), offset, 2) for offset in (0, 2)]
    assert [page["rows"] for page in pages] == [[[1, "a"], [2, "b"]], [[3, "c"]]]
    assert pages[0]["total"] == 3
    assert rows(con, ("s", "t"), 0, 3)["rows"] == [[3, "c"], [1, "a"], [2, "b"]]
