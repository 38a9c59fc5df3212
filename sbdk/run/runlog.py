"""A log file per run: every progress event of a run, one line each, as text or JSON.

`RunLogReporter` wraps the reporter that shows progress (the Rich one, or a no-op one) and also
appends each event to `logs/<timestamp>_<run id>.log` in the project. JSON lines carry at least
`ts`, `run_id`, `stage` and `event` (and `duration` in seconds when something finished), so CI can
parse the file line by line. The last line, `run_finished`, carries the run's `duration` and its
seconds per stage (`stages`) exactly as the summary and `sbdk history` show them. Lines are flushed
as they are written: a killed run keeps its log. A log that cannot be written (a full disk) warns
once and the run goes on. `third_party_logs` sends what dlt logs, and Python warnings, to the same
reporter for the duration of a run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from sbdk.run.reporters import ForwardingReporter, Reporter
from sbdk.run.results import NodeResult, RunReport, RunStatus
from sbdk.settings import Settings

# "github" is the CLI's text log plus GitHub Actions annotations (sbdk/cli/github.py): its file is text.
FORMATS = ("text", "json", "github")


def log_path(settings: Settings, run_id: str, *, now: datetime | None = None) -> Path:
    """`logs/<UTC timestamp>_<run id>.log` in the project (so `ls logs/` lists runs in order)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return settings.paths.run_logs_dir / f"{stamp}_{run_id}.log"


def find_log(settings: Settings, run_id: str) -> Path | None:
    """The log file of run `run_id`, if it was written."""
    folder = settings.paths.run_logs_dir
    if not folder.is_dir():
        return None
    matches = sorted(folder.glob(f"*_{run_id}.log"))
    return matches[-1] if matches else None


class RunLogReporter(ForwardingReporter):
    """Forwards every call to `inner` and appends one line per event to the run's log file.

    Use it as a context manager around `runner.run(..., run_id=run_id)` and call `finish(report)`
    with the result; leaving the block with an exception logs the run as failed with that error.
    Table progress ticks are forwarded but not logged (one line per finished table instead).
    """

    def __init__(
        self,
        inner: Reporter,
        path: Path,
        fmt: str = "text",
        run_id: str = "",
        *,
        context: dict[str, Any] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {FORMATS}, not {fmt!r}")
        super().__init__(inner)
        self.path = path
        self.fmt = "json" if fmt == "json" else "text"
        self.run_id = run_id
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._broken = False
        self._finished = False
        self._started = time.perf_counter()
        self._stage: str | None = None
        self._stage_started = self._started
        self._write("run", "run_started", **(context or {}))

    # -- the log file

    def _open(self) -> TextIO | None:
        if self._broken:
            return None
        if self._file is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8", buffering=1)
            except OSError as exc:
                self._give_up("Cannot write", exc)
        return self._file

    def _give_up(self, doing: str, exc: OSError) -> None:
        """Stop writing the log (once, with one warning): a full disk or a lost folder must not stop the run."""
        from sbdk.disk import describe_free, is_full

        self._broken = True
        self._discard()
        reason = f"the disk is full ({describe_free(self.path.parent)})" if is_full(exc) else exc.strerror or exc
        self.inner.warn(f"{doing} the run log {self.path}: {reason}.")

    def _discard(self) -> None:
        """Close the file; what its buffer still holds is lost when it cannot be written."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _write(self, stage: str | None, event: str, *, level: str = "info", **fields: Any) -> None:
        record: dict[str, Any] = {
            "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "run_id": self.run_id,
            "stage": stage,
            "event": event,
            "level": level,
        }
        record.update({k: v for k, v in fields.items() if v is not None})
        if "duration" in record:
            record["duration"] = round(float(record["duration"]), 3)
        line = json.dumps(record, default=str) if self.fmt == "json" else _text_line(record)
        with self._lock:
            handle = self._open()
            if handle is None:
                return
            try:
                handle.write(line + "\n")
            except OSError as exc:
                self._give_up("Stopped writing", exc)

    def _end_stage(self) -> None:
        if self._stage is not None:
            now = time.perf_counter()
            self._write(self._stage, "stage_finished", duration=now - self._stage_started)
            self._stage = None

    # -- Reporter

    def stage(self, name: str, detail: str = "") -> None:
        self._end_stage()
        self._stage, self._stage_started = name, time.perf_counter()
        self._write(name, "stage_started", detail=detail or None)
        self.inner.stage(name, detail)

    def table_done(self, table: str, rows: int, seconds: float) -> None:
        self._write(self._stage, "table_done", table=table, rows=rows, duration=seconds)
        self.inner.table_done(table, rows, seconds)

    def dbt_nodes(self, total: int) -> None:
        self._write("dbt", "nodes_planned", nodes=total)
        self.inner.dbt_nodes(total)

    def node_started(self, name: str, resource_type: str) -> None:
        self._write("dbt", "node_started", node=name, resource_type=resource_type, level="debug")
        self.inner.node_started(name, resource_type)

    def node_finished(self, node: NodeResult) -> None:
        self._write(
            "dbt",
            "node_finished",
            level="error" if node.failed else ("warning" if node.status == "warn" else "info"),
            node=node.name,
            unique_id=node.unique_id,
            resource_type=node.resource_type,
            status=node.status,
            duration=node.seconds,
            failures=node.failures or None,
            message=node.message if node.failed or node.status == "warn" else None,
        )
        self.inner.node_finished(node)

    def log(self, message: str) -> None:
        self._write(self._stage, "log", level="debug", message=message)
        self.inner.log(message)

    def warn(self, message: str) -> None:
        self._write(self._stage, "warning", level="warning", message=message)
        self.inner.warn(message)

    # -- the end of the run

    def finish(self, report: RunReport | None = None, *, error: BaseException | str | None = None) -> None:
        """Log the end of the run (once): its status, duration, rows and dbt counts, or the error."""
        if self._finished:
            return
        self._finished = True
        self._end_stage()
        fields: dict[str, Any] = {"duration": time.perf_counter() - self._started}
        failed = error is not None or (report is not None and not report.success)
        if report is not None:
            # The run's own figures, as the summary and the history show them (stage_finished lines
            # time the stretch between two progress events, which is not quite the same).
            if report.seconds:
                fields["duration"] = report.seconds
            fields["stages"] = report.stage_seconds() or None
            fields["rows"] = dict(report.row_counts) or None
            fields["model_rows"] = dict(report.model_rows) or None
            if report.dbt is not None:
                dbt = report.dbt
                fields.update(dbt.counts().as_dict())
                fields["failed_nodes"] = [n.name for n in dbt.failures] or None
                if dbt.error:
                    fields["error"] = dbt.error
            if report.error:
                fields["error"] = report.error
        if error is not None:
            fields["error"] = "interrupted" if isinstance(error, KeyboardInterrupt) else str(error)
        if report is not None:
            status = report.status
        elif isinstance(error, KeyboardInterrupt):
            status = RunStatus.INTERRUPTED
        else:
            status = RunStatus.FAILED if failed else RunStatus.SUCCEEDED
        self._write(
            "run",
            "run_finished",
            level="info" if status is RunStatus.SUCCEEDED else "error",
            status=str(status),
            **fields,
        )
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                try:
                    self._file.close()
                except OSError as exc:  # its last lines could not be flushed (a full disk)
                    self._give_up("Stopped writing", exc)
                self._file = None

    def __enter__(self) -> RunLogReporter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None:
            self.finish(error=exc)
        else:
            self.finish()


class _ToReporter(logging.Handler):
    """A logging handler that hands each record to `reporter.log()` (formatted here, whatever
    formatter dlt sets on it), with the exception's traceback when the record carries one."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.reporter = reporter

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = f"{record.name} {record.levelname.lower()}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self.reporter.log(text)
        except Exception:
            self.handleError(record)


@contextmanager
def third_party_logs(reporter: Reporter, loggers: tuple[str, ...] = ("dlt",)) -> Iterator[None]:
    """For the duration of the block, what dlt logs and Python warnings go to `reporter.log()`: into
    the run's log file, and onto the terminal only with --verbose, never as tracebacks of their own.

    dlt sets up its logger ("dlt", propagate off, level RUNTIME__LOG_LEVEL) with a handler on
    stderr, or with the logger's first handler when it has one (dlt/common/logger.py,
    `_create_logger`): with this one in place, its records land here. A handler that fails to write
    (dbt's dbt.log on a full disk) would print "--- Logging error ---" and a traceback on stderr:
    `logging.raiseExceptions` is off meanwhile.
    """
    handler = _ToReporter(reporter)
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        for previous in list(logger.handlers):
            logger.removeHandler(previous)
        logger.addHandler(handler)
        logger.propagate = False
    raise_exceptions, show_warning = logging.raiseExceptions, warnings.showwarning

    def show(message: Any, category: type[Warning], filename: str, lineno: int, *_: Any, **__: Any) -> None:
        reporter.log(f"{category.__name__}: {message} ({filename}:{lineno})")

    logging.raiseExceptions, warnings.showwarning = False, show
    try:
        yield
    finally:
        logging.raiseExceptions, warnings.showwarning = raise_exceptions, show_warning
        for logger, handlers, propagate in saved:
            logger.removeHandler(handler)
            for previous in handlers:
                logger.addHandler(previous)
            logger.propagate = propagate


def _text_line(record: dict[str, Any]) -> str:
    """`<ts> <LEVEL> run=<id> stage=<stage> <event> key=value ...` (values with spaces quoted)."""
    head = f"{record['ts']} {record['level'].upper():<7} run={record['run_id']} stage={record['stage'] or '-'} {record['event']}"
    parts = []
    for key, value in record.items():
        if key in ("ts", "level", "run_id", "stage", "event"):
            continue
        if key == "duration":
            parts.append(f"duration={value:.3f}s")
            continue
        if isinstance(value, str):
            text = value if value and not any(c.isspace() or c in '"=' for c in value) else json.dumps(value)
        else:
            # Compact JSON is one token (rows={"raw_users":200}), quoted only when it holds a space.
            text = json.dumps(value, default=str, separators=(",", ":"))
            text = json.dumps(text) if any(c.isspace() for c in text) else text
        parts.append(f"{key}={text}")
    return " ".join([head, *parts])
