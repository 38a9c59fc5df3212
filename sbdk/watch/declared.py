"""What a changed file declares, read without running anything: the table a pipeline loads, and
the dbt resources a properties file, a snapshot or a generic test names (as dbt selectors).

Every reader returns nothing when the file cannot be read (deleted, half-written, not text): the
planner then falls back to something broader.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from sbdk.watch.layout import Area, read_yaml

_GENERIC_TEST_NAME = re.compile(r"{%-?\s*test\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_SNAPSHOT_NAME = re.compile(r"{%-?\s*snapshot\s+([A-Za-z_][A-Za-z0-9_]*)\s*-?%}")
_FOLDER_SUFFIXES = {Area.MODEL: (".sql", ".py"), Area.SEED: (".csv",), Area.TEST: (".sql",), Area.SNAPSHOT: (".sql",)}


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


def yaml_selectors(path: Path, area: Area | None) -> list[str]:
    """The resources a properties file describes, as dbt selectors (each with what builds on it)."""
    data = read_yaml(path)
    selectors = []
    for key in ("models", "seeds", "snapshots"):
        selectors += [f"{e['name']}+" for e in _entries(data, key)]
    for source in _entries(data, "sources"):
        tables = [t for t in source.get("tables") or () if isinstance(t, dict) and t.get("name")]
        selectors += [f"source:{source['name']}.{t['name']}+" for t in tables] or [f"source:{source['name']}+"]
    selectors += [f"{e['model']}+" for e in _entries(data, "unit_tests") if e.get("model")]
    if area is Area.TEST:
        selectors += [e["name"] for e in _entries(data, "data_tests") + _entries(data, "tests")]
    return selectors


def folder_selectors(folder: Path, area: Area | None) -> list[str]:
    """The resources in `folder`: the fallback for a properties file that cannot be read."""
    suffixes = _FOLDER_SUFFIXES.get(area, ()) if area is not None else ()
    names = sorted(p.stem for p in folder.glob("*") if p.suffix.lower() in suffixes and not p.name.startswith("."))
    return [name if area is Area.TEST else f"{name}+" for name in names]


def snapshot_names(path: Path) -> list[str]:
    """The snapshots a file defines (`{% snapshot name %}` blocks)."""
    return _names_in(path, _SNAPSHOT_NAME)


def generic_test_names(path: Path) -> list[str]:
    """The generic tests a file defines (`{% test name(model, ...) %}` blocks)."""
    return _names_in(path, _GENERIC_TEST_NAME)


def _names_in(path: Path, pattern: re.Pattern[str]) -> list[str]:
    # dbt's Jinja block headers are a fixed form; the SQL inside them is never read here.
    try:
        return pattern.findall(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []


def _entries(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The named entries of a list under `key` (anything else is dbt's to complain about)."""
    value = data.get(key)
    return [e for e in value if isinstance(e, dict) and e.get("name")] if isinstance(value, list) else []
