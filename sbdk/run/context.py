"""The one context a run passes down: settings, plan, the store it writes, progress and test seams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sbdk.run.plan import RunPlan
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.run.retry import NO_RETRY, Retry
from sbdk.settings import Settings
from sbdk.testing import NO_FAULTS, Faults

if TYPE_CHECKING:
    from sbdk.run.observers import RunObserver
    from sbdk.stores.base import Store


@dataclass(frozen=True)
class RunContext:
    """Built once per run by the runner; the loader and dbt read everything they need from it."""

    settings: Settings
    store: Store
    plan: RunPlan = field(default_factory=RunPlan)
    reporter: Reporter = NULL_REPORTER
    run_id: str = ""
    faults: Faults = NO_FAULTS
    # A process that does one run and exits (the CLI, a webhook run's worker) may pause Python's
    # cyclic GC while dbt builds (sbdk.run.process.collector_paused); a long-lived one may not.
    pause_gc: bool = False
    observers: tuple[RunObserver, ...] = ()  # notifications, traces: they watch, never change the run
    retry: Retry = NO_RETRY  # how transient failures are retried (sbdk.run.retry)

    @classmethod
    def of(cls, settings: Settings, plan: RunPlan | None = None, **values) -> RunContext:
        """A context on the settings' active target (for a run, or a check like `sbdk doctor`)."""
        from sbdk.stores import store_for

        retry = values.setdefault("retry", Retry(settings.retries, values.get("reporter", NULL_REPORTER)))
        store = store_for(settings, values.get("faults", NO_FAULTS), retry)
        return cls(settings=settings, store=store, plan=plan or RunPlan(), **values)
