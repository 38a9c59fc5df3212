"""What a raw table's data depends on, as one hash: the same fingerprint means byte-identical data.

A table's fingerprint covers its pipeline file and the project files it imports (followed through
their own imports), the versions of sbdk and of the libraries that shape the values, the seed, the
volume, `as_of` and the data profile; every table but raw_users also covers raw_users' fingerprint, as
its rows reference those users. The loader records it with the swap, in the same transaction, and
keeps a table whose recorded fingerprint (and row count) still match (`sbdk dev`; `--fresh` does not).
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from sbdk.pipelines.discovery import PipelineSpec
from sbdk.run.plan import RunPlan
from sbdk.settings import Settings

USERS_TABLE = "raw_users"
# Libraries whose version can change generated values (pools of names, random streams, Arrow types).
_LIBRARIES = ("numpy", "pyarrow", "faker", "dlt")


@lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import PackageNotFoundError, version

    from sbdk import __version__

    found = [("sbdk", __version__)]
    for name in _LIBRARIES:
        try:
            found.append((name, version(name)))
        except PackageNotFoundError:
            found.append((name, "-"))
    return tuple(found)


def restored_marker(settings: Settings) -> Path:
    """Present after `sbdk restore` until the next full reload: no recorded fingerprint is trusted."""
    return settings.paths.state_dir / "restored"


def _module_files(name: str, folder: Path) -> list[Path]:
    """The files of a module `name` (a.b.c) if it lives in the pipelines folder, else []."""
    parts = name.split(".")
    base = folder.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return [base.with_suffix(".py")]
    if (base / "__init__.py").is_file():
        return sorted(base.rglob("*.py"))
    return []


def _imported(path: Path, folder: Path) -> list[Path]:
    """Project files `path` imports directly (absolute imports of modules in `folder`, and relative ones)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return []  # the loader reports a broken file; its bytes are in the fingerprint anyway
    found: list[Path] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found += _module_files(alias.name, folder)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the file's own folder
                base = path.parent
                for _ in range(node.level - 1):
                    base = base.parent
                names = [node.module] if node.module else [alias.name for alias in node.names]
                for name in names:
                    found += _module_files(name, base)
            elif node.module:
                found += _module_files(node.module, folder)
                found += [f for alias in node.names for f in _module_files(f"{node.module}.{alias.name}", folder)]
    return found


def source_files(path: Path, folder: Path) -> list[Path]:
    """`path` and every project file it imports, transitively, in a stable order."""
    seen: dict[Path, None] = {}
    pending = [path.resolve()]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen[current] = None
        pending += [p.resolve() for p in _imported(current, folder)]
    return sorted(seen)


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _named(file: Path, folder: Path) -> bytes:
    """A file's name in a fingerprint: relative to `folder` when inside it, so a project that is moved
    or copied keeps its fingerprints (and its tables)."""
    try:
        return str(file.relative_to(folder)).encode()
    except ValueError:
        return str(file).encode()


def fingerprints(settings: Settings, plan: RunPlan, specs: Iterable[PipelineSpec]) -> dict[str, str]:
    """table -> fingerprint, for every pipeline in `specs` (all of the project's: users are needed by
    the others)."""
    specs = list(specs)
    volume = plan.volume or settings.data_volume
    common = json.dumps(
        {
            "versions": _versions(),
            "seed": settings.seed if plan.seed is None else plan.seed,
            "volume": volume.as_dict(),
            "as_of": settings.as_of.isoformat(),
            "profile": asdict(settings.data_profile),
        },
        sort_keys=True,
        default=str,
    ).encode()
    folder = settings.paths.pipelines_dir.resolve()
    root = settings.paths.root.resolve()
    own: dict[str, str] = {}
    for spec in specs:
        files = source_files(spec.path, folder)
        parts = [common, spec.table.encode()]
        for file in files:
            parts += [_named(file, folder), file.read_bytes()]
        for file in spec.inputs:  # synth.yml of a synthesized source (missing: the run reports it)
            parts += [_named(file.resolve(), root), file.read_bytes() if file.is_file() else b""]
        own[spec.table] = _digest(parts)
    users = own.get(USERS_TABLE, "")
    return {
        table: value if table == USERS_TABLE else _digest([value.encode(), users.encode()])
        for table, value in own.items()
    }
