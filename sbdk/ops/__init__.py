"""Operations on a project: init (scaffold), querying, health checks, backups, tracking.

Domain code only: results are values, rendering is the CLI's job (sbdk/cli/query.py, doctor.py, ...).
"""

from __future__ import annotations


def human_size(count: float) -> str:
    """1536 -> '1.5 KB'."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1024:
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    return f"{count:,.1f} TB"
