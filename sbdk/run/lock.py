"""The project run lock: one sbdk run (CLI, watcher or webhook) at a time per project.

An flock on `.sbdk/run.lock`, so the operating system releases it when the holder dies, even by
SIGKILL; the file also records who holds it (pid, command, start time) for the message a second
run shows, and so a lock left by a dead process can be reported when it is taken over.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sbdk.disk import full_disk_error
from sbdk.errors import LockError, SbdkError
from sbdk.run.reporters import NULL_REPORTER, Reporter


def alive(pid: int) -> bool:
    """Whether a process with this pid exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(path: Path) -> dict | None:
    """Who recorded the lock last (may be a process that has died)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def active_run(path: Path) -> dict | None:
    """Who holds the run lock at `path` right now, read without taking it (None when nobody does).

    The run lock truncates its file on release and the kernel drops the flock of a dead process,
    so recorded details whose pid is still alive mean a run is in progress.
    """
    info = holder(path)
    if not info or not info.get("pid"):
        return None
    pid = int(info["pid"])
    if pid == os.getpid() or not alive(pid):
        return None
    return info


def describe(info: dict | None) -> str:
    if not info:
        return "another sbdk run is using this project"
    since = datetime.fromtimestamp(info.get("started", 0)).strftime("%H:%M:%S")
    return f"another sbdk run (pid {info.get('pid')}, `{info.get('command')}`, since {since}) is using this project"


@contextmanager
def run_lock(
    path: Path,
    command: str,
    *,
    wait: bool = False,
    reporter: Reporter = NULL_REPORTER,
    must_record: bool = True,
) -> Iterator[None]:
    """Hold the project's run lock for the duration of the block.

    A full disk is a DiskFullError naming the folder and its free space. `must_record=False`
    (`sbdk doctor`, which only looks and must work on a full disk) holds the lock even when who
    holds it cannot be written; a second run then says only that another run is using the project.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise full_disk_error(path.parent, exc, doing="creating the run lock") or LockError(
            f"Cannot create the run lock {path}: {exc.strerror}.",
            hint="Check that the project folder is writable.",
        ) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = holder(path)
            if not wait:
                raise LockError(
                    describe(info) + ".",
                    hint="Wait for it to finish or stop it, or pass --wait to run right after it.",
                ) from None
            reporter.warn(describe(info) + "; waiting for it to finish.")
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            try:
                _record(fd, path, command, reporter)
            except SbdkError:
                if must_record:
                    raise
            yield
        finally:
            os.ftruncate(fd, 0)  # frees space: never fails for want of it
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _record(fd: int, path: Path, command: str, reporter: Reporter) -> None:
    """Write who holds the lock (after saying so when it was left by a process that died)."""
    previous = holder(path)
    if previous and previous.get("pid") and previous.get("pid") != os.getpid() and not alive(int(previous["pid"])):
        reporter.warn(
            f"Took over the run lock left by pid {previous['pid']} (`{previous.get('command')}`), "
            "which is no longer running."
        )
    os.ftruncate(fd, 0)
    try:
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "started": time.time()}).encode(), 0)
    except OSError as exc:
        raise full_disk_error(path.parent, exc, doing="writing the run lock") or LockError(
            f"Cannot write the run lock {path}: {exc.strerror}.",
            hint="Check that the project folder is writable.",
        ) from exc


class ReadGate:
    """Within one process, a run and the reads of its database take turns.

    DuckDB refuses to open a file for writing in a process that holds it open read-only (and the other
    way round), so in a process that both runs and reads (`sbdk start --ui`, `sbdk mcp --allow-runs`)
    a run waits for the reads in flight (each a fraction of a second) and reads made during a run
    give up at once, to show the last complete state instead. Across processes the file lock and the
    run's retries do the same.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writers = 0

    @property
    def writing(self) -> bool:
        return self._writers > 0

    @contextmanager
    def write(self, timeout: float = 10.0) -> Iterator[None]:
        with self._cond:
            self._writers += 1
            self._cond.wait_for(lambda: self._readers == 0, timeout=timeout)
        try:
            yield
        finally:
            with self._cond:
                self._writers -= 1
                self._cond.notify_all()

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            if self._writers:
                raise LockError(
                    "A run in this process is writing the database.",
                    hint="Read again when the run has finished.",
                )
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()


IN_PROCESS = ReadGate()
