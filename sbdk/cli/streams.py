"""Standard streams that can never stop a run: closed, piped into `head`, or on a full disk.

A run must finish (or stop cleanly), release the project lock and be recorded whatever happens to
its output. Without this, a reader that exits early (`sbdk dev | head -3`) made the next write raise
BrokenPipeError on one of dbt's worker threads, and dbt's main thread then waited for that node
forever, holding the lock and the database. So the CLI's stdout and stderr are wrapped: the first
write that fails (EPIPE, ENOSPC, a closed descriptor) turns the stream into a sink, the descriptor is
pointed at /dev/null (so later writes, and Python's own flush at exit, cannot fail again), and the
run goes on to its end and exit code.
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class GuardedStream:
    """A text stream that forwards to `inner` until a write fails, then discards everything."""

    def __init__(self, inner: TextIO, fd: int) -> None:
        self._inner = inner
        self._fd = fd
        self.broken: BaseException | None = None

    def _failed(self, exc: BaseException) -> None:
        self.broken = exc
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._fd)
            os.close(devnull)
        except OSError:
            pass

    def write(self, text: str) -> int:
        if self.broken is None:
            try:
                return self._inner.write(text)
            except (OSError, ValueError) as exc:  # ValueError: the stream was closed
                self._failed(exc)
        return len(text)

    def flush(self) -> None:
        if self.broken is None:
            try:
                self._inner.flush()
            except (OSError, ValueError) as exc:
                self._failed(exc)

    def isatty(self) -> bool:
        return self.broken is None and self._inner.isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, buffer, errors...
        return getattr(self._inner, name)


def _reopen_closed_descriptors() -> None:
    """Point closed standard descriptors at /dev/null: otherwise the next file sbdk opens (the
    DuckDB database) could get descriptor 1, and whatever is written to "stdout" would land in it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)


def guard_standard_streams() -> None:
    """Wrap sys.stdout and sys.stderr (once, in the CLI's process)."""
    _reopen_closed_descriptors()
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None:  # started with the descriptor closed: Python gave up on it
            stream = open(fd, "w", encoding="utf-8", errors="replace", closefd=False)
        if not isinstance(stream, GuardedStream):
            setattr(sys, name, GuardedStream(stream, fd))


def lost_output() -> str | None:
    """Why standard output stopped being written, when that is worth saying (a full disk, an I/O
    error); None when it was written in full or its reader simply left (a closed pipe)."""
    stream = sys.stdout
    broken = stream.broken if isinstance(stream, GuardedStream) else None
    if broken is None or isinstance(broken, BrokenPipeError):
        return None
    reason = broken.strerror if isinstance(broken, OSError) and broken.strerror else str(broken)
    return f"Standard output could not be written ({reason}); the rest of it was discarded."
