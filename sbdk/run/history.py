"""Run history: one JSON line per run in the project's state folder, written even for failed runs."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sbdk.errors import UsageError
from sbdk.run.results import RunReport

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


def record(state_dir: Path, report: RunReport, *, started_at: datetime, options: dict[str, Any]) -> dict[str, Any]:
    """Append one run to the history; returns the record written."""
    dbt = report.dbt
    entry: dict[str, Any] = {
        "run_id": report.run_id,
        "trigger": report.trigger,
        "options": _plain(options),
        "started_at": started_at.isoformat(),
        "ended_at": datetime.now(timezone.utc).isoformat(),
        "status": "succeeded" if report.success else "failed",
        "seconds": round(report.seconds, 3),
        "stages": report.stage_seconds(),
        "rows": dict(report.row_counts),
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
    path = history_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write() of one line with O_APPEND: concurrent writers never interleave inside a record.
    line = (json.dumps(entry) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return entry


def read(state_dir: Path) -> list[dict[str, Any]]:
    """Every recorded run, oldest first (a torn last line from a killed writer is skipped)."""
    path = history_path(state_dir)
    if not path.is_file():
        return []
    runs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue
    return runs


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
