"""Traces of runs (OpenTelemetry) and the webhook server's metrics (Prometheus), DESIGN.md §10.

Nothing here is imported until it is configured: `observers_for` asks for `tracing_observer` only
when OTEL_EXPORTER_OTLP_ENDPOINT is set, the server asks for `delivery_tracer` when it starts and
builds its metrics (sbdk/telemetry/metrics.py) with the app. This module imports neither
OpenTelemetry nor prometheus-client; sbdk/telemetry/tracing.py imports the first at its top and is
imported only from the functions below.

Tracing needs the `otel` extra (`pip install 'sbdk[otel]'`); without it a warning says so, once per
process, and runs go on untraced.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from sbdk.run.observers import RunObserver
    from sbdk.settings import Settings
    from sbdk.telemetry.tracing import DeliveryTracer

__all__ = ["ENDPOINT", "TRACEPARENT", "delivery_tracer", "tracing_observer"]

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
# The key of a run's log context that carries the W3C trace context of the webhook delivery that
# queued it (sbdk/server/runs.py): the run's trace continues the delivery's.
TRACEPARENT = "traceparent"


def tracing_observer(settings: Settings, *, exporter: SpanExporter | None = None) -> RunObserver | None:
    """An observer that sends one trace per run: to the OTLP/HTTP endpoint of the environment, or to
    `exporter` (the SDK's InMemorySpanExporter in tests). None, with a warning, without the extra."""
    try:
        from sbdk.telemetry.tracing import Traces, TracingObserver
    except ImportError as exc:
        _not_installed(exc)
        return None
    return TracingObserver(Traces(settings, exporter))


def delivery_tracer(settings: Settings, *, exporter: SpanExporter | None = None) -> DeliveryTracer | None:
    """Spans of the webhook deliveries that queue runs, when tracing is configured (the endpoint is
    set, or `exporter` given); None otherwise, and with a warning without the extra."""
    if exporter is None and not os.environ.get(ENDPOINT):
        return None
    try:
        from sbdk.telemetry.tracing import DeliveryTracer, Traces
    except ImportError as exc:
        _not_installed(exc)
        return None
    return DeliveryTracer(Traces(settings, exporter))


def _not_installed(exc: ImportError) -> None:
    if not (exc.name or "").startswith("opentelemetry"):
        raise exc  # an sbdk bug, not a missing extra
    _warn_once()


@functools.cache
def _warn_once() -> None:
    print(
        f"warning: {ENDPOINT} is set but OpenTelemetry is not installed, so runs are not traced. "
        "Install the extra: pip install 'sbdk[otel]'",
        file=sys.stderr,
    )
