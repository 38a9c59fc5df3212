"""The watcher's garbage collection: Python's cyclic collector is off while a batch is planned and
rebuilt, and runs once between rebuilds (sbdk.run.process.IdleCollector). No dbt run here."""

from __future__ import annotations

import gc
import os
import threading
import time
import weakref
from pathlib import Path

import pytest

from sbdk.run.process import IdleCollector
from sbdk.run.results import RunReport
from sbdk.settings import load_settings
from sbdk.testing import Recorder
from sbdk.watch import Watcher
from sbdk.watch.watcher import MAX_UNCOLLECTED


class _Node:
    """A container object the cyclic collector tracks (and a weak reference can watch)."""


def _cycle() -> weakref.ref[_Node]:
    """A reference cycle nothing else refers to: only the cyclic collector frees it."""
    node = _Node()
    node.itself = node  # type: ignore[attr-defined]
    return weakref.ref(node)


@pytest.fixture
def collector_on():
    """Each test starts with the collector on and leaves it on, whatever it asserted."""
    gc.enable()
    yield
    gc.enable()


def test_a_pause_keeps_the_garbage_until_the_collection(collector_on) -> None:
    collector = IdleCollector()
    collector.pause()
    collector.pause()  # a second pause before the collection changes nothing
    assert not gc.isenabled() and collector.owed == 2
    garbage = _cycle()
    assert garbage() is not None

    collector.collect()

    assert garbage() is None
    assert gc.isenabled() and collector.owed == 0


def test_nothing_paused_means_no_collection_and_the_collector_as_it_was(collector_on) -> None:
    collector = IdleCollector()
    gc.disable()
    garbage = _cycle()
    collector.collect()
    assert garbage() is not None and not gc.isenabled()


def test_a_collector_off_before_the_pause_stays_off(collector_on) -> None:
    collector = IdleCollector()
    gc.disable()
    collector.pause()
    collector.collect()
    assert not gc.isenabled()


def test_resume_turns_the_collector_back_on_without_collecting(collector_on) -> None:
    collector = IdleCollector()
    collector.pause()
    garbage = _cycle()
    collector.resume()
    assert gc.isenabled() and collector.owed == 0
    assert garbage() is not None  # the collector may free it whenever it next runs: no collection here


class _GcRecorder(Recorder):
    """A Recorder that also notes whether the collector was on at each event."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled: list[tuple[str, bool]] = []

    def _add(self, kind: str, *payload) -> None:
        self.enabled.append((kind, gc.isenabled()))
        super()._add(kind, *payload)


def _serve(watcher: Watcher, monkeypatch: pytest.MonkeyPatch, rebuild) -> threading.Thread:
    """`watcher` serving on a thread, with `rebuild` in place of the runner and no dbt import."""
    monkeypatch.setattr(watcher, "_run", rebuild)
    monkeypatch.setattr(watcher, "_warm_up", lambda: None)
    thread = threading.Thread(target=watcher.serve, kwargs={"initial_run": False}, daemon=True)
    thread.start()
    return thread


def test_a_rebuild_runs_with_the_collector_off_and_its_garbage_is_freed_before_the_watcher_waits(
    project: Path, monkeypatch: pytest.MonkeyPatch, collector_on
) -> None:
    recorder = _GcRecorder()
    watcher = Watcher(load_settings(project / "sbdk_config.json"), debounce=0.05, listener=recorder)
    made: list[weakref.ref[_Node]] = []

    def rebuild(plan, changes) -> RunReport:  # the runner, as far as the collector can tell
        made.append(_cycle())
        return RunReport(run_id="fake", trigger="watch")

    thread = _serve(watcher, monkeypatch, rebuild)
    try:
        recorder.wait_for("watching")
        model = project / "dbt/models/marts/funnel.sql"
        start = len(recorder.events)
        model.write_text(model.read_text() + "\n-- edited\n")
        index, _, _ = recorder.wait_for("rebuild_finished", after=start)
        recorder.wait_for("watching", after=index)
        assert made and made[0]() is None

        # A write that changes nothing rebuilds nothing: the collector stays on.
        start = len(recorder.events)
        os.utime(model)
        model.write_text(model.read_text())
        recorder.wait_for("rebuild_skipped", after=start)
    finally:
        watcher.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()

    assert {kind for kind, on in recorder.enabled if on} == {"watching", "rebuild_skipped"}
    assert {kind for kind, on in recorder.enabled if not on} == {"rebuild_started", "rebuild_finished"}
    assert gc.isenabled()


def test_a_change_saved_during_a_rebuild_is_rebuilt_before_the_collection_a_few_times_in_a_row(
    project: Path, monkeypatch: pytest.MonkeyPatch, collector_on
) -> None:
    recorder = Recorder()
    watcher = Watcher(load_settings(project / "sbdk_config.json"), debounce=0.05, listener=recorder)
    model = project / "dbt/models/marts/funnel.sql"
    made: list[weakref.ref[_Node]] = []
    alive: list[list[bool]] = []  # at each rebuild, whether the earlier rebuilds' garbage is still there

    def rebuild(plan, changes) -> RunReport:
        alive.append([garbage() is not None for garbage in made])
        made.append(_cycle())
        if len(made) <= MAX_UNCOLLECTED:  # a save lands during this rebuild
            model.write_text(model.read_text() + f"\n-- saved during rebuild {len(made)}\n")
            deadline = time.monotonic() + 10
            while watcher._pending.empty() and time.monotonic() < deadline:
                time.sleep(0.01)
        return RunReport(run_id="fake", trigger="watch")

    thread = _serve(watcher, monkeypatch, rebuild)
    try:
        recorder.wait_for("watching")
        start = len(recorder.events)
        model.write_text(model.read_text() + "\n-- edited\n")
        for _ in range(MAX_UNCOLLECTED + 1):
            start = recorder.wait_for("rebuild_finished", after=start)[0] + 1
        recorder.wait_for("watching", after=start)
        # watchdog may report the last save twice: the second event is due (and found unchanged)
        # before the idle collection, so wait for the collection rather than the first "watching".
        deadline = time.monotonic() + 10
        while made[-1]() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        watcher.stop()
        thread.join(timeout=30)

    # Rebuilds 2 and 3 start at once, their garbage collected only after the third in a row.
    assert alive == [[], [True], [True, True], [False, False, False]]
    assert all(garbage() is None for garbage in made)
    assert gc.isenabled()


def test_a_rebuild_that_loads_data_runs_with_the_collector_on(
    project: Path, monkeypatch: pytest.MonkeyPatch, collector_on
) -> None:
    recorder = Recorder()
    watcher = Watcher(load_settings(project / "sbdk_config.json"), debounce=0.05, listener=recorder)
    seen: list[tuple[bool, bool]] = []  # (loads data, collector on) per rebuild

    def rebuild(plan, changes) -> RunReport:
        seen.append((plan.pipelines, gc.isenabled()))
        return RunReport(run_id="fake", trigger="watch")

    thread = _serve(watcher, monkeypatch, rebuild)
    try:
        recorder.wait_for("watching")
        for path, comment in [(project / "dbt/models/marts/funnel.sql", "--"), (project / "pipelines/events.py", "#")]:
            start = len(recorder.events)
            path.write_text(path.read_text() + f"\n{comment} edited\n")
            recorder.wait_for("rebuild_finished", after=start)
    finally:
        watcher.stop()
        thread.join(timeout=30)

    assert seen == [(False, False), (True, True)]
