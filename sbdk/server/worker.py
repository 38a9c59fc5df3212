"""One webhook run, in a child process of the server: `python -m sbdk.server.worker CONFIG RUN_ID [LOG_CONTEXT]`.

The server runs builds here rather than in one of its own threads: a run is mostly Python (dlt,
dbt's parser, the user's pipelines), and in-process it takes the GIL from the event loop. With a
run in a thread, 1,000 signed pushes at 20 in flight on 2 cores were answered with a p99 of
~170 ms (seconds at 50 in flight); with the run in a child, ~25 ms (benchmarks/bench_webhooks.py).
A child also gets real Ctrl-C semantics (the server interrupts it with SIGINT), gives its memory
back after every run, and costs an import of dlt and dbt per run (a second or two).

Protocol on stdout, one JSON object per line: {"log": [level, message]} for progress, then one
{"result": {...}} at the end. stdin stays open while the server lives; when it closes (the server
died, even by SIGKILL) the run is interrupted as by Ctrl-C, so no build outlives its server.

LOG_CONTEXT is a JSON object (the pushes the run builds) for the first line of the run's log file,
which the runner writes as it does for every run (`logs/<time>_<run id>.log`).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from sbdk.errors import SbdkError, interrupted
from sbdk.run.reporters import Reporter
from sbdk.run.results import NodeResult, RunReport
from sbdk.server.runs import INTERRUPTED

log = logging.getLogger("sbdk.server")


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


class _ToParent(logging.Handler):
    """Log records of the run, sent to the server as protocol lines."""

    def __init__(self, emit_line: Callable[[dict[str, Any]], None]) -> None:
        super().__init__()
        self._emit_line = emit_line

    def emit(self, record: logging.LogRecord) -> None:
        self._emit_line({"log": [record.levelno, record.getMessage()]})


def _interrupt_when_orphaned() -> None:
    """Ctrl-C ourselves when stdin closes: the server holds it open for as long as it lives."""

    def watch() -> None:
        import _thread

        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        _thread.interrupt_main()

    threading.Thread(target=watch, name="sbdk-worker-parent", daemon=True).start()


def _error(report: RunReport) -> str | None:
    """Why a finished run failed, as one line: its error, or the dbt nodes that failed."""
    if report.error:
        return report.error
    return report.dbt.failure_summary() if report.dbt is not None else None


def main(argv: list[str] | None = None) -> int:
    config_file, run_id, *rest = argv if argv is not None else sys.argv[1:]
    emit = _protocol_writer()
    log.handlers[:] = [_ToParent(emit)]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    _interrupt_when_orphaned()
    result, code = _build(config_file, run_id, json.loads(rest[0]) if rest else None)
    emit({"result": result})
    return code


def _protocol_writer() -> Callable[[dict[str, Any]], None]:
    """A function that writes one protocol line to the server, from any thread."""
    # The protocol keeps the original stdout; anything else written there, by Python or by a
    # library writing to file descriptor 1 (a pipeline's print()), goes to stderr instead.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def emit(message: dict[str, Any]) -> None:
        with lock:
            try:
                out.write(json.dumps(message) + "\n")
                out.flush()
            except OSError:  # the server is gone; the run goes on to its end (or interruption)
                pass

    return emit


def _build(config_file: str, run_id: str, log_context: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
    """Run the project once; the result for the server, and the exit code."""
    result: dict[str, Any] = {"success": False, "error": None, "rows": {}, "stages": {}}
    try:
        from sbdk.run.runner import RunPlan, Trigger, run
        from sbdk.settings import load_settings

        # Read the config now: a push may have changed it since the server started.
        settings = load_settings(config_file)
        for message in settings.warnings:
            log.warning("run %s: %s", run_id, message)
        # This process does this one run, then exits: dbt may build with the collector paused.
        report = run(
            settings,
            RunPlan(trigger=Trigger.WEBHOOK),
            LogReporter(run_id),
            wait=True,
            run_id=run_id,
            log_context=log_context,
            pause_gc=True,
        )
    except SbdkError as exc:
        # dlt wraps a Ctrl-C raised during extraction in its own errors, which reach here as a
        # PipelineError: still an interruption.
        stopped = interrupted(exc)
        result["error"] = INTERRUPTED if stopped else str(exc)
        return result, 130 if stopped else 1
    except KeyboardInterrupt:
        result["error"] = INTERRUPTED
        return result, 130
    result.update(
        success=report.success,
        error=_error(report),
        rows=dict(report.row_counts),
        stages=report.stage_seconds(),
    )
    return result, 0


if __name__ == "__main__":
    from sbdk.run.process import exit_now, tune_gc

    tune_gc()
    exit_now(main())
