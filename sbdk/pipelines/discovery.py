"""Find and import the project's pipeline files, with errors that name the file and line."""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sbdk.errors import PipelineError

_TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
# Users first: other tables reference it.
_ORDER = {"raw_users": 0}


@dataclass(frozen=True)
class PipelineSpec:
    path: Path
    table: str
    generate: Callable[[Any], Any]
    primary_key: str | None = None
    cursor: str | None = None
    # Where dbt reads the table besides raw.<table>, as (schema, name): a view sbdk keeps over it (a
    # pipeline synthesized for a source of the user's dbt project, issue #17).
    relation: tuple[str, str] | None = None
    # Files besides the pipeline's own code that shape its data (synth.yml): in its fingerprint.
    inputs: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def incremental(self) -> bool:
        return self.cursor is not None


def where(path: Path, exc: BaseException) -> str:
    """`file.py, line N` of the deepest frame of `exc` inside `path` (or just the file name)."""
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename) == path:
        return f"{path.name}, line {exc.lineno}"
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = frame.lineno
    return f"{path.name}, line {line}" if line else path.name


def cursor_error(spec: PipelineSpec, columns: dict[str, str], seen: str) -> PipelineError | None:
    """Why the pipeline's CURSOR cannot drive --incremental, or None when it names a timestamp column.

    `columns` maps each column to its type, as Arrow or the database spells it (both say "timestamp");
    `seen` says where they come from, e.g. "the columns it yields are".
    """
    cursor = spec.cursor
    if cursor is None:
        return None
    timestamps = [name for name, kind in columns.items() if "timestamp" in kind.lower()]
    fix = (
        f"Set CURSOR to one of its timestamp columns ({', '.join(timestamps)})"
        if timestamps
        else "Yield a timestamp column and set CURSOR to it"
    )
    fix += ", or remove CURSOR (only --incremental needs it)."
    if cursor not in columns:
        listing = ", ".join(columns) or "none"
        return PipelineError(f"Pipeline {spec.path} sets CURSOR = {cursor!r}, but {seen} {listing}.", hint=fix)
    if cursor not in timestamps:
        return PipelineError(
            f"Pipeline {spec.path} sets CURSOR = {cursor!r}, but that column holds {columns[cursor]}, not a timestamp.",
            hint=fix,
        )
    return None


def _import(path: Path) -> ModuleType:
    # A fresh module object every time, so an edited file is picked up by a long-lived watcher.
    module_name = f"_sbdk_pipeline_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineError(f"Cannot import pipeline {path}.", hint="Check that it is a Python file.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a sys.exit() at import time is a broken pipeline, not sbdk's exit
        raise PipelineError(
            f"Pipeline {path} failed to import ({where(path, exc)}): {type(exc).__name__}: {exc}",
            hint=f"Fix {path.name}, or move it out of pipelines/ (files starting with _ are skipped).",
        ) from exc
    finally:
        sys.modules.pop(module_name, None)
    return module


def _fresh_helpers(pipelines_dir: Path) -> None:
    """Pipelines may import helper modules of their folder (`import _shared`): the folder is on the
    import path, and helpers imported by an earlier discovery are forgotten, so that a long-lived
    process (the watcher) runs an edited helper, not the one it imported first."""
    folder = pipelines_dir.resolve()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(folder):
            sys.modules.pop(name, None)


def _relation(path: Path, value: object) -> tuple[str, str] | None:
    """RELATION = "schema.name": where dbt reads the table (a view over raw.<TABLE>); None when unset."""
    if value is None:
        return None
    parts = value.split(".") if isinstance(value, str) else []
    if len(parts) != 2 or not all(_TABLE_NAME.match(p.lower()) for p in parts):
        raise PipelineError(
            f"Pipeline {path} sets RELATION = {value!r}, which is not `schema.name`.",
            hint="Set it to where the dbt project reads the table, e.g. RELATION = 'shop.orders', or remove it.",
        )
    return parts[0], parts[1]


def discover(pipelines_dir: Path, only: set[str] | None = None) -> list[PipelineSpec]:
    """The pipelines in `pipelines_dir` (all, or only those whose table or file stem is in `only`)."""
    if not pipelines_dir.is_dir():
        raise PipelineError(
            f"The pipelines folder {pipelines_dir} does not exist.",
            hint="Create it (`sbdk init --force .` restores the default pipelines) or fix pipelines_path.",
        )
    _fresh_helpers(pipelines_dir)
    specs: list[PipelineSpec] = []
    # No bytecode cache for the project's files: a file saved twice within a second at the same size
    # (FIRST = 0, then FIRST = 5) would otherwise be run from the first save's cache, which Python
    # checks by modification second and size only.
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        modules = [
            (path, _import(path)) for path in sorted(pipelines_dir.glob("*.py")) if not path.name.startswith("_")
        ]
    finally:
        sys.dont_write_bytecode = writes
    for path, module in modules:
        table = getattr(module, "TABLE", f"raw_{path.stem}")
        if only is not None and not {path.stem, f"raw_{path.stem}", str(table)} & only:
            continue
        generate = getattr(module, "generate", None)
        if not callable(generate):
            raise PipelineError(
                f"Pipeline {path} has no generate(ctx) function.",
                hint=f"If it is a helper module, name it _{path.name}: files starting with _ are not pipelines. "
                "Otherwise define `def generate(ctx):` yielding pyarrow tables (see pipelines/users.py).",
            )
        if not isinstance(table, str) or not _TABLE_NAME.match(table):
            raise PipelineError(
                f"Pipeline {path} sets TABLE = {table!r}, which is not a valid table name.",
                hint="Use lower-case letters, digits and underscores, e.g. TABLE = 'raw_visits'.",
            )
        cursor = getattr(module, "CURSOR", None)
        if cursor is not None and (not isinstance(cursor, str) or not cursor):
            raise PipelineError(
                f"Pipeline {path} sets CURSOR = {cursor!r}, which is not a column name.",
                hint="Set CURSOR to the name of a timestamp column it yields, e.g. CURSOR = 'visited_at'.",
            )
        specs.append(
            PipelineSpec(
                path=path,
                table=table,
                generate=generate,
                primary_key=getattr(module, "PRIMARY_KEY", None),
                cursor=cursor,
                relation=_relation(path, getattr(module, "RELATION", None)),
                inputs=tuple(Path(p) for p in getattr(module, "INPUTS", None) or ()),
            )
        )
    tables = [s.table for s in specs]
    duplicates = sorted({t for t in tables if tables.count(t) > 1})
    if duplicates:
        files = ", ".join(s.path.name for s in specs if s.table in duplicates)
        raise PipelineError(
            f"Several pipelines write the table {duplicates[0]}: {files}.",
            hint="Give each pipeline its own TABLE.",
        )
    return sorted(specs, key=lambda s: (_ORDER.get(s.table, 1), s.table))
