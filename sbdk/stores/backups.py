"""Backups of the project's DuckDB file, and putting one back.

A backup is a byte copy of the file taken while sbdk holds the project's run lock (no sbdk run can
write) and a DuckDB connection of its own (no other program can write), right after a CHECKPOINT has
moved everything from the write-ahead log into the file. Copies are written to a temporary name in
the destination folder, checked to open, then renamed into place: a failed backup or restore never
leaves a half-written file under a real name.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sbdk.errors import LockError, NotLoadedError, PipelineError, SbdkError, UsageError
from sbdk.paths import user_path
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.settings import Settings
from sbdk.stores import duckdb as duckdb_store
from sbdk.stores.base import META_SCHEMA

SUFFIX = ".duckdb"
AUTO = "auto"
BEFORE_RESTORE = "before-restore"
_STAMP = "%Y%m%dT%H%M%SZ"
_MAGIC = b"DUCK"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<kind>auto|before-restore))?(?:-(?P<n>\d+))?\.duckdb$")


class BackupError(SbdkError):
    """A backup or a restore could not be written."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    created: datetime  # UTC: from the name for sbdk's backups, else the file's modification time
    kind: str  # "manual", "auto", "before-restore" or "other" (a file sbdk did not name)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    seconds: float
    tables: dict[str, int]  # rows per raw table in the copy


@dataclass(frozen=True)
class RestoreResult:
    source: Path
    target: Path
    tables: dict[str, int]  # rows per raw table now live
    saved_current: Path | None = None  # where the database that was replaced went
    seconds: float = 0.0
    replaced: dict[str, int] = field(default_factory=dict)  # rows per raw table before the restore


def default_path(settings: Settings, kind: str = "manual", *, now: datetime | None = None) -> Path:
    """A new, unused name in the project's backups/ folder, e.g. backups/dev-20261130T070147Z.duckdb."""
    stamp = (now or datetime.now(timezone.utc)).strftime(_STAMP)
    stem = settings.paths.duckdb_path.stem
    tag = "" if kind == "manual" else f"-{kind}"
    folder = settings.paths.backups_dir
    candidate = folder / f"{stem}-{stamp}{tag}{SUFFIX}"
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{stamp}{tag}-{n}{SUFFIX}"
        n += 1
    return candidate


def inspect(path: Path) -> dict[str, int]:
    """Rows per raw table of the sbdk database at `path`; a clear error when it is not one."""
    import duckdb

    if not path.is_file():
        raise UsageError(f"There is no file {path}.", hint="`sbdk backup --list` shows the backups of this project.")
    if not is_duckdb_file(path):
        raise UsageError(f"{path} is not a DuckDB database file.", hint="Choose a backup from `sbdk backup --list`.")
    try:
        with duckdb_store.connect(path, read_only=True) as con:
            rows = con.execute(f"select table_name, rows from {META_SCHEMA}.raw_tables").fetchall()
    except duckdb.Error as exc:
        raise UsageError(
            f"{path} is a DuckDB database but not one made by sbdk (it has no {META_SCHEMA}.raw_tables table).",
            hint="Restore a file written by `sbdk backup` (`sbdk backup --list`).",
        ) from exc
    except LockError:
        raise
    except PipelineError as exc:  # any other reason it does not open
        raise UsageError(
            f"{path} cannot be opened as a DuckDB database: {exc.message}",
            hint="Choose another backup (`sbdk backup --list`).",
        ) from exc
    return dict(sorted(rows))


def is_duckdb_file(path: Path) -> bool:
    """Whether `path` starts with DuckDB's header (the magic bytes DUCK at offset 8)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(12)[8:12] == _MAGIC
    except OSError:
        return False


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    with open(target, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform lets a folder be opened for this.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary(target: Path, purpose: str) -> Path:
    return target.with_name(f".{target.name}.{purpose}-{os.getpid()}.tmp")


@contextlib.contextmanager
def _quiesced(db: Path) -> Iterator[None]:
    """The database with everything checkpointed into the file and nobody else able to write it."""
    if not db.is_file():
        raise NotLoadedError(f"There is no database at {db} yet.", hint="Run `sbdk dev` to create and load it.")
    with duckdb_store.connect(db) as con:
        con.execute("checkpoint")
        wal = db.with_name(db.name + ".wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise BackupError(
                f"DuckDB kept changes in {wal.name} after a checkpoint, so a copy of {db.name} alone "
                "would be incomplete.",
                hint="Run `sbdk backup` again; if it persists, close other programs using the file.",
            )
        yield


def _write_copy(db: Path, target: Path, *, verify: bool = True) -> dict[str, int]:
    """Copy `db` (quiesced by the caller) to `target` through a temporary file; returns its tables."""
    tables: dict[str, int] = {}

    def check(copy: Path) -> None:
        tables.update(inspect_any(copy) if verify else {})

    def failed(exc: OSError) -> BackupError:
        return BackupError(
            f"Cannot write the backup {target}: {exc.strerror or exc}.",
            hint="Check the free space and permissions of that folder, or give another PATH.",
        )

    _copy_into_place(db, target, "backup", check, failed)
    return tables


def _copy_into_place(
    source: Path, target: Path, purpose: str, check: Callable[[Path], object], failed: Callable[[OSError], BackupError]
) -> None:
    """Copy `source` beside `target` under a temporary name, `check` the copy, then rename it over
    `target`: a failed copy never leaves a half-written file under the real name."""
    temporary = _temporary(target, purpose)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(source, temporary)
        check(temporary)
        # A write-ahead log left beside an old file would be replayed into the new one.
        target.with_name(target.name + ".wal").unlink(missing_ok=True)
        os.replace(temporary, target)
    except OSError as exc:
        raise failed(exc) from exc
    finally:
        temporary.unlink(missing_ok=True)
    _fsync_dir(target.parent)


def inspect_any(path: Path) -> dict[str, int]:
    """Like inspect(), but a DuckDB file sbdk has not loaded yet gives {} instead of an error."""
    try:
        with duckdb_store.connect(path, read_only=True) as con:
            return {name: rows for name, (_schema, rows) in sorted(duckdb_store.live_tables(con).items())}
    except SbdkError as exc:
        raise BackupError(f"The copy {path} does not open: {exc.message}", hint="Run the backup again.") from exc


def backup(
    settings: Settings,
    path: Path | None = None,
    *,
    kind: str = "manual",
    guard: contextlib.AbstractContextManager[object] | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> BackupResult:
    """Write a consistent copy of the project's database to `path` (a file or a folder; the
    project's backups/ folder with a timestamped name by default).

    `guard` is held while the file is copied: the run lock, for a caller that does not hold it yet
    (sbdk.ops.backup); the runner already holds it.
    """
    db = settings.paths.duckdb_path
    if path is None:
        target = default_path(settings, kind)
    else:
        target = user_path(path).absolute()
        if target.is_dir():
            target = target / default_path(settings, kind).name
        if target.resolve() == db.resolve():
            raise UsageError(f"{target} is the project's database itself.", hint="Give another PATH.")
        if target.exists():
            raise UsageError(
                f"{target} already exists; sbdk does not overwrite backups.",
                hint="Give another file name, or a folder to get a timestamped name in it.",
            )
    started = time.perf_counter()
    with guard or contextlib.nullcontext(), _quiesced(db):
        tables = _write_copy(db, target)
    result = BackupResult(
        path=target, bytes=target.stat().st_size, seconds=time.perf_counter() - started, tables=tables
    )
    reporter.log(f"backup: {db.name} copied to {target} ({result.bytes:,} bytes)")
    return result


def auto_backup(settings: Settings, reporter: Reporter = NULL_REPORTER) -> Path | None:
    """Before a full run: back up the database and keep only the newest `backups.keep` automatic
    backups. A no-op when `backups.keep` is 0, there is no database yet, or the run's target is a
    server rather than the DuckDB file.

    The caller must hold the project's run lock (this does not take it).
    """
    keep = settings.backups.keep
    # A run against a server target does not touch the DuckDB file: nothing to protect.
    if keep <= 0 or settings.active_target.type != "duckdb" or not settings.paths.duckdb_path.is_file():
        return None
    reporter.stage("backup", f"keeping the last {keep}")
    result = backup(settings, kind=AUTO, reporter=reporter)
    stem = settings.paths.duckdb_path.stem
    automatic = [b for b in list_backups(settings) if b.kind == AUTO and _stem(b.path) == stem]
    for old in automatic[:-keep]:
        old.path.unlink(missing_ok=True)
        reporter.log(f"backup: removed the older automatic backup {old.path.name}")
    return result.path


def _stem(path: Path) -> str | None:
    match = _NAME.match(path.name)
    return match["stem"] if match else None


def list_backups(settings: Settings) -> list[BackupInfo]:
    """The backups in the project's backups/ folder, oldest first."""
    folder = settings.paths.backups_dir
    if not folder.is_dir():
        return []
    found: list[tuple[tuple, BackupInfo]] = []
    for path in folder.iterdir():
        if not path.is_file() or path.suffix != SUFFIX or path.name.startswith("."):
            continue
        stat = path.stat()
        match = _NAME.match(path.name)
        if match:
            created = datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=timezone.utc)
            kind = match["kind"] or "manual"
        else:
            created = datetime.fromtimestamp(stat.st_mtime, timezone.utc)
            kind = "other"
        # Names have whole seconds: within one second, the file written last is the newest.
        order = (created, stat.st_mtime_ns, int(match["n"] or 1) if match else 0, path.name)
        found.append((order, BackupInfo(path=path, bytes=stat.st_size, created=created, kind=kind)))
    return [info for _order, info in sorted(found, key=lambda item: item[0])]


def restore(
    settings: Settings,
    source: Path,
    *,
    keep_current: bool = True,
    guard: contextlib.AbstractContextManager[object] | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> RestoreResult:
    """Make the backup `source` the project's database again.

    The backup must open and be an sbdk database. Under the run lock, the current database (if any)
    is first saved to backups/ as `<name>-<time>-before-restore.duckdb` (unless `keep_current` is
    False), then the backup is copied next to it under a temporary name and renamed over it.
    """
    source = user_path(source).absolute()
    db = settings.paths.duckdb_path
    if source.exists() and source.resolve() == db.resolve():
        raise UsageError(f"{source} is the project's database itself.", hint="Give a backup file.")
    tables = inspect(source)
    started = time.perf_counter()
    saved: Path | None = None
    replaced: dict[str, int] = {}
    with guard or contextlib.nullcontext():
        if db.is_file():
            saved, replaced = _save_current(settings, keep_current, reporter)
        _put_in_place(source, db)
        _never_up_to_date(settings)
    return RestoreResult(
        source=source,
        target=db,
        tables=tables,
        saved_current=saved,
        seconds=time.perf_counter() - started,
        replaced=replaced,
    )


def _never_up_to_date(settings: Settings) -> None:
    """A restored database is never taken for up to date: the next `sbdk dev` reloads its raw tables
    and builds every model (sbdk.pipelines.fingerprint, sbdk.dbt.state). The file itself stays the
    backup's, byte for byte: a marker in the state folder says so instead."""
    from sbdk.dbt.state import forget
    from sbdk.pipelines.fingerprint import restored_marker

    forget(settings)
    marker = restored_marker(settings)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{datetime.now(timezone.utc).isoformat()}\n")


def _save_current(settings: Settings, keep: bool, reporter: Reporter) -> tuple[Path | None, dict[str, int]]:
    """Before a restore: (where the current database was saved, its rows per raw table)."""
    db = settings.paths.duckdb_path
    try:
        # Opening it for writing fails, naming the program, if anyone else has it open.
        with _quiesced(db):
            if not keep:
                return None, {}
            saved = default_path(settings, BEFORE_RESTORE)
            return saved, _write_copy(db, saved)
    except LockError:
        raise
    except PipelineError as exc:
        # A damaged file is a good reason to restore: keep it as it is, unchecked.
        reporter.warn(f"The current database does not open ({exc.message}); replacing it anyway.")
        if not keep:
            return None, {}
        saved = default_path(settings, BEFORE_RESTORE)
        _write_copy(db, saved, verify=False)
        return saved, {}


def _put_in_place(source: Path, db: Path) -> None:
    """Make a checked copy of `source` the database `db`."""

    def failed(exc: OSError) -> BackupError:
        return BackupError(
            f"Cannot restore {source} to {db}: {exc.strerror or exc}. The database was not changed.",
            hint="Check the free space and permissions of the data folder.",
        )

    _copy_into_place(source, db, "restore", inspect, failed)
