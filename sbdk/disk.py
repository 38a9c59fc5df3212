"""A full disk, wherever it surfaces: one test for it, and one message naming the folder and its free space.

"No space left on device" reaches sbdk as an OSError (ENOSPC) from its own writes, as text inside a
DuckDB error (`Could not write file "<path>.wal": No space left on device`), and wrapped by dlt (its
PipelineStepFailed holds a LoadClientJobRetry whose message quotes the failed job's traceback) or by
dbt. Every place that writes turns it into the same DiskFullError (exit code 7).
"""

from __future__ import annotations

import errno
import re
import shutil
from pathlib import Path

from sbdk.errors import DiskFullError, causes
from sbdk.ops import human_size

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL_TEXTS = ("No space left on device", "Disk quota exceeded")
# The file a failed write was for, as DuckDB and Python's OSError quote it inside a message.
_NAMED_FILE = re.compile(r"""Could not write file "(?P<duckdb>/[^"]+)"|No space left on device: '(?P<os>/[^']+)'""")
HINT = "Free some space on that disk, or move the project to a disk with room, then run again."


def is_full(error: BaseException | str | None) -> bool:
    """Whether `error` (an exception, anything behind it, or an error's text) says the disk is full."""
    if error is None:
        return False
    if isinstance(error, str):
        return any(text in error for text in _FULL_TEXTS)
    for cause in causes(error):
        if isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS:
            return True
        if any(text in str(cause) for text in _FULL_TEXTS):
            return True
    return False


def _named_file(error: BaseException | str) -> Path | None:
    """The file whose write failed, when the error names it."""
    for cause in [error] if isinstance(error, str) else causes(error):
        if isinstance(cause, OSError) and cause.errno in _FULL_ERRNOS and cause.filename:
            return Path(str(cause.filename))
        match = _NAMED_FILE.search(str(cause))
        if match:
            return Path(match["duckdb"] or match["os"])
    return None


def _folder(path: Path, named: Path | None) -> Path:
    """The folder to name: `path`, or for a file named by the error, the highest folder above it
    (up to `path`) still on the file's own disk (a database folder mounted apart is named itself)."""
    if named is None:
        return path
    folder = next((p for p in named.parents if p.exists()), named.parent)
    if not folder.is_relative_to(path):
        return folder
    try:
        device = folder.stat().st_dev
        while folder != path and folder.parent.stat().st_dev == device:
            folder = folder.parent
    except OSError:
        pass
    return folder


def free_bytes(path: Path) -> int | None:
    """Bytes free on the disk holding `path` (or its nearest existing parent), None when unknown."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def describe_free(path: Path) -> str:
    """'0 bytes free', '1.5 MB free', or 'free space unknown'."""
    free = free_bytes(path)
    return "free space unknown" if free is None else f"{human_size(free)} free"


def full_disk_error(
    path: Path, error: BaseException | str | None, *, doing: str = "", hint: str = ""
) -> DiskFullError | None:
    """A DiskFullError naming the folder and its free space when `error` is a full disk, else None.

    `path` is the folder sbdk was writing to; when the error names the file it failed to write,
    the folder named is the one holding that file on its disk (see _folder). `doing` says what failed
    ("writing the run lock"); `hint` is added to the standard fix.
    """
    if error is None or not is_full(error):
        return None
    folder = _folder(path, _named_file(error))
    what = f": {doing} failed" if doing else ""
    return DiskFullError(
        f"The disk holding {folder} is full ({describe_free(folder)}){what}.",
        hint=f"{HINT} {hint}".strip(),
    )
