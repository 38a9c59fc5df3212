"""What tests and benchmarks need from inside sbdk: fault points, and the watch Recorder.

Fault points. Domain code calls `faults.reached(point, detail)` at the moments the crash-safety
tests (tests/test_reliability.py) kill or interrupt a run: "generate" (a batch was generated),
"load" (dlt is about to load), "swap" (inside the swap transaction) and "dbt" (a dbt node finished;
the detail is its name). The runner is handed `NO_FAULTS` unless the environment asks for a pause:
with SBDKTEST_PAUSE_AT=<point> or <point>:<detail>, the run writes SBDKTEST_PAUSE_FILE when it gets
there and then sleeps SBDKTEST_PAUSE_SECONDS, so a test can SIGKILL or SIGINT it at that moment.
The environment is read once, by `faults_from_env()`, never by the code that reaches a point.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sbdk.errors import SbdkError
    from sbdk.run.results import RunReport
    from sbdk.settings import Settings
    from sbdk.watch import Rebuild

ENV_POINT = "SBDKTEST_PAUSE_AT"
ENV_FILE = "SBDKTEST_PAUSE_FILE"
ENV_SECONDS = "SBDKTEST_PAUSE_SECONDS"


class Faults(Protocol):
    def reached(self, point: str, detail: str = "") -> None:
        """The run is at `point` (with `detail`, e.g. a dbt node's name)."""


class NoFaults:
    def reached(self, point: str, detail: str = "") -> None:
        return None


NO_FAULTS: Faults = NoFaults()


@dataclass(frozen=True)
class PauseAt:
    """Pause at `point` (and `detail`, when given): write `marker`, then sleep `seconds`."""

    point: str
    detail: str = ""
    marker: str | None = None
    seconds: float = 60.0

    def reached(self, point: str, detail: str = "") -> None:
        if point != self.point or (self.detail and detail != self.detail):
            return
        if self.marker:
            with open(self.marker, "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} {point}\n")
        time.sleep(self.seconds)


def faults_from_env(environ: Mapping[str, str] = os.environ) -> Faults:
    """PauseAt when SBDKTEST_PAUSE_AT is set, else NO_FAULTS."""
    wanted = environ.get(ENV_POINT)
    if not wanted:
        return NO_FAULTS
    point, _, detail = wanted.partition(":")
    return PauseAt(point, detail, environ.get(ENV_FILE), float(environ.get(ENV_SECONDS, "60")))


class Recorder:
    """A WatchListener (sbdk.watch) that keeps every event in order, for tests and benchmarks:
    `wait_for` blocks until the watcher, on its own thread, has reported what a test waits for."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.changed = threading.Condition()

    def _add(self, kind: str, *payload: Any) -> None:
        with self.changed:
            self.events.append((kind, payload))
            self.changed.notify_all()

    def watching(self, watched: tuple[str, ...]) -> None:
        self._add("watching", watched)

    def settings_reloaded(self, settings: Settings) -> None:
        self._add("settings_reloaded", settings)

    def settings_invalid(self, error: SbdkError) -> None:
        self._add("settings_invalid", error)

    def rebuild_skipped(self, rebuild: Rebuild) -> None:
        self._add("rebuild_skipped", rebuild)

    def rebuild_started(self, rebuild: Rebuild) -> None:
        self._add("rebuild_started", rebuild)

    def rebuild_finished(self, rebuild: Rebuild, report: RunReport) -> None:
        self._add("rebuild_finished", rebuild, report)

    def rebuild_failed(self, rebuild: Rebuild, error: Exception) -> None:
        self._add("rebuild_failed", rebuild, error)

    def wait_for(self, *kinds: str, after: int = 0, timeout: float = 120.0) -> tuple[int, str, tuple[Any, ...]]:
        """The first event of one of `kinds` at index `after` or later: (index, kind, payload)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for index in range(after, len(self.events)):
                    kind, payload = self.events[index]
                    if kind in kinds:
                        return index, kind, payload
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {' or '.join(kinds)} event within {timeout:.0f}s: {self.kinds()}")
                self.changed.wait(remaining)

    def kinds(self) -> list[str]:
        with self.changed:
            return [kind for kind, _ in self.events]
