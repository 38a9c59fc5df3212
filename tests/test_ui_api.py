"""The HTTP API of `sbdk ui` (issue #18, /tmp/ui/CONTRACT.md): the real app (`create_app`) through
FastAPI's TestClient, over a project built by a real `sbdk dev` (dlt, DuckDB, dbt). Every answer is
checked against the DuckDB file and dbt's manifest; SQL from the query box stays read-only; requests
from other web sites are refused; and the page never gets in the way of a build, in this process or
another one, while following its events live."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from fastapi.testclient import TestClient
from helpers import MARTS, mart_checksums, query, raw_checksums

from sbdk.errors import UsageError
from sbdk.run.events import events_dir, events_path, read_events
from sbdk.run.lock import IN_PROCESS, run_lock
from sbdk.settings import load_settings
from sbdk.ui import app as ui_app
from sbdk.ui.app import create_app
from sbdk.ui.live import FORWARDED, Tail
from sbdk.view import ProjectView

BASE = "http://127.0.0.1:8800"
SBDK = str(Path(sys.executable).with_name("sbdk"))
RAW = ("raw_users", "raw_events", "raw_orders")
DAILY = "model.demo.daily_kpis"
XSS = "<script>alert(1)</script>"
# Polled while another process builds: what the page asks for most.
POLLED = ("/api/overview", "/api/lineage", "/api/nodes/daily_kpis/rows", "/api/runs")


def client_of(root: Path, **options: Any) -> TestClient:
    return TestClient(create_app(load_settings(root / "sbdk_config.json")), base_url=BASE, **options)


def manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "dbt" / "target" / "manifest.json").read_text(encoding="utf-8"))


def manifest_ids(root: Path, *kinds: str) -> set[str]:
    """Unique ids of the manifest's nodes, sources, exposures and unit tests of the given kinds."""
    data = manifest(root)
    return {
        uid
        for group in ("nodes", "sources", "exposures", "unit_tests")
        for uid, node in (data.get(group) or {}).items()
        if node.get("resource_type") in kinds
    }


def history(root: Path) -> list[dict[str, Any]]:
    """The last record of each run in `.sbdk/history.jsonl`, oldest first."""
    runs: dict[str, dict[str, Any]] = {}
    for line in (root / ".sbdk" / "history.jsonl").read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        runs[entry["run_id"]] = entry
    return list(runs.values())


def count(root: Path, relation: str) -> int:
    return query(root, f"select count(*) from {relation}")[0][0]


def assert_error(response: Any, status: int, *parts: str) -> dict[str, Any]:
    """`response` is the contract's error: `status`, JSON {"error", "hint"}, the error naming `parts`."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "hint"}, body
    assert isinstance(body["hint"], str) and body["hint"], body
    for part in parts:
        assert part in body["error"], (part, body)
    return body


@pytest.fixture(scope="module")
def api(built: Path) -> TestClient:
    """One client of the module's built project, for the tests that only read."""
    return client_of(built)


# -- every endpoint on the built project


@pytest.mark.slow
def test_overview_shows_the_project_its_last_run_tables_and_tests(api: TestClient, built: Path) -> None:
    response = api.get("/api/overview")

    assert response.status_code == 200
    body = response.json()
    assert body["project"] == "demo"
    assert body["target"]["name"] == "dev" and body["target"]["type"] == "duckdb"
    assert body["last_run"]["status"] == "succeeded" and body["last_run"]["run_id"] == history(built)[-1]["run_id"]
    assert body["building"] is None and body["stale"] is False
    tables = {(t["schema"], t["name"]): t for t in body["tables"]}
    for table in RAW:
        assert tables[("raw", table)]["kind"] == "raw"
        assert tables[("raw", table)]["rows"] == count(built, f"raw.{table}"), table
    marts = {name: t for (_schema, name), t in tables.items() if t["kind"] == "mart"}
    assert set(marts) == set(MARTS)
    for name, table in marts.items():
        assert table["unique_id"] == f"model.demo.{name}"
        assert table["rows"] == count(built, f"main.{name}"), name
    tests = len(manifest_ids(built, "test"))
    assert tests > 0
    assert body["tests"]["pass"] == tests and body["tests"]["total"] == tests
    assert body["tests"]["fail"] == body["tests"]["error"] == 0
    assert body["next_steps"] == []


@pytest.mark.slow
def test_runs_list_the_build(api: TestClient, built: Path) -> None:
    (recorded,) = history(built)

    response = api.get("/api/runs")

    assert response.status_code == 200
    body = response.json()
    assert body["building"] is None
    (run,) = body["runs"]
    assert run["run_id"] == recorded["run_id"]
    assert run["status"] == "succeeded" and run["trigger"] == "sbdk dev"
    assert run["rows"] == {table: count(built, f"raw.{table}") for table in RAW}
    assert run["error"] is None and run["dbt"]["tests_failed"] == 0
    assert api.get("/api/runs?limit=0").json()["runs"] == [run]  # a limit below 1 still lists one


@pytest.mark.slow
def test_one_run_in_detail_has_its_stages_and_every_node_of_the_manifest(api: TestClient, built: Path) -> None:
    run_id = history(built)[-1]["run_id"]

    response = api.get(f"/api/runs/{run_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["run"]["run_id"] == run_id and body["run"]["status"] == "succeeded"
    assert body["live"] is False and body["failures"] == []
    assert [stage["name"] for stage in body["stages"]] == ["generate", "load", "dbt"]
    statuses = {node["unique_id"]: node["status"] for node in body["nodes"]}
    assert len(statuses) == len(body["nodes"])
    expected = dict.fromkeys(manifest_ids(built, "model"), "success") | dict.fromkeys(
        manifest_ids(built, "test"), "pass"
    )
    assert statuses == expected


@pytest.mark.slow
def test_the_events_file_of_the_run_has_one_node_finished_per_node(api: TestClient, built: Path) -> None:
    run_id = history(built)[-1]["run_id"]
    path = built / ".sbdk" / "runs" / f"{run_id}.jsonl"

    assert path.is_file()
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert events[0]["event"] == "run_started" and events[-1]["event"] == "run_finished"
    assert events[-1]["status"] == "succeeded"
    finished = Counter(e["unique_id"] for e in events if e["event"] == "node_finished")
    nodes = {node["unique_id"] for node in api.get(f"/api/runs/{run_id}").json()["nodes"]}
    assert set(finished) == nodes == manifest_ids(built, "model", "test")
    assert set(finished.values()) == {1}


@pytest.mark.slow
def test_lineage_is_the_manifest_graph(api: TestClient, built: Path) -> None:
    response = api.get("/api/lineage")

    assert response.status_code == 200
    body = response.json()
    ids = {node["id"] for node in body["nodes"]}
    assert ids == manifest_ids(built, "model", "source", "seed", "snapshot", "test", "exposure", "unit_test")
    assert len(ids) == len(body["nodes"])
    assert body["edges"] and all(edge["source"] in ids and edge["target"] in ids for edge in body["edges"])
    layers = {node["id"]: node["layer"] for node in body["nodes"]}
    assert {uid for uid, layer in layers.items() if layer == "mart"} == {f"model.demo.{m}" for m in MARTS}
    # Upstream of a mart, through staging, are the raw sources.
    parents: dict[str, set[str]] = {}
    for edge in body["edges"]:
        parents.setdefault(edge["target"], set()).add(edge["source"])
    seen, frontier = set(), {DAILY}
    while frontier:
        frontier = set().union(*(parents.get(uid, set()) for uid in frontier)) - seen
        seen |= frontier
    assert {uid for uid in seen if uid.startswith("source.")} == {f"source.demo.raw.{t}" for t in RAW}
    assert "staging" in {layers[uid] for uid in seen}


@pytest.mark.slow
def test_the_node_page_of_a_mart_by_name_and_by_unique_id(api: TestClient, built: Path) -> None:
    by_name = api.get("/api/nodes/daily_kpis")
    by_id = api.get(f"/api/nodes/{DAILY}")

    assert by_name.status_code == by_id.status_code == 200
    node = by_name.json()
    assert node == by_id.json()
    assert node["id"] == DAILY and node["layer"] == "mart" and node["materialized"] == "table"
    assert node["relation"] == {"schema": "main", "name": "daily_kpis"}
    assert node["path"] == "models/marts/daily_kpis.sql"
    db_columns = query(
        built,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'main' and table_name = 'daily_kpis' order by ordinal_position",
    )
    assert [(c["name"], c["type"]) for c in node["columns"]] == db_columns
    nodes = manifest(built)["nodes"]
    tests = {uid for uid in manifest_ids(built, "test") if DAILY in nodes[uid]["depends_on"]["nodes"]}
    assert {t["id"] for t in node["tests"]} == tests
    assert {t["status"] for t in node["tests"]} == {"pass"}
    assert node["raw_sql"].strip() and "ref(" in node["raw_sql"]
    assert node["compiled_sql"].strip() and "ref(" not in node["compiled_sql"] and "{{" not in node["compiled_sql"]
    assert node["status"] == "success" and node["rows"] == count(built, "main.daily_kpis")
    assert node["chart"]["kind"] == "line" and node["chart"]["x"] == "activity_date" and node["chart"]["y"]
    assert node["parents"] and all(parent.startswith("model.demo.") for parent in node["parents"])


@pytest.mark.slow
def test_rows_come_a_page_at_a_time_with_the_total(api: TestClient, built: Path) -> None:
    total = count(built, "main.daily_kpis")

    page = api.get("/api/nodes/daily_kpis/rows", params={"offset": 10, "limit": 5})
    last = api.get("/api/nodes/daily_kpis/rows", params={"offset": total - 3, "limit": 50})
    capped = api.get("/api/nodes/raw.raw_events/rows", params={"limit": 100_000})

    assert page.status_code == last.status_code == capped.status_code == 200
    body = page.json()
    assert (body["offset"], body["limit"], body["total"]) == (10, 5, total)
    assert body["columns"][0] == "activity_date" and body["types"][0] == "DATE"
    expected = query(built, "select activity_date, events from main.daily_kpis limit 5 offset 10")
    assert [(row[0], row[4]) for row in body["rows"]] == [(day.isoformat(), n) for day, n in expected]
    assert len(last.json()["rows"]) == 3 and last.json()["total"] == total
    # A page has at most 500 rows, whatever is asked for.
    assert capped.json()["limit"] == 500 and len(capped.json()["rows"]) == 500
    assert capped.json()["total"] == count(built, "raw.raw_events")


@pytest.mark.slow
def test_profile_gives_nulls_distinct_values_and_a_histogram_or_top_values(api: TestClient, built: Path) -> None:
    response = api.get("/api/nodes/daily_kpis/profile")

    assert response.status_code == 200
    body = response.json()
    total = count(built, "main.daily_kpis")
    assert body["rows"] == total and body["sampled"] is False
    columns = {c["name"]: c for c in body["columns"]}
    nulls = query(built, "select count(*) filter (where average_order_value_usd is null) from main.daily_kpis")[0][0]
    assert nulls > 0
    assert columns["average_order_value_usd"]["nulls_pct"] == round(100 * nulls / total, 2)
    assert columns["activity_date"]["nulls_pct"] == 0
    distinct = query(built, "select count(distinct new_users) from main.daily_kpis")[0][0]
    assert columns["new_users"]["distinct"] == distinct
    top = query(built, "select new_users, count(*) from main.daily_kpis group by 1 order by 2 desc, 1 limit 8")
    assert [(t["value"], t["count"]) for t in columns["new_users"]["top"]] == top
    histogram = columns["activity_date"]["histogram"]
    assert histogram and sum(b["count"] for b in histogram) == total
    assert all(c["histogram"] or c["top"] for c in body["columns"])


@pytest.mark.slow
def test_profile_never_shows_more_distinct_values_than_rows(api: TestClient, built: Path) -> None:
    body = api.get("/api/nodes/daily_kpis/profile").json()

    column = next(c for c in body["columns"] if c["name"] == "activity_date")
    assert column["distinct"] == count(built, "main.daily_kpis")
    assert all(c["distinct"] <= body["rows"] for c in body["columns"])


@pytest.mark.slow
def test_a_chart_with_chosen_axes(api: TestClient, built: Path) -> None:
    line = api.get("/api/nodes/daily_kpis/chart", params={"x": "activity_date", "y": ["events", "orders"]})
    bars = api.get("/api/nodes/user_metrics/chart", params={"x": "plan", "y": ["total_events"]})

    assert line.status_code == bars.status_code == 200
    chart = line.json()
    assert chart["kind"] == "line" and chart["x"] == "activity_date" and chart["y"] == ["events", "orders"]
    assert "revenue_usd" in chart["numeric"] and "activity_date" not in chart["numeric"]
    expected = query(built, "select activity_date, events, orders from main.daily_kpis order by 1")
    assert chart["data"]["x"] == [day.isoformat() for day, _e, _o in expected]
    assert chart["data"]["series"]["events"] == [float(e) for _d, e, _o in expected]
    assert chart["data"]["series"]["orders"] == [float(o) for _d, _e, o in expected]
    summed = dict(query(built, "select plan, sum(total_events)::double from main.user_metrics group by 1"))
    bar = bars.json()
    assert bar["kind"] == "bar"
    assert dict(zip(bar["data"]["x"], bar["data"]["series"]["total_events"])) == summed


@pytest.mark.slow
@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"x": "activity_date", "y": ["activity_date"]}, "A chart's y axis needs numbers; activity_date is not one."),
        ({"x": "activity_date", "y": ["nope"]}, "daily_kpis has no column 'nope'."),
        ({"x": "nope", "y": ["events"]}, "daily_kpis has no column 'nope'."),
    ],
)
def test_a_chart_of_a_column_that_is_no_number_or_does_not_exist_is_refused(
    api: TestClient, params: dict[str, Any], error: str
) -> None:
    body = assert_error(api.get("/api/nodes/daily_kpis/chart", params=params), 400)
    assert body["error"] == error


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [
        "/api/nodes/daily_kpi",
        "/api/nodes/daily_kpi/rows",
        "/api/nodes/daily_kpi/profile",
    ],
)
def test_an_unknown_node_is_a_404_naming_the_close_match(api: TestClient, path: str) -> None:
    body = assert_error(api.get(path), 404)

    assert body["error"] == "The dbt project has no model, source, seed or test called 'daily_kpi'."
    assert body["hint"] == "Did you mean daily_kpis?"


@pytest.mark.slow
@pytest.mark.parametrize("page", ["rows", "profile", "chart"])
def test_each_page_of_a_node_reaches_its_own_endpoint(api: TestClient, page: str) -> None:
    response = api.get(f"/api/nodes/daily_kpis/{page}")

    assert response.status_code == 200, response.text
    assert "id" not in response.json()  # not the node page


@pytest.mark.slow
def test_an_unknown_run_is_a_404(api: TestClient) -> None:
    assert_error(api.get("/api/runs/nope"), 404, "No run 'nope'")


@pytest.mark.slow
def test_rows_of_a_test_are_refused_it_is_no_table(api: TestClient, built: Path) -> None:
    test_id = sorted(manifest_ids(built, "test"))[0]

    assert_error(api.get(f"/api/nodes/{test_id}/rows"), 400, "is not a table or view")


# The contract: every error is JSON {"error", "hint"}. FastAPI's own answers are {"detail": ...}.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/runs?limit=ten", None),
        ("POST", "/api/query", ["select 1"]),
        ("GET", "/api/nope", None),
    ],
)
def test_errors_of_the_framework_are_the_contract_s_json_too(
    api: TestClient, method: str, path: str, body: Any
) -> None:
    response = api.request(method, path, json=body)

    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"error", "hint"}, response.text


# -- the query box


@pytest.mark.slow
def test_a_select_returns_rows_up_to_the_cap(api: TestClient, built: Path) -> None:
    capped = api.post("/api/query", json={"sql": "select * from raw.raw_users order by user_id", "limit": 5})
    whole = api.post("/api/query", json={"sql": "select user_id from raw.raw_users order by user_id"})
    exact = api.post("/api/query", json={"sql": "select * from range(10)", "limit": 10})
    most = api.post("/api/query", json={"sql": "select * from range(20000)", "limit": 50_000})

    assert {r.status_code for r in (capped, whole, exact, most)} == {200}
    five = capped.json()
    assert five["columns"][0] == "user_id" and five["types"][0] == "BIGINT"
    assert [row[0] for row in five["rows"]] == [1, 2, 3, 4, 5]
    assert five["truncated"] is True and five["limit"] == 5
    users = count(built, "raw.raw_users")
    assert whole.json()["limit"] == 1000 and len(whole.json()["rows"]) == users and whole.json()["truncated"] is False
    assert len(exact.json()["rows"]) == 10 and exact.json()["truncated"] is False
    assert most.json()["limit"] == 10_000 and len(most.json()["rows"]) == 10_000 and most.json()["truncated"] is True


# The statement refused in each: its verb in the error.
WRITES = {
    "delete from raw.raw_users": "DELETE",
    "update main.daily_kpis set new_users = 0": "UPDATE",
    "insert into main.daily_kpis select * from main.daily_kpis": "INSERT",
    "drop table main.daily_kpis": "DROP",
    "create table main.pwned as select 1 as x": "CREATE",
    "attach '{out}/other.duckdb' as other": "ATTACH",
    "copy (select * from raw.raw_users) to '{out}/users.csv'": "COPY",
    "install httpfs": "INSTALL",
    "load httpfs": "LOAD",
    "set threads = 1": "SET",
    "with gone as (delete from main.daily_kpis returning *) select count(*) from gone": "DELETE",
    "select 1; delete from raw.raw_users": "DELETE",
}


@pytest.mark.slow
@pytest.mark.parametrize("sql", WRITES)
def test_a_write_is_refused_as_read_only_and_nothing_changes(
    project_copy: Path, tmp_path: Path, sql: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # where INSTALL would write
    out = tmp_path / "outside"
    out.mkdir()
    raw, marts = raw_checksums(project_copy), mart_checksums(project_copy)
    client = client_of(project_copy)

    for endpoint in ("/api/query", "/api/query.csv"):
        body = assert_error(client.post(endpoint, json={"sql": sql.format(out=out)}), 400)
        assert f"is read-only: refused the {WRITES[sql]} statement" in body["error"], body
        assert "nothing was run" in body["error"]

    assert raw_checksums(project_copy) == raw and mart_checksums(project_copy) == marts
    assert query(project_copy, "select count(*) from information_schema.tables where table_name = 'pwned'") == [(0,)]
    assert list(out.iterdir()) == [] and not (tmp_path / "home").exists()


@pytest.mark.slow
def test_reading_a_file_outside_the_database_is_refused(api: TestClient) -> None:
    body = assert_error(api.post("/api/query", json={"sql": "select * from read_csv('/etc/passwd')"}), 400)

    assert "reads only the project's database: DuckDB refused `select * from read_csv('/etc/passwd')`" in body["error"]
    assert "root:" not in json.dumps(body)


@pytest.mark.slow
def test_bad_sql_is_a_400_with_duckdb_s_message(api: TestClient) -> None:
    assert_error(api.post("/api/query", json={"sql": "select * from main.nope"}), 400, "nope does not exist")
    assert_error(api.post("/api/query", json={"sql": "   "}), 400, "There is no SQL to run.")
    assert_error(api.post("/api/query", json={"sql": "select 1", "limit": 0}), 400, "row cap")


SLOW_SQL = "select count(*) from range(10000000000)"


@pytest.mark.slow
def test_a_query_past_its_time_limit_is_stopped(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view = ProjectView(load_settings(built / "sbdk_config.json"))
    with pytest.raises(UsageError, match=r"ran past its limit of 0\.5 s and was stopped"):
        view.query(SLOW_SQL, timeout=0.5)

    app = create_app(load_settings(built / "sbdk_config.json"))
    query_at_most = app.state.view.query
    monkeypatch.setattr(app.state.view, "query", lambda sql, limit: query_at_most(sql, limit, timeout=0.5))
    client = TestClient(app, base_url=BASE)

    body = assert_error(client.post("/api/query", json={"sql": SLOW_SQL}), 400)
    assert body["error"] == "The query ran past its limit of 0.5 s and was stopped."
    # The database answers the next query as usual.
    assert client.post("/api/query", json={"sql": "select 42 as n"}).json()["rows"] == [[42]]


@pytest.mark.slow
def test_csv_download_is_an_attachment_with_values_quoted(api: TestClient) -> None:
    sql = "select 'a,b' as label, 1 as n, null as missing, 'say \"hi\"' as quoted, [1, 2] as list"

    response = api.post("/api/query.csv", json={"sql": sql})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="query.csv"'
    assert response.text == 'label,n,missing,quoted,list\r\n"a,b",1,,"say ""hi""","[1, 2]"\r\n'
    assert list(csv.reader(io.StringIO(response.text))) == [
        ["label", "n", "missing", "quoted", "list"],
        ["a,b", "1", "", 'say "hi"', "[1, 2]"],
    ]


# -- safety


@pytest.mark.slow
@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:8801"])
def test_a_post_from_another_origin_is_refused(api: TestClient, origin: str) -> None:
    for endpoint in ("/api/query", "/api/query.csv"):
        body = assert_error(api.post(endpoint, json={"sql": "select 1"}, headers={"Origin": origin}), 403)
        assert body["error"] == "Refused a request from another web site."
    same = api.post("/api/query", json={"sql": "select 1 as n"}, headers={"Origin": BASE})
    assert same.status_code == 200 and same.json()["rows"] == [[1]]


@pytest.mark.slow
def test_other_web_sites_cannot_read_answers(api: TestClient) -> None:
    response = api.get("/api/overview", headers={"Origin": "http://evil.example"})

    assert response.status_code == 200
    assert not any(name.lower().startswith("access-control-") for name in response.headers)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.slow
@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example:8800"])
def test_a_request_for_another_host_is_refused(api: TestClient, host: str) -> None:
    for path in ("/", "/api/overview"):
        response = api.get(path, headers={"Host": host})
        assert response.status_code == 400, (path, response.text)
        assert "demo" not in response.text


@pytest.mark.slow
@pytest.mark.parametrize("base", ["http://localhost:8800", "http://127.0.0.1", "http://[::1]:8800"])
def test_the_page_answers_on_every_loopback_name(built: Path, base: str) -> None:
    client = TestClient(create_app(load_settings(built / "sbdk_config.json")), base_url=base)

    assert client.get("/api/runs").status_code == 200
    same = client.post("/api/query", json={"sql": "select 1 as n"}, headers={"Origin": base})
    assert same.status_code == 200 and same.json()["rows"] == [[1]]


@pytest.mark.slow
def test_the_page_and_its_files_carry_the_content_security_policy(api: TestClient) -> None:
    page = api.get("/")
    # Every file the page loads: its own script and styles and the vendored libraries.
    loaded = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {"/static/app.js", "/static/app.css"} <= set(loaded) and len(loaded) > 2
    paths = ["/", *loaded]

    for path in paths:
        response = api.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert policy == ui_app.CSP
        assert response.headers["x-content-type-options"] == "nosniff"
    directives = dict(d.strip().split(" ", 1) for d in ui_app.CSP.split(";"))
    assert directives["script-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'" and directives["connect-src"] == "'self'"
    assert api.get("/").headers["content-type"].startswith("text/html")


# -- a build made while the page watches: in this process, then in another one


@pytest.mark.slow
def test_a_run_in_this_process_gets_the_last_state_marked_stale(built: Path) -> None:
    settings = load_settings(built / "sbdk_config.json")
    client = client_of(built)
    before = client.get("/api/overview").json()
    rows = client.get("/api/nodes/daily_kpis/rows").json()
    assert before["stale"] is False and before["building"] is None and "stale" not in rows

    # What `sbdk start --ui` does when its watcher rebuilds: the run lock, then the gate (sbdk/run/runner.py).
    with run_lock(settings.paths.lock_file, "sbdk dev"), IN_PROCESS.write():
        overview = client.get("/api/overview")
        stale_rows = client.get("/api/nodes/daily_kpis/rows")
        never_read = client.get("/api/nodes/daily_kpis/profile")
        sql = client.post("/api/query", json={"sql": "select 1"})
        runs = client.get("/api/runs")

    assert overview.status_code == 200
    assert overview.json()["stale"] is True
    assert overview.json()["building"]["pid"] == os.getpid()
    assert overview.json()["building"]["trigger"] == "sbdk dev"
    assert overview.json()["tables"] == before["tables"]
    assert stale_rows.status_code == 200
    assert stale_rows.json() == {**rows, "stale": True, "building": overview.json()["building"]}
    assert_error(never_read, 409, "A build is running (sbdk dev)")
    assert_error(sql, 409, "A build is running (sbdk dev): queries wait until it has finished.")
    assert runs.status_code == 200 and runs.json()["building"]["pid"] == os.getpid()
    after = client.get("/api/overview").json()
    assert after["stale"] is False and after["building"] is None
    assert client.get("/api/nodes/daily_kpis/profile").status_code == 200


class Poller:
    """Asks the API for `POLLED` about every 50 ms in a thread, keeping each answer's status and the
    parts of it that tell whether it came during a build; anything raised is kept as well."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.answers: list[tuple[str, int, Any]] = []
        self.raised: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for path in POLLED:
                try:
                    response = self.client.get(path)
                except Exception as exc:  # kept: the test fails on it
                    self.raised.append(f"{path}: {exc!r}")
                    continue
                body = (
                    response.json() if response.headers.get("content-type", "").startswith("application/json") else None
                )
                kept = body if response.status_code != 200 else (body or {}).get("building")
                self.answers.append((path, response.status_code, kept))
            self._stop.wait(0.05)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the poller did not stop"


@pytest.mark.slow
def test_the_page_holds_no_connection_once_it_has_stopped(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The warmer reads every page's answers as the app starts. A read made slow (as on a busy machine)
    # is under way when the app stops: stopping waits for it, so that this process can open the file
    # with other settings at once, as a build in it would (DuckDB refuses while a reader is open).
    reading = threading.Event()
    profile = ProjectView.profile

    def slow_profile(self: ProjectView, *args: Any, **kwargs: Any) -> Any:
        def read(con: Any) -> Any:
            reading.set()
            time.sleep(0.5)
            return con.execute("select 1").fetchall()

        self._read(("slow",), read)
        return profile(self, *args, **kwargs)

    monkeypatch.setattr(ProjectView, "profile", slow_profile)
    with client_of(built):
        assert reading.wait(60)
    assert not [t for t in threading.enumerate() if t.name == "sbdk-ui-warm"]
    assert count(built, "raw.raw_users") > 0


@pytest.mark.slow
def test_the_page_answers_while_another_process_builds(built: Path, project_copy: Path) -> None:
    # The copy has dbt's last parse, as a project that was built has: the lineage answers throughout.
    shutil.copytree(built / "dbt" / "target", project_copy / "dbt" / "target")
    before = history(project_copy)
    client = client_of(project_copy)

    # Entered, the client runs the app's lifespan: the page's warmer reads in the background as well.
    with client, Poller(client) as poller:
        deadline = time.monotonic() + 60
        while not poller.answers and time.monotonic() < deadline:  # the page has read once before the run
            time.sleep(0.05)
        build = subprocess.run(
            [SBDK, "-q", "dev", "--fresh"], cwd=project_copy, capture_output=True, text=True, timeout=600
        )

    assert build.returncode == 0, build.stdout + build.stderr
    assert poller.raised == []
    statuses = Counter((path, status) for path, status, _kept in poller.answers)
    assert {status for _path, status in statuses} <= {200, 409}, statuses
    assert {path for path, _status in statuses} == set(POLLED)
    for path, status, kept in poller.answers:
        if status == 409:
            assert set(kept) == {"error", "hint"} and kept["error"].startswith("A build is running"), (path, kept)
    # The polls went on during the build, and the page said so.
    during = [kept for path, status, kept in poller.answers if path == "/api/overview" and status == 200 and kept]
    assert during and all(building["pid"] != os.getpid() for building in during)
    runs = client.get("/api/runs").json()
    assert len(runs["runs"]) == len(before) + 1 and runs["building"] is None
    new = runs["runs"][0]
    assert new["status"] == "succeeded" and new["run_id"] == history(project_copy)[-1]["run_id"]
    assert new["run_id"] not in {run["run_id"] for run in before}
    overview = client.get("/api/overview").json()
    assert overview["stale"] is False and overview["last_run"]["run_id"] == new["run_id"]
    tables = {(t["schema"], t["name"]): t["rows"] for t in overview["tables"]}
    assert {table: tables[("raw", table)] for table in RAW} == {
        table: count(project_copy, f"raw.{table}") for table in RAW
    }


# -- following a build live: the events folder (Tail) and the Server-Sent Events


class EventStream:
    """Reads GET /api/events in a thread, line by line, until told to stop (between two lines: the
    heartbeat is made frequent so that a line always comes)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.lines: list[str] = []
        self.status: int | None = None
        self.content_type = ""
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/api/events") as response:
                self.status, self.content_type = response.status_code, response.headers.get("content-type", "")
                for line in response.iter_lines():
                    self.lines.append(line)
                    self.ready.set()
                    if self._stop.is_set():
                        break
        except BaseException as exc:  # kept: the test fails on it
            self.error = exc
        finally:
            self.ready.set()

    def start(self) -> None:
        self._thread.start()
        assert self.ready.wait(60), "the event stream did not start"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), "the event stream did not stop"

    def wait_for(self, line: str, after: str, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = list(self.lines)
            if after in lines and line in lines[lines.index(after) :]:
                return True
            time.sleep(0.05)
        return False

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        """(event name, data) of each event."""
        out = []
        for before, line in zip(self.lines, self.lines[1:]):
            if before.startswith("event: ") and line.startswith("data: "):
                out.append((before.removeprefix("event: "), json.loads(line.removeprefix("data: "))))
        return out


@pytest.fixture(scope="module")
def followed(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A copy of the built project with one more model, whose value is HTML, rebuilt by `sbdk dev
    --dbt-only` while a `Tail` of its events folder and a client of /api/events follow."""
    root = tmp_path_factory.mktemp("followed") / "demo"
    shutil.copytree(built, root, ignore=shutil.ignore_patterns("target", "logs", "dlt"))
    (root / "dbt" / "models" / "marts" / "xss_probe.sql").write_text(f"select '{XSS}' as label, 1 as n\n")
    state_dir = load_settings(root / "sbdk_config.json").paths.state_dir
    before = history(root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ui_app, "HEARTBEAT_SECONDS", 0.4)
        client = client_of(root)
        tail = Tail(events_dir(state_dir))
        stream = EventStream(client)
        stream.start()
        try:
            result = Cli()("dev", "--dbt-only", cwd=root)
            run_id = history(root)[-1]["run_id"]
            # After the run's last event, the stream goes on with heartbeats.
            stream.wait_for(": heartbeat", after="event: run_finished")
        finally:
            stream.stop()
    yield {
        "root": root,
        "result": result,
        "run_id": run_id,
        "before": before,
        "tail": tail,
        "polled": tail.poll(),
        "stream": stream,
        "client": client,
        "state_dir": state_dir,
    }


@pytest.mark.slow
def test_the_followed_build_succeeded_and_added_one_run(followed: dict[str, Any]) -> None:
    assert followed["result"].exit_code == 0, followed["result"].output
    assert followed["run_id"] not in {run["run_id"] for run in followed["before"]}
    runs = followed["client"].get("/api/runs").json()["runs"]
    assert [run["run_id"] for run in runs[:1]] == [followed["run_id"]] and runs[0]["status"] == "succeeded"


@pytest.mark.slow
def test_a_tail_sees_the_events_of_a_run_made_after_it(followed: dict[str, Any]) -> None:
    events = followed["polled"]
    run_id = followed["run_id"]
    nodes = {n["unique_id"] for n in followed["client"].get(f"/api/runs/{run_id}").json()["nodes"]}

    assert events, "the tail saw nothing"
    assert {event["run_id"] for event in events} == {run_id}  # nothing of the run before it
    assert events[0]["event"] == "run_started" and events[0]["trigger"] == "sbdk dev"
    assert events[-1]["event"] == "run_finished" and events[-1]["status"] == "succeeded"
    finished = [event for event in events if event["event"] == "node_finished"]
    assert {event["unique_id"] for event in finished} == nodes and len(finished) == len(nodes)
    assert "model.demo.xss_probe" in nodes
    assert followed["tail"].poll() == []  # each event once
    # Every event of the run the page is told about, in the order of the file.
    written = read_events(followed["state_dir"], run_id)
    assert events == [{**event, "run_id": run_id} for event in written if event["event"] in FORWARDED]
    assert {"run_started", "stage", "node_started", "node_finished", "run_finished"} <= set(FORWARDED)


@pytest.mark.slow
def test_the_event_stream_sends_the_run_as_it_happens(followed: dict[str, Any]) -> None:
    stream: EventStream = followed["stream"]
    run_id = followed["run_id"]

    assert stream.error is None, stream.error
    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
    assert stream.lines[0] == "retry: 2000"
    events = stream.events()
    assert [data for _name, data in events] == [
        {k: v for k, v in event.items() if k != "event"} for event in followed["polled"]
    ]
    names = [name for name, _data in events]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    assert {"stage", "node_started", "node_finished"} <= set(names)
    assert {data["run_id"] for _name, data in events} == {run_id}
    started = next(data for name, data in events if name == "run_started")
    assert started["trigger"] == "sbdk dev"
    node = next(data for name, data in events if name == "node_finished" and data["name"] == "xss_probe")
    assert {"run_id", "unique_id", "name", "resource_type", "status", "seconds"} <= set(node)
    assert node["unique_id"] == "model.demo.xss_probe" and node["status"] == "success"
    assert next(data for name, data in events if name == "run_finished")["status"] == "succeeded"
    assert ": heartbeat" in stream.lines[stream.lines.index("event: run_finished") :]


@pytest.mark.slow
def test_html_in_the_data_comes_back_as_the_exact_string_in_json(followed: dict[str, Any]) -> None:
    client: TestClient = followed["client"]

    rows = client.get("/api/nodes/xss_probe/rows")
    node = client.get("/api/nodes/xss_probe")
    sql = client.post("/api/query", json={"sql": "select label from main.xss_probe"})

    assert rows.status_code == node.status_code == sql.status_code == 200
    assert rows.headers["content-type"] == "application/json"
    assert rows.headers["x-content-type-options"] == "nosniff"
    assert rows.json()["columns"] == ["label", "n"]
    assert rows.json()["rows"] == [[XSS, 1]] and rows.json()["total"] == 1
    assert sql.json()["rows"] == [[XSS]]
    assert node.json()["layer"] == "mart" and node.json()["status"] == "success"
    assert events_path(followed["state_dir"], followed["run_id"]).is_file()


# -- Tail on its own, with files written by hand


def test_a_tail_hands_back_new_complete_lines_once(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    old = folder / "old.jsonl"
    old.write_text(json.dumps({"event": "run_started", "trigger": "sbdk dev"}) + "\n")
    tail = Tail(folder)
    assert tail.poll() == []

    with old.open("a") as handle:
        handle.write(json.dumps({"event": "run_finished", "status": "succeeded"}) + "\n")
    new = folder / "new.jsonl"
    with new.open("w") as handle:
        handle.write(json.dumps({"event": "run_started", "trigger": "sbdk start"}) + "\n")
        handle.write(json.dumps({"event": "not_for_the_page"}) + "\n")
        handle.write("not json\n")
        handle.write('{"event": "node_started", "name": "stg_u')  # still being written
    first = tail.poll()
    with new.open("a") as handle:
        handle.write('sers", "resource_type": "model"}\n')
    second = tail.poll()

    assert sorted(first, key=lambda e: e["run_id"]) == [
        {"event": "run_started", "trigger": "sbdk start", "run_id": "new"},
        {"event": "run_finished", "status": "succeeded", "run_id": "old"},
    ]
    assert second == [{"event": "node_started", "name": "stg_users", "resource_type": "model", "run_id": "new"}]
    assert tail.poll() == []


def test_a_tail_of_a_folder_not_made_yet_waits_for_it(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    tail = Tail(folder)
    assert tail.poll() == []

    folder.mkdir()
    (folder / "r1.jsonl").write_text(json.dumps({"event": "run_started", "trigger": "sbdk dev"}) + "\n")

    assert tail.poll() == [{"event": "run_started", "trigger": "sbdk dev", "run_id": "r1"}]
