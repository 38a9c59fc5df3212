"""Every run's progress as JSON lines in `.sbdk/runs/<run id>.jsonl`, for whoever watches runs.

The page of `sbdk ui` and the MCP server read these files: one run in detail (its stages and every dbt
node with its status and time) and, while a run is going, its progress node by node, whichever process
runs it (`sbdk dev` in a terminal, the watcher, the webhook server). The file is written whatever the
run's log format is, one line per event, flushed at once; a line is only ever appended. A file that
cannot be written (a full disk) is given up without a word: the run log already warns about that.
Only the last `KEEP` files are kept.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from sbdk.run.reporters import ForwardingReporter, Reporter
from sbdk.run.results import NodeResult

RUNS_DIR = "runs"
KEEP = 200


def events_dir(state_dir: Path) -> Path:
    return state_dir / RUNS_DIR


def events_path(state_dir: Path, run_id: str) -> Path:
    return events_dir(state_dir) / f"{run_id}.jsonl"


def read_events(state_dir: Path, run_id: str) -> list[dict[str, Any]]:
    """The events of run `run_id` in order (a line cut short by a killed writer is skipped)."""
    try:
        text = events_path(state_dir, run_id).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def prune(state_dir: Path, keep: int = KEEP) -> None:
    """Delete all but the `keep` newest event files."""
    try:
        files = sorted(events_dir(state_dir).glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
    except OSError:
        return
    for path in files[: max(0, len(files) - keep)]:
        try:
            path.unlink()
        except OSError:
            pass


class EventsReporter(ForwardingReporter):
    """Forwards every call to `inner` and appends the run's events to its JSON lines file."""

    def __init__(self, inner: Reporter, state_dir: Path, run_id: str, trigger: str) -> None:
        super().__init__(inner)
        self.state_dir = state_dir
        self.run_id = run_id
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._broken = False
        self._started = time.perf_counter()
        self._stage_started = self._started
        self._stage: str | None = None
        self.write("run_started", trigger=trigger, pid=os.getpid())

    def write(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event}
        record.update({k: v for k, v in fields.items() if v is not None})
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            if self._broken:
                return
            try:
                if self._file is None:
                    path = events_path(self.state_dir, self.run_id)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = open(path, "a", encoding="utf-8", buffering=1)
                self._file.write(line)
            except OSError:
                self._broken = True
                self._close()

    def _close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _end_stage(self) -> None:
        if self._stage is not None:
            self.write("stage_finished", stage=self._stage, seconds=round(time.perf_counter() - self._stage_started, 3))
            self._stage = None

    def stage(self, name: str, detail: str = "") -> None:
        self._end_stage()
        self._stage, self._stage_started = name, time.perf_counter()
        self.write("stage", stage=name, detail=detail or None)
        super().stage(name, detail)

    def table_done(self, table: str, rows: int, seconds: float) -> None:
        self.write("table_done", table=table, rows=rows, seconds=round(seconds, 3))
        super().table_done(table, rows, seconds)

    def table_kept(self, table: str) -> None:
        self.write("table_kept", table=table)
        super().table_kept(table)

    def dbt_nodes(self, total: int) -> None:
        self.write("nodes_planned", nodes=total)
        super().dbt_nodes(total)

    def node_started(self, name: str, resource_type: str) -> None:
        self.write("node_started", name=name, resource_type=resource_type)
        super().node_started(name, resource_type)

    def node_finished(self, node: NodeResult) -> None:
        self.write(
            "node_finished",
            unique_id=node.unique_id,
            name=node.name,
            resource_type=node.resource_type,
            status=node.status,
            seconds=round(node.seconds, 3),
            message=node.message if node.failed or node.status == "warn" else None,
            failures=node.failures,
        )
        super().node_finished(node)

    def finish(self, status: str, seconds: float, error: str | None) -> None:
        """The run's last line; closes the file and prunes old ones."""
        self._end_stage()
        self.write("run_finished", status=status, seconds=round(seconds, 3), error=error)
        with self._lock:
            self._close()
            self._broken = True
        prune(self.state_dir)
