"""Synthesis end to end: compile the user's dbt project, infer a spec per source table, merge it into
synth.yml (never changing what is there) and write a pipeline file per new source table.

What was inferred, and why, is kept in `.sbdk/synth/inferred.json` for `sbdk sources`; with it, a
digest of the dbt project's files, so that `sbdk dev` infers again only when the project changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbdk.settings import Settings
from sbdk.synth.model import TableSpec
from sbdk.synth.project import Source, check_dbt_project, scratch_dir
from sbdk.synth.spec import Change, spec_path

_STATE = "inferred.json"
_NAME = re.compile(r"[^a-z0-9_]+")
_PROJECT_FILES = (".sql", ".yml", ".yaml", ".csv", ".py", ".md")


@dataclass
class SynthReport:
    tables: list[str]  # the source tables synth.yml describes, "source.table"
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsatisfied: list[tuple[str, str]] = field(default_factory=list)
    pipelines: list[Path] = field(default_factory=list)  # pipeline files written now
    seconds: float = 0.0
    inferred: bool = True  # False: the dbt project had not changed, nothing was done


def is_synthesized(settings: Settings) -> bool:
    """Whether this sbdk project synthesizes the sources of the user's dbt project: it has synth.yml, or
    a synthesis was started (`sbdk init --from-dbt` met a dbt project that did not compile)."""
    return spec_path(settings.paths.root).is_file() or scratch_dir(settings).is_dir()


def synthesize(settings: Settings, only: list[str] | None = None) -> SynthReport:
    """Infer the sources of the settings' dbt project and bring synth.yml and the pipelines up to date."""
    from sbdk.synth import spec, values
    from sbdk.synth.constraints import infer_specs
    from sbdk.synth.infer import analyse
    from sbdk.synth.project import read_project

    started = time.perf_counter()
    project = read_project(settings)
    state = read_state(settings)
    only = only if only is not None else state.get("only")
    if only:
        _check_only(only, project.sources)
    analyses = {m.key: analyse(m.compiled, project.relations) for m in project.models if m.compiled}
    inference = infer_specs(project, analyses, values.choose)
    warnings = list(project.warnings) + inference.warnings
    for model, analysis in analyses.items():
        warnings += [f"{model[6:]}: {w}" for w in analysis.warnings]
    tables = [t for t in inference.tables if not only or t.key in only]
    path = spec_path(settings.paths.root)
    existing = spec.read_raw(path) if path.is_file() else {}
    merged, changes = spec.merge(existing, tables)
    if not existing:
        changes = []  # a first synth.yml: everything is new, nothing to report
    if merged != existing or not path.is_file():
        shown = os.path.relpath(settings.paths.dbt_project_dir, settings.paths.root)
        path.write_text(spec.render(merged, shown, sorted(values.GENERATORS)), encoding="utf-8")
    by_key = {s.key[7:]: s for s in project.sources}
    written = [p for key in merged if key in by_key and (p := _write_pipeline(settings, by_key[key], path)) is not None]
    _save_state(settings, inference, tables, warnings, only)
    return SynthReport(
        tables=list(merged),
        changes=changes,
        warnings=warnings,
        unsatisfied=inference.unsatisfied,
        pipelines=written,
        seconds=time.perf_counter() - started,
    )


def refresh(settings: Settings) -> SynthReport | None:
    """synthesize() when the dbt project changed since the last synthesis; None when it did not."""
    state = read_state(settings)
    if spec_path(settings.paths.root).is_file() and state.get("digest") == project_digest(settings):
        return None
    return synthesize(settings)


def _check_only(only: list[str], sources: list[Source]) -> None:
    from sbdk.errors import UsageError

    known = {s.key[7:] for s in sources}
    missing = [name for name in only if name not in known]
    if missing:
        listing = ", ".join(sorted(known)) or "none"
        raise UsageError(
            f"--sources names {missing[0]}, which the dbt project does not declare.",
            hint=f"Name sources as source.table; it declares: {listing}.",
        )


def pipeline_name(source: Source) -> str:
    """The raw table (and pipeline file stem) for a source: `<source>_<table>`, lower case, safe."""
    name = _NAME.sub("_", f"{source.source}_{source.table}".lower()).strip("_")
    return name if name and not name[0].isdigit() else f"src_{name}"


def _write_pipeline(settings: Settings, source: Source, spec_file: Path) -> Path | None:
    """pipelines/<source>_<table>.py for `source`, unless a file of that name is there (it is the user's)."""
    folder = settings.paths.pipelines_dir
    name = pipeline_name(source)
    path = folder / f"{name}.py"
    if path.exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        relative = spec_file.resolve().relative_to(folder.resolve().parent)
        spec_expr = f'Path(__file__).resolve().parents[1] / "{relative.as_posix()}"'
    except ValueError:
        spec_expr = f"Path({str(spec_file.resolve())!r})"
    relation = f"{source.schema}.{source.identifier}"
    path.write_text(
        _PIPELINE.format(
            key=f"{source.source}.{source.table}",
            call=f"source({source.source!r}, {source.table!r})",
            relation=relation,
            table=name,
            spec=spec_expr,
        ),
        encoding="utf-8",
    )
    return path


_PIPELINE = '''\
"""{key}: synthetic rows for the dbt source {call},
which dbt reads from {relation}.

Written by `sbdk init --from-dbt`. Its columns are described in synth.yml (generator, nulls, values,
ranges, rows): change them there, and `sbdk sources` shows where each came from. This file is yours
too: generate(ctx) may yield any pyarrow tables, as the template's pipelines do.
"""

from pathlib import Path

from sbdk.synth.runtime import rows

TABLE = "{table}"
# Where the dbt project reads it: sbdk keeps a view there over raw.{table}.
RELATION = "{relation}"
SPEC = {spec}
INPUTS = [SPEC]  # files whose changes make the table anew


def generate(ctx):
    yield from rows(ctx, "{key}", SPEC)
'''


def project_digest(settings: Settings) -> str:
    """A digest of the dbt project's own files (not target/, logs/, dbt_packages/): any edit changes it."""
    root = settings.paths.dbt_project_dir
    check_dbt_project(root)
    skip = {"target", "logs", "dbt_packages", "dbt_modules", ".git", ".venv", "node_modules"}
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0] in skip or path.suffix not in _PROJECT_FILES or not path.is_file():
            continue
        digest.update(relative.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def state_path(settings: Settings) -> Path:
    return scratch_dir(settings) / _STATE


def read_state(settings: Settings) -> dict[str, Any]:
    """What the last synthesis inferred (empty before the first)."""
    try:
        data = json.loads(state_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(
    settings: Settings, inference: Any, tables: list[TableSpec], warnings: list[str], only: list[str] | None
) -> None:
    from sbdk.synth.spec import table_entry

    state = {
        "digest": project_digest(settings),
        "only": only,
        "tables": {t.key: table_entry(t) for t in tables},
        "origins": inference.origins,
        "defaults": inference.defaults,
        "unsatisfied": [list(pair) for pair in inference.unsatisfied],
        "warnings": warnings,
    }
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=1, default=str), encoding="utf-8")
