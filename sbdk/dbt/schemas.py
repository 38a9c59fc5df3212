"""dbt's JSON schemas, kept in the state folder between processes.

dbt validates dbt_project.yml, the profile and every node it parses against JSON schemas that mashumaro
builds from dbt's dataclasses, once per process and class: 14 classes and ~1.4 s of a 7.6 s `sbdk dev`
after one model was edited (more than dbt's build of that model and its tests). A schema is a function
of the installed code alone, so sbdk keeps the ones built in `.sbdk/dbt_schemas.json`, keyed by the
versions of dbt-core, dbt-common, dbt-adapters and mashumaro and by the size and modification time of
the file that defines each class (an adapter's credentials, an edited install), and gives them to dbt
instead of building them again. dbt still validates everything as before: only the schema is reused.
An unreadable or outdated file is ignored and written again.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

FILE = "dbt_schemas.json"
_DISTRIBUTIONS = ("dbt-core", "dbt-common", "dbt-adapters", "mashumaro")

_lock = threading.Lock()
_known: dict[str, dict[str, Any]] = {}  # this process's schemas, by _key(cls)
_installed = False


@functools.cache
def _versions() -> dict[str, str]:
    """Of the code this process runs (an upgrade while `sbdk start` runs takes effect at its restart)."""
    found = {"python": sys.version.split()[0]}
    for name in _DISTRIBUTIONS:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def _key(cls: type) -> str:
    """The class's name and the size and time of the file that defines it."""
    name = f"{cls.__module__}.{cls.__qualname__}"
    source = getattr(sys.modules.get(cls.__module__), "__file__", None)
    try:
        stat = os.stat(source) if source else None
    except OSError:
        stat = None
    return f"{name}@{stat.st_size}-{stat.st_mtime_ns}" if stat else name


def _install() -> None:
    """Make dbt's `json_schema()` look in this process's known schemas before building one."""
    global _installed
    from dbt_common.dataclass_schema import dbtClassMixin

    with _lock:
        if _installed:
            return
        _installed = True

    build = dbtClassMixin.__dict__["json_schema"].__func__.__wrapped__

    @functools.lru_cache
    def json_schema(cls: type) -> dict[str, Any]:
        key = _key(cls)
        with _lock:
            schema = _known.get(key)
        if schema is None:
            schema = build(cls)
            with _lock:
                _known[key] = schema
        return schema

    dbtClassMixin.json_schema = classmethod(json_schema)  # type: ignore[assignment,method-assign,arg-type]


def _read(path: Path, versions: dict[str, str]) -> dict[str, dict[str, Any]]:
    try:
        kept = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(kept, dict) or kept.get("versions") != versions or not isinstance(kept.get("schemas"), dict):
        return {}
    return kept["schemas"]


def _write(path: Path, versions: dict[str, str], schemas: dict[str, dict[str, Any]]) -> None:
    """Replace the file whole (a reader never sees half of it); a failure only costs the next run time."""
    fresh = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh.write_text(json.dumps({"versions": versions, "schemas": schemas}, sort_keys=True))
        os.replace(fresh, path)
    except OSError:
        fresh.unlink(missing_ok=True)


@contextmanager
def kept_schemas(state_dir: Path) -> Iterator[None]:
    """dbt invoked inside reuses the schemas kept in `state_dir`; ones it built are kept there after."""
    path = state_dir / FILE
    versions = _versions()
    on_disk = _read(path, versions)
    with _lock:
        for key, schema in on_disk.items():
            _known.setdefault(key, schema)
    _install()
    try:
        yield
    finally:
        with _lock:
            schemas = dict(_known)
        if schemas.keys() - on_disk.keys():
            _write(path, versions, schemas)
