"""What notifications remember between runs: `.sbdk/notify_state.json` in the project.

The outcome of the last run that succeeded or failed (so a failure repeated announces nothing) and
the columns of the raw tables after the last load, per target (DuckDB and PostgreSQL name types
differently). A missing or unreadable file is a fresh start: at worst one message is sent again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbdk.notify.events import Event, Outcome
from sbdk.notify.schema import Columns

STATE_FILE = "notify_state.json"


@dataclass
class NotifyState:
    outcome: Outcome = field(default_factory=Outcome)
    columns: dict[str, Columns] = field(default_factory=dict)  # target name -> the last load's columns


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


def read_state(state_dir: Path) -> NotifyState:
    try:
        data = json.loads(state_path(state_dir).read_text(encoding="utf-8"))
        last = data.get("last")
        outcome = Outcome(Event(last) if last else None, int(data.get("failed_runs", 0)))
        return NotifyState(outcome, _columns(data.get("columns", {})))
    except (OSError, ValueError, TypeError, AttributeError):
        return NotifyState()


def write_state(state_dir: Path, state: NotifyState) -> None:
    """Write the whole file at once (a new file swapped in), so a killed run never leaves half of it."""
    path = state_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "last": state.outcome.last.value if state.outcome.last else None,
        "failed_runs": state.outcome.failed_runs,
        "columns": state.columns,
    }
    fresh = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fresh.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(fresh, path)


def _columns(value: Any) -> dict[str, Columns]:
    return {
        str(target): {str(table): {str(c): str(t) for c, t in cols.items()} for table, cols in tables.items()}
        for target, tables in value.items()
    }
