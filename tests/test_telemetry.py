"""Traces and metrics observe runs (issue #19 item 5, DESIGN.md §10).

Traces: the SDK's in-memory exporter receives the spans of real runs, and a stand-in OTLP/HTTP
collector on a loopback port receives those of the webhook server and its run worker (two processes,
one trace). Metrics: `GET /metrics` of a real server after a real webhook run.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from test_webhooks import SECRET, deliver, push_payload, wait_for_run
from tests_support import serve_project

from sbdk.errors import LockError
from sbdk.run.lock import run_lock
from sbdk.run.reporters import Reporter
from sbdk.run.runner import RunPlan, run
from sbdk.settings import Settings, load_settings
from sbdk.telemetry import tracing_observer

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
# conftest's SMALL volumes; raw_orders has a row per purchase event, so a run's report gives its count.
RAW_ROWS = {"raw_users": 200, "raw_events": 1_000}


def raw_rows(report) -> dict[str, int]:
    """Rows per raw table of the run: SMALL's users and events, and the orders their purchases made."""
    loaded = {table.table: table.rows for table in report.load.tables}
    assert {table: loaded[table] for table in RAW_ROWS} == RAW_ROWS
    return loaded


PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"


class Warnings(Reporter):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def warn(self, message: str) -> None:
        self.seen.append(message)


def traced(settings: Settings, plan: RunPlan, **options: Any) -> tuple[Any, list[ReadableSpan]]:
    """Run `plan` with only the tracing observer, into an in-memory exporter: (report, spans)."""
    exporter = InMemorySpanExporter()
    observer = tracing_observer(settings, exporter=exporter)
    assert observer is not None
    try:
        report = run(settings, plan, observers=[observer], **options)
    except LockError:
        report = None
    return report, list(exporter.get_finished_spans())


class Tree:
    """Spans by parent, in the order they started."""

    def __init__(self, spans: list[ReadableSpan]) -> None:
        self.spans = sorted(spans, key=lambda s: s.start_time or 0)
        ids = {s.context.span_id for s in spans}
        [self.root] = [s for s in self.spans if s.parent is None or s.parent.span_id not in ids]
        assert len({s.context.trace_id for s in spans}) == 1, "one trace"

    def children(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [s for s in self.spans if s.parent is not None and s.parent.span_id == span.context.span_id]

    def child(self, span: ReadableSpan, name: str) -> ReadableSpan:
        [found] = [s for s in self.children(span) if s.name == name]
        return found


def test_a_pipelines_only_run_is_one_trace_with_its_stages_and_tables(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")
    report, spans = traced(settings, RunPlan(dbt=False))

    tree = Tree(spans)
    root = tree.root
    rows = raw_rows(report)
    assert root.name == "sbdk run" and root.parent is None
    assert root.attributes is not None
    assert dict(root.attributes) == {
        "sbdk.run.id": report.run_id,
        "sbdk.run.trigger": "sbdk dev",
        "sbdk.run.status": "succeeded",
        "sbdk.run.rows": sum(rows.values()),
        "sbdk.run.seconds": report.seconds,
    }
    assert root.status.status_code is StatusCode.OK
    assert [s.name for s in tree.children(root)] == ["generate", "load"]
    generate, load = tree.children(root)
    tables = {s.name: s for s in tree.children(generate)}
    assert sorted(tables) == sorted(f"table {t}" for t in rows)
    for table, count in rows.items():
        attributes = tables[f"table {table}"].attributes or {}
        assert (attributes["sbdk.table.name"], attributes["sbdk.table.rows"]) == (table, count)
        assert attributes["sbdk.table.seconds"] >= 0
    assert (load.attributes or {})["sbdk.load.rows"] == sum(rows.values())
    # Every span inside its parent's time, and the stages one after the other.
    for span in spans:
        assert span.end_time is not None and span.start_time is not None and span.start_time <= span.end_time
    assert generate.end_time <= load.start_time  # type: ignore[operator]
    assert root.start_time <= generate.start_time and load.end_time <= root.end_time  # type: ignore[operator]


def test_a_traceparent_in_the_log_context_makes_the_run_its_child(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")
    context = {"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01", "pushes": 1}
    _, spans = traced(settings, RunPlan(dbt=False), log_context=context)

    [root] = [s for s in spans if s.name == "sbdk run"]
    assert root.parent is not None and root.parent.is_remote
    assert (root.parent.trace_id, root.parent.span_id) == (int(PARENT_TRACE, 16), int(PARENT_SPAN, 16))
    assert {s.context.trace_id for s in spans} == {int(PARENT_TRACE, 16)}

    # Not a trace context: the run is a trace of its own.
    _, spans = traced(settings, RunPlan(dbt=False), log_context={"traceparent": "00-nonsense-01"})
    assert Tree(spans).root.parent is None


def test_a_run_refused_by_the_lock_is_a_trace_with_an_error(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")
    with run_lock(settings.paths.lock_file, "holder"):
        _, spans = traced(settings, RunPlan(dbt=False))

    [root] = spans
    assert (root.attributes or {})["sbdk.run.status"] == "refused"
    assert root.status.status_code is StatusCode.ERROR
    assert "holder" in (root.status.description or "")


def test_a_collector_that_does_not_answer_delays_a_run_by_the_flush_bound_only(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from sbdk.telemetry import tracing

    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}"
    monkeypatch.setenv(ENDPOINT, url)
    monkeypatch.setattr(tracing, "FLUSH_SECONDS", 0.5)
    warnings = Warnings()
    try:
        started = time.perf_counter()
        report = run(load_settings(project / "sbdk_config.json"), RunPlan(dbt=False), warnings)  # observers_for
        waited = time.perf_counter() - started - report.seconds
    finally:
        silent.close()

    assert report.success
    assert waited < 3, waited
    assert [w for w in warnings.seen if "trace" in w] == [
        f"The run's trace was not sent within 0.5 s: is the collector at {url} up?"
    ]


def test_without_the_extra_tracing_is_off_with_one_warning(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sbdk import telemetry
    from sbdk.run.observers import observers_for

    monkeypatch.setenv(ENDPOINT, "http://127.0.0.1:4318")
    monkeypatch.delitem(sys.modules, "sbdk.telemetry.tracing", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # what an environment without the extra does
    telemetry._warn_once.cache_clear()
    settings = load_settings(project / "sbdk_config.json")

    assert observers_for(settings) == [] and observers_for(settings) == []
    assert telemetry.delivery_tracer(settings) is None

    warned = capsys.readouterr().err
    assert warned.count("warning:") == 1
    assert "pip install 'sbdk[otel]'" in warned
    telemetry._warn_once.cache_clear()


def test_nothing_of_opentelemetry_or_prometheus_is_imported_unless_configured() -> None:
    code = (
        "import sys, sbdk.cli.app, sbdk.run.runner, sbdk.run.observers, sbdk.telemetry, sbdk.server, "
        "sbdk.server.app, sbdk.server.runs, sbdk.server.state, sbdk.server.worker; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'opentelemetry', 'prometheus_client'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.slow  # a real run with dbt
def test_a_full_run_is_one_trace_down_to_each_dbt_node(project_copy: Path) -> None:
    failing = project_copy / "dbt" / "tests" / "assert_no_users_at_all.sql"
    failing.write_text("select * from {{ ref('stg_users') }}\n")
    settings = load_settings(project_copy / "sbdk_config.json")
    report, spans = traced(settings, RunPlan())

    tree = Tree(spans)
    root = tree.root
    assert report.status == "failed"
    assert [s.name for s in tree.children(root)] == ["generate", "load", "dbt_parse", "dbt_build"]
    attributes = root.attributes or {}
    assert (attributes["sbdk.run.status"], attributes["sbdk.run.rows"]) == ("failed", sum(raw_rows(report).values()))
    assert "assert_no_users_at_all" in attributes["sbdk.run.error"]
    assert attributes["sbdk.dbt.tests_failed"] == 1 and attributes["sbdk.dbt.models_passed"] > 0
    assert root.status.status_code is StatusCode.ERROR
    assert len(tree.children(tree.child(root, "generate"))) == len(raw_rows(report))
    assert (tree.child(root, "dbt_parse").attributes or {})["sbdk.stage.detail"] == "build"

    # One span per dbt node, under the build stage, each as dbt reported it.
    build = tree.child(root, "dbt_build")
    assert (build.attributes or {})["sbdk.dbt.nodes"] == len(report.dbt.nodes)
    assert build.status.status_code is StatusCode.ERROR  # the stage the run failed in
    nodes = {s.name: s for s in tree.children(build)}
    assert sorted(nodes) == sorted(f"{n.resource_type} {n.name}" for n in report.dbt.nodes)
    for node in report.dbt.nodes:
        span = nodes[f"{node.resource_type} {node.name}"]
        attributes = span.attributes or {}
        assert attributes["sbdk.node.unique_id"] == node.unique_id
        assert (attributes["sbdk.node.status"], attributes["sbdk.node.resource_type"]) == (
            node.status,
            node.resource_type,
        )
        assert attributes["sbdk.node.seconds"] == pytest.approx(node.seconds, abs=0.01)
        assert span.start_time >= build.start_time and span.end_time <= build.end_time  # type: ignore[operator]
        expected = {"success": StatusCode.OK, "pass": StatusCode.OK, "skipped": StatusCode.UNSET}
        if not node.failed:
            assert span.status.status_code is expected[node.status], node.name
    # The failed test's model's children were skipped (dbt build): their spans say so.
    assert any(n.status == "skipped" for n in report.dbt.nodes)
    failed = nodes["test assert_no_users_at_all"]
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["sbdk.node.failures"] == 200
    assert "200" in (failed.status.description or "")  # dbt's message: "Got 200 results, configured to fail if != 0"


class Collector:
    """A stand-in OTLP/HTTP collector on a loopback port: keeps the spans it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        self.spans: list[Any] = []
        spans, lock = self.spans, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with lock:
                    spans.extend(s for r in request.resource_spans for ss in r.scope_spans for s in ss.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def named(self, name: str) -> list[Any]:
        return [s for s in self.spans if s.name == name]


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """A running collector, and OTEL_EXPORTER_OTLP_ENDPOINT pointing at it (the server's run worker
    inherits it)."""
    running = Collector()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(ENDPOINT, running.url)
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a Prometheus text exposition, by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.slow  # a real server and a real run
def test_a_webhook_run_is_counted_by_metrics_and_continues_the_deliverys_trace(
    project: Path, collector: Collector
) -> None:
    (project / ".env").write_text(f"SBDK_WEBHOOK_SECRET={SECRET}\n")
    with serve_project(project) as base, httpx.Client(base_url=base, timeout=30) as client:
        first = deliver(client, push_payload(after="1" * 40), delivery="traced-1")
        assert first.status_code == 202, first.text
        done = wait_for_run(client, first.json()["run_id"])
        assert done["status"] == "succeeded", done["error"]
        assert deliver(client, push_payload(after="1" * 40), delivery="traced-1").json() == first.json()
        assert deliver(client, {"zen": "hi"}, event="ping").status_code == 200
        assert deliver(client, push_payload("other")).json()["status"] == "ignored"
        assert deliver(client, signed="sha256=" + "0" * 64).status_code == 401
        scraped = client.get("/metrics")

    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    found = samples(scraped.text)
    runs = "sbdk_runs_total"
    assert found[(runs, (("status", "succeeded"), ("trigger", "sbdk webhooks")))] == 1.0
    assert found[(runs, (("status", "failed"), ("trigger", "sbdk webhooks")))] == 0.0
    assert found[("sbdk_run_seconds_count", ())] == 1.0
    assert found[("sbdk_run_seconds_sum", ())] == pytest.approx(done["seconds"], abs=0.01)
    for stage, seconds in done["stages"].items():
        assert found[("sbdk_stage_seconds_count", (("stage", stage),))] == 1.0
        assert found[("sbdk_stage_seconds_sum", (("stage", stage),))] == pytest.approx(seconds)
    assert found[("sbdk_queue_length", ())] == 0.0
    deliveries = {
        labels[0][1]: value for (name, labels), value in found.items() if name == "sbdk_webhook_deliveries_total"
    }
    assert deliveries == {
        "queued": 1.0,
        "joined": 0.0,
        "redelivered": 1.0,
        "ping": 1.0,
        "ignored": 1.0,
        "refused": 1.0,
        "unavailable": 0.0,
    }

    # The server sent the delivery's span when it stopped; the worker sent the run's when it ended.
    [delivery] = collector.named("webhook delivery")
    [root] = collector.named("sbdk run")
    attributes = {a.key: a.value.string_value for a in delivery.attributes}
    assert attributes["github.delivery"] == "traced-1" and attributes["sbdk.run.id"] == done["id"]
    assert (root.trace_id, root.parent_span_id) == (delivery.trace_id, delivery.span_id)
    assert {s.name for s in collector.spans if s.parent_span_id == root.span_id} == {
        "generate",
        "load",
        "dbt_parse",
        "dbt_build",
    }
    assert all(s.trace_id == root.trace_id for s in collector.spans)


def test_metrics_is_in_the_banners_routes_and_every_route_in_the_readme() -> None:
    from sbdk.server.app import ROUTES

    assert ("GET", "/metrics") in {(method, path) for method, path, _ in ROUTES}
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert [path for method, path, _ in ROUTES if f"| `{method} {path}` |" not in readme] == []
