"""`sbdk init`: create a project folder from the packaged templates (DESIGN.md §2)."""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sbdk.errors import UsageError
from sbdk.paths import user_path
from sbdk.settings import CONFIG_FILENAME, DEFAULTS
from sbdk.settings.volume import check_options

# dbt's rule for project names: letters, digits and underscores, not starting with a digit.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_NAME = 64
_PROJECT_PLACEHOLDER = "__SBDK_PROJECT__"
# The sbdk that made the project, pinned by the GitHub workflow and the Dockerfile it writes.
_VERSION_PLACEHOLDER = "__SBDK_VERSION__"
# The project name as a Docker image name (in the project's README).
_IMAGE_PLACEHOLDER = "__SBDK_IMAGE__"


@dataclass(frozen=True)
class InitOptions:
    folder: Path
    users: int = DEFAULTS["data_volume"]["users"]
    events: int = DEFAULTS["data_volume"]["events"]
    seed: int = DEFAULTS["seed"]
    as_of: date | None = None
    force: bool = False
    # An existing dbt project to use where it is, with data synthesized for its sources (issue #17):
    # the template's dbt project and pipelines are not written.
    from_dbt: Path | None = None


@dataclass(frozen=True)
class InitReport:
    root: Path
    project: str
    files: tuple[Path, ...]  # what was written; every other file in the folder was kept as it was
    existing: bool = False  # the folder held files already (--force): the files written were missing

    @property
    def written(self) -> tuple[str, ...]:
        """The files written, relative to the project folder, in the order they were written."""
        return tuple(path.relative_to(self.root).as_posix() for path in self.files)


def templates_dir() -> Path:
    """`templates/` inside an installed wheel (sbdk/templates) or beside the package in a checkout."""
    package = Path(__file__).resolve().parents[1]  # sbdk/
    for candidate in (package / "templates", package.parent / "templates"):
        if (candidate / "dbt_project" / "dbt_project.yml").is_file():
            return candidate
    raise UsageError(
        "sbdk's project templates are missing from this installation.",
        hint="Reinstall sbdk (`pip install --force-reinstall sbdk`).",
    )


def validate_name(name: str) -> str:
    """The project name (the folder's last part) if dbt would accept it, else a UsageError."""
    base = Path(name).name
    if not base or base in (".", ".."):
        raise UsageError(f"{name!r} is not a project name.", hint="Try `sbdk init my_project`.")
    if len(base) > _MAX_NAME:
        raise UsageError(
            f"Project name {base[:20]!r}… is {len(base)} characters long; the limit is {_MAX_NAME}.",
            hint="Choose a shorter name.",
        )
    if not _NAME.match(base):
        raise UsageError(
            f"Project name {base!r} is not allowed: dbt project names use only letters, digits "
            "and underscores, and do not start with a digit.",
            hint=f"Try `sbdk init {suggest_name(base)}`.",
        )
    return base


def suggest_name(name: str) -> str:
    """A name dbt accepts, close to the last part of `name`: my-proj -> my_proj, 1proj -> p_1proj."""
    suggestion = re.sub(r"[^A-Za-z0-9_]+", "_", Path(name).name).strip("_") or "project"
    if suggestion[0].isdigit():
        suggestion = f"p_{suggestion}"
    return suggestion[:_MAX_NAME]


def project_name(folder: Path) -> str:
    """The project name `sbdk init <folder>` gives (validated): the folder's last part, or for `.`
    (restoring a project in place) the current folder's own name."""
    return validate_name(user_path(folder).absolute().name if str(folder) in (".", "./") else str(folder))


def sbdk_version() -> str:
    """The version of the sbdk installed (what `pip install "sbdk==<it>"` gets back)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sbdk")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from sbdk import __version__

        return __version__


def image_name(name: str) -> str:
    """A Docker image name for project `name`: lower case, no leading, trailing or repeated `_`
    (Docker's rule for a name component), e.g. My__Shop_ -> my_shop."""
    return re.sub(r"_+", "_", name.lower()).strip("_") or "sbdk-project"


def init_project(options: InitOptions) -> InitReport:
    root = user_path(options.folder).absolute()
    name = project_name(options.folder)
    check_options(options.users, options.events)
    if not root.parent.is_dir():
        raise UsageError(
            f"Cannot create {root}: its parent folder {root.parent} does not exist.",
            hint="Create the parent folder first, or choose another location.",
        )
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is a file.", hint="Choose another project name.")
    existing = root.is_dir() and any(root.iterdir())
    if existing and not options.force:
        raise UsageError(
            f"Folder {root} already exists and is not empty; sbdk will not overwrite it.",
            hint="Choose another name, or pass --force to add sbdk's missing files to it "
            "(existing files, your data included, are kept as they are).",
        )
    if options.from_dbt is not None:
        from sbdk.synth.project import check_dbt_project

        check_dbt_project(user_path(options.from_dbt).absolute())
    try:
        root.mkdir(exist_ok=True)
        written = _write_project(root, name, options)
    except OSError as exc:
        raise UsageError(
            f"Cannot write the project into {root}: {exc.strerror or exc}.",
            hint="Choose a folder you can write to.",
        ) from exc
    return InitReport(root=root, project=name, files=tuple(written), existing=existing)


def _write_project(root: Path, name: str, options: InitOptions) -> list[Path]:
    templates = templates_dir()
    written: list[Path] = []
    placeholders = {
        _PROJECT_PLACEHOLDER: name,
        _VERSION_PLACEHOLDER: sbdk_version(),
        _IMAGE_PLACEHOLDER: image_name(name),
    }

    def fill(text: str) -> str:
        for placeholder, value in placeholders.items():
            text = text.replace(placeholder, value)
        return text

    def put(relative: str, text: str, mode: int | None = None) -> None:
        target = root / relative
        if target.exists():
            # --force restores what is missing; it never overwrites a file the user may have edited.
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(target, mode)
        written.append(target)

    for source in sorted((templates / "project").rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts:
            relative = source.relative_to(templates / "project").as_posix()
            relative = relative.replace("dot_", ".", 1) if relative.startswith("dot_") else relative
            if options.from_dbt is not None and relative.startswith("pipelines/"):
                continue  # synthesis writes one pipeline per source of the user's dbt project
            put(relative, fill(source.read_text(encoding="utf-8")))
    dbt_path = DEFAULTS["dbt_path"]
    if options.from_dbt is not None:
        dbt_path = os.path.relpath(user_path(options.from_dbt).absolute(), root)
    for source in sorted((templates / "dbt_project").rglob("*")) if options.from_dbt is None else ():
        if source.is_file() and "__pycache__" not in source.parts:
            relative = source.relative_to(templates / "dbt_project").as_posix()
            if relative.split("/")[0] in ("target", "logs", "dbt_packages"):
                continue
            put(f"dbt/{relative}", source.read_text(encoding="utf-8").replace(_PROJECT_PLACEHOLDER, name))

    env = root / ".env"
    if not env.exists():
        put(".env", "# Secrets for this project (git-ignored). See .env.example.\n", mode=0o600)
    config = {
        "project": name,
        "target": "dev",
        "duckdb_path": DEFAULTS["duckdb_path"],
        "pipelines_path": DEFAULTS["pipelines_path"],
        "dbt_path": dbt_path,
        "profiles_dir": DEFAULTS["profiles_dir"],
        "seed": options.seed,
        "as_of": (options.as_of or date.today()).isoformat(),
        "data_volume": {"users": options.users, "events": options.events},
        # Every knob of the data, so that users find them in their file (the README explains each).
        "data_profile": copy.deepcopy(DEFAULTS["data_profile"]),
        "tracking": dict(DEFAULTS["tracking"]),
        "webhooks": dict(DEFAULTS["webhooks"]),
        "backups": dict(DEFAULTS["backups"]),
    }
    put(CONFIG_FILENAME, config_text(config))
    (root / "data").mkdir(exist_ok=True)
    (root / DEFAULTS["pipelines_path"]).mkdir(exist_ok=True)
    return written


def config_text(config: dict[str, Any]) -> str:
    """sbdk_config.json as written: indented JSON, each list of plain values on one line (the 24 hourly
    weights read as one line, not 24)."""

    def render(value: Any, depth: int) -> str:
        inner, outer = "  " * (depth + 1), "  " * depth
        if isinstance(value, dict) and value:
            items = [f"{inner}{json.dumps(key)}: {render(item, depth + 1)}" for key, item in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{outer}}}"
        if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
            items = [inner + render(item, depth + 1) for item in value]
            return "[\n" + ",\n".join(items) + f"\n{outer}]"
        return json.dumps(value)

    return render(config, 0) + "\n"
