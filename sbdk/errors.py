"""One family of errors, each with a hint that names the fix, each mapped to an exit code.

Only the CLI entry point turns these into a message; domain code raises them.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every sbdk command (documented in the README)."""

    OK = 0
    FAILURE = 1  # a run finished but something in it failed (dbt model or test)
    USAGE = 2  # bad options, or a command that is not available
    CONFIG = 3  # missing or invalid configuration / not inside a project
    PIPELINE = 4  # data generation or loading failed
    DBT = 5  # nothing loaded yet (no database or raw tables) or nothing left to load, or dbt could not run
    LOCKED = 6  # another run or another program holds the project or its database
    DISK_FULL = 7  # the disk holding the project (or a file sbdk writes) is full
    INTERRUPTED = 130  # Ctrl-C


class SbdkError(Exception):
    """An error the user can act on: `message` says what is wrong, `hint` how to fix it."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class UsageError(SbdkError):
    exit_code = ExitCode.USAGE


class ConfigError(SbdkError):
    exit_code = ExitCode.CONFIG


class ProjectNotFoundError(ConfigError):
    pass


class PipelineError(SbdkError):
    exit_code = ExitCode.PIPELINE


class DbtError(SbdkError):
    exit_code = ExitCode.DBT


class NotLoadedError(SbdkError):
    """Nothing is loaded yet (no database file): what reads the data cannot run, like dbt before a load."""

    exit_code = ExitCode.DBT


class NothingToLoadError(SbdkError):
    """Nothing is left to load: every day up to as_of is in the raw tables (`sbdk dev --incremental`)."""

    exit_code = ExitCode.DBT


class LockError(SbdkError):
    exit_code = ExitCode.LOCKED


class DiskFullError(SbdkError):
    """No space left on the disk sbdk was writing to (built by sbdk.disk.full_disk_error)."""

    exit_code = ExitCode.DISK_FULL


class TargetError(PipelineError):
    """A server target cannot be reached or refused the login."""


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception behind it (__cause__, __context__, and dlt's `.exception`), once each."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__ or getattr(current, "exception", None)


def interrupted(exc: BaseException) -> bool:
    """Whether `exc` is, or hides, a stop request: a Ctrl-C, or dlt's SignalReceivedException.

    dlt wraps a KeyboardInterrupt raised inside a generator in its PipelineStepFailed, and when it
    traps SIGINT/SIGTERM during normalize and load it raises SignalReceivedException instead; both
    reach sbdk wrapped in other errors, and both still mean "stop".
    """
    return any(
        isinstance(cause, KeyboardInterrupt) or type(cause).__name__ == "SignalReceivedException"
        for cause in causes(exc)
    )
