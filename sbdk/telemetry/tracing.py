"""One OpenTelemetry trace per run, and a span per webhook delivery that queues one.

Imported only when tracing is configured (sbdk/telemetry/__init__.py): it imports the SDK at its top.

The trace of a run:

    sbdk run                       run id, trigger, status, rows, seconds, error; dbt's counts
      generate                     the tables it generates
        table raw_users            rows, seconds (one per pipeline table)
      load                         rows, mode, destination (ends when the tables are swapped in)
      dbt_deps                     when the run installs packages
      dbt_parse                    dbt's import and parse, up to its first node
      dbt_build                    nodes planned
        model stg_users            name, unique id, resource type, status, seconds, failures
        test not_null_...          (an error status and dbt's message when it failed)

Stages follow the reporter's: a span starts with each `stage()` and ends with the next one (or when
the tables are swapped in, or the run ends). The root is a child of the webhook delivery that queued
the run when its log context carries that delivery's `traceparent`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sbdk import __version__
from sbdk.run.context import RunContext
from sbdk.run.observers import RunObserver
from sbdk.run.reporters import NULL_REPORTER, ForwardingReporter, Reporter
from sbdk.run.results import LoadReport, NodeResult, RunReport, RunStatus
from sbdk.settings import Settings
from sbdk.telemetry import ENDPOINT, TRACEPARENT

# How long the end of a run waits for its spans to reach the collector: the CLI exits right after
# (the server's worker without running atexit hooks), and a collector that is down must not keep it.
FLUSH_SECONDS = 5.0
_PROPAGATOR = TraceContextTextMapPropagator()


class Traces:
    """A TracerProvider of sbdk's own (a library user's global one is left alone), and its end."""

    def __init__(self, settings: Settings, exporter: SpanExporter | None = None) -> None:
        resource = Resource.create(
            {
                "service.name": os.environ.get("OTEL_SERVICE_NAME") or "sbdk",
                "service.version": __version__,
                "sbdk.project": settings.project,
            }
        )
        # Closed by `close()`: an exit hook would wait for a collector that is down.
        self.provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.owned = exporter is None
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # The endpoint, headers and timeout from the standard OTEL_EXPORTER_OTLP_* variables.
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer: Tracer = self.provider.get_tracer("sbdk", __version__)

    def close(self, timeout: float | None = None) -> bool:
        """Export what is left and stop, waiting at most `timeout` (FLUSH_SECONDS) seconds: False if
        that was not enough. An exporter given by the caller already has every span, and stays open."""
        if not self.owned:
            return True
        # The SDK's flush ignores its timeout (opentelemetry-python#4568): bound it with a thread.
        closing = threading.Thread(target=self.provider.shutdown, name="sbdk-traces", daemon=True)
        closing.start()
        closing.join(FLUSH_SECONDS if timeout is None else timeout)
        return not closing.is_alive()


class TracingObserver(RunObserver):
    """Builds the trace of one run (`observers_for` makes a new one for every run)."""

    def __init__(self, traces: Traces) -> None:
        self.traces = traces
        self.spans = RunSpans(traces.tracer)
        self.reporter: Reporter = NULL_REPORTER

    def wrap(self, reporter: Reporter) -> Reporter:
        self.reporter = reporter
        self.spans.began = time.time_ns()  # the root covers the wait for the project lock
        return TracingReporter(reporter, self.spans)

    def started(self, run_id: str, trigger: str, context: dict[str, Any]) -> None:
        parent = context.get(TRACEPARENT)
        self.spans.start(run_id, trigger, parent if isinstance(parent, str) else None)

    def loaded(self, run: RunContext, load: LoadReport) -> None:
        self.spans.loaded(load)

    def finished(self, report: RunReport, reporter: Reporter) -> None:
        try:
            self.spans.finish(report)
        finally:
            if not self.traces.close():
                where = os.environ.get(ENDPOINT) or "the OTLP endpoint"
                reporter.warn(
                    f"The run's trace was not sent within {FLUSH_SECONDS:g} s: is the collector at {where} up?"
                )


class TracingReporter(ForwardingReporter):
    """Forwards everything to the run's reporter, and turns stages, tables and nodes into spans.
    A tracing error is one warning, then tracing stops: it never reaches the run."""

    def __init__(self, inner: Reporter, spans: RunSpans) -> None:
        super().__init__(inner)
        self.spans = spans
        self.broken = False

    def _trace(self, call: Callable[[], None]) -> None:
        if self.broken:
            return
        try:
            call()
        except Exception as exc:  # a tracing bug must not fail a pipeline or a dbt node
            self.broken = True
            self.inner.warn(f"tracing stopped: {type(exc).__name__}: {exc}")

    def stage(self, name: str, detail: str = "") -> None:
        self._trace(lambda: self.spans.stage(name, detail))
        self.inner.stage(name, detail)

    def table_done(self, table: str, rows: int, seconds: float) -> None:
        self._trace(lambda: self.spans.table_done(table, rows, seconds))
        self.inner.table_done(table, rows, seconds)

    def dbt_nodes(self, total: int) -> None:
        self._trace(lambda: self.spans.dbt_nodes(total))
        self.inner.dbt_nodes(total)

    def node_started(self, name: str, resource_type: str) -> None:
        self._trace(lambda: self.spans.node_started(name, resource_type))
        self.inner.node_started(name, resource_type)

    def node_finished(self, node: NodeResult) -> None:
        self._trace(lambda: self.spans.node_finished(node))
        self.inner.node_finished(node)


class RunSpans:
    """The spans of one run: its root, the stage going on and the dbt nodes going on. dbt reports
    nodes from its worker threads: every change holds the lock."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self.lock = threading.Lock()
        self.began = time.time_ns()
        self.root: Span | None = None
        self.current: Span | None = None  # the stage going on
        self.current_name: str | None = None
        self.command: str | None = None  # the dbt command whose stage follows dbt_parse
        self.nodes: dict[tuple[str, str], Span] = {}

    def start(self, run_id: str, trigger: str, traceparent: str | None) -> None:
        # An invalid traceparent extracts to an empty context: the run is a trace of its own then.
        parent = _PROPAGATOR.extract({TRACEPARENT: traceparent}) if traceparent else Context()
        attributes = {"sbdk.run.id": run_id, "sbdk.run.trigger": trigger}
        with self.lock:
            if self.root is not None:  # opened by something reported before the start
                self.root.set_attributes(attributes)
                return
            self.root = self.tracer.start_span("sbdk run", context=parent, start_time=self.began, attributes=attributes)

    def stage(self, name: str, detail: str) -> None:
        with self.lock:
            self._end_stage()
            command = None
            if name == "dbt":
                # "deps", or "build --select x": the build shows as dbt_parse, then dbt_build.
                first = detail.split(" ", 1)[0] if detail else "build"
                name, command = ("dbt_deps", None) if first == "deps" else ("dbt_parse", first)
            self._start_stage(name, {"sbdk.stage.detail": detail} if detail else {})
            self.command = command

    def table_done(self, table: str, rows: int, seconds: float) -> None:
        end = time.time_ns()
        attributes = {"sbdk.table.name": table, "sbdk.table.rows": rows, "sbdk.table.seconds": seconds}
        with self.lock:
            span = self._child(f"table {table}", attributes, start_time=end - int(seconds * 1e9))
        span.end(end_time=end)

    def dbt_nodes(self, total: int) -> None:
        with self.lock:
            self._parsed()
            if self.current is not None:
                self.current.set_attribute("sbdk.dbt.nodes", total)

    def node_started(self, name: str, resource_type: str) -> None:
        with self.lock:
            self._parsed()
            key = (name, resource_type)
            attributes = {"sbdk.node.name": name, "sbdk.node.resource_type": resource_type}
            self.nodes[key] = self._child(f"{resource_type} {name}", attributes)

    def node_finished(self, node: NodeResult) -> None:
        end = time.time_ns()
        with self.lock:
            self._parsed()
            span = self.nodes.pop((node.name, node.resource_type), None)
            if span is None:  # no start was reported (a skipped node)
                attributes = {"sbdk.node.name": node.name, "sbdk.node.resource_type": node.resource_type}
                span = self._child(f"{node.resource_type} {node.name}", attributes, end - int(node.seconds * 1e9))
        span.set_attributes(
            {
                "sbdk.node.unique_id": node.unique_id,
                "sbdk.node.status": node.status,
                "sbdk.node.seconds": node.seconds,
                **({"sbdk.node.failures": node.failures} if node.failures is not None else {}),
            }
        )
        if node.failed:
            span.set_status(Status(StatusCode.ERROR, node.message or node.status))
        elif node.status in ("success", "pass"):
            span.set_status(Status(StatusCode.OK))
        span.end(end_time=end)

    def loaded(self, load: LoadReport) -> None:
        """The raw tables are swapped in: the load stage ends here."""
        with self.lock:
            if self.current is not None and self.current_name == "load":
                self.current.set_attributes(
                    {
                        "sbdk.load.rows": load.rows,
                        "sbdk.load.mode": load.mode,
                        "sbdk.load.destination": load.destination,
                    }
                )
                self._end_stage()

    def finish(self, report: RunReport) -> None:
        """End every span still open; the stage and nodes the run ended in carry its error."""
        error = report.error or (report.dbt.failure_summary() if report.dbt is not None else None)
        failed = report.status is not RunStatus.SUCCEEDED
        with self.lock:
            root = self._root()
            for span in self.nodes.values():
                span.set_status(Status(StatusCode.ERROR, f"the run ended first ({report.status})"))
                span.end()
            self.nodes.clear()
            if self.current is not None and failed:
                self.current.set_status(Status(StatusCode.ERROR, error or str(report.status)))
            self._end_stage()
        rows = report.load.rows if report.load is not None else 0
        root.set_attributes(
            {
                "sbdk.run.id": report.run_id,
                "sbdk.run.trigger": report.trigger,
                "sbdk.run.status": str(report.status),
                "sbdk.run.rows": rows,
                "sbdk.run.seconds": report.seconds,
                **({"sbdk.run.error": error} if error else {}),
                **({f"sbdk.dbt.{k}": v for k, v in report.dbt.counts().as_dict().items()} if report.dbt else {}),
            }
        )
        root.set_status(Status(StatusCode.ERROR, error or str(report.status)) if failed else Status(StatusCode.OK))
        root.end()

    # Under the lock.

    def _root(self) -> Span:
        if self.root is None:  # a run refused before it started is a trace too
            self.root = self.tracer.start_span("sbdk run", context=Context(), start_time=self.began)
        return self.root

    def _child(self, name: str, attributes: dict[str, Any], start_time: int | None = None) -> Span:
        parent = self.current or self._root()
        return self.tracer.start_span(
            name, context=trace.set_span_in_context(parent), attributes=attributes, start_time=start_time
        )

    def _start_stage(self, name: str, attributes: dict[str, Any]) -> None:
        self.current = self.tracer.start_span(
            name, context=trace.set_span_in_context(self._root()), attributes=attributes
        )
        self.current_name = name

    def _end_stage(self) -> None:
        if self.current is not None:
            self.current.end()
        self.current = self.current_name = self.command = None

    def _parsed(self) -> None:
        """dbt planned its nodes (or started one): the parse stage ends, the build stage starts."""
        if self.current_name == "dbt_parse" and self.command:
            command = self.command
            self._end_stage()
            self._start_stage(f"dbt_{command}", {})


class DeliverySpan:
    """The span of one webhook delivery that queues (or joins) a run."""

    def __init__(self, span: Span) -> None:
        self.span = span

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context that makes a run's trace a child of this delivery."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(self.span))
        return carrier.get(TRACEPARENT)

    def queued(self, run_id: str, joined: bool) -> None:
        self.span.set_attributes({"sbdk.run.id": run_id, "sbdk.delivery.outcome": "joined" if joined else "queued"})

    def refused(self, reason: str) -> None:
        self.span.set_status(Status(StatusCode.ERROR, reason))


class DeliveryTracer:
    """The server's spans (one per push delivery it acts on); `close()` when the server stops."""

    def __init__(self, traces: Traces) -> None:
        self.traces = traces

    @contextmanager
    def delivery(self, delivery_id: str | None, event: str | None, commit: str | None) -> Iterator[DeliverySpan]:
        attributes = {
            "github.delivery": delivery_id or "",
            "github.event": event or "",
            "vcs.ref.head.revision": commit or "",
        }
        span = self.traces.tracer.start_span(
            "webhook delivery",
            context=Context(),
            kind=SpanKind.SERVER,
            attributes={k: v for k, v in attributes.items() if v},
        )
        try:
            yield DeliverySpan(span)
        finally:
            span.end()

    def close(self) -> bool:
        return self.traces.close()
