"""Operations on a project: querying, health checks, backups (the commands beside `sbdk dev`).

Domain code only: results are values, rendering is the CLI's job (sbdk/cli/query.py, doctor.py, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

from sbdk.run.lock import _alive, holder


def active_run(lock_file: Path) -> dict | None:
    """Who holds the project's run lock right now, read without taking it (None when nobody does).

    The run lock truncates its file on release and the kernel drops the flock of a dead process,
    so recorded details whose pid is still alive mean a run is in progress.
    """
    info = holder(lock_file)
    if not info or not info.get("pid"):
        return None
    pid = int(info["pid"])
    if pid == os.getpid() or not _alive(pid):
        return None
    return info


def human_size(count: float) -> str:
    """1536 -> '1.5 KB'."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024:
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} TB"
