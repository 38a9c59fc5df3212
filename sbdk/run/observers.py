"""What watches runs without changing them: notifications, traces, metrics (DESIGN.md §10).

The runner hands every run to the observers `observers_for(settings)` returns: each may wrap the
run's reporter (to see stages, tables and dbt nodes as they happen) and hears when the run starts,
when its raw tables are loaded (before dbt) and when it ends. An observer never changes a run's
outcome or timing: the runner calls it through `guarded`, which turns any exception into a warning.
Observers are built only when configured, and import their libraries (Apprise, OpenTelemetry) then.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sbdk.run.reporters import Reporter

if TYPE_CHECKING:
    from sbdk.run.context import RunContext
    from sbdk.run.results import LoadReport, RunReport
    from sbdk.settings import Settings


class RunObserver:
    """Subclass and override what you need; every hook does nothing by default."""

    def wrap(self, reporter: Reporter) -> Reporter:
        """The reporter the run uses: `reporter` itself, or one that also forwards to it."""
        return reporter

    def started(self, run_id: str, trigger: str, context: dict[str, Any]) -> None:
        """A run took the lock and starts (`context`: the run log's fields, e.g. the delivery)."""

    def loaded(self, run: RunContext, load: LoadReport) -> None:
        """The raw tables were swapped in; dbt has not run yet."""

    def finished(self, report: RunReport, reporter: Reporter) -> None:
        """The run ended, in whatever way `report.status` says (also when it raised); `reporter`
        is the run's own (its warnings land in the run log)."""


def guarded(reporter: Reporter, name: str, call: Callable[[], None]) -> None:
    """Run an observer's hook; a failure is a warning in the run's log, never the run's failure."""
    try:
        call()
    except Exception as exc:  # an observer's bug or a receiver that is down must not fail the run
        reporter.warn(f"{name} failed: {type(exc).__name__}: {exc}")


def observers_for(settings: Settings) -> list[RunObserver]:
    """The observers the settings and environment configure (none by default, and then nothing of
    theirs is imported: an unconfigured run pays nothing for them)."""
    found: list[RunObserver] = []
    if settings.notify:
        from sbdk.notify import NotifyObserver

        found.append(NotifyObserver(settings))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from sbdk.telemetry import tracing_observer

        observer = tracing_observer(settings)  # None (with a warning) without the otel extra
        if observer is not None:
            found.append(observer)
    return found
