"""The server's run queue: one run at a time, at most one waiting, later pushes join the waiting one.

A single worker thread calls the runner, so a webhook answer never waits for a run. Pushes that
arrive while a run is going coalesce into one next run (its id is returned to each of them): the
next run builds the project as it is then, which covers every one of those pushes.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sbdk.errors import LockError, SbdkError
from sbdk.lock import run_lock
from sbdk.reporting import NodeResult, Reporter, RunReport

log = logging.getLogger("sbdk.server")

RUNS_KEPT = 1_000
CANCELLED = "cancelled: the server stopped before this run started"
INTERRUPTED = "interrupted: the server was stopped during this run"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


@dataclass
class RunRecord:
    """One queued run, as GET /runs/{id} shows it."""

    id: str
    queued_at: datetime = field(default_factory=_now)
    status: str = "queued"  # queued, running, succeeded, failed
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    deliveries: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        waited = (self.started_at - self.queued_at).total_seconds() if self.started_at else None
        return {
            "id": self.id,
            "status": self.status,
            "queued_at": _iso(self.queued_at),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "queued_seconds": round(waited, 3) if waited is not None else None,
            "seconds": round(self.seconds, 3) if self.seconds is not None else None,
            "stages": dict(self.stages),
            "rows": dict(self.rows),
            "error": self.error,
            "deliveries": list(self.deliveries),
            "commits": list(self.commits),
        }


# Runs a build with the given run id and returns its report; raises SbdkError when it cannot run.
Execute = Callable[[str], RunReport]


class RunQueue:
    """`submit()` from any thread; `start()` once; `stop()` cancels the waiting run and waits for the
    current one; `interrupt()` stops the current one as Ctrl-C stops `sbdk dev`."""

    def __init__(
        self,
        execute: Execute,
        *,
        lock_file: Path | None = None,
        on_change: Callable[[dict[str, Any]], None] = lambda record: None,
        last_run: dict[str, Any] | None = None,
    ) -> None:
        self._execute = execute
        self._lock_file = lock_file
        # Called with the record's dict on every change, under the queue's lock so that changes are
        # seen in order: it must be quick (the store only enqueues the write).
        self._on_change = on_change
        self._cond = threading.Condition()
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._pending: RunRecord | None = None
        self._current: RunRecord | None = None
        self._last: dict[str, Any] | None = last_run
        self._closed = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._interrupting = False

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._closed = False
            self._stopping.clear()
            self._thread = threading.Thread(target=self._work, name="sbdk-server-runs", daemon=True)
            self._thread.start()

    def submit(self, delivery: str | None = None, commit: str | None = None) -> tuple[dict[str, Any], bool] | None:
        """Queue a run, or join the one already waiting. Returns (run, joined) or None when stopping."""
        with self._cond:
            if self._closed:
                return None
            joined = self._pending is not None
            if self._pending is None:
                self._pending = RunRecord(id=uuid.uuid4().hex[:12])
                self._remember(self._pending)
            record = self._pending
            if delivery:
                record.deliveries.append(delivery)
            if commit and commit not in record.commits:
                record.commits.append(commit)
            self._changed(record)
            self._cond.notify_all()
            return record.as_dict(), joined

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self._cond:
            record = self._runs.get(run_id)
            return record.as_dict() if record else None

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {
                "running": self._current.id if self._current else None,
                "queued": self._pending.id if self._pending else None,
                "queue_length": int(self._pending is not None),
                "last_run": dict(self._last) if self._last else None,
            }

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is running or waiting (for tests and benchmarks)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._current is not None or self._pending is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    @property
    def busy(self) -> str | None:
        """The id of the run going now, if any."""
        with self._cond:
            return self._current.id if self._current else None

    def close(self) -> None:
        """Accept no more runs and cancel the waiting one; the current run goes on."""
        with self._cond:
            self._closed = True
            if self._pending is not None:
                record, self._pending = self._pending, None
                record.status, record.error, record.finished_at = "failed", CANCELLED, _now()
                self._changed(record)
                log.info("run %s cancelled: the server is stopping", record.id)
            self._cond.notify_all()
        self._stopping.set()

    def stop(self, timeout: float | None = None) -> bool:
        """close(), then wait for the current run to end. True when the worker has ended."""
        self.close()
        thread = self._thread
        if thread is None:
            return True
        current = self.busy
        if current:
            log.info("waiting for run %s to finish (press Ctrl-C again to interrupt it)", current)
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._thread = None
        return True

    def interrupt(self) -> None:
        """Raise KeyboardInterrupt in the current run, as Ctrl-C does in `sbdk dev`: the runner records
        it as interrupted and the load swap leaves the previous tables whole (DESIGN.md §5)."""
        self.close()
        with self._cond:
            thread = self._thread
            if thread is None or self._current is None or self._interrupting:
                return
            self._interrupting = True
        log.warning("interrupting run %s", self._current.id)
        # Python has no public way to stop another thread; this is the C-API call that delivers an
        # exception to it at its next bytecode (a blocking C call such as one dbt node finishes first).
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt))

    def _remember(self, record: RunRecord) -> None:
        self._runs[record.id] = record
        while len(self._runs) > RUNS_KEPT:
            self._runs.popitem(last=False)

    def _changed(self, record: RunRecord) -> None:
        try:
            self._on_change(record.as_dict())
        except Exception:  # noqa: BLE001 - a failed record write must not stop the queue
            log.exception("could not record run %s", record.id)

    def _work(self) -> None:
        while True:
            try:
                with self._cond:
                    while self._pending is None and not self._closed:
                        self._cond.wait()
                    if self._pending is None:
                        return
                    record = self._pending
                if not self._wait_for_lock(record):
                    continue
                with self._cond:
                    if self._pending is not record:  # cancelled while waiting for the lock
                        continue
                    self._pending, self._current = None, record
                    record.status, record.started_at = "running", _now()
                    self._changed(record)
                log.info("run %s started (%s)", record.id, _pushes(record))
                self._run(record)
            except KeyboardInterrupt:
                # An interrupt that arrived between runs: nothing of a run to undo.
                pass

    def _wait_for_lock(self, record: RunRecord) -> bool:
        """Wait, without blocking shutdown, until no other sbdk run (e.g. `sbdk dev`) holds the project."""
        if self._lock_file is None:
            return True
        told = False
        while not self._stopping.is_set():
            try:
                with run_lock(self._lock_file, "sbdk webhooks"):
                    return True
            except LockError as exc:
                if not told:
                    log.info("run %s waits: %s", record.id, exc.message)
                    told = True
                self._stopping.wait(0.5)
        return False

    def _run(self, record: RunRecord) -> None:
        started = time.perf_counter()
        status, error, report = "failed", None, None
        try:
            try:
                report = self._execute(record.id)
            except SbdkError as exc:
                error = str(exc)
            except KeyboardInterrupt:
                error = INTERRUPTED
            except Exception as exc:  # noqa: BLE001 - the server outlives a broken run; the traceback is logged
                log.exception("run %s crashed", record.id)
                error = f"unexpected error: {type(exc).__name__}: {exc}"
            else:
                status = "succeeded" if report.success else "failed"
                error = report.error or _failures(report)
        except KeyboardInterrupt:
            error = INTERRUPTED
        with self._cond:
            record.status, record.error = status, error
            record.finished_at = _now()
            record.seconds = time.perf_counter() - started
            if report is not None:
                record.rows = dict(report.row_counts)
                record.stages = _stages(report)
            self._current = None
            self._interrupting = False
            self._last = {"id": record.id, "status": status, "finished_at": _iso(record.finished_at), "error": error}
            self._changed(record)
            self._cond.notify_all()
        if status == "succeeded":
            rows = ", ".join(f"{t} {n:,}" for t, n in sorted(record.rows.items()))
            log.info("run %s succeeded in %.1fs (%s)", record.id, record.seconds, rows or "no tables")
        else:
            log.error("run %s failed after %.1fs: %s", record.id, record.seconds, error)


def _pushes(record: RunRecord) -> str:
    count = len(record.deliveries)
    commits = f", head {record.commits[-1][:12]}" if record.commits else ""
    return f"{count} push{'es' if count != 1 else ''}{commits}"


def _stages(report: RunReport) -> dict[str, float]:
    stages: dict[str, float] = {}
    if report.load is not None:
        stages["generate"] = round(report.load.generate_seconds, 3)
        stages["load"] = round(report.load.load_seconds + report.load.swap_seconds, 3)
    if report.dbt is not None:
        stages["dbt"] = round(report.dbt.seconds, 3)
    return stages


def _failures(report: RunReport) -> str | None:
    if report.dbt is None or report.success:
        return None
    failed = report.dbt.failures
    if not failed:
        return report.dbt.error or "dbt reported a failure"
    shown = "; ".join(f"{n.resource_type} {n.name} {n.status}: {n.message or ''}".strip() for n in failed[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    return f"dbt: {len(failed)} failed: {shown}{more}"


class LogReporter(Reporter):
    """Run progress as log lines of the server (the CLI shows them; the server never renders)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def stage(self, name: str, detail: str = "") -> None:
        log.info("run %s: %s %s", self.run_id, name, detail)

    def node_finished(self, node: NodeResult) -> None:
        if node.failed:
            log.warning("run %s: %s %s %s: %s", self.run_id, node.resource_type, node.name, node.status, node.message)
        else:
            log.debug("run %s: %s %s %s", self.run_id, node.resource_type, node.name, node.status)

    def log(self, message: str) -> None:
        log.debug("run %s: %s", self.run_id, message)

    def warn(self, message: str) -> None:
        log.warning("run %s: %s", self.run_id, message)
