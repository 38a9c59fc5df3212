"""`ProjectView`: one read model of a project, shared by the page (`sbdk ui`) and the MCP server.

Catalog and lineage come from dbt's parse (sbdk.view.catalog), runs from the history and the runs'
event files (sbdk.view.runs), data from the database (sbdk.view.data), SQL through `sbdk query`'s
read-only path. Nothing here writes.

Never in the way of a build: the database is opened read-only for one answer and closed at once.
While a run is going (in any process) nothing is read from the file, which may be between two steps
of the run: the answer is the last one read before the run, marked `stale`, or, when there is none,
a LockError that says a build is running. A read that meets another program's lock tries again for
a moment first. Answers are kept until the file changes, so a page that polls costs nearly nothing.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sbdk.errors import LockError, NotLoadedError, SbdkError, UsageError
from sbdk.run import history
from sbdk.run.lock import IN_PROCESS
from sbdk.settings import Settings
from sbdk.view import data, runs
from sbdk.view.catalog import RELATION_TYPES, Catalog, ManifestCache, layer_of, relation_of

CACHED_ANSWERS = 256
LOCK_WAIT = 1.0  # seconds a read waits for another program's lock before showing the last state
MAX_PAGE_ROWS = 500
MAX_QUERY_ROWS = 10_000


class ProjectView:
    """Everything the page and the MCP server show of the project at `settings`."""

    def __init__(self, settings: Settings) -> None:
        from sbdk.watch.layout import Layout

        self.settings = settings
        self.layout = Layout.of(settings)
        self.manifest = ManifestCache(self.layout.target_dir)
        self._cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- where things are

    @property
    def state_dir(self) -> Path:
        return self.settings.paths.state_dir

    @property
    def db_path(self) -> Path:
        return self.settings.paths.duckdb_path

    def catalog(self) -> Catalog:
        return self.manifest.get()

    def building(self) -> dict[str, Any] | None:
        return runs.building(self.state_dir, self.settings.paths.lock_file)

    def _reads_duckdb(self) -> None:
        target = self.settings.active_target
        if target.type != "duckdb":
            raise UsageError(
                f"The data of target {target.name!r} ({target.describe()}) is not shown here: the page and the MCP "
                "server read rows, profiles, charts and SQL from the project's DuckDB file only.",
                hint="Runs, lineage and models are shown for every target; query that target with its own client, "
                "or run `sbdk dev --target dev` to build the DuckDB file.",
            )

    # -- reading the database

    def _generation(self) -> tuple[Any, ...]:
        stamps: list[tuple[int, int] | None] = []
        for path in (self.db_path, self.db_path.with_name(self.db_path.name + ".wal")):
            try:
                stat = path.stat()
                stamps.append((stat.st_mtime_ns, stat.st_size))
            except OSError:
                stamps.append(None)
        return tuple(stamps)

    def _read(self, key: tuple[Any, ...], read: Callable[[Any], Any]) -> tuple[Any, dict[str, Any] | None]:
        """(answer, the run going on when the answer is the last one read before it, else None)."""
        from sbdk.stores.duckdb import connect_read_only

        self._reads_duckdb()
        building = self.building()
        held: LockError | None = None
        if building is None:
            generation = self._generation()
            with self._cache_lock:
                if (generation, *key) in self._cache:
                    self._cache.move_to_end((generation, *key))
                    return self._cache[(generation, *key)], None
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    with IN_PROCESS.read(), connect_read_only(self.db_path) as con:
                        answer = read(con)
                    held = None
                    break
                except LockError as exc:  # a run started meanwhile, or another program holds the file
                    held, building = exc, self.building()
                    if building is not None or time.monotonic() >= deadline:
                        break
                    time.sleep(0.1)
            if held is None:
                with self._cache_lock:
                    self._cache[(generation, *key)] = answer
                    while len(self._cache) > CACHED_ANSWERS:
                        self._cache.popitem(last=False)
                return answer, None
        with self._cache_lock:
            for cached_key in reversed(self._cache):
                if cached_key[1:] == key:
                    return self._cache[cached_key], building or {"run_id": None, "trigger": "another program"}
        if building is None and held is not None:
            raise held  # another program's lock: its message names the program
        raise LockError(
            f"A build is running ({(building or {}).get('trigger') or 'a run'}): the data shows again when it has "
            "finished.",
            hint="Read again when the run has finished (the page refreshes by itself).",
        )

    @staticmethod
    def _marked(answer: dict[str, Any], building: dict[str, Any] | None) -> dict[str, Any]:
        if building is None:
            return answer
        return {**answer, "stale": True, "building": building}

    def _relation(self, unique_id: str) -> tuple[str, str]:
        node = self.catalog().nodes.get(unique_id)
        relation = relation_of(node) if node else None
        if relation is None:
            raise UsageError(
                f"{unique_id} is not a table or view in the database (a test, an exposure or an ephemeral model).",
                hint="Pick a model, seed, snapshot or source.",
            )
        return relation

    # -- the overview

    def overview(self) -> dict[str, Any]:
        target = self.settings.active_target
        statuses = runs.last_statuses(self.state_dir)
        try:
            catalog: Catalog | None = self.catalog()
        except NotLoadedError:  # dbt never parsed the project: shown as such (`parsed`)
            catalog = None
        recent = history.last(self.state_dir, 1)
        last_run = runs.summary(recent[0]) if recent else None
        tables: list[dict[str, Any]] = []
        data_note: str | None = None
        stale = False
        building = self.building()
        try:
            found, was_building = self._read(("relations",), data.relations)
            stale = was_building is not None
            tables = self._tables(found, catalog)
        except LockError:
            stale = True
        except NotLoadedError:  # no database yet: the next steps say to run `sbdk dev`
            pass
        except UsageError as exc:  # a target whose data the page does not read
            data_note = exc.message
        tests = runs.test_counts(
            statuses, {uid for uid, n in (catalog.nodes.items() if catalog else ()) if n.get("resource_type") == "test"}
        )
        return {
            "project": self.settings.project,
            "target": {"name": target.name, "type": target.type, "describe": target.describe()},
            "dbt_project": str(self.settings.paths.dbt_project_dir),
            "database": str(self.db_path),
            "last_run": last_run,
            "tables": tables,
            "tests": tests,
            "next_steps": self._next_steps(last_run, statuses, catalog),
            "building": building,
            "stale": stale,
            "parsed": catalog is not None,
            "data_note": data_note,
        }

    def _tables(self, found: dict[tuple[str, str], dict[str, Any]], catalog: Catalog | None) -> list[dict[str, Any]]:
        by_relation: dict[tuple[str, str], tuple[str | None, dict[str, Any] | None]] = {}
        for uid, node in catalog.nodes.items() if catalog else ():
            relation = relation_of(node)
            if relation:
                by_relation.setdefault(relation, (uid, node))
        order = {
            "raw": 0,
            "source": 0,
            "seed": 1,
            "staging": 2,
            "intermediate": 3,
            "mart": 4,
            "model": 5,
            "snapshot": 6,
            "other": 7,
        }
        out = []
        for (schema, name), info in found.items():
            known_id, known = by_relation.get((schema, name)) or (None, None)
            kind = "raw" if schema == "raw" else (layer_of(known) if known else "other")
            out.append(
                {
                    "schema": schema,
                    "name": name,
                    "type": info["type"],
                    "kind": kind,
                    "rows": info["rows"],
                    "unique_id": known_id,
                }
            )
        out.sort(key=lambda t: (order.get(t["kind"], 9), t["schema"], t["name"]))
        return out

    def _next_steps(
        self, last_run: dict[str, Any] | None, statuses: dict[str, Any], catalog: Catalog | None
    ) -> list[str]:
        if last_run is None:
            return ["Run `sbdk dev` to generate the data, load it and build the dbt project."]
        steps = []
        failed = [(uid, s) for uid, s in statuses.items() if s.get("status") in ("error", "fail")]
        for uid, status in failed[:5]:
            node = (catalog.nodes.get(uid) if catalog else None) or {}
            where = node.get("original_file_path") or uid
            steps.append(
                f"{node.get('name') or uid} {status['status']}ed: fix {where}, then `sbdk dev` (or save it while `sbdk start` runs)."
            )
        if last_run.get("status") in ("failed", "killed", "interrupted") and not failed:
            error = last_run.get("error") or f"the last run {last_run.get('status')}"
            steps.append(f"{error} — see `sbdk history {last_run.get('run_id')}`, then run `sbdk dev` again.")
        return steps

    # -- runs

    def runs(self, limit: int = 50) -> dict[str, Any]:
        return {"runs": runs.recent(self.state_dir, max(1, min(limit, 500))), "building": self.building()}

    def run(self, run_id: str) -> dict[str, Any]:
        entry = history.find(self.state_dir, run_id)
        out = runs.detail(self.state_dir, entry)
        failures = []
        try:
            catalog: Catalog | None = self.catalog()
        except NotLoadedError:  # the run's failures are shown without SQL when dbt never parsed
            catalog = None
        for node in out["nodes"]:
            if node["status"] in ("error", "fail"):
                failures.append(
                    {**node, "compiled_sql": self._compiled(catalog, node.get("unique_id")) if catalog else None}
                )
        if not failures and isinstance(entry.get("dbt"), dict):
            failures = [{**f, "unique_id": None, "compiled_sql": None} for f in entry["dbt"].get("failures") or []]
        out["failures"] = failures
        return out

    # -- the dbt graph

    def lineage(self) -> dict[str, Any]:
        catalog = self.catalog()
        statuses = runs.last_statuses(self.state_dir)
        nodes = [
            {
                "id": uid,
                "name": node.get("name"),
                "resource_type": node.get("resource_type"),
                "layer": layer_of(node),
                "status": (statuses.get(uid) or {}).get("status"),
                "materialized": (node.get("config") or {}).get("materialized"),
                "description": node.get("description") or "",
                "package": node.get("package_name"),
            }
            for uid, node in sorted(catalog.nodes.items())
        ]
        edges = [
            {"source": parent, "target": uid} for uid, parents in sorted(catalog.parents.items()) for parent in parents
        ]
        return {"nodes": nodes, "edges": edges}

    def resolve(self, name: str) -> str:
        return self.catalog().resolve(name)

    def neighbours(self, unique_id: str, direction: str = "both", depth: int | None = None) -> dict[str, Any]:
        catalog = self.catalog()
        if unique_id not in catalog.nodes:
            unique_id = catalog.resolve(unique_id)
        return catalog.neighbours(unique_id, direction, depth)

    def _summary(self, uid: str, node: dict[str, Any]) -> dict[str, Any]:
        relation = relation_of(node)
        return {
            "id": uid,
            "name": node.get("name"),
            "resource_type": node.get("resource_type"),
            "layer": layer_of(node),
            "materialized": (node.get("config") or {}).get("materialized"),
            "description": node.get("description") or "",
            "relation": ".".join(relation) if relation else None,
        }

    def models(self) -> list[dict[str, Any]]:
        catalog = self.catalog()
        return [
            self._summary(uid, node)
            for uid, node in sorted(catalog.nodes.items())
            if node.get("resource_type") in ("model", "seed", "snapshot")
        ]

    def sources(self) -> list[dict[str, Any]]:
        catalog = self.catalog()
        return [
            {
                **self._summary(uid, node),
                "source_name": node.get("source_name"),
                "columns": [
                    {"name": c.get("name"), "type": c.get("data_type"), "description": c.get("description") or ""}
                    for c in (node.get("columns") or {}).values()
                ],
            }
            for uid, node in sorted(catalog.nodes.items())
            if node.get("resource_type") == "source"
        ]

    def node(self, unique_id: str) -> dict[str, Any]:
        catalog = self.catalog()
        if unique_id not in catalog.nodes:
            unique_id = catalog.resolve(unique_id)
        node = catalog.nodes[unique_id]
        statuses = runs.last_statuses(self.state_dir)
        relation = relation_of(node)
        declared = {str(name).lower(): c for name, c in (node.get("columns") or {}).items()}
        db_columns: list[tuple[str, str]] = []
        rows: int | None = None
        chart = None
        stale = None
        if relation is not None and self.settings.active_target.type == "duckdb":
            try:
                (db_columns, rows, chart), stale = self._read(("node", relation), lambda con: _described(con, relation))
            except SbdkError:  # busy or not built yet: the node is described from dbt's side only
                pass
        columns = [
            {"name": name, "type": kind, "description": (declared.get(name.lower()) or {}).get("description") or ""}
            for name, kind in db_columns
        ]
        seen = {c["name"].lower() for c in columns}
        columns += [
            {"name": c.get("name"), "type": c.get("data_type"), "description": c.get("description") or ""}
            for key, c in declared.items()
            if key not in seen
        ]
        tests = [
            {
                "id": uid,
                "name": catalog.nodes[uid].get("name"),
                "column": catalog.nodes[uid].get("column_name"),
                "status": (statuses.get(uid) or {}).get("status"),
                "message": (statuses.get(uid) or {}).get("message"),
            }
            for uid in catalog.children.get(unique_id, ())
            if catalog.nodes[uid].get("resource_type") in ("test", "unit_test")
        ]
        status = statuses.get(unique_id) or {}
        answer = {
            **self._summary(unique_id, node),
            "package": node.get("package_name"),
            "relation": {"schema": relation[0], "name": relation[1]} if relation else None,
            "path": node.get("original_file_path"),
            "columns": columns,
            "tests": tests,
            "raw_sql": node.get("raw_code") or node.get("raw_sql") or "",
            "compiled_sql": self._compiled(catalog, unique_id),
            "parents": catalog.parents.get(unique_id, []),
            "children": catalog.children.get(unique_id, []),
            "status": status.get("status"),
            "status_message": status.get("message"),
            "last_seconds": status.get("seconds"),
            "rows": rows,
            "chart": chart,
        }
        if node.get("resource_type") == "source":
            answer["source_name"] = node.get("source_name")
            answer["loaded_at_field"] = node.get("loaded_at_field")
        if node.get("resource_type") == "exposure":
            answer["owner"] = node.get("owner")
            answer["url"] = node.get("url")
        return self._marked(answer, stale)

    def _compiled(self, catalog: Catalog, unique_id: str | None) -> str | None:
        node = catalog.nodes.get(unique_id or "") or {}
        if node.get("compiled_code"):
            return str(node["compiled_code"])
        if node.get("resource_type") not in ("model", "test", "snapshot", "analysis"):
            return None
        path = node.get("original_file_path")
        if not path:
            return None
        # `dbt build` writes each node's compiled SQL under target/compiled/<package>/<its file>.
        folder = self.layout.target_dir / "compiled" / str(node.get("package_name"))
        candidates = [folder / path]
        if node.get("resource_type") == "test" and str(path).endswith((".yml", ".yaml")):
            candidates = [folder / path / f"{node.get('alias') or node.get('name')}.sql"]
        for candidate in candidates:
            try:
                return candidate.read_text(encoding="utf-8")
            except OSError:
                continue
        return None

    # -- data

    def rows(self, unique_id: str, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        relation = self._relation(self._id(unique_id))
        offset, limit = max(0, int(offset)), max(1, min(int(limit), MAX_PAGE_ROWS))
        answer, building = self._read(
            ("rows", relation, offset, limit), lambda con: data.rows(con, relation, offset, limit)
        )
        return self._marked(answer, building)

    def profile(self, unique_id: str) -> dict[str, Any]:
        relation = self._relation(self._id(unique_id))
        answer, building = self._read(("profile", relation), lambda con: data.profile(con, relation))
        return self._marked(answer, building)

    def chart(self, unique_id: str, x: str | None = None, y: list[str] | None = None) -> dict[str, Any]:
        relation = self._relation(self._id(unique_id))
        wanted = list(y or [])
        answer, building = self._read(
            ("chart", relation, x, tuple(wanted)), lambda con: data.chart(con, relation, x, wanted)
        )
        if answer is None:
            raise UsageError(f"{relation[1]} has no numeric column to chart.", hint="Query it in the SQL box instead.")
        return self._marked(answer, building)

    def _id(self, name: str) -> str:
        catalog = self.catalog()
        return name if name in catalog.nodes else catalog.resolve(name)

    def query(
        self, sql: str, limit: int = 1000, timeout: float = 10.0, caller: str = "The query box"
    ) -> dict[str, Any]:
        """Read-only SQL, as `sbdk query` runs it, with a row cap and a time limit (`caller` names who
        refuses a write in the message)."""
        from sbdk.ops.query import run_statements

        limit = max(1, min(int(limit), MAX_QUERY_ROWS))
        building = self.building()
        if building is not None:
            raise LockError(
                f"A build is running ({building.get('trigger') or 'a run'}): queries wait until it has finished.",
                hint="Run the query again when the run has finished.",
            )
        started = time.perf_counter()
        with IN_PROCESS.read():
            result = run_statements(self.settings, sql, limit=limit, timeout=timeout, caller=caller)[-1]
        from sbdk.ops.query import json_value

        return {
            "columns": list(result.columns),
            "types": list(result.types),
            "rows": [[json_value(v) for v in row] for row in result.rows],
            "truncated": result.truncated,
            "limit": limit,
            "seconds": round(time.perf_counter() - started, 3),
        }


def _described(con: Any, relation: tuple[str, str]) -> tuple[list[tuple[str, str]], int | None, dict[str, Any] | None]:
    """A relation's columns, rows and the chart it gets first (None when empty or not there)."""
    cols = data.columns(con, relation)
    if not cols:
        return [], None, None
    rows = data.count(con, relation)
    chart = data.default_chart(cols, data.categories_of(con, relation, cols)) if rows else None
    return cols, rows, chart


__all__ = ["RELATION_TYPES", "ProjectView"]
