"""Run history: JSON lines in the project's state folder, one when a run starts and one when it ends.

A run is recorded as "running" (with its pid) before it does anything, and again with its outcome
when it ends, whatever the outcome: succeeded, failed, interrupted, or refused by the run lock. A
run whose process died without a second line (SIGKILL) is read back as "killed". Lines are only
ever appended, each with one write(), so concurrent writers never interleave inside a record. A
full disk raises OSError (the runner warns and goes on); a record it cut short is skipped when read.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sbdk.errors import UsageError
from sbdk.run.results import RunReport, RunStatus

HISTORY_FILE = "history.jsonl"


def history_path(state_dir: Path) -> Path:
    return state_dir / HISTORY_FILE


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _append(state_dir: Path, entry: dict[str, Any]) -> None:
    path = history_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        # A write cut short by a full disk leaves a torn line: the next record starts a line of its own.
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(fd, line)
    except OSError as exc:  # os.write's error names no file: name it for the warning
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        os.close(fd)
    if written < len(line):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def started(state_dir: Path, run_id: str, trigger: str, *, started_at: datetime, options: dict[str, Any]) -> None:
    """Record that a run started (so a run killed before its end is still listed)."""
    _append(
        state_dir,
        {
            "run_id": run_id,
            "trigger": str(trigger),
            "options": _plain(options),
            "started_at": started_at.isoformat(),
            "status": str(RunStatus.RUNNING),
            "pid": os.getpid(),
        },
    )


def record(state_dir: Path, report: RunReport, *, started_at: datetime, options: dict[str, Any]) -> dict[str, Any]:
    """Record how a run ended; returns the record written."""
    dbt = report.dbt
    entry: dict[str, Any] = {
        "run_id": report.run_id,
        "trigger": str(report.trigger),
        "options": _plain(options),
        "started_at": started_at.isoformat(),
        "ended_at": datetime.now(timezone.utc).isoformat(),
        "status": str(report.status),
        "seconds": round(report.seconds, 3),
        "stages": report.stage_seconds(),
        "rows": dict(report.row_counts),
        "model_rows": dict(report.model_rows),
        # The days this run's load made (first, last), so `sbdk history` can say which day each run added.
        "days": [str(day) for day in report.load.days] if report.load and report.load.days else None,
        # What this run left as it was, and why (issue #20: only what changed is done again).
        "kept": list(report.load.kept) if report.load else [],
        "dbt_skipped": report.dbt_skipped,
        "dbt": (
            {
                **dbt.counts().as_dict(),
                "failures": [{"name": n.name, "status": n.status, "message": n.message} for n in dbt.failures],
            }
            if dbt
            else None
        ),
        "error": report.error,
    }
    _append(state_dir, entry)
    return entry


def _alive(pid: Any) -> bool:
    from sbdk.run.lock import alive  # the run lock and the history agree on what alive means

    return isinstance(pid, int) and alive(pid)


def read(state_dir: Path) -> list[dict[str, Any]]:
    """Every recorded run, oldest first, as its latest record says (a torn last line from a killed
    writer is skipped; a run still "running" whose process is gone is "killed")."""
    path = history_path(state_dir)
    if not path.is_file():
        return []
    runs: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("run_id"):
            runs[str(entry["run_id"])] = entry
    for entry in runs.values():
        if entry.get("status") == RunStatus.RUNNING and not _alive(entry.get("pid")):
            entry["status"] = str(RunStatus.KILLED)
            entry.setdefault("ended_at", None)
            entry.setdefault("error", "the run's process ended without finishing it (killed?)")
    return list(runs.values())


def last(state_dir: Path, count: int) -> list[dict[str, Any]]:
    """The `count` most recent runs, newest first (every run when `count` is 0)."""
    runs = read(state_dir)
    runs.reverse()
    return runs[:count] if count > 0 else runs


def find(state_dir: Path, run_id: str) -> dict[str, Any]:
    """The run whose id is `run_id` or starts with it; a UsageError when none or several match."""
    wanted = run_id.strip().lower()
    runs = read(state_dir)
    exact = [r for r in runs if r.get("run_id") == wanted]
    if exact:
        return exact[-1]
    matches = [r for r in runs if wanted and str(r.get("run_id", "")).startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(
            f"No run {run_id!r} in the history of this project ({len(runs)} runs recorded).",
            hint="`sbdk history` lists the recent runs with their ids.",
        )
    ids = ", ".join(sorted({str(r["run_id"]) for r in matches})[:5])
    raise UsageError(f"{run_id!r} matches {len(matches)} runs ({ids}).", hint="Give more characters of the run id.")
