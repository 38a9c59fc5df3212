"""`sbdk backup` and `sbdk restore`: the DuckDB file's backups (sbdk.stores.backups), under the run lock."""

from __future__ import annotations

from pathlib import Path

from sbdk.run.lock import run_lock
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.settings import Settings
from sbdk.stores import backups
from sbdk.stores.backups import BackupResult, RestoreResult, inspect, list_backups

__all__ = ["backup", "inspect", "list_backups", "restore"]


def backup(
    settings: Settings, path: Path | None = None, *, wait: bool = False, reporter: Reporter = NULL_REPORTER
) -> BackupResult:
    """A consistent copy of the project's database (see sbdk.stores.backups.backup), taken while no
    sbdk run can write it."""
    guard = run_lock(settings.paths.lock_file, "sbdk backup", wait=wait, reporter=reporter)
    return backups.backup(settings, path, guard=guard, reporter=reporter)


def restore(
    settings: Settings,
    source: Path,
    *,
    wait: bool = False,
    keep_current: bool = True,
    reporter: Reporter = NULL_REPORTER,
) -> RestoreResult:
    """Put the backup `source` back (see sbdk.stores.backups.restore), while no sbdk run can write."""
    guard = run_lock(settings.paths.lock_file, "sbdk restore", wait=wait, reporter=reporter)
    return backups.restore(settings, source, guard=guard, keep_current=keep_current, reporter=reporter)
