"""The dbt project as the page and the MCP server show it: nodes, layers, lineage, from dbt's own parse.

Read from dbt's target folder: manifest.json, or the partial-parse cache when a watcher rebuild wrote
only that (sbdk.watch.manifest), whichever is newer; read again only when the file changes. Works for
any dbt project, not only sbdk's template: a layer comes from the model's folder (staging,
intermediate, marts) or its name's prefix (stg_, int_, fct_/dim_), else it is just a model.
"""

from __future__ import annotations

import difflib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbdk.errors import NotLoadedError, UsageError

# The kinds of node the page and the MCP server show (dbt's metrics, semantic models... are not).
SHOWN = ("source", "seed", "snapshot", "model", "test", "exposure", "unit_test")
RELATION_TYPES = ("source", "seed", "snapshot", "model")
_FOLDER_LAYERS = {
    "staging": "staging",
    "stg": "staging",
    "intermediate": "intermediate",
    "int": "intermediate",
    "marts": "mart",
    "mart": "mart",
}
_PREFIX_LAYERS = (("stg_", "staging"), ("int_", "intermediate"), ("fct_", "mart"), ("dim_", "mart"))


def layer_of(node: dict[str, Any]) -> str:
    kind = node.get("resource_type")
    if kind != "model":
        return "test" if kind == "unit_test" else str(kind)
    for part in (node.get("fqn") or [])[1:-1]:
        if str(part).lower() in _FOLDER_LAYERS:
            return _FOLDER_LAYERS[str(part).lower()]
    name = str(node.get("name") or "")
    for prefix, layer in _PREFIX_LAYERS:
        if name.startswith(prefix):
            return layer
    return "model"


@dataclass
class Catalog:
    """One parse of the dbt project: every shown node by unique id, and who depends on whom."""

    nodes: dict[str, dict[str, Any]]
    parents: dict[str, list[str]]
    children: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Catalog:
        nodes: dict[str, dict[str, Any]] = {}
        for group in ("nodes", "sources", "exposures", "unit_tests"):
            for unique_id, node in (data.get(group) or {}).items():
                if isinstance(node, dict) and node.get("resource_type") in SHOWN:
                    nodes[unique_id] = node
        parents = {
            uid: [p for p in dict.fromkeys((node.get("depends_on") or {}).get("nodes") or ()) if p in nodes]
            for uid, node in nodes.items()
        }
        children: dict[str, list[str]] = {uid: [] for uid in nodes}
        for uid, ups in parents.items():
            for parent in ups:
                children[parent].append(uid)
        return cls(nodes, parents, children)

    def resolve(self, name: str) -> str:
        """The unique id of the node called `name` (its unique id, name, `source.table`, or a relation
        name like `main.daily_kpis`): models, seeds and snapshots before sources, tests and exposures."""
        wanted = name.strip()
        if wanted in self.nodes:
            return wanted
        lowered = wanted.lower()
        order = {"model": 0, "seed": 1, "snapshot": 2, "source": 3, "exposure": 4, "test": 5, "unit_test": 6}
        found = sorted(
            (uid for uid, node in self.nodes.items() if lowered in self.names_of(uid, node)),
            key=lambda uid: order.get(str(self.nodes[uid].get("resource_type")), 9),
        )
        if found:
            return found[0]
        names = sorted({str(n.get("name")) for n in self.nodes.values() if n.get("resource_type") in RELATION_TYPES})
        close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.5)
        hint = (
            f"Did you mean {', '.join(close)}?"
            if close
            else "List them with the models and sources (`sbdk ui`, or the MCP tools list_models / list_sources)."
        )
        raise UsageError(f"The dbt project has no model, source, seed or test called {name!r}.", hint=hint)

    @staticmethod
    def names_of(uid: str, node: dict[str, Any]) -> set[str]:
        name = str(node.get("name") or "").lower()
        names = {name, uid.lower()}
        if node.get("resource_type") == "source":
            names.add(f"{node.get('source_name')}.{name}".lower())
        relation = relation_of(node)
        if relation:
            names.add(f"{relation[0]}.{relation[1]}".lower())
        return names

    def neighbours(self, unique_id: str, direction: str = "both", depth: int | None = None) -> dict[str, Any]:
        if direction not in ("both", "upstream", "downstream"):
            raise UsageError(f"direction must be upstream, downstream or both, not {direction!r}.")
        out: dict[str, Any] = {"node": unique_id}
        for side, graph in (("upstream", self.parents), ("downstream", self.children)):
            if direction not in (side, "both"):
                continue
            seen: dict[str, int] = {}
            frontier = [unique_id]
            level = 0
            while frontier and (depth is None or level < depth):
                level += 1
                nxt = []
                for uid in frontier:
                    for other in graph.get(uid, ()):
                        if other not in seen and other != unique_id:
                            seen[other] = level
                            nxt.append(other)
                frontier = nxt
            out[side] = [
                {
                    "id": uid,
                    "name": self.nodes[uid].get("name"),
                    "resource_type": self.nodes[uid].get("resource_type"),
                    "depth": d,
                }
                for uid, d in sorted(seen.items(), key=lambda item: (item[1], item[0]))
            ]
        return out


def relation_of(node: dict[str, Any]) -> tuple[str, str] | None:
    """(schema, name) of the relation a model, seed, snapshot or source is in the database."""
    kind = node.get("resource_type")
    if kind not in RELATION_TYPES:
        return None
    if kind == "model" and (node.get("config") or {}).get("materialized") == "ephemeral":
        return None
    name = node.get("identifier") if kind == "source" else (node.get("alias") or node.get("name"))
    schema = node.get("schema")
    return (str(schema), str(name or node.get("name"))) if schema else None


class ManifestCache:
    """dbt's last parse of the project in `target_dir`, read again only when its file changes."""

    def __init__(self, target_dir: Path) -> None:
        self.target_dir = target_dir
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._catalog: Catalog | None = None

    def _candidates(self) -> list[tuple[int, int, Path]]:
        found = []
        for name in ("manifest.json", "partial_parse.msgpack"):
            path = self.target_dir / name
            try:
                stat = path.stat()
            except OSError:
                continue
            found.append((stat.st_mtime_ns, stat.st_size, path))
        return sorted(found, reverse=True)

    def get(self) -> Catalog:
        candidates = self._candidates()
        key = tuple(candidates)
        with self._lock:
            if self._catalog is not None and key == self._key:
                return self._catalog
            for _mtime, _size, path in candidates:
                data = _read(path)
                if data is not None:
                    self._catalog, self._key = Catalog.of(data), key
                    return self._catalog
        raise NotLoadedError(
            f"dbt has not parsed this project yet (no manifest in {self.target_dir}).",
            hint="Run `sbdk dev` once; the page follows every build after it.",
        )


def _read(path: Path) -> dict[str, Any] | None:
    try:
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            import msgpack  # dbt's own dependency, as is the file

            data = msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)
    except (ImportError, OSError, ValueError, TypeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("nodes"), dict) else None
