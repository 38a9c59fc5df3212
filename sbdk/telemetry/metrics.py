"""The webhook server's Prometheus metrics (`GET /metrics`), in a registry of the app's own.

Imported when the server app is built (it imports prometheus-client at its top). Runs are counted
from the records the run queue keeps (sbdk/server/runs.py), deliveries by how they were answered.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sbdk.run.plan import Trigger

# A webhook run takes seconds to minutes; its stages from a fraction of a second.
RUN_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, float("inf"))
STAGE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 300, float("inf"))
_ENDED = ("succeeded", "failed")


class Outcome(str, Enum):
    """How the server answered a delivery."""

    QUEUED = "queued"  # a push queued a run
    JOINED = "joined"  # a push joined the run already waiting
    IGNORED = "ignored"  # another branch, a tag, a deletion, another event
    PING = "ping"
    REDELIVERED = "redelivered"  # a repeated delivery id, given its first answer again
    REFUSED = "refused"  # no secret, a bad signature, too large, malformed
    UNAVAILABLE = "unavailable"  # the server was stopping

    def __str__(self) -> str:
        return self.value


class ServerMetrics:
    """`run_changed` gets every change of a run record, `delivered` every answered delivery."""

    def __init__(self, queue_length: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter(
            "sbdk_runs",
            "Runs this server ran, by trigger and how they ended.",
            ["trigger", "status"],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "sbdk_run_seconds", "Duration of the runs this server ran.", buckets=RUN_BUCKETS, registry=self.registry
        )
        self.stage_seconds = Histogram(
            "sbdk_stage_seconds",
            "Duration of the stages of the runs (generate, load, dbt_parse, dbt_build).",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "sbdk_webhook_deliveries",
            "GitHub deliveries, by how they were answered.",
            ["outcome"],
            registry=self.registry,
        )
        waiting = Gauge("sbdk_queue_length", "Runs waiting to start.", registry=self.registry)
        waiting.set_function(lambda: float(queue_length()))
        # Every series exists from the start: a rate over a counter that appears later misses its first step.
        for status in _ENDED:
            self.runs.labels(str(Trigger.WEBHOOK), status)
        for outcome in Outcome:
            self.deliveries.labels(str(outcome))

    def run_changed(self, record: dict[str, Any]) -> None:
        """A run record changed (GET /runs/{id}'s dict): count it when it ended. A run cancelled
        before it started never ran and is not counted."""
        if record.get("status") not in _ENDED or record.get("started_at") is None:
            return
        self.runs.labels(str(Trigger.WEBHOOK), record["status"]).inc()
        if record.get("seconds") is not None:
            self.run_seconds.observe(record["seconds"])
        for stage, seconds in (record.get("stages") or {}).items():
            self.stage_seconds.labels(stage).observe(seconds)

    def delivered(self, outcome: Outcome) -> None:
        self.deliveries.labels(str(outcome)).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
