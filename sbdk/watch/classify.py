"""What kind of change a write to a path is, decided from the path alone (on watchdog's thread)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from sbdk.watch.layout import FULL_SCOPE, Area, Layout, Scope


class ChangeKind(Enum):
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


@dataclass(frozen=True)
class Change:
    path: Path
    kind: ChangeKind
    area: Area | None = None  # for dbt files: the resource folder they are in
    deleted: bool = False

    @property
    def name(self) -> str:
        return self.path.stem


# Files at the top of the dbt project that are not in a resource folder.
_PROJECT_FILES = {
    "dbt_project.yml": ChangeKind.PROJECT,
    "packages.yml": ChangeKind.PACKAGES,
    "dependencies.yml": ChangeKind.PACKAGES,
}
# What dbt reads in each resource folder, by suffix (YAML and docs are the same everywhere).
_SOURCE_KINDS = {
    Area.MODEL: {".sql": ChangeKind.MODEL, ".py": ChangeKind.MODEL},
    Area.MACRO: {".sql": ChangeKind.MACRO},
    Area.TEST: {".sql": ChangeKind.TEST},
    Area.SEED: {".csv": ChangeKind.SEED},
    Area.SNAPSHOT: {".sql": ChangeKind.SNAPSHOT},
}
# Editors write these next to the file being saved (vim: .swp, ~ backups and its `4913` probe;
# emacs: .#lock and #autosave#; JetBrains: ___jb_tmp___); none of them is a change to the project.
_SCRATCH_SUFFIXES = (".swp", ".swo", ".swx", ".swpx", ".tmp", ".temp", ".bak", ".orig", ".rej", ".pyc", ".crswap")


def classify(path: Path, layout: Layout, scope: Scope = FULL_SCOPE, *, is_dir: bool = False) -> Change | None:
    """What kind of change a write to `path` is, or None when it must not trigger anything."""
    if path in (layout.config_file, layout.env_file):
        return Change(path, ChangeKind.CONFIG)
    if _never_a_change(path, layout):
        return None
    if scope.pipelines and not is_dir and path.parent == layout.pipelines_dir and path.suffix == ".py":
        return Change(path, ChangeKind.PIPELINE_HELPER if path.name.startswith("_") else ChangeKind.PIPELINE)
    if scope.dbt and path.is_relative_to(layout.dbt_dir):
        return _dbt_change(path, layout, is_dir)
    return None


def _never_a_change(path: Path, layout: Layout) -> bool:
    # The dbt project may live outside the sbdk project (`dbt_path: ../analytics`, issue #17).
    base = next((b for b in (layout.root, layout.dbt_dir) if path.is_relative_to(b)), None)
    if base is None:
        return True
    # Hidden files and folders (.git, .idea, .sbdk, .stg_orders.sql.swp) and bytecode never count.
    if any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(base).parts):
        return True
    return _is_scratch(path.name) or layout.is_ignored(path)


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


def _dbt_change(path: Path, layout: Layout, is_dir: bool) -> Change | None:
    if path.parent == layout.dbt_dir and not is_dir and path.name in _PROJECT_FILES:
        return Change(path, _PROJECT_FILES[path.name])
    area = layout.area_of(path)
    if area is None:
        return None
    if is_dir:
        return Change(path, ChangeKind.FOLDER, area)
    kind = _file_kind(path, area, layout)
    return Change(path, kind, area) if kind is not None else None


def _file_kind(path: Path, area: Area, layout: Layout) -> ChangeKind | None:
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        # No dbt selector names what uses a macro, so its properties file counts as the macro itself.
        return ChangeKind.MACRO if area is Area.MACRO else ChangeKind.YAML
    if suffix == ".md":
        return ChangeKind.DOCS
    kind = _SOURCE_KINDS[area].get(suffix)
    if kind is ChangeKind.TEST and layout.is_generic_test(path):
        return ChangeKind.GENERIC_TEST
    return kind
