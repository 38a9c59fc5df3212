"""From a batch of changes to the smallest RunPlan that brings the project up to date.

Each kind of change has one handler that adds what it needs to a `_Draft` (tables to reload, dbt
selectors, a full build, `dbt deps`, or a note saying why nothing is needed); `plan_rebuild` runs
them in order and turns the draft into a RunPlan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sbdk.paths import shown
from sbdk.run.plan import RunPlan, Trigger
from sbdk.watch.classify import Change, ChangeKind
from sbdk.watch.declared import (
    PropertiesDiff,
    folder_selectors,
    generic_test_names,
    pipeline_table,
    properties_diff,
    snapshot_names,
    yaml_selectors,
)
from sbdk.watch.layout import FULL_SCOPE, Layout, Scope, parse_yaml
from sbdk.watch.manifest import Manifest


@dataclass(frozen=True)
class Rebuild:
    """What a batch of changes leads to: the run plan (None when nothing needs rebuilding)."""

    changes: tuple[Change, ...]
    plan: RunPlan | None
    nodes: int | None = None  # dbt nodes the plan builds, per the last parse; None if unknown
    notes: tuple[str, ...] = ()  # changes that need nothing rebuilt, and why
    initial: bool = False
    unchanged: tuple[Change, ...] = ()  # files written with the content they already had
    dropped: tuple[str, ...] = ()  # stale relations dropped afterwards, e.g. "view main.old_model"

    @property
    def summary(self) -> str:
        """One line, e.g. "stg_orders changed → building 34 nodes (stg_orders+)"."""
        if self.initial:
            what = "Initial run"
        elif self.changes or not self.unchanged:
            what = _describe_changes(self.changes)
        else:
            what = _describe_changes(self.unchanged, verb="saved unchanged")
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        actions = _actions(self.plan, self.nodes) if self.plan is not None else []
        actions += [f"dropped stale {relation}" for relation in self.dropped]
        return f"{what} → {', '.join(actions) or 'nothing to rebuild'}{notes}"


def _describe_changes(changes: Sequence[Change], verb: str | None = None) -> str:
    names: list[str] = []
    for change in changes:
        label = change.name if change.kind in (ChangeKind.MODEL, ChangeKind.SEED, ChangeKind.TEST) else change.path.name
        if label not in names:
            names.append(label)
    if not names:
        return "Nothing"
    listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    verb = verb or ("deleted" if all(c.deleted for c in changes) else "changed")
    return f"{listed} {verb}"


def _actions(plan: RunPlan, nodes: int | None) -> list[str]:
    actions = []
    if plan.deps:
        actions.append("installing dbt packages")
    if plan.pipelines:
        tables = ", ".join(sorted(plan.tables)) if plan.tables is not None else "every table"
        actions.append(f"reloading {tables}")
    if plan.dbt:
        if not plan.select:
            actions.append("building everything" + (f" ({nodes} nodes)" if nodes else ""))
        elif nodes is not None:
            actions.append(f"building {nodes} node{'s' if nodes != 1 else ''} ({' '.join(plan.select)})")
        else:
            actions.append(f"building {' '.join(plan.select)}")
    return actions


def plan_rebuild(
    changes: Sequence[Change],
    layout: Layout,
    scope: Scope = FULL_SCOPE,
    manifest: Manifest | None = None,
    *,
    previous: Mapping[Path, bytes] | None = None,
    verbose: bool = False,
) -> Rebuild:
    """The smallest run that brings the project up to date with `changes` (DESIGN.md, issue #5).

    `previous`: what changed properties files held before, so that only the entries that differ
    are rebuilt (without it, every entry of a changed properties file is).
    """
    draft = _Draft(layout, scope, manifest, dict(previous or {}))
    for change in changes:
        _HANDLERS[change.kind](draft, change)
    plan = draft.plan(verbose=verbose)
    nodes = manifest.count(plan.select) if manifest is not None and plan is not None and plan.dbt else None
    return Rebuild(changes=tuple(changes), plan=plan, nodes=nodes, notes=tuple(draft.notes))


@dataclass
class _Draft:
    """What the changes handled so far ask for."""

    layout: Layout
    scope: Scope
    manifest: Manifest | None
    previous: dict[Path, bytes] = field(default_factory=dict)  # properties files' bytes before the change
    all_tables: bool = False  # reload every pipeline's table
    whole_dbt: bool = False  # build the whole dbt project
    deps: bool = False  # `dbt deps` before building
    tables: set[str] = field(default_factory=set)
    select: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def build(self, *selectors: str) -> None:
        self.select.extend(s for s in selectors if s not in self.select)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def shown(self, change: Change) -> str:
        return shown(change.path, self.layout.root)

    def plan(self, *, verbose: bool) -> RunPlan | None:
        pipelines = self.scope.pipelines and (self.all_tables or bool(self.tables))
        dbt = self.scope.dbt and (self.whole_dbt or bool(self.select))
        if not (pipelines or dbt):
            return None
        return RunPlan(
            pipelines=pipelines,
            dbt=dbt,
            tables=frozenset(self.tables) if pipelines and not self.all_tables else None,
            select=() if self.whole_dbt else tuple(self.select),
            deps=self.deps and dbt,
            verbose=verbose,
            trigger=Trigger.WATCH,
        )


def _everything(draft: _Draft, change: Change) -> None:
    # The settings can change any table and the database itself; a pipeline helper may be
    # imported by any pipeline.
    draft.all_tables = draft.whole_dbt = True


def _whole_dbt(draft: _Draft, change: Change) -> None:
    # No selector names what a macro or a project setting touches.
    draft.whole_dbt = True


def _packages(draft: _Draft, change: Change) -> None:
    draft.whole_dbt = draft.deps = True


def _folder(draft: _Draft, change: Change) -> None:
    path = change.path
    if path.is_dir() and not any(path.iterdir()):
        return  # an empty new folder changes nothing
    draft.whole_dbt = True


def _pipeline(draft: _Draft, change: Change) -> None:
    if change.deleted:
        draft.note(f"{draft.shown(change)} removed; its table stays as last loaded")
        return
    table = pipeline_table(change.path)
    draft.tables.add(table)
    if not draft.scope.dbt:
        return
    # Without a parse yet, guess the template's source name.
    selector = draft.manifest.source_selector(table) if draft.manifest else f"source:raw.{table}+"
    if selector:
        draft.build(selector)
    else:
        draft.note(f"no dbt source reads {table}")


def _node(draft: _Draft, change: Change) -> None:
    """A model or a seed: it and everything built on it."""
    if change.deleted:
        _deleted_node(draft, change)
    else:
        draft.build(f"{change.name}+")


def _deleted_node(draft: _Draft, change: Change) -> None:
    # A deleted model cannot be selected: rebuild what depended on it and let dbt report the
    # broken refs (or skip them), as it decides.
    manifest = draft.manifest
    if manifest is None:
        draft.whole_dbt = True
        return
    node = manifest.find(change.name)
    if node is None:
        draft.note(f"{change.path.name} removed; it was never built")
    elif children := manifest.selectable_children(node):
        draft.build(*(f"{child}+" for child in children))
    else:
        draft.note(f"{change.path.name} removed; nothing depends on it")


def _snapshot(draft: _Draft, change: Change) -> None:
    if change.deleted:
        draft.note(f"{draft.shown(change)} removed")
    elif names := snapshot_names(change.path):
        draft.build(*(f"{name}+" for name in names))
    else:
        draft.build(f"path:{shown(change.path, draft.layout.dbt_dir)}+")


def _singular_test(draft: _Draft, change: Change) -> None:
    if change.deleted:
        draft.note(f"{draft.shown(change)} removed")
    else:
        draft.build(change.name)


def _generic_test(draft: _Draft, change: Change) -> None:
    # Every test that uses it, wherever it is declared; when its name cannot be read, everything.
    if names := generic_test_names(change.path):
        draft.build(*(f"test_name:{name}" for name in names))
    else:
        draft.whole_dbt = True


def _properties(draft: _Draft, change: Change) -> None:
    diff = _properties_diff(draft, change)
    if diff is not None:
        _changed_entries(draft, change, diff)
        return
    # Nothing to compare with (the file is new, or one version does not parse): every entry counts.
    selectors = [] if change.deleted else yaml_selectors(change.path, change.area)
    if selectors := selectors or folder_selectors(change.path.parent, change.area):
        draft.build(*selectors)
    else:
        draft.note(f"{draft.shown(change)} describes nothing that is built")


def _properties_diff(draft: _Draft, change: Change) -> PropertiesDiff | None:
    """What differs in a properties file since the last plan; None when that cannot be told."""
    before_text = draft.previous.get(change.path)
    before = parse_yaml(before_text) if before_text is not None else None
    if before is None:
        return None
    try:
        after = {} if change.deleted else parse_yaml(change.path.read_bytes())
    except OSError:
        return None
    return properties_diff(before, after, change.area) if after is not None else None


def _changed_entries(draft: _Draft, change: Change, diff: PropertiesDiff) -> None:
    if not diff:
        draft.note(f"{draft.shown(change)}: nothing that is built changed")
        return
    draft.build(*diff.build)
    for removed in diff.removed:
        if removed.kind == "source":
            _removed_source(draft, removed.name, removed.table)
        elif removed.kind == "test":
            if _still_defined(draft, removed.name, ("test",)):
                draft.build(removed.name)
        elif _still_defined(draft, removed.name):
            # Its properties are gone but the resource is not: it builds with the defaults now.
            draft.build(f"{removed.name}+")


def _still_defined(draft: _Draft, name: str, types: tuple[str, ...] = ("model", "seed", "snapshot")) -> bool:
    """Whether `name` was built and the file defining it is still there (so it can be selected)."""
    manifest = draft.manifest
    if manifest is None:
        return True
    node = manifest.find(name, types)
    path = manifest.file_of(node) if node is not None else None
    return path is not None and (draft.layout.dbt_dir / path).exists()


def _removed_source(draft: _Draft, source: str, table: str | None) -> None:
    # Like a deleted model: what read it is rebuilt, and dbt reports the sources it cannot find.
    manifest = draft.manifest
    if manifest is None:
        draft.whole_dbt = True
        return
    children = sorted({c for uid in manifest.source_ids(source, table) for c in manifest.selectable_children(uid)})
    if children:
        draft.build(*(f"{child}+" for child in children))
    else:
        draft.note(f"source {source}{'.' + table if table else ''} removed; nothing reads it")


def _docs(draft: _Draft, change: Change) -> None:
    draft.note(f"{change.path.name} is documentation only")


_HANDLERS: dict[ChangeKind, Callable[[_Draft, Change], None]] = {
    ChangeKind.CONFIG: _everything,
    ChangeKind.PIPELINE: _pipeline,
    ChangeKind.PIPELINE_HELPER: _everything,
    ChangeKind.MODEL: _node,
    ChangeKind.SEED: _node,
    ChangeKind.SNAPSHOT: _snapshot,
    ChangeKind.TEST: _singular_test,
    ChangeKind.GENERIC_TEST: _generic_test,
    ChangeKind.YAML: _properties,
    ChangeKind.DOCS: _docs,
    ChangeKind.MACRO: _whole_dbt,
    ChangeKind.PROJECT: _whole_dbt,
    ChangeKind.PACKAGES: _packages,
    ChangeKind.FOLDER: _folder,
}
