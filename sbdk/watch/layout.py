"""What `sbdk start` watches and what it ignores, from the settings and dbt_project.yml."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from sbdk.paths import shown
from sbdk.settings import Settings


@dataclass(frozen=True)
class Scope:
    """What the watcher rebuilds: `--pipelines-only` and `--dbt-only` switch one side off."""

    pipelines: bool = True
    dbt: bool = True


FULL_SCOPE = Scope()  # pipelines and dbt: the default of every function that takes a scope


class Area(Enum):
    """The kind of dbt resource folder a file is in (the project's `<area>-paths`)."""

    MODEL = "model"
    MACRO = "macro"
    TEST = "test"
    SEED = "seed"
    SNAPSHOT = "snapshot"

    @property
    def paths_key(self) -> str:
        """Its key in dbt_project.yml, e.g. `model-paths`."""
        return f"{self.value}-paths"

    @property
    def default_folder(self) -> str:
        """dbt's folder when dbt_project.yml does not name one, e.g. `models`."""
        return f"{self.value}s"


@dataclass(frozen=True)
class Layout:
    """Where things are, from the settings and dbt_project.yml: what to watch and what to ignore."""

    root: Path
    config_file: Path
    env_file: Path
    pipelines_dir: Path
    dbt_dir: Path
    resource_dirs: dict[Area, tuple[Path, ...]]
    target_dir: Path  # dbt's build output, where manifest.json is
    log_dir: Path  # dbt's own log (dbt.log), not sbdk's run logs
    ignored: tuple[Path, ...]  # build output, state, the database: writing there must not trigger

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        paths = settings.paths
        dbt_dir = paths.dbt_project_dir
        project = read_yaml(dbt_dir / "dbt_project.yml")
        outputs = (("target-path", "target"), ("log-path", "logs"), ("packages-install-path", "dbt_packages"))
        dbt_output = [dbt_dir / str(project.get(key) or default) for key, default in outputs]
        db = paths.duckdb_path
        return cls(
            root=paths.root,
            config_file=paths.config_file,
            env_file=paths.env_file,
            pipelines_dir=paths.pipelines_dir,
            dbt_dir=dbt_dir,
            resource_dirs={area: _folders(project, area, dbt_dir) for area in Area},
            target_dir=dbt_output[0],
            log_dir=dbt_output[1],
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

    def area_of(self, path: Path) -> Area | None:
        for area, folders in self.resource_dirs.items():
            if any(path.is_relative_to(folder) for folder in folders):
                return area
        return None

    def is_generic_test(self, path: Path) -> bool:
        """Whether `path` is in a `generic/` folder of the test paths, where dbt finds generic tests."""
        return any(path.is_relative_to(folder / "generic") for folder in self.resource_dirs[Area.TEST])

    def is_ignored(self, path: Path) -> bool:
        """Whether `path` is build output, state or the database (or inside one of them)."""
        return any(path == p or path.is_relative_to(p) for p in self.ignored)

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
        watched = []
        if scope.pipelines:
            watched.append(shown(self.pipelines_dir, self.root) + "/")
        if scope.dbt:
            watched.append(shown(self.dbt_dir, self.root) + "/")
        watched += [self.config_file.name, self.env_file.name]
        return tuple(watched)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping; empty when it is missing, unreadable or not a mapping
    (dbt says what is wrong with it when it runs)."""
    try:
        text = path.read_bytes()
    except OSError:
        return {}
    return parse_yaml(text) or {}


def parse_yaml(text: bytes) -> dict[str, Any] | None:
    """The top-level mapping of YAML `text` (empty for an empty file); None when it is not valid
    YAML or not a mapping, so a half-written file is told apart from one that declares nothing."""
    import yaml  # installed with dbt

    try:
        data = yaml.safe_load(text.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        return None
    if data is None:
        return {}
    return data if isinstance(data, dict) else None


def _folders(project: dict[str, Any], area: Area, dbt_dir: Path) -> tuple[Path, ...]:
    """The folders dbt_project.yml gives for `area` (one string or a list), else dbt's default."""
    value = project.get(area.paths_key, [area.default_folder])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        value = [area.default_folder]
    return tuple(dbt_dir / str(v) for v in value)
