"""The watch loop behind `sbdk start`: file changes -> debounce -> the smallest rebuild -> runner.run.

One long-lived process: dbt and dlt are imported once, and every rebuild is a normal run (the runner
takes the run lock, writes the run log and the history entry, runs a fresh dbtRunner with dbt's
partial parsing and releases the DuckDB file afterwards), so another program can read the database
while the watcher idles. Python's cyclic garbage collector is off while dbt rebuilds (a load keeps it
on) and runs once the rebuild is over, before the watcher waits again (IdleCollector).

Watchdog delivers events on its own thread; that thread only files paths into a pending set. The
thread that called `Watcher.serve()` debounces them, plans and runs the rebuilds one at a time, and
reports through a `WatchListener` and the run's `Reporter` (rendering is the CLI's job).

A write counts only when it changes a file's content (`Contents`): `touch` and an editor saving an
unchanged buffer rebuild nothing. After a rebuild caused by deleted models, seeds or snapshots, the
relations they built are dropped (sbdk.ops.clean), since dbt never drops what it stops building.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from sbdk.errors import SbdkError, interrupted
from sbdk.paths import shown
from sbdk.run.plan import RunPlan, Trigger
from sbdk.run.process import IdleCollector
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.run.results import RunReport
from sbdk.run.runner import run
from sbdk.settings import Settings, load_settings
from sbdk.watch.classify import Change, ChangeKind, classify
from sbdk.watch.contents import Contents
from sbdk.watch.layout import FULL_SCOPE, Layout, Scope
from sbdk.watch.manifest import Manifest
from sbdk.watch.plan import Rebuild, plan_rebuild

DEFAULT_DEBOUNCE = 0.25  # seconds of quiet after the last change before a rebuild starts
# Rebuilds in a row that may leave their garbage for later, while changes keep coming (~0.1 s to collect).
MAX_UNCOLLECTED = 3
_WRITE_EVENTS = {"created", "modified", "deleted", "moved", "closed"}  # not opened / closed_no_write
# Changes whose deletion leaves a relation behind (a folder: everything defined in it).
_BUILDS_RELATIONS = {ChangeKind.MODEL, ChangeKind.SEED, ChangeKind.SNAPSHOT, ChangeKind.FOLDER}


class WatchListener(Protocol):
    """Receives what the watcher does (on the thread that called `Watcher.serve()`)."""

    def watching(self, watched: tuple[str, ...]) -> None:
        """The watcher is idle, waiting for changes to `watched` (paths relative to the project)."""

    def settings_reloaded(self, settings: Settings) -> None:
        """sbdk_config.json or .env changed and the new settings are valid (and now in use)."""

    def settings_invalid(self, error: SbdkError) -> None:
        """sbdk_config.json or .env changed but is invalid: the previous settings stay in use."""

    def rebuild_skipped(self, rebuild: Rebuild) -> None:
        """Files changed but nothing needs rebuilding (`rebuild.notes` says why)."""

    def rebuild_started(self, rebuild: Rebuild) -> None:
        """A rebuild starts (`rebuild.summary` describes it); progress goes to the Reporter."""

    def rebuild_finished(self, rebuild: Rebuild, report: RunReport) -> None:
        """A rebuild ran; failing models and tests are in the report (`report.success`)."""

    def rebuild_failed(self, rebuild: Rebuild, error: Exception) -> None:
        """A rebuild could not run (an SbdkError, or a bug); the watcher keeps watching."""


class NullListener:
    """A WatchListener that shows nothing: subclass it and override what you want to show."""

    def watching(self, watched: tuple[str, ...]) -> None:
        pass

    def settings_reloaded(self, settings: Settings) -> None:
        pass

    def settings_invalid(self, error: SbdkError) -> None:
        pass

    def rebuild_skipped(self, rebuild: Rebuild) -> None:
        pass

    def rebuild_started(self, rebuild: Rebuild) -> None:
        pass

    def rebuild_finished(self, rebuild: Rebuild, report: RunReport) -> None:
        pass

    def rebuild_failed(self, rebuild: Rebuild, error: Exception) -> None:
        pass


NULL_LISTENER: WatchListener = NullListener()


class Watcher:
    """Watches one project and rebuilds what each change affects, one rebuild at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        scope: Scope = FULL_SCOPE,
        debounce: float = DEFAULT_DEBOUNCE,
        reporter: Reporter = NULL_REPORTER,
        listener: WatchListener = NULL_LISTENER,
        verbose: bool = False,
        log_format: str | None = "text",
    ) -> None:
        """`log_format`: each rebuild writes its run log in logs/ in this format (None: no log)."""
        if not (scope.pipelines or scope.dbt):
            raise ValueError("a watcher must rebuild pipelines, dbt or both")
        self.settings = settings
        self.scope = scope
        self.debounce = debounce
        # A burst longer than this (a file written continuously) is cut into several rebuilds.
        self.max_delay = max(2.0, 10 * debounce)
        self.reporter = reporter
        self.listener = listener
        self.verbose = verbose
        self.log_format = log_format
        self.layout = Layout.of(settings)
        self._contents = Contents()  # what each watched file held at the last plan
        # (database, schema, name) of relations built by deleted files, until they are dropped.
        self._stale: set[tuple[str, str, str]] = set()
        self._pending = _Pending()
        self._stop = threading.Event()
        self._observer: _Observer | None = None
        self._warm: threading.Thread | None = None
        # Python's cyclic GC is off while dbt rebuilds, and collects between rebuilds.
        self._collector = IdleCollector()

    def stop(self) -> None:
        """Ask serve() to return after the rebuild in progress (safe from any thread)."""
        self._stop.set()
        self._pending.wake()

    def serve(self, *, initial_run: bool = True) -> None:
        """Run once (unless `initial_run` is False), then watch and rebuild until stop() is called
        or KeyboardInterrupt is raised in this thread."""
        self._stop.clear()
        observer = self._observer = _Observer(self._on_event, self.reporter)
        observer.start(self.layout.schedules(self.scope))
        try:
            # After the observer starts, so no write is missed: one that lands in between is
            # remembered as already built, and its event then compares equal. A run that follows
            # builds it anyway; without one, the last build is assumed to match the files.
            self.remember_contents()
            if initial_run:
                self._execute(self.initial())
            else:
                self._warm_up()
            while not self._stop.is_set():
                # The garbage of the last rebuilds is freed while nobody waits for a rebuild: not
                # when a change saved meanwhile is due, unless several rebuilds in a row left theirs.
                if self._pending.empty() or self._collector.owed >= MAX_UNCOLLECTED:
                    self._collector.collect()
                self.listener.watching(self.layout.describe(self.scope))
                batch = self._pending.take(self.debounce, self.max_delay, self._stop)
                if batch is None:
                    break
                rebuild = self.plan(batch)
                if rebuild is not None:
                    self._execute(rebuild)
        finally:
            observer.stop()
            self._observer = None
            self._collector.resume()

    def _on_event(self, event: Any) -> None:
        # Runs on watchdog's thread for every event under the watched folders (dbt's target/
        # included): decide from the path alone, and never raise.
        try:
            if event.event_type not in _WRITE_EVENTS:
                return
            is_dir = bool(event.is_directory)
            if is_dir and event.event_type == "modified":
                return
            paths = [event.src_path] + ([event.dest_path] if event.event_type == "moved" else [])
            layout, scope = self.layout, self.scope
            for raw in paths:
                path = Path(os.fsdecode(raw))
                if classify(path, layout, scope, is_dir=is_dir) is not None:
                    self._pending.add(path, is_dir)
        except Exception as exc:
            self.reporter.log(f"watch event error: {exc!r}")

    def _warm_up(self) -> None:
        # Without an initial run, import dbt and dlt now (about 1.5 s) instead of on the first save.
        def imports() -> None:
            try:
                import dbt.cli.main  # noqa: F401
                import dlt  # noqa: F401
            except Exception as exc:
                self.reporter.log(f"warm-up import failed: {exc!r}")

        self._warm = threading.Thread(target=imports, name="sbdk-warm-up", daemon=True)
        self._warm.start()

    def initial(self) -> Rebuild:
        plan = RunPlan(pipelines=self.scope.pipelines, dbt=self.scope.dbt, verbose=self.verbose, trigger=Trigger.WATCH)
        return Rebuild(changes=(), plan=plan, initial=True)

    def manifest(self) -> Manifest | None:
        return Manifest.latest(self.layout.target_dir)

    def remember_contents(self) -> None:
        """Record what every watched file holds now, as what the last build saw."""
        for folder, recursive in self.layout.schedules(self.scope):
            try:
                for path in folder.rglob("*") if recursive else folder.iterdir():
                    change = classify(path, self.layout, self.scope)
                    if change is not None and path.is_file():
                        self._contents.remember(path, keep=change.kind is ChangeKind.YAML)
            except OSError:  # a folder removed meanwhile: its files count as unknown
                continue

    def plan(self, batch: dict[Path, bool] | Iterable[Path]) -> Rebuild | None:
        """The rebuild for a batch of changed paths. A file whose content is what it was at the
        last plan is no change (a Rebuild without a plan when nothing else changed). Reloads the
        settings first when the config changed (an invalid one is reported and the previous one
        kept). None: nothing to report."""
        if not isinstance(batch, dict):
            batch = {Path(p): False for p in batch}
        changes: list[Change] = []
        unchanged: list[Change] = []
        previous: dict[Path, bytes] = {}  # properties files' content at the last plan
        for path, is_dir in sorted(batch.items()):
            change = classify(path, self.layout, self.scope, is_dir=is_dir)
            if change is None:
                continue
            change = replace(change, deleted=not path.exists())
            if not is_dir:
                seen = self._contents.update(path, keep=change.kind is ChangeKind.YAML)
                if not seen.changed:
                    unchanged.append(change)
                    continue
                if seen.previous is not None:
                    previous[path] = seen.previous
            changes.append(change)
        if _has(changes, ChangeKind.CONFIG) and not self._reload_settings():
            changes = [c for c in changes if c.kind is not ChangeKind.CONFIG]
        if _has(changes, ChangeKind.PROJECT):
            self.layout = Layout.of(self.settings)
        if self._observer is not None:
            # A resource folder created since (seeds/, snapshots/) is watched from now on.
            self._observer.watch(self.layout.schedules(self.scope))
        if not changes:
            return Rebuild(changes=(), plan=None, unchanged=tuple(unchanged)) if unchanged else None
        manifest = self.manifest()
        self._stale |= self._built_by_deleted(changes, manifest)
        return plan_rebuild(changes, self.layout, self.scope, manifest, previous=previous, verbose=self.verbose)

    def _built_by_deleted(self, changes: Iterable[Change], manifest: Manifest | None) -> set[tuple[str, str, str]]:
        """The relations that deleted models, seeds and snapshots (or folders of them) built, per
        the last parse: the only ones the watcher drops (`sbdk clean` looks for every stale one)."""
        if manifest is None:
            return set()
        dbt_dir = self.layout.dbt_dir
        return {
            relation
            for change in changes
            if change.deleted and change.kind in _BUILDS_RELATIONS and change.path.is_relative_to(dbt_dir)
            for relation in manifest.relations_from(shown(change.path, dbt_dir))
        }

    def _reload_settings(self) -> bool:
        try:
            settings = load_settings(self.settings.paths.config_file)
        except SbdkError as exc:
            self.listener.settings_invalid(exc)
            return False
        self.settings = settings
        self.layout = Layout.of(settings)
        self.listener.settings_reloaded(settings)
        return True

    def _execute(self, rebuild: Rebuild) -> None:
        """execute() in the watch loop: a dbt rebuild with Python's cyclic GC off (collected later)."""
        if rebuild.plan is not None and rebuild.plan.pipelines:
            # A load makes cyclic garbage batch after batch: its memory stays flat only with the
            # collector on (and what earlier rebuilds left is freed before it starts).
            self._collector.collect()
        elif rebuild.plan is not None:
            self._collector.pause()
        self.execute(rebuild)

    def execute(self, rebuild: Rebuild) -> RunReport | None:
        """Run one rebuild and report it; errors are reported, not raised (Ctrl-C is raised)."""
        if rebuild.plan is None:
            self.listener.rebuild_skipped(self._drop_stale(rebuild))
            return None
        if self._warm is not None:
            self._warm.join()
            self._warm = None
        self.listener.rebuild_started(rebuild)
        try:
            report = self._run(rebuild.plan, rebuild.changes)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if interrupted(exc):
                raise KeyboardInterrupt from exc
            # It built nothing: saving the same files again, even unchanged, must retry it.
            self._contents.forget(change.path for change in rebuild.changes)
            self.listener.rebuild_failed(rebuild, exc)
            return None
        self.listener.rebuild_finished(self._drop_stale(rebuild), report)
        return report

    def _drop_stale(self, rebuild: Rebuild) -> Rebuild:
        """Drop the relations that deleted files built, when some are waiting (`rebuild.dropped`
        then names them). While the project does not parse (a model still refers to a deleted
        one) they wait for the next rebuild: what the project defines is unknown until then."""
        if not self._stale:
            return rebuild
        from sbdk.errors import DbtError
        from sbdk.ops.clean import drop_orphans

        try:
            orphans = drop_orphans(
                self.settings, only=self._stale, wait=True, command=str(Trigger.WATCH), reporter=self.reporter
            )
        except DbtError as exc:
            self.reporter.log(f"stale relations are dropped once the project parses again: {exc.message}")
            return rebuild
        except Exception as exc:  # the watcher goes on; the next rebuild tries again
            self.reporter.warn(f"Could not drop the relations of deleted models: {exc}")
            return rebuild
        self._stale.clear()
        for relation in orphans.kept:
            self.reporter.warn(
                f"Kept the stale {relation}: it holds snapshot history; drop it yourself if you mean to."
            )
        dropped = tuple(str(relation) for relation in orphans.dropped)
        if dropped and rebuild.plan is not None:
            self.reporter.stage("clean", "dropped stale " + ", ".join(dropped))
        return replace(rebuild, dropped=dropped) if dropped else rebuild

    def _run(self, plan: RunPlan, changes: Sequence[Change]) -> RunReport:
        # The run log's first line names the files that caused the rebuild (None: the initial run).
        changed = [shown(change.path, self.layout.root) for change in changes]
        return run(
            self.settings,
            plan,
            self.reporter,
            wait=True,
            log_format=self.log_format,
            log_context={"changed": changed or None},
        )


def _has(changes: Iterable[Change], kind: ChangeKind) -> bool:
    return any(change.kind is kind for change in changes)


class _Pending:
    """Paths changed since the last rebuild, and when; filled by watchdog's thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._paths: dict[Path, bool] = {}  # path -> is a directory
        self._first = self._last = 0.0

    def add(self, path: Path, is_dir: bool) -> None:
        with self._cond:
            now = time.monotonic()
            if not self._paths:
                self._first = now
            self._paths[path] = self._paths.get(path, False) or is_dir
            self._last = now
            self._cond.notify_all()

    def empty(self) -> bool:
        with self._cond:
            return not self._paths

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def take(self, debounce: float, max_delay: float, stop: threading.Event) -> dict[Path, bool] | None:
        """Every path changed, once `debounce` seconds passed without a new change (or `max_delay`
        since the first, so a file written continuously cannot postpone a rebuild forever)."""
        with self._cond:
            while not self._paths and not stop.is_set():
                self._cond.wait(0.5)
            # Changes that arrived during the previous rebuild still get their quiet period.
            cap = max(self._first, time.monotonic()) + max_delay
            while not stop.is_set():
                remaining = min(self._last + debounce, cap) - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if stop.is_set():
                return None
            batch, self._paths = self._paths, {}
            return batch


class _Observer:
    """watchdog's observer on the folders a layout names; `on_event` runs on watchdog's thread."""

    def __init__(self, on_event: Callable[[Any], None], reporter: Reporter) -> None:
        from watchdog.events import FileSystemEventHandler

        self._handler = FileSystemEventHandler()
        self._handler.on_any_event = on_event  # type: ignore[method-assign, assignment]
        self._reporter = reporter
        self._observer: Any = None
        self._watches: dict[tuple[Path, bool], Any] = {}  # (folder, recursive) -> watchdog's watch

    def start(self, wanted: list[tuple[Path, bool]]) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        try:
            self.watch(wanted, strict=True)
        except OSError as exc:
            # inotify watches are a per-user kernel limit; polling is slower but always works.
            from watchdog.observers.polling import PollingObserver

            self._reporter.warn(f"File system notifications unavailable ({exc}); polling for changes instead.")
            self._observer = PollingObserver(timeout=0.5)
            self._watches = {}
            self.watch(wanted)
        self._observer.start()

    def watch(self, wanted: list[tuple[Path, bool]], *, strict: bool = False) -> None:
        """Watch the (folder, recursive) pairs `wanted`, adding and removing watches without a gap
        for the others. A folder that vanishes meanwhile is skipped (raised when `strict`, at start)."""
        for key in [k for k in self._watches if k not in wanted]:
            try:
                self._observer.unschedule(self._watches.pop(key))
            except (KeyError, OSError):  # its folder is gone, and the kernel's watch with it
                pass
        for folder, recursive in wanted:
            if (folder, recursive) in self._watches:
                continue
            try:
                self._watches[(folder, recursive)] = self._observer.schedule(
                    self._handler, str(folder), recursive=recursive
                )
            except OSError as exc:
                if strict:
                    raise
                self._reporter.warn(f"Cannot watch {folder}: {exc}")

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
