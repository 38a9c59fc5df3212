"""Observers watch a run (notifications, traces) and can never change its outcome."""

from __future__ import annotations

from pathlib import Path

from sbdk.run.observers import RunObserver
from sbdk.run.reporters import Reporter
from sbdk.run.runner import RunPlan, run
from sbdk.settings import load_settings


class Recording(RunObserver):
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def wrap(self, reporter: Reporter) -> Reporter:
        observer = self

        class Seeing(Reporter):
            def stage(self, name: str, detail: str = "") -> None:
                observer.calls.append(f"stage {name}")
                reporter.stage(name, detail)

            def warn(self, message: str) -> None:
                reporter.warn(message)

        return Seeing()

    def started(self, run_id, trigger, context) -> None:
        self.calls.append(f"started {trigger} {context.get('changed')}")
        if self.fail:
            raise RuntimeError("receiver down")

    def loaded(self, run, load) -> None:
        self.calls.append(f"loaded {sorted(t.table for t in load.tables)}")
        if self.fail:
            raise RuntimeError("receiver down")

    def finished(self, report, reporter) -> None:
        self.calls.append(f"finished {report.status}")
        if self.fail:
            raise RuntimeError("receiver down")


def test_observers_see_a_run_in_order_and_their_failures_are_warnings(project: Path) -> None:
    seen, broken = Recording(), Recording(fail=True)
    warnings: list[str] = []

    class Warnings(Reporter):
        def warn(self, message: str) -> None:
            warnings.append(message)

    settings = load_settings(project / "sbdk_config.json")
    report = run(settings, RunPlan(dbt=False), Warnings(), observers=[seen, broken], log_context={"changed": ["x.py"]})
    assert report.success
    assert seen.calls == [
        "started sbdk dev ['x.py']",
        "stage generate",
        "stage load",
        "loaded ['raw_events', 'raw_orders', 'raw_users']",
        "finished succeeded",
    ]
    assert [w for w in warnings if "receiver down" in w] == ["observer failed: RuntimeError: receiver down"] * 3


def test_observers_hear_a_refused_run_end(project: Path) -> None:
    from sbdk.errors import LockError
    from sbdk.run.lock import run_lock

    settings = load_settings(project / "sbdk_config.json")
    seen = Recording()
    with run_lock(settings.paths.lock_file, "holder"):
        try:
            run(settings, RunPlan(dbt=False), observers=[seen])
        except LockError:
            pass
    assert seen.calls == ["finished refused"]
