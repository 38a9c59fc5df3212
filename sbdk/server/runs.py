"""The server's run queue: one run at a time, at most one waiting, later pushes join the waiting one.

A single worker thread takes runs off the queue, so a webhook answer never waits for a run; each
run is `sbdk.run.runner.run` in a child process (sbdk/server/worker.py explains why). Pushes that
arrive while a run is going coalesce into one next run (its id is returned to each of them): the
next run builds the project as it is then, which covers every one of those pushes.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from sbdk.errors import LockError
from sbdk.run.lock import run_lock
from sbdk.server.github import printable
from sbdk.telemetry import TRACEPARENT

log = logging.getLogger("sbdk.server")

RUNS_KEPT = 1_000
CANCELLED = "cancelled: the server stopped before this run started"
INTERRUPTED = "interrupted: the server was stopped during this run"
UNFINISHED = "the server stopped before this run finished"
_STOPPED_ERRORS = (CANCELLED, INTERRUPTED, UNFINISHED)
# The deliveries of a run reach its log file through the worker's command line, where one argument
# is capped at 128 KB and a burst of pushes can join one run: only the first ones are named.
LOGGED_DELIVERIES = 20


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
    # Failed because the server stopped (cancelled before it started, interrupted, or left unfinished
    # by a killed server), not by its own error: a redelivery of one of its pushes runs again.
    server_stopped: bool = False
    # The W3C trace context of the delivery that queued the run, when tracing is configured: the
    # run's trace continues it (sbdk/telemetry). Not shown by GET /runs/{id}.
    traceparent: str | None = None
    # The write of the record as first queued; the 202 that announces the run waits for it.
    saved: Future[bool] | None = field(default=None, repr=False, compare=False)

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
            "server_stopped": self.server_stopped,
        }

    def log_context(self) -> dict[str, Any]:
        """What the run's log file says first about why it ran: the pushes it builds."""
        context: dict[str, Any] = {
            "pushes": len(self.deliveries),
            "deliveries": [printable(d) for d in self.deliveries[:LOGGED_DELIVERIES]],
        }
        if self.commits:
            context["commit"] = printable(self.commits[-1])  # the newest commit pushed
        if self.traceparent:
            context[TRACEPARENT] = self.traceparent
        return context


def never_finished(record: dict[str, Any] | None) -> bool:
    """Whether a push answered with this run (as GET /runs/{id} shows it) still waits for a build:
    the run is unknown (a server killed before it wrote it) or the server stopped it. A run that
    is queued or running, succeeded, or failed by its own error is the push's answer for good."""
    if record is None:
        return True
    # Records written before `server_stopped` existed say it in their error only.
    stopped = record.get("server_stopped", record.get("error") in _STOPPED_ERRORS)
    return record.get("status") == "failed" and bool(stopped)


class Queued(NamedTuple):
    """A push's place in the queue: its run, whether it joined a waiting one, the run going now."""

    run_id: str
    joined: bool
    busy: str | None


class ProcessRunner:
    """Runs one build at a time as `python -m sbdk.server.worker CONFIG RUN_ID LOG_CONTEXT`."""

    def __init__(self, config_file: Path) -> None:
        self.config_file = config_file
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._interrupted: subprocess.Popen | None = None
        self._interrupt_on_start = False

    def run(self, run_id: str, log_context: dict[str, Any] | None = None) -> dict[str, Any]:
        """The child's result: {success, error, rows, stages}. Its progress is logged as it comes;
        `log_context` goes to the first line of the run's log file."""
        context = json.dumps(log_context or {})
        process = subprocess.Popen(
            [sys.executable, "-m", "sbdk.server.worker", str(self.config_file), run_id, context],
            stdin=subprocess.PIPE,  # held open: the child interrupts itself when it closes
            stdout=subprocess.PIPE,
            text=True,
            # Its own session: a Ctrl-C in the server's terminal reaches the server only, which
            # then decides whether the run finishes or is interrupted.
            start_new_session=True,
        )
        with self._lock:
            self._process = process
            early, self._interrupt_on_start = self._interrupt_on_start, False
        if early:  # asked to stop while the process was starting
            self.interrupt()
        # Both are pipes (opened above); the checker cannot know it from Popen's signature.
        assert process.stdin is not None and process.stdout is not None
        result = None
        try:
            for line in process.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    log.info("run %s: %s", run_id, line.rstrip())
                    continue
                if "log" in message:
                    log.log(*message["log"])
                elif "result" in message:
                    result = message["result"]
            code = process.wait()
        finally:
            with self._lock:
                self._process = None
            process.stdin.close()
            process.stdout.close()
        if result is None:
            return {
                "success": False,
                "error": f"the run's process ended without a result (exit code {code}); see the server's output",
            }
        return result

    def interrupt(self) -> str | None:
        """SIGINT to the running child, as Ctrl-C in `sbdk dev`; SIGKILL if asked again (the load
        swap keeps the previous tables whole either way). Called only while a run is current: if its
        process is still starting, it is interrupted as soon as it exists. What was done, or None."""
        with self._lock:
            process = self._process
            if process is None:
                self._interrupt_on_start = True
                return "interrupted"
            if process.poll() is not None:
                return None
            if self._interrupted is process:
                process.kill()
                return "killed"
            self._interrupted = process
            process.send_signal(signal.SIGINT)
            return "interrupted"


class RunQueue:
    """`submit()` from any thread; `start()` once; `stop()` cancels the waiting run and waits for the
    current one; `interrupt()` stops the current one as Ctrl-C stops `sbdk dev`."""

    def __init__(
        self,
        runner: ProcessRunner,
        *,
        lock_file: Path | None = None,
        on_change: Callable[[dict[str, Any]], Future[bool] | None] = lambda record: None,
        last_run: dict[str, Any] | None = None,
    ) -> None:
        self._runner = runner
        self._lock_file = lock_file
        # Called with the record's dict on every change, under the queue's lock so that changes are
        # seen in order: it must be quick (the store only enqueues the write, and returns its future).
        self._on_change = on_change
        self._cond = threading.Condition()
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._pending: RunRecord | None = None
        self._current: RunRecord | None = None
        self._last: dict[str, Any] | None = last_run
        self._closed = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._interrupted: str | None = None  # the run the server interrupted

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._closed = False
            self._stopping.clear()
            self._thread = threading.Thread(target=self._work, name="sbdk-server-runs", daemon=True)
            self._thread.start()

    def submit(
        self, delivery: str | None = None, commit: str | None = None, traceparent: str | None = None
    ) -> Queued | None:
        """Queue a run, or join the one already waiting; None when the queue is closed. The run's
        trace is a child of the `traceparent` of the delivery that queued it."""
        with self._cond:
            if self._closed:
                return None
            joined = self._pending is not None
            if self._pending is None:
                self._pending = RunRecord(id=uuid.uuid4().hex[:12], traceparent=traceparent)
                self._remember(self._pending)
            record = self._pending
            if delivery:
                record.deliveries.append(delivery)
            if commit and (not record.commits or record.commits[-1] != commit):
                record.commits.append(commit)
            if not joined:
                # Recorded when queued and at every change of status; pushes that join it are
                # recorded with it when it starts (a burst of pushes must not cost a write each).
                record.saved = self._changed(record)
                self._cond.notify_all()
            return Queued(record.id, joined, self._current.id if self._current else None)

    def saved(self, run_id: str) -> Future[bool] | None:
        """The write of the run as first queued (None for a run this queue no longer keeps)."""
        with self._cond:
            record = self._runs.get(run_id)
            return record.saved if record else None

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
                record.server_stopped = True
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
        """Interrupt the current run as Ctrl-C interrupts `sbdk dev`: the runner records it as
        interrupted and the load swap leaves the previous tables whole (DESIGN.md §5)."""
        self.close()
        with self._cond:
            current = self._current
            if current is not None:
                self._interrupted = current.id
        if current is None:
            return
        done = self._runner.interrupt()
        if done == "interrupted":
            log.warning("interrupting run %s (again to kill it)", current.id)
        elif done == "killed":
            log.warning("killed run %s", current.id)

    def _remember(self, record: RunRecord) -> None:
        self._runs[record.id] = record
        while len(self._runs) > RUNS_KEPT:
            self._runs.popitem(last=False)

    def _changed(self, record: RunRecord) -> Future[bool] | None:
        try:
            return self._on_change(record.as_dict())
        except Exception:
            log.exception("could not record run %s", record.id)
            return None

    def _work(self) -> None:
        while True:
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
        try:
            result = self._runner.run(record.id, record.log_context())
        except OSError as exc:
            result = {"success": False, "error": f"cannot start the run's process: {exc}"}
        except Exception as exc:
            log.exception("run %s crashed", record.id)
            result = {"success": False, "error": f"unexpected error: {type(exc).__name__}: {exc}"}
        status = "succeeded" if result.get("success") else "failed"
        error = result.get("error")
        with self._cond:
            record.status, record.error = status, error
            record.server_stopped = status == "failed" and self._interrupted == record.id
            record.finished_at = _now()
            record.seconds = time.perf_counter() - started
            record.rows = dict(result.get("rows") or {})
            record.stages = dict(result.get("stages") or {})
            self._current = None
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
    commits = f", head {printable(record.commits[-1][:12])}" if record.commits else ""
    return f"{count} push{'es' if count != 1 else ''}{commits}"
