"""One webhook run, in a child process of the server: `python -m sbdk.server.worker CONFIG RUN_ID`.

The server runs builds here rather than in one of its own threads: a run is mostly Python (dlt,
dbt's parser, the user's pipelines), and in-process it takes the GIL from the event loop. With a
run in a thread, 1,000 signed pushes at 20 in flight on 2 cores were answered with a p99 of
~170 ms (seconds at 50 in flight); with the run in a child, ~25 ms (benchmarks/bench_webhooks.py).
A child also gets real Ctrl-C semantics (the server interrupts it with SIGINT), gives its memory
back after every run, and costs an import of dlt and dbt per run (a second or two).

Protocol on stdout, one JSON object per line: {"log": [level, message]} for progress, then one
{"result": {...}} at the end. stdin stays open while the server lives; when it closes (the server
died, even by SIGKILL) the run is interrupted as by Ctrl-C, so no build outlives its server.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Any

from sbdk.errors import SbdkError
from sbdk.run.reporters import Reporter
from sbdk.run.results import NodeResult

log = logging.getLogger("sbdk.server")
INTERRUPTED = "interrupted: the server was stopped during this run"


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
    def __init__(self, emit_line) -> None:
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


def _interrupted(exc: BaseException) -> bool:
    """True when a KeyboardInterrupt is inside the error's chain: dlt wraps one raised during
    extraction in PipelineStepFailed, which the loader reports as a PipelineError."""
    from sbdk.errors import causes

    return any(isinstance(cause, KeyboardInterrupt) for cause in causes(exc))


def _failures(report: Any) -> str | None:
    """The failed dbt nodes of a finished run, as one line of error text."""
    if report.dbt is None or report.success:
        return None
    failed = report.dbt.failures
    if not failed:
        return report.dbt.error or "dbt reported a failure"
    shown = "; ".join(f"{n.resource_type} {n.name} {n.status}: {n.message or ''}".strip() for n in failed[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    return f"dbt: {len(failed)} failed: {shown}{more}"


def main(argv: list[str] | None = None) -> int:
    config_file, run_id = argv if argv is not None else sys.argv[1:3]
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

    log.handlers[:] = [_ToParent(emit)]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    _interrupt_when_orphaned()

    result: dict[str, Any] = {"success": False, "error": None, "rows": {}, "stages": {}}
    code = 0
    try:
        from sbdk.run.runner import RunPlan, run
        from sbdk.settings import load_settings

        # Read the config now: a push may have changed it since the server started.
        settings = load_settings(config_file)
        for message in settings.warnings:
            log.warning("run %s: %s", run_id, message)
        report = run(settings, RunPlan(trigger="sbdk webhooks"), LogReporter(run_id), wait=True, run_id=run_id)
        result.update(
            success=report.success,
            error=report.error or _failures(report),
            rows=dict(report.row_counts),
            stages=report.stage_seconds(),
        )
    except SbdkError as exc:
        result["error"] = INTERRUPTED if _interrupted(exc) else str(exc)
        code = 130 if _interrupted(exc) else 1
    except KeyboardInterrupt:
        result["error"] = INTERRUPTED
        code = 130
    emit({"result": result})
    return code


if __name__ == "__main__":
    from sbdk.run.process import exit_now, set_single_run, tune_gc

    tune_gc()
    set_single_run()
    exit_now(main())
