"""The watch loop behind `sbdk start`: file changes -> debounce -> the smallest rebuild -> runner.run.

One long-lived process: dbt and dlt are imported once, and every rebuild is a normal run (run lock,
history, a fresh dbtRunner with dbt's partial parsing, the DuckDB file released afterwards), so
another program can read the database while the watcher idles.

Watchdog delivers events on its own thread; that thread only files paths into a pending set. The
thread that called `Watcher.serve()` debounces them, plans and runs the rebuilds one at a time, and
reports through a `WatchListener` and the run's `Reporter` (rendering is the CLI's job).
"""

from __future__ import annotations

import ast
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sbdk.errors import DbtError, SbdkError
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.run.results import RunReport
from sbdk.run.runner import RunPlan, run
from sbdk.settings import Settings, load_settings

TRIGGER = "sbdk start"
DEFAULT_DEBOUNCE = 0.25  # seconds of quiet after the last change before a rebuild starts

# What a change is, decided from its path alone (on watchdog's thread).
CONFIG = "config"  # sbdk_config.json or .env
PIPELINE = "pipeline"  # pipelines/<name>.py
PIPELINE_HELPER = "pipeline helper"  # pipelines/_<name>.py: may be used by any pipeline
MODEL = "model"
SEED = "seed"
SNAPSHOT = "snapshot"
TEST = "test"  # a singular data test
GENERIC_TEST = "generic test"  # tests/generic/*.sql
YAML = "yaml"  # properties of models, seeds, snapshots, sources or tests
DOCS = "docs"  # docs blocks (.md)
MACRO = "macro"
PROJECT = "project"  # dbt_project.yml
PACKAGES = "packages"  # packages.yml / dependencies.yml
FOLDER = "folder"  # a resource folder created, moved or deleted as a whole

_RESOURCE_KEYS = {
    "model": ("model-paths", ["models"]),
    "macro": ("macro-paths", ["macros"]),
    "test": ("test-paths", ["tests"]),
    "seed": ("seed-paths", ["seeds"]),
    "snapshot": ("snapshot-paths", ["snapshots"]),
}
_BUILT_TYPES = {"model", "test", "seed", "snapshot", "unit_test"}
# Editors write these next to the file being saved (vim: .swp, ~ backups and its `4913` probe;
# emacs: .#lock and #autosave#; JetBrains: ___jb_tmp___); none of them is a change to the project.
_SCRATCH_SUFFIXES = (".swp", ".swo", ".swx", ".swpx", ".tmp", ".temp", ".bak", ".orig", ".rej", ".pyc", ".crswap")
_WRITE_EVENTS = {"created", "modified", "deleted", "moved", "closed"}  # not opened / closed_no_write
_DLT_INTERCEPT = "RUNTIME__INTERCEPT_SIGNALS"  # dlt's PipelineRuntimeConfiguration.intercept_signals
_GENERIC_TEST_NAME = re.compile(r"{%-?\s*test\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_SNAPSHOT_NAME = re.compile(r"{%-?\s*snapshot\s+([A-Za-z_][A-Za-z0-9_]*)\s*-?%}")


@dataclass(frozen=True)
class Scope:
    """What the watcher rebuilds: `--pipelines-only` and `--dbt-only` switch one side off."""

    pipelines: bool = True
    dbt: bool = True


@dataclass(frozen=True)
class Change:
    path: Path
    kind: str
    area: str = ""  # for dbt files: model, macro, test, seed or snapshot (the folder it is in)
    deleted: bool = False

    @property
    def name(self) -> str:
        return self.path.stem


@dataclass(frozen=True)
class Layout:
    """Where things are, from the settings and dbt_project.yml: what to watch and what to ignore."""

    root: Path
    config_file: Path
    env_file: Path
    pipelines_dir: Path
    dbt_dir: Path
    resource_dirs: dict[str, tuple[Path, ...]]
    target_dir: Path  # dbt's build output, where manifest.json is
    ignored: tuple[Path, ...]  # build output, state, the database: writing there must not trigger

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        paths = settings.paths
        dbt_dir = paths.dbt_project_dir
        project = _read_dbt_project(dbt_dir / "dbt_project.yml")

        def folders(key: str, default: list[str]) -> tuple[Path, ...]:
            value = project.get(key, default)
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                value = default
            return tuple(dbt_dir / str(v) for v in value)

        outputs = (("target-path", "target"), ("log-path", "logs"), ("packages-install-path", "dbt_packages"))
        dbt_output = [dbt_dir / str(project.get(key) or default) for key, default in outputs]
        db = paths.duckdb_path
        return cls(
            root=paths.root,
            config_file=paths.config_file,
            env_file=paths.env_file,
            pipelines_dir=paths.pipelines_dir,
            dbt_dir=dbt_dir,
            resource_dirs={area: folders(key, default) for area, (key, default) in _RESOURCE_KEYS.items()},
            target_dir=dbt_output[0],
            ignored=(
                *dbt_output,
                db,
                db.with_name(db.name + ".wal"),
                db.with_name(db.name + ".tmp"),
                paths.state_dir,  # run lock, history, dlt's working folder
                paths.backups_dir,
                paths.run_logs_dir,
            ),
        )

    def area_of(self, path: Path) -> str | None:
        for area, folders in self.resource_dirs.items():
            if any(path.is_relative_to(folder) for folder in folders):
                return area
        return None

    def schedules(self, scope: Scope) -> list[tuple[Path, bool]]:
        """(folder, recursive) pairs to watch, without a folder that another one already covers.

        dbt's resource folders are watched recursively, the dbt project folder itself only for
        its own files: a recursive watch on it would also follow target/, where every build
        creates folders (and watchdog 7 warns about each one it adds).
        """
        candidates = [(self.root, False)]
        if scope.pipelines:
            candidates.append((self.pipelines_dir, False))
        if scope.dbt:
            candidates.append((self.dbt_dir, False))
            candidates += [(folder, True) for folders in self.resource_dirs.values() for folder in folders]
        wanted: dict[Path, bool] = {}
        for folder, recursive in candidates:
            if folder.is_dir():
                wanted[folder] = wanted.get(folder, False) or recursive
        return [
            (folder, recursive)
            for folder, recursive in wanted.items()
            if not any(r and other != folder and folder.is_relative_to(other) for other, r in wanted.items())
        ]

    def describe(self, scope: Scope) -> tuple[str, ...]:
        """The watched things, relative to the project, for display."""
        shown = []
        if scope.pipelines:
            shown.append(_relative(self.pipelines_dir, self.root) + "/")
        if scope.dbt:
            shown.append(_relative(self.dbt_dir, self.root) + "/")
        shown += [self.config_file.name, self.env_file.name]
        return tuple(shown)


def _read_dbt_project(path: Path) -> dict[str, Any]:
    import yaml  # installed with dbt

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


def _is_scratch(name: str) -> bool:
    lowered = name.lower()
    return (
        name.endswith("~")
        or name.startswith(".#")
        or (name.startswith("#") and name.endswith("#"))
        or lowered.endswith(_SCRATCH_SUFFIXES)
        or "___jb_" in name
        or name == "4913"
    )


def classify(path: Path, layout: Layout, scope: Scope = Scope(), *, is_dir: bool = False) -> Change | None:
    """What kind of change a write to `path` is, or None when it must not trigger anything."""
    if path == layout.config_file:
        return Change(path, CONFIG)
    if path == layout.env_file:
        return Change(path, CONFIG)
    if not path.is_relative_to(layout.root):
        return None
    relative = path.relative_to(layout.root).parts
    # Hidden files and folders (.git, .idea, .sbdk, .stg_orders.sql.swp) and bytecode never count.
    if any(part.startswith(".") or part == "__pycache__" for part in relative):
        return None
    if _is_scratch(path.name) or any(path == p or path.is_relative_to(p) for p in layout.ignored):
        return None
    if scope.pipelines and not is_dir and path.parent == layout.pipelines_dir and path.suffix == ".py":
        return Change(path, PIPELINE_HELPER if path.name.startswith("_") else PIPELINE)
    if not scope.dbt or not path.is_relative_to(layout.dbt_dir):
        return None
    if path.parent == layout.dbt_dir and not is_dir:
        if path.name == "dbt_project.yml":
            return Change(path, PROJECT)
        if path.name in ("packages.yml", "dependencies.yml"):
            return Change(path, PACKAGES)
    area = layout.area_of(path)
    if area is None:
        return None
    if is_dir:
        return Change(path, FOLDER, area)
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        return Change(path, MACRO if area == "macro" else YAML, area)
    if suffix == ".md":
        return Change(path, DOCS, area)
    kinds = {
        "model": {".sql": MODEL, ".py": MODEL},
        "macro": {".sql": MACRO},
        "test": {".sql": TEST},
        "seed": {".csv": SEED},
        "snapshot": {".sql": SNAPSHOT},
    }
    kind = kinds[area].get(suffix)
    if kind is None:
        return None
    if kind == TEST and any(path.is_relative_to(folder / "generic") for folder in layout.resource_dirs["test"]):
        kind = GENERIC_TEST
    return Change(path, kind, area)


class Manifest:
    """The graph of dbt's last parse (target/manifest.json), to name a plan's nodes before running it.

    Only ever read, never handed back to dbt: a manifest reused across file changes makes dbt
    rebuild the old SQL (NOTES.md), so every rebuild parses again (partially).
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.nodes: dict[str, dict[str, Any]] = data.get("nodes") or {}
        self.sources: dict[str, dict[str, Any]] = data.get("sources") or {}
        self.child_map: dict[str, list[str]] = data.get("child_map") or {}

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(data) if isinstance(data, dict) else None

    def find(self, name: str, types: Iterable[str] = ("model", "seed", "snapshot")) -> str | None:
        types = set(types)
        for unique_id, node in self.nodes.items():
            if node.get("name") == name and node.get("resource_type") in types:
                return unique_id
        return None

    def children(self, unique_id: str) -> list[str]:
        return list(self.child_map.get(unique_id, ()))

    def source_selector(self, table: str) -> str | None:
        for source in self.sources.values():
            if table in (source.get("identifier"), source.get("name")):
                return f"source:{source.get('source_name')}.{source.get('name')}+"
        return None

    def count(self, select: Sequence[str]) -> int | None:
        """How many models, tests, seeds and snapshots `dbt build --select <select>` runs; None
        when a selector is not understood or names something this parse did not know."""
        if not select:
            return sum(1 for node in self.nodes.values() if node.get("resource_type") in _BUILT_TYPES)
        chosen: set[str] = set()
        for selector in select:
            if selector.startswith("test_name:"):
                name = selector.split(":", 1)[1]
                chosen |= {
                    uid for uid, node in self.nodes.items() if (node.get("test_metadata") or {}).get("name") == name
                }
                continue
            base, downstream = (selector[:-1], True) if selector.endswith("+") else (selector, False)
            if base.startswith("source:"):
                source_name, _, table = base.split(":", 1)[1].partition(".")
                start = next(
                    (
                        uid
                        for uid, s in self.sources.items()
                        if s.get("source_name") == source_name and s.get("name") == table
                    ),
                    None,
                )
            elif ":" in base:
                return None
            else:
                start = self.find(base, _BUILT_TYPES)
            if start is None:
                return None
            chosen.add(start)
            if downstream:
                chosen |= self._descendants(start)
        return sum(1 for uid in chosen if (self.nodes.get(uid) or {}).get("resource_type") in _BUILT_TYPES)

    def _descendants(self, start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for child in self.child_map.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen


@dataclass(frozen=True)
class Rebuild:
    """What a batch of changes leads to: the run plan (None when nothing needs rebuilding)."""

    changes: tuple[Change, ...]
    plan: RunPlan | None
    nodes: int | None = None  # dbt nodes the plan builds, per the last parse; None if unknown
    notes: tuple[str, ...] = ()  # changes that need nothing rebuilt, and why
    deps: bool = False  # packages changed: `dbt deps` before building
    initial: bool = False

    @property
    def summary(self) -> str:
        """One line, e.g. "stg_orders changed → building 34 nodes (stg_orders+)"."""
        what = "Initial run" if self.initial else _describe_changes(self.changes)
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        plan = self.plan
        if plan is None:
            return f"{what} → nothing to rebuild{notes}"
        actions = []
        if plan.pipelines:
            tables = ", ".join(sorted(plan.tables)) if plan.tables is not None else "every table"
            actions.append(f"reloading {tables}")
        if plan.dbt:
            if not plan.select:
                actions.append("building everything" + (f" ({self.nodes} nodes)" if self.nodes else ""))
            elif self.nodes is not None:
                actions.append(f"building {self.nodes} node{'s' if self.nodes != 1 else ''} ({' '.join(plan.select)})")
            else:
                actions.append(f"building {' '.join(plan.select)}")
        if self.deps:
            actions.insert(0, "installing dbt packages")
        return f"{what} → {', '.join(actions)}{notes}"


def _describe_changes(changes: Sequence[Change]) -> str:
    names: list[str] = []
    for change in changes:
        label = change.name if change.kind in (MODEL, SEED, TEST) else change.path.name
        if label not in names:
            names.append(label)
    if not names:
        return "Nothing"
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    verb = "deleted" if all(c.deleted for c in changes) else "changed"
    return f"{shown} {verb}"


def pipeline_table(path: Path) -> str:
    """The TABLE a pipeline file declares (read without running it), else raw_<file name>."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return f"raw_{path.stem}"
    for statement in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(statement, ast.Assign):
            targets, value = statement.targets, statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            targets, value = [statement.target], statement.value
        if any(isinstance(t, ast.Name) and t.id == "TABLE" for t in targets):
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                return value.value
    return f"raw_{path.stem}"


def _yaml_selectors(path: Path, area: str) -> list[str]:
    """The resources a properties file describes, as dbt selectors (empty if it cannot be read)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []

    def entries(key: str) -> list[dict]:
        value = data.get(key)
        return [e for e in value if isinstance(e, dict) and e.get("name")] if isinstance(value, list) else []

    selectors = []
    for key in ("models", "seeds", "snapshots"):
        selectors += [f"{e['name']}+" for e in entries(key)]
    for source in entries("sources"):
        tables = [t for t in source.get("tables") or () if isinstance(t, dict) and t.get("name")]
        selectors += [f"source:{source['name']}.{t['name']}+" for t in tables] or [f"source:{source['name']}+"]
    selectors += [f"{e['model']}+" for e in entries("unit_tests") if e.get("model")]
    if area == "test":
        selectors += [e["name"] for e in entries("data_tests") + entries("tests")]
    return selectors


def _names_in(path: Path, pattern: re.Pattern[str]) -> list[str]:
    """The names `pattern` finds in a dbt file; none when it cannot be read (deleted, not text)."""
    try:
        return pattern.findall(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []


def _folder_selectors(folder: Path, area: str) -> list[str]:
    """Fallback for a properties file that cannot be read: the resources in the same folder."""
    suffixes = {"model": (".sql", ".py"), "seed": (".csv",), "test": (".sql",), "snapshot": (".sql",)}.get(area, ())
    names = sorted(p.stem for p in folder.glob("*") if p.suffix.lower() in suffixes and not p.name.startswith("."))
    return [name if area == "test" else f"{name}+" for name in names]


def plan_rebuild(
    changes: Sequence[Change],
    layout: Layout,
    scope: Scope = Scope(),
    manifest: Manifest | None = None,
    *,
    verbose: bool = False,
) -> Rebuild:
    """The smallest run that brings the project up to date with `changes` (DESIGN.md, issue #5)."""
    run_all = full_dbt = all_pipelines = deps = False
    tables: set[str] = set()
    select: list[str] = []
    notes: list[str] = []

    def add(*selectors: str) -> None:
        select.extend(s for s in selectors if s not in select)

    for change in changes:
        kind, path = change.kind, change.path
        relative = _relative(path, layout.root)
        if kind == CONFIG:
            run_all = True
        elif kind == PIPELINE:
            if change.deleted:
                notes.append(f"{relative} removed; its table stays as last loaded")
                continue
            table = pipeline_table(path)
            tables.add(table)
            if scope.dbt:
                selector = manifest.source_selector(table) if manifest else f"source:raw.{table}+"
                if selector:
                    add(selector)
                else:
                    notes.append(f"no dbt source reads {table}")
        elif kind == PIPELINE_HELPER:
            all_pipelines = True
        elif kind in (MACRO, PROJECT, FOLDER):
            if kind == FOLDER and path.is_dir() and not any(path.iterdir()):
                continue  # an empty new folder changes nothing
            full_dbt = True
        elif kind == PACKAGES:
            full_dbt = deps = True
        elif kind in (MODEL, SEED):
            if not change.deleted:
                add(f"{change.name}+")
                continue
            # A deleted model cannot be selected: rebuild what depended on it and let dbt report
            # the broken refs (or skip them), as it decides.
            node = manifest.find(change.name) if manifest else None
            if manifest is None:
                full_dbt = True
            elif node is None:
                notes.append(f"{path.name} removed; it was never built")
            else:
                children = sorted(
                    manifest.nodes[c]["name"]
                    for c in manifest.children(node)
                    if manifest.nodes.get(c, {}).get("resource_type") in ("model", "seed", "snapshot")
                )
                if children:
                    add(*(f"{c}+" for c in children))
                else:
                    notes.append(f"{path.name} removed; nothing depends on it")
        elif kind == SNAPSHOT:
            if change.deleted:
                notes.append(f"{relative} removed")
                continue
            names = _names_in(path, _SNAPSHOT_NAME)
            if names:
                add(*(f"{n}+" for n in names))
            else:
                add(f"path:{_relative(path, layout.dbt_dir)}+")
        elif kind == TEST:
            if change.deleted:
                notes.append(f"{relative} removed")
            else:
                add(change.name)
        elif kind == GENERIC_TEST:
            names = _names_in(path, _GENERIC_TEST_NAME)
            if names:
                add(*(f"test_name:{n}" for n in names))
            else:
                full_dbt = True
        elif kind == YAML:
            selectors = [] if change.deleted else _yaml_selectors(path, change.area)
            selectors = selectors or _folder_selectors(path.parent, change.area)
            if selectors:
                add(*selectors)
            else:
                notes.append(f"{relative} describes nothing that is built")
        elif kind == DOCS:
            notes.append(f"{path.name} is documentation only")

    pipelines = scope.pipelines and (run_all or all_pipelines or bool(tables))
    dbt = scope.dbt and (run_all or all_pipelines or full_dbt or bool(select))
    if not (pipelines or dbt):
        return Rebuild(changes=tuple(changes), plan=None, notes=tuple(notes))
    whole_dbt = run_all or all_pipelines or full_dbt
    plan = RunPlan(
        pipelines=pipelines,
        dbt=dbt,
        tables=None if (run_all or all_pipelines or not pipelines) else frozenset(tables),
        select=() if whole_dbt else tuple(select),
        verbose=verbose,
        trigger=TRIGGER,
    )
    nodes = manifest.count(plan.select) if (manifest and dbt) else None
    return Rebuild(changes=tuple(changes), plan=plan, nodes=nodes, notes=tuple(notes), deps=deps and dbt)


class WatchListener:
    """Receives what the watcher does. Subclass and override what you want to show."""

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


NULL_LISTENER = WatchListener()


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


def _interrupted(exc: BaseException) -> bool:
    """Whether `exc` comes from a Ctrl-C or SIGTERM that dlt intercepted during a load.

    dlt traps SIGINT/SIGTERM while it normalizes and loads (dlt.common.runtime.signals) and raises
    SignalReceivedException, which reaches us wrapped in a PipelineError: it is still a stop request.
    """
    from sbdk.errors import causes

    return any(type(c).__name__ == "SignalReceivedException" or isinstance(c, KeyboardInterrupt) for c in causes(exc))


class Watcher:
    """Watches one project and rebuilds what each change affects, one rebuild at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        scope: Scope = Scope(),
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
        self._pending = _Pending()
        self._stop = threading.Event()
        self._observer: Any = None
        self._scheduled: dict[tuple[Path, bool], Any] = {}  # (folder, recursive) -> watchdog's watch
        self._warm: threading.Thread | None = None

    # Watching

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

    def _schedule(self, *, strict: bool = False) -> None:
        """Watch what the layout says, adding and removing watches without a gap for the others.
        A folder that vanishes meanwhile is skipped (raised when `strict`, at start)."""
        from watchdog.events import FileSystemEventHandler

        wanted = self.layout.schedules(self.scope)
        for key in [k for k in self._scheduled if k not in wanted]:
            try:
                self._observer.unschedule(self._scheduled.pop(key))
            except (KeyError, OSError):  # its folder is gone, and the kernel's watch with it
                pass
        handler = FileSystemEventHandler()
        handler.on_any_event = self._on_event  # type: ignore[method-assign]
        for folder, recursive in wanted:
            if (folder, recursive) in self._scheduled:
                continue
            try:
                watch = self._observer.schedule(handler, str(folder), recursive=recursive)
                self._scheduled[(folder, recursive)] = watch
            except OSError as exc:
                if strict:
                    raise
                self.reporter.warn(f"Cannot watch {folder}: {exc}")

    def _start_observer(self) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        try:
            self._schedule(strict=True)
        except OSError as exc:
            # inotify watches are a per-user kernel limit; polling is slower but always works.
            from watchdog.observers.polling import PollingObserver

            self.reporter.warn(f"File system notifications unavailable ({exc}); polling for changes instead.")
            self._observer = PollingObserver(timeout=0.5)
            self._scheduled = {}
            self._schedule()
        self._observer.start()

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
            self._scheduled = {}

    def stop(self) -> None:
        """Ask serve() to return after the rebuild in progress (safe from any thread)."""
        self._stop.set()
        self._pending.wake()

    def serve(self, *, initial_run: bool = True) -> None:
        """Run once (unless `initial_run` is False), then watch and rebuild until stop() is called
        or KeyboardInterrupt is raised in this thread."""
        self._stop.clear()
        # dlt traps SIGINT/SIGTERM during normalize and load and may swallow them (its handler only
        # sets a flag, cleared when the step ends): in a watcher, Ctrl-C must stop the process.
        intercept = os.environ.get(_DLT_INTERCEPT)
        os.environ.setdefault(_DLT_INTERCEPT, "false")
        self._start_observer()
        try:
            if initial_run:
                self.execute(self.initial())
            else:
                self._warm_up()
            while not self._stop.is_set():
                self.listener.watching(self.layout.describe(self.scope))
                batch = self._pending.take(self.debounce, self.max_delay, self._stop)
                if batch is None:
                    break
                rebuild = self.plan(batch)
                if rebuild is not None:
                    self.execute(rebuild)
        finally:
            self._stop_observer()
            if intercept is None:
                os.environ.pop(_DLT_INTERCEPT, None)

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

    # Planning and running

    def initial(self) -> Rebuild:
        plan = RunPlan(pipelines=self.scope.pipelines, dbt=self.scope.dbt, verbose=self.verbose, trigger=TRIGGER)
        return Rebuild(changes=(), plan=plan, initial=True)

    def manifest(self) -> Manifest | None:
        return Manifest.read(self.layout.target_dir / "manifest.json")

    def plan(self, batch: dict[Path, bool] | Iterable[Path]) -> Rebuild | None:
        """The rebuild for a batch of changed paths. Reloads the settings first when the config
        changed (an invalid one is reported and the previous one kept). None: nothing to report."""
        if not isinstance(batch, dict):
            batch = {Path(p): False for p in batch}
        changes = []
        for path, is_dir in sorted(batch.items()):
            change = classify(path, self.layout, self.scope, is_dir=is_dir)
            if change is not None:
                changes.append(replace(change, deleted=not path.exists()))
        if any(c.kind == CONFIG for c in changes) and not self._reload_settings():
            changes = [c for c in changes if c.kind != CONFIG]
        if any(c.kind == PROJECT for c in changes):
            self.layout = Layout.of(self.settings)
        if self._observer is not None:
            # A resource folder created since (seeds/, snapshots/) is watched from now on.
            self._schedule()
        if not changes:
            return None
        return plan_rebuild(changes, self.layout, self.scope, self.manifest(), verbose=self.verbose)

    def _reload_settings(self) -> bool:
        try:
            settings = load_settings(self.settings.paths.config_file)
        except SbdkError as exc:
            self.listener.settings_invalid(exc)
            return False
        self.settings = settings
        self.layout = Layout.of(settings)
        if self._observer is not None:
            self._schedule()
        self.listener.settings_reloaded(settings)
        return True

    def execute(self, rebuild: Rebuild) -> RunReport | None:
        """Run one rebuild and report it; errors are reported, not raised (Ctrl-C is raised)."""
        if rebuild.plan is None:
            self.listener.rebuild_skipped(rebuild)
            return None
        if self._warm is not None:
            self._warm.join()
            self._warm = None
        self.listener.rebuild_started(rebuild)
        try:
            if rebuild.deps:
                self._install_packages()
            report = self._run(rebuild)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if _interrupted(exc):
                raise KeyboardInterrupt from exc
            self.listener.rebuild_failed(rebuild, exc)
            return None
        self.listener.rebuild_finished(rebuild, report)
        return report

    def _run(self, rebuild: Rebuild) -> RunReport:
        assert rebuild.plan is not None
        run_id = uuid.uuid4().hex[:12]
        if self.log_format is None:
            return run(self.settings, rebuild.plan, self.reporter, wait=True, run_id=run_id)
        from sbdk.run.runlog import RunLogReporter, log_path

        # One log file per rebuild, like every run: `sbdk history` finds it by the run id.
        changed = [_relative(c.path, self.layout.root) for c in rebuild.changes]
        with RunLogReporter(
            self.reporter,
            log_path(self.settings, run_id),
            self.log_format,
            run_id,
            context={"trigger": TRIGGER, "options": rebuild.plan.options(), "changed": changed or None},
        ) as reporter:
            report = run(self.settings, rebuild.plan, reporter, wait=True, run_id=run_id)
            reporter.finish(report)
        return report

    def _install_packages(self) -> None:
        from sbdk.dbt.invoke import run_dbt
        from sbdk.run.lock import run_lock

        # run_dbt installs packages itself only when dbt_packages/ is missing; a changed
        # packages.yml needs `dbt deps` again.
        with run_lock(self.settings.paths.lock_file, TRIGGER, wait=True, reporter=self.reporter):
            self.reporter.stage("dbt", "deps")
            report = run_dbt(self.settings, "deps", verbose=self.verbose, reporter=self.reporter, require_raw=False)
        if not report.success:
            raise DbtError(
                f"`dbt deps` failed: {report.error or 'see dbt/logs/dbt.log'}",
                hint="Check packages.yml; packages must be installable from here.",
            )


@dataclass
class Recorder(WatchListener):
    """A listener that keeps every event, in order (handy in tests and benchmarks)."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

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

    def wait_for(self, *kinds: str, after: int = 0, timeout: float = 120.0) -> tuple[int, str, tuple]:
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
