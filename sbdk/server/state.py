"""What the server's endpoints share: the store, the run queue and the delivery answers."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sbdk.server import github
from sbdk.server.runs import UNFINISHED, ProcessRunner, RunQueue
from sbdk.server.store import ServerStore
from sbdk.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

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
        last = self.store.last_run()
        self.queue = RunQueue(
            ProcessRunner(self.settings.paths.config_file),
            lock_file=self.settings.paths.lock_file,
            on_change=self.store.save_run,
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


def state_of(app: FastAPI) -> ServerState:
    """The state `create_app` attached to `app` (Starlette's `app.state` is untyped)."""
    state: ServerState = app.state.sbdk
    return state
