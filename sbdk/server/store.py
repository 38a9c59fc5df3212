"""The server's own DuckDB file (`.sbdk/server.duckdb`, never the project's data file).

Registrations and usage events are written before the request is answered. Run records are
written by one background thread, in order (a DuckDB commit costs a few milliseconds; the run queue
must not wait for it); `save_run` returns a future that the webhook route awaits before it answers
202, so a run it announces survives even a SIGKILL right after the answer. Delivery answers live in a
file of their own (see github.DeliveryAnswers). One connection, guarded by a lock, is held while the
server runs (the file is the server's own).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid as uuidlib
from collections.abc import Iterator
from concurrent.futures import Future, InvalidStateError
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sbdk.errors import LockError, SbdkError

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

log = logging.getLogger("sbdk.server")

_SCHEMA = """
create table if not exists registrations (
    uuid varchar primary key,
    project varchar not null,
    sbdk_version varchar,
    registered_at timestamp not null  -- UTC
);
create table if not exists usage_events (
    uuid varchar not null,
    event varchar not null,
    properties varchar not null,  -- JSON object
    received_at timestamp not null  -- UTC, the server's clock
);
create table if not exists runs (
    run_id varchar primary key,
    status varchar not null,
    queued_at timestamp not null,
    record varchar not null  -- the JSON GET /runs/{id} answers
);
"""
_STOP = object()


def utcnow() -> datetime:
    """Now in UTC, without tzinfo (stored as a DuckDB TIMESTAMP, read back the same)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class ServerStore:
    """Open with `open()`, close with `close()` (which first writes everything deferred)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._con: DuckDBPyConnection | None = None
        self._pending: queue.SimpleQueue = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        # Held to queue a write or to queue the writer's end: nothing is queued after the end,
        # where no one would ever write it (and a caller awaiting it would wait forever).
        self._queueing = threading.Lock()
        self._writing = False

    @property
    def is_open(self) -> bool:
        return self._con is not None

    def open(self) -> None:
        if self._con is not None:
            return
        import duckdb

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path))
        except OSError as exc:
            raise SbdkError(
                f"Cannot create the server's database folder {self.path.parent}: {exc.strerror}.",
                hint="Check that the project folder is writable.",
            ) from exc
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise LockError(
                    f"The server database {self.path} is in use by another process ({exc}).",
                    hint="Another `sbdk webhooks` probably serves this project already: use it, or stop it first.",
                ) from exc
            raise SbdkError(
                f"Cannot open the server database {self.path}: {exc}",
                hint="If the file is damaged, move it away: it only holds registrations, usage events and run records.",
            ) from exc
        con.execute(_SCHEMA)
        self._con = con
        self._writer = threading.Thread(target=self._write_loop, name="sbdk-server-store", daemon=True)
        self._writer.start()
        self._writing = True

    def close(self) -> None:
        """Write what is deferred, then close the file."""
        if self._con is None:
            return
        with self._queueing:
            self._writing = False
            self._pending.put(_STOP)
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        with self._lock:
            self._con.close()
            self._con = None

    @contextmanager
    def _connection(self) -> Iterator[DuckDBPyConnection]:
        """The connection, for this thread alone during the block."""
        with self._lock:
            if self._con is None:
                raise RuntimeError(f"the server database {self.path} is not open")
            yield self._con

    # Answered after the commit.

    def register(self, project: str, sbdk_version: str | None) -> tuple[str, datetime]:
        new = str(uuidlib.uuid4())
        now = utcnow()
        with self._connection() as con:
            con.execute("insert into registrations values (?, ?, ?, ?)", [new, project, sbdk_version, now])
        return new, now

    def track(self, uuid: str, event: str, properties: dict[str, Any]) -> datetime | None:
        """Store one usage event; None when `uuid` was never registered."""
        now = utcnow()
        with self._connection() as con:
            known = con.execute("select 1 from registrations where uuid = ?", [uuid]).fetchone()
            if known is None:
                return None
            con.execute("insert into usage_events values (?, ?, ?, ?)", [uuid, event, json.dumps(properties), now])
        return now

    # Written in the background, in order.

    def save_run(self, record: dict[str, Any]) -> Future[bool]:
        """Write the record after those saved before it; the future says True once it is committed,
        False when it could not be (the error is logged)."""
        saved: Future[bool] = Future()
        sql = "insert or replace into runs values (?, ?, ?, ?)"
        params = [record["id"], record["status"], _parse(record["queued_at"]), json.dumps(record)]
        with self._queueing:
            if self._writing:
                self._pending.put((sql, params, saved))
                return saved
        log.error("run %s is not recorded: the server database %s is closed", record["id"], self.path)
        saved.set_result(False)
        return saved

    # Read at startup, or for records of earlier sessions.

    def close_unfinished_runs(self, error: str) -> int:
        """Runs left queued or running by a server that stopped without finishing them become failed,
        stopped by the server (a redelivery of their pushes queues a new run)."""
        with self._connection() as con:
            rows = con.execute("select record from runs where status in ('queued', 'running')").fetchall()
            for (text,) in rows:
                record = json.loads(text)
                # Finished when this server noticed: a failed run always has an end time.
                finished = record.get("finished_at") or datetime.now(timezone.utc).isoformat()
                record.update(status="failed", error=error, server_stopped=True, finished_at=finished)
                con.execute(
                    "update runs set status = 'failed', record = ? where run_id = ?", [json.dumps(record), record["id"]]
                )
        return len(rows)

    def run(self, run_id: str) -> dict[str, Any] | None:
        with self._connection() as con:
            row = con.execute("select record from runs where run_id = ?", [run_id]).fetchone()
        return json.loads(row[0]) if row else None

    def last_run(self) -> dict[str, Any] | None:
        with self._connection() as con:
            row = con.execute("select record from runs order by queued_at desc limit 1").fetchone()
        return json.loads(row[0]) if row else None

    def _write_loop(self) -> None:
        while True:
            batch = [self._pending.get()]
            while len(batch) < 1000:
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            statements = [item for item in batch if item is not _STOP]
            if statements:
                written = self._write(statements)
                for _, _, saved in statements:
                    with suppress(InvalidStateError):  # cancelled by its caller
                        saved.set_result(written)
            if len(statements) < len(batch):
                return

    def _write(self, statements: list[tuple[str, list[Any], Future[bool]]]) -> bool:
        with self._connection() as con:
            try:
                con.execute("begin transaction")
                for sql, params, _ in statements:
                    con.execute(sql, params)
                con.execute("commit")
            except Exception:
                log.exception("Could not write %d record(s) to %s", len(statements), self.path)
                try:
                    con.execute("rollback")
                except Exception:
                    pass
                return False
        return True


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.removesuffix("Z"))
