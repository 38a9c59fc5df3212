"""What the server's endpoints share: the store, the run queue and the delivery answers."""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from sbdk.server import github
from sbdk.server.runs import UNFINISHED, ProcessRunner, RunQueue
from sbdk.server.store import ServerStore
from sbdk.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from sbdk.telemetry.tracing import DeliveryTracer

log = logging.getLogger("sbdk.server")

# First answers to GitHub delivery ids, in the project's state folder beside server.duckdb.
DELIVERIES_FILE = "webhook_deliveries.jsonl"


class ServerState:
    """Built with the app; `start()` and `stop()` bracket its lifespan (and `serve()`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ServerStore(settings.paths.server_db)
        self.deliveries = github.DeliveryAnswers(settings.paths.state_dir / DELIVERIES_FILE)
        self.queue: RunQueue | None = None
        # Built with the app, so prometheus-client is imported then and not with this module.
        from sbdk.telemetry.metrics import ServerMetrics

        self.metrics = ServerMetrics(queue_length=self._queue_length)
        self.tracer: DeliveryTracer | None = None  # when tracing is configured, from start() to stop()

    def start(self) -> None:
        """Open the store and start the run worker (idempotent; `serve()` calls it early so that
        errors such as a second server on the same project are reported before binding a port)."""
        if self.queue is not None:
            return
        self.store.open()
        closed = self.store.close_unfinished_runs(UNFINISHED)
        if closed:
            log.warning("%d run(s) left unfinished by an earlier server are marked failed", closed)
        self.deliveries.open()
        from sbdk.telemetry import delivery_tracer

        self.tracer = delivery_tracer(self.settings)
        last = self.store.last_run()
        self.queue = RunQueue(
            ProcessRunner(self.settings.paths.config_file),
            lock_file=self.settings.paths.lock_file,
            on_change=self._run_changed,
            last_run=({k: last.get(k) for k in ("id", "status", "finished_at", "error")} if last else None),
        )
        self.queue.start()

    def stop(self) -> None:
        """Cancel the waiting run, wait for the current one, write and close the store."""
        if self.queue is not None:
            self.queue.stop()
            self.queue = None
        self.deliveries.close()
        self.store.close()
        if self.tracer is not None:
            if not self.tracer.close():
                log.warning("the last webhook delivery spans were not sent: is the OTLP collector up?")
            self.tracer = None

    def _queue_length(self) -> int:
        queue = self.queue
        return int(queue.status()["queue_length"]) if queue is not None else 0

    def _run_changed(self, record: dict[str, Any]) -> Future[bool]:
        saved = self.store.save_run(record)
        try:
            self.metrics.run_changed(record)
        except Exception:  # metrics only observe: the record is saved whatever happens here
            log.exception("could not count run %s in the metrics", record.get("id"))
        return saved


def state_of(app: FastAPI) -> ServerState:
    """The state `create_app` attached to `app` (Starlette's `app.state` is untyped)."""
    state: ServerState = app.state.sbdk
    return state
