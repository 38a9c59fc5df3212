"""`sbdk clean`, and dropping the relations the dbt project no longer defines.

dbt never drops what it stops building: a deleted or renamed model leaves its view or table behind.
Which relations are stale comes from a fresh `dbt parse` (target/manifest.json) against the
database's catalog, and only in the schemas the project owns: those its models, seeds and snapshots
build into. Never `raw`, sbdk's `_sbdk*` schemas, dlt's load schemas, or a schema a dbt source reads
(the data there is not the project's). A stale table that holds snapshot history (a `dbt_scd_id`
column) is kept and named: that history cannot be built again.

Everything runs under the project's run lock, on the store of the active target.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from sbdk.errors import DbtError, SbdkError
from sbdk.run.lock import run_lock
from sbdk.run.reporters import NULL_REPORTER, Reporter
from sbdk.settings import Settings
from sbdk.stores.base import META_SCHEMA, RAW_SCHEMA, quote

COMMAND = "sbdk clean"
# Schemas that are never the project's to clean, whatever the manifest says.
_SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog", "pg_toast"})
# A column dbt adds to every snapshot table.
_SNAPSHOT_COLUMN = "dbt_scd_id"
_BUILT_TYPES = ("model", "seed", "snapshot")

Key = tuple[str, str, str]  # (database, schema, name), case-folded


class RelationKind(str, Enum):
    TABLE = "table"
    VIEW = "view"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Relation:
    """A table or view in the database."""

    database: str
    schema: str
    name: str
    kind: RelationKind = RelationKind.TABLE

    @property
    def key(self) -> Key:
        return relation_key(self.database, self.schema, self.name)

    def __str__(self) -> str:
        return f"{self.kind} {self.schema}.{self.name}"


@dataclass(frozen=True)
class Orphans:
    """Relations in the project's schemas that the project no longer defines."""

    dropped: tuple[Relation, ...] = ()  # dropped (in a dry run: that would be)
    kept: tuple[Relation, ...] = ()  # stale, but holding snapshot history: left for the user to drop


@dataclass(frozen=True)
class Artefact:
    """A folder of build output or working files that `sbdk clean` removes."""

    path: Path
    bytes: int
    what: str  # "dbt's build output", ...


@dataclass(frozen=True)
class CleanReport:
    removed: tuple[Artefact, ...]  # removed (in a dry run: that would be)
    orphans: Orphans | None  # None when the relations could not be checked (`error` says why)
    dry_run: bool
    error: SbdkError | None = None


def relation_key(database: str | None, schema: str, name: str) -> Key:
    return ((database or "").casefold(), schema.casefold(), name.casefold())


def clean(
    settings: Settings, *, dry_run: bool = False, wait: bool = False, reporter: Reporter = NULL_REPORTER
) -> CleanReport:
    """Drop the stale relations, then remove dbt's target/ and logs/ and dlt's working folder.

    Never touches the raw tables, the DuckDB file, backups/, sbdk's run logs (logs/), its run
    history or anything outside the project. When the relations cannot be checked (the project
    does not parse, the database is held by another program) the files are still removed and the
    report carries the error.
    """
    with run_lock(settings.paths.lock_file, COMMAND, wait=wait, reporter=reporter):
        found = _present(artefacts(settings))  # before the parse below writes dbt's target/ and log
        orphans: Orphans | None = None
        error: SbdkError | None = None
        try:
            orphans = _drop_orphans(settings, only=None, dry_run=dry_run, command=COMMAND)
        except SbdkError as exc:
            error = exc
        if not dry_run:
            _remove(found)
        # What that parse created is this command's own output, so it goes even in a dry run.
        known = {artefact.path for artefact in found}
        _remove(_present([(path, what) for path, what in artefacts(settings) if path not in known]))
    return CleanReport(removed=tuple(found), orphans=orphans, dry_run=dry_run, error=error)


def drop_orphans(
    settings: Settings,
    *,
    only: Collection[Key] | None = None,
    dry_run: bool = False,
    wait: bool = False,
    command: str = COMMAND,
    reporter: Reporter = NULL_REPORTER,
) -> Orphans:
    """Drop the relations the project no longer defines (`only` those with these keys, when
    given), under the run lock. Raises DbtError when the project does not parse: what it defines
    is unknown then, so nothing is dropped."""
    with run_lock(settings.paths.lock_file, command, wait=wait, reporter=reporter):
        return _drop_orphans(settings, only=only, dry_run=dry_run, command=command)


def _drop_orphans(settings: Settings, *, only: Collection[Key] | None, dry_run: bool, command: str) -> Orphans:
    from sbdk.stores import store_for

    store = store_for(settings)
    if store.kind == "duckdb" and not settings.paths.duckdb_path.exists():
        return Orphans()  # nothing built yet, and opening the store would create an empty database
    owned, defined = owned_and_defined(_parsed_manifest(settings))
    wanted = None if only is None else {relation_key(*key) for key in only}
    with store.hold(command), store.session() as session:
        con = _connection(session)
        stale = [
            r
            for r in _catalog(con)
            if r.key[:2] in owned and r.key not in defined and (wanted is None or r.key in wanted)
        ]
        history = _snapshot_tables(con) if stale else set()
        kept = tuple(r for r in stale if r.key in history)
        # Views first: on PostgreSQL a view must go before the table it reads.
        drop = tuple(
            sorted((r for r in stale if r.key not in history), key=lambda r: (r.kind is not RelationKind.VIEW, r.key))
        )
        if drop and not dry_run:
            _drop(con, store.kind, drop)
    return Orphans(dropped=drop, kept=kept)


def owned_and_defined(manifest: dict[str, Any]) -> tuple[set[tuple[str, str]], set[Key]]:
    """From a dbt manifest: the (database, schema) pairs the project builds into and owns, and
    every relation it defines (models, seeds, snapshots, stored test failures, sources)."""
    owned: set[tuple[str, str]] = set()
    defined: set[Key] = set()
    # A model switched off (`enabled: false`) is still the project's: dbt lists it under "disabled"
    # (name -> list of nodes), and plain dbt leaves its relation alone, so sbdk does too.
    disabled = [node for nodes in (manifest.get("disabled") or {}).values() for node in nodes or ()]
    for node in [*(manifest.get("nodes") or {}).values(), *disabled]:
        if not node.get("schema"):
            continue
        key = relation_key(node.get("database"), node["schema"], node.get("alias") or node.get("name") or "")
        defined.add(key)
        built = node.get("resource_type") in _BUILT_TYPES
        if built and (node.get("config") or {}).get("materialized") != "ephemeral":
            owned.add(key[:2])
    not_ours: set[tuple[str, str]] = set()
    for source in (manifest.get("sources") or {}).values():
        if not source.get("schema"):
            continue
        key = relation_key(
            source.get("database"), source["schema"], source.get("identifier") or source.get("name") or ""
        )
        defined.add(key)
        not_ours.add(key[:2])
    return {pair for pair in owned - not_ours if not _reserved(pair[1])}, defined


def _reserved(schema: str) -> bool:
    """sbdk's and dlt's own schemas, the raw tables and the database's catalogs."""
    return (
        schema in (RAW_SCHEMA, f"{RAW_SCHEMA}_staging")  # dlt's staging schema for a dataset `raw`
        or schema.startswith(META_SCHEMA)  # _sbdk, and dlt's load schemas _sbdk_load_<n>
        or schema in _SYSTEM_SCHEMAS
    )


def _parsed_manifest(settings: Settings) -> dict[str, Any]:
    """dbt's manifest of the project as it is on disk now: `dbt parse` first (a fraction of a
    second with dbt's partial parsing), so a model deleted since the last build counts as gone."""
    from sbdk.dbt.invoke import run_dbt
    from sbdk.dbt.profiles import check_project
    from sbdk.run.context import RunContext
    from sbdk.run.plan import RunPlan
    from sbdk.watch.layout import Layout

    check_project(settings)
    report = run_dbt(RunContext.of(settings, RunPlan(pipelines=False, trigger=COMMAND)), "parse")
    if not report.success:
        raise DbtError(
            f"dbt cannot parse the project, so which relations are stale is unknown: {report.error or 'see dbt/logs/dbt.log'}",
            hint="Fix the project (`sbdk dev --dbt-only` shows the error), then run `sbdk clean` again.",
        )
    path = Layout.of(settings).target_dir / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DbtError(
            f"Cannot read dbt's manifest {path}: {exc}", hint="Run `sbdk dev --dbt-only`, then again."
        ) from exc
    return data if isinstance(data, dict) else {}


def _connection(session: Any) -> Any:
    """The DB-API connection of a store's session (DuckDB's or psycopg2's)."""
    con = getattr(session, "con", None)
    if con is None:
        raise SbdkError(f"Cannot look for stale relations in a {type(session).__name__}.", hint="Drop them by hand.")
    return con


def _rows(con: Any, sql: str) -> list[tuple[Any, ...]]:
    cursor = con.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _catalog(con: Any) -> list[Relation]:
    rows = _rows(
        con,
        "select table_catalog, table_schema, table_name, table_type from information_schema.tables "
        "where table_catalog = current_database()",
    )
    return [
        Relation(db, schema, name, RelationKind.VIEW if kind == "VIEW" else RelationKind.TABLE)
        for db, schema, name, kind in rows
    ]


def _snapshot_tables(con: Any) -> set[Key]:
    rows = _rows(
        con,
        "select table_catalog, table_schema, table_name from information_schema.columns "
        f"where table_catalog = current_database() and lower(column_name) = '{_SNAPSHOT_COLUMN}'",
    )
    return {relation_key(*row) for row in rows}


def _drop(con: Any, store_kind: str, relations: tuple[Relation, ...]) -> None:
    """Drop `relations` in one transaction: all of them, or (on an error) none."""
    if store_kind == "duckdb":
        con.begin()  # psycopg2 opens a transaction by itself
    current = relations[0]
    try:
        for current in relations:
            cursor = con.cursor()
            try:
                cursor.execute(f"drop {current.kind} if exists {quote(current.schema)}.{quote(current.name)}")
            finally:
                cursor.close()
        con.commit()
    except Exception as exc:  # the driver's error, whichever driver it is
        con.rollback()
        raise SbdkError(
            f"Could not drop the stale {current}: {exc}",
            hint="Nothing was dropped. Drop it yourself, or fix what the database says and run `sbdk clean` again.",
        ) from exc


def artefacts(settings: Settings) -> list[tuple[Path, str]]:
    """The folders `sbdk clean` removes, each with what it is: dbt's build output and log, and
    dlt's working folder. A folder that is (or holds, or is inside) something kept is left out."""
    from sbdk.watch.layout import Layout

    paths = settings.paths
    layout = Layout.of(settings)
    candidates = [
        (layout.target_dir, "dbt's build output"),
        (layout.log_dir, "dbt's log"),
        (paths.dlt_dir, "dlt's working files"),
    ]
    kept = [
        paths.config_file,
        paths.env_file,
        paths.duckdb_path,
        paths.pipelines_dir,
        paths.profiles_dir,
        paths.backups_dir,
        paths.run_logs_dir,
        paths.lock_file,
        paths.server_db,
        layout.dbt_dir / "dbt_project.yml",
        *(folder for folders in layout.resource_dirs.values() for folder in folders),
    ]
    return [
        (path, what)
        for path, what in candidates
        if path != paths.root
        and path.is_relative_to(paths.root)
        and not any(k.is_relative_to(path) or path.is_relative_to(k) for k in kept)
    ]


def _present(candidates: list[tuple[Path, str]]) -> list[Artefact]:
    return [Artefact(path, _size(path), what) for path, what in candidates if path.exists() or path.is_symlink()]


def _remove(found: list[Artefact]) -> None:
    for artefact in found:
        path = artefact.path
        try:
            if path.is_symlink() or not path.is_dir():
                path.unlink(missing_ok=True)  # a link to a folder elsewhere: the link only
            else:
                shutil.rmtree(path)
        except OSError as exc:
            raise SbdkError(
                f"Cannot remove {path}: {exc.strerror or exc}.",
                hint="Check its permissions (or what holds it open), then run `sbdk clean` again.",
            ) from exc


def _size(path: Path) -> int:
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file() and not item.is_symlink():
                total += item.stat().st_size
        except OSError:
            pass
    return total
