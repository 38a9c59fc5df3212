"""Build in dbt only what changed since the last successful build (`sbdk dev`), with dbt's own state.

After every successful build of a `sbdk dev` run, sbdk keeps dbt's manifest in `.sbdk/dbt_state/<target>/`
with two digests: the *inputs* (the fingerprints of the live raw tables, the rendered profile,
dbt_project.yml with its vars, the package files, sbdk's and dbt's versions) and the *project files*
(every model, macro, test, seed, snapshot and analysis file). The next `sbdk dev`:

- inputs changed, or no state kept (a first run, a failed build, a restored backup): a full build;
- inputs and project files unchanged, and every relation the manifest builds still there: no dbt at all;
- otherwise: `dbt build --select state:modified+ --state <kept manifest>` (dbt compares the definitions).

A build that fails deletes the kept state, so a failed run never counts as up to date.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sbdk.settings import Settings

STATE_FILE = "state.json"
MANIFEST = "manifest.json"
_PROJECT_FOLDERS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")
_INPUT_FILES = ("dbt_project.yml", "packages.yml", "dependencies.yml", "package-lock.yml", "selectors.yml")
MODIFIED = "state:modified+"


@dataclass(frozen=True)
class Decision:
    """What dbt does in this run: `select` ("" for a full build), or nothing (`skip`), and why."""

    skip: bool
    select: str
    reason: str
    state_dir: Path | None = None


def state_dir(settings: Settings) -> Path:
    return settings.paths.state_dir / "dbt_state" / settings.target


def _package_files(folder: Path) -> list[Path]:
    files: list[Path] = []
    for top, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in ("target", "logs", "__pycache__", ".git"))
        files += [Path(top) / name for name in sorted(names)]
    return files


def _hash_files(files: list[Path], root: Path) -> str:
    h = hashlib.sha256()
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        h.update(os.path.relpath(path, root).encode() + b"\0")
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def project_digest(project_dir: Path) -> str:
    """The project's own files (what `state:modified` compares), as one digest."""
    files: list[Path] = []
    for folder in _PROJECT_FOLDERS:
        base = project_dir / folder
        if base.is_dir():
            files += sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return _hash_files(files, project_dir)


def inputs_digest(settings: Settings, raw_fingerprints: dict[str, str | None]) -> str:
    """What no `state:modified` sees: the raw data, the profile, the project settings, packages, versions."""
    from sbdk import __version__
    from sbdk.dbt.profiles import dbt_profiles_dir

    project = settings.paths.dbt_project_dir
    files = [project / name for name in _INPUT_FILES if (project / name).is_file()]
    profiles = dbt_profiles_dir(settings) / "profiles.yml"
    facts = {
        "raw": sorted((table, print_ or "") for table, print_ in raw_fingerprints.items()),
        "files": _hash_files(files, project),
        "profile": profiles.read_text() if profiles.is_file() else "",
        # Every file of the installed packages (a local package is a link to its folder: followed).
        "packages": _hash_files(_package_files(project / "dbt_packages"), project),
        "target": settings.target,
        "versions": [__version__, version("dbt-core")],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def _read_state(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not (folder / MANIFEST).is_file():
        return None
    return state


def _missing_relations(folder: Path, existing: set[str]) -> list[str]:
    """Relations the kept manifest builds (tables, views, seeds, snapshots) that are not in the database."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return ["<unreadable manifest>"]
    missing = []
    for node in (manifest.get("nodes") or {}).values():
        config = node.get("config") or {}
        if node.get("resource_type") not in ("model", "seed", "snapshot") or not config.get("enabled", True):
            continue
        if config.get("materialized") in ("ephemeral",):
            continue
        key = f"{node.get('schema')}.{node.get('alias') or node.get('name')}".lower()
        if key not in existing:
            missing.append(key)
    return missing


def decide(settings: Settings, raw_fingerprints: dict[str, str | None], existing: set[str]) -> Decision:
    """What this `sbdk dev` run builds in dbt (`existing`: schema.name of every relation in the database)."""
    folder = state_dir(settings)
    state = _read_state(folder)
    if state is None:
        return Decision(False, "", "no successful build kept")
    if state.get("inputs") != inputs_digest(settings, raw_fingerprints):
        return Decision(False, "", "raw data, profile, dbt_project.yml, packages or versions changed")
    if state.get("project") == project_digest(settings.paths.dbt_project_dir):
        missing = _missing_relations(folder, existing)
        if missing:
            return Decision(False, "", f"{missing[0]} is missing from the database")
        return Decision(True, "", "nothing changed since the last successful build")
    return Decision(False, MODIFIED, "models changed since the last successful build", folder)


def keep(settings: Settings, raw_fingerprints: dict[str, str | None]) -> None:
    """Keep the manifest of the build that just succeeded, with the digests of what it was built from."""
    manifest = settings.paths.dbt_project_dir / "target" / MANIFEST
    folder = state_dir(settings)
    if not manifest.is_file():
        forget(settings)
        return
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(manifest, folder / (MANIFEST + ".tmp"))
    (folder / (MANIFEST + ".tmp")).replace(folder / MANIFEST)
    state = {
        "inputs": inputs_digest(settings, raw_fingerprints),
        "project": project_digest(settings.paths.dbt_project_dir),
    }
    tmp = folder / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(folder / STATE_FILE)


def forget(settings: Settings) -> None:
    """No build counts as up to date any more (a failed build, a restored backup)."""
    shutil.rmtree(settings.paths.state_dir / "dbt_state", ignore_errors=True)


def building(settings: Settings) -> None:
    """A build starts: until it succeeds (and `keep` records it), nothing counts as up to date, even if
    the process is killed part way. The kept manifest stays, for `--state` to compare with."""
    (state_dir(settings) / STATE_FILE).unlink(missing_ok=True)
