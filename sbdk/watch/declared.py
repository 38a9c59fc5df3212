"""What a changed file declares, read without running anything: the table a pipeline loads, and
the dbt resources a properties file, a snapshot or a generic test names (as dbt selectors).

Every reader returns nothing when the file cannot be read (deleted, half-written, not text): the
planner then falls back to something broader.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
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


# The lists of named entries a properties file holds, compared entry by entry.
_NODE_KEYS = ("models", "seeds", "snapshots")
_TEST_KEYS = ("data_tests", "tests")
_ENTRY_KEYS = frozenset({*_NODE_KEYS, *_TEST_KEYS, "sources", "unit_tests"})
# What `dbt build` never builds: a change there needs nothing rebuilt.
_NOT_BUILT_KEYS = frozenset({"version", "exposures", "metrics", "semantic_models", "saved_queries"})


@dataclass(frozen=True)
class Removed:
    """An entry a properties file no longer has: `kind` is models/seeds/snapshots (the resource
    may still exist, with default properties), "source" (`name` is the source, `table` one of its
    tables or None for all of them), "test" or "unit_test" (`name` is the unit test's model)."""

    kind: str
    name: str
    table: str | None = None


@dataclass(frozen=True)
class PropertiesDiff:
    """What differs between two parses of one properties file, entry by entry."""

    build: tuple[str, ...] = ()  # selectors of the entries added or changed
    removed: tuple[Removed, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.build or self.removed)


def properties_diff(before: dict[str, Any], after: dict[str, Any], area: Area | None) -> PropertiesDiff | None:
    """The entries that differ between two parses of a properties file (so a change to one source
    rebuilds what reads that source, not what reads the others). None when something besides the
    named entries changed (a key dbt applies to more than its entries): then every entry counts."""
    for key in (set(before) | set(after)) - _ENTRY_KEYS - _NOT_BUILT_KEYS:
        if before.get(key) != after.get(key):
            return None
    build: list[str] = []
    removed: list[Removed] = []
    for key in _NODE_KEYS:
        old, new = _named(before, key), _named(after, key)
        build += [f"{name}+" for name, entry in new.items() if old.get(name) != entry]
        removed += [Removed(key, name) for name in old if name not in new]
    _source_diff(_named(before, "sources"), _named(after, "sources"), build, removed)
    old, new = _named(before, "unit_tests"), _named(after, "unit_tests")
    build += [f"{entry['model']}+" for name, entry in new.items() if old.get(name) != entry and entry.get("model")]
    removed += [Removed("unit_test", str(e["model"])) for name, e in old.items() if name not in new and e.get("model")]
    if area is Area.TEST:
        old = {**_named(before, "tests"), **_named(before, "data_tests")}
        new = {**_named(after, "tests"), **_named(after, "data_tests")}
        build += [name for name, entry in new.items() if old.get(name) != entry]
        removed += [Removed("test", name) for name in old if name not in new]
    return PropertiesDiff(tuple(dict.fromkeys(build)), tuple(dict.fromkeys(removed)))


def _source_diff(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], build: list[str], removed: list[Removed]
) -> None:
    for name, source in new.items():
        previous = old.get(name)
        if previous is None or _without_tables(previous) != _without_tables(source):
            # A new source, or a setting of the whole source (its schema, database, freshness...).
            build.append(f"source:{name}+")
            continue
        old_tables, new_tables = _tables(previous), _tables(source)
        build += [f"source:{name}.{t}+" for t, table in new_tables.items() if old_tables.get(t) != table]
        removed += [Removed("source", name, t) for t in old_tables if t not in new_tables]
    removed += [Removed("source", name) for name in old if name not in new]


def _without_tables(source: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in source.items() if key != "tables"}


def _tables(source: dict[str, Any]) -> dict[str, Any]:
    tables = source.get("tables")
    if not isinstance(tables, list):
        return {}
    return {str(t["name"]): t for t in tables if isinstance(t, dict) and t.get("name")}


def _named(data: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {str(e["name"]): e for e in _entries(data, key)}


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
