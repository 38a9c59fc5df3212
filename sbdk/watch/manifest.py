"""dbt's last parse, read to name a plan's nodes before running it.

dbt writes each parse to two files: target/manifest.json (unless `--no-write-json`) and, whenever
the parse changed anything, its partial-parse cache target/partial_parse.msgpack (the same nodes and
sources, in msgpack). The watcher reads whichever was written last, so a rebuild that skips dbt's
JSON artifacts (`--no-write-json`, ~0.07 s of a warm leaf rebuild) still leaves the graph of its
parse for the next plan.

Only ever read, never handed back to dbt: a manifest reused across file changes makes dbt rebuild
the old SQL (NOTES.md, "dbt in-process"), so every rebuild parses again (partially).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# What `dbt build` runs: the nodes a rebuild counts.
BUILT_TYPES = frozenset({"model", "test", "seed", "snapshot", "unit_test"})
# What a `<name>+` selector can start from.
_SELECTABLE_TYPES = ("model", "seed", "snapshot")
MANIFEST_FILE = "manifest.json"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


class Manifest:
    """The graph of dbt's last parse: its nodes, sources and who depends on whom."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.nodes: dict[str, dict[str, Any]] = data.get("nodes") or {}
        self.sources: dict[str, dict[str, Any]] = data.get("sources") or {}
        self.child_map: dict[str, list[str]] = data.get("child_map") or {}

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        """The manifest at `path`; None when there is none yet or it cannot be read."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(data) if isinstance(data, dict) else None

    @classmethod
    def read_partial_parse(cls, path: Path) -> Manifest | None:
        """The parse in dbt's partial-parse cache at `path`; None when there is none or it cannot be read.

        Its nodes and sources are manifest.json's; it has no child map, which is what the nodes
        depend on, reversed. A private file of dbt's: anything unexpected in it reads as None."""
        try:
            import msgpack  # dbt's own dependency, as is the file

            data = msgpack.unpackb(path.read_bytes(), raw=False, strict_map_key=False)
        except (ImportError, OSError, ValueError, TypeError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
            return None
        children: dict[str, list[str]] = {}
        for unique_id, node in data["nodes"].items():
            for parent in ((node or {}).get("depends_on") or {}).get("nodes") or ():
                children.setdefault(parent, []).append(unique_id)
        return cls({"nodes": data["nodes"], "sources": data.get("sources"), "child_map": children})

    @classmethod
    def latest(cls, target_dir: Path) -> Manifest | None:
        """dbt's last parse in its target folder: from manifest.json or the partial-parse cache,
        whichever was written last (the other when that one cannot be read); None without either."""
        readers = [(cls.read, target_dir / MANIFEST_FILE), (cls.read_partial_parse, target_dir / PARTIAL_PARSE_FILE)]
        written = []
        for reader, path in readers:
            try:
                written.append((path.stat().st_mtime_ns, reader, path))
            except OSError:
                continue
        for _, reader, path in sorted(written, key=lambda item: item[0], reverse=True):
            manifest = reader(path)
            if manifest is not None:
                return manifest
        return None

    def find(self, name: str, types: Iterable[str] = _SELECTABLE_TYPES) -> str | None:
        """The unique id of the node called `name` among `types`."""
        types = set(types)
        for unique_id, node in self.nodes.items():
            if node.get("name") == name and node.get("resource_type") in types:
                return unique_id
        return None

    def selectable_children(self, unique_id: str) -> list[str]:
        """The names of the models, seeds and snapshots built directly on `unique_id`, sorted."""
        return sorted(
            self.nodes[child]["name"]
            for child in self.child_map.get(unique_id, ())
            if self.nodes.get(child, {}).get("resource_type") in _SELECTABLE_TYPES
        )

    def source_ids(self, source_name: str, table: str | None = None) -> list[str]:
        """The unique ids of the tables of dbt source `source_name` (only `table`, when given)."""
        return sorted(
            uid
            for uid, source in self.sources.items()
            if source.get("source_name") == source_name and table in (None, source.get("name"))
        )

    def file_of(self, unique_id: str) -> str | None:
        """The file that defines a node, relative to the dbt project (`models/staging/x.sql`)."""
        return (self.nodes.get(unique_id) or {}).get("original_file_path")

    def relations_from(self, relative: str) -> list[tuple[str, str, str]]:
        """(database, schema, name) of the relations built by the models, seeds and snapshots
        defined in the file `relative` (a path in the dbt project), or in any file under it."""
        prefix = relative.rstrip("/") + "/"
        return sorted(
            (str(node.get("database") or ""), str(node["schema"]), str(node.get("alias") or node["name"]))
            for node in self.nodes.values()
            if node.get("resource_type") in _SELECTABLE_TYPES
            and node.get("schema")
            and (node.get("config") or {}).get("materialized") != "ephemeral"
            and (node.get("original_file_path") == relative or str(node.get("original_file_path")).startswith(prefix))
        )

    def source_selector(self, table: str) -> str | None:
        """`source:<source>.<table>+` for the dbt source that reads `table`, if any does."""
        for source in self.sources.values():
            if table in (source.get("identifier"), source.get("name")):
                return f"source:{source.get('source_name')}.{source.get('name')}+"
        return None

    def count(self, select: Sequence[str]) -> int | None:
        """How many models, tests, seeds and snapshots `dbt build --select <select>` runs; None
        when a selector is not understood or names something this parse did not know."""
        if not select:
            return sum(1 for node in self.nodes.values() if node.get("resource_type") in BUILT_TYPES)
        chosen: set[str] = set()
        for selector in select:
            selected = self._selected(selector)
            if selected is None:
                return None
            chosen |= selected
        return sum(1 for uid in chosen if (self.nodes.get(uid) or {}).get("resource_type") in BUILT_TYPES)

    def _selected(self, selector: str) -> set[str] | None:
        """The unique ids one selector picks (`name`, `name+`, `source:s.t+`, `test_name:n`)."""
        if selector.startswith("test_name:"):
            name = selector.split(":", 1)[1]
            return {uid for uid, node in self.nodes.items() if (node.get("test_metadata") or {}).get("name") == name}
        base, downstream = (selector[:-1], True) if selector.endswith("+") else (selector, False)
        start = self._start(base)
        if start is None:
            return None
        return {start} | (self._descendants(start) if downstream else set())

    def _start(self, base: str) -> str | None:
        if base.startswith("source:"):
            source_name, _, table = base.split(":", 1)[1].partition(".")
            return next(
                (
                    uid
                    for uid, s in self.sources.items()
                    if s.get("source_name") == source_name and s.get("name") == table
                ),
                None,
            )
        if ":" in base:  # path:, tag: and the like: not worth resolving here
            return None
        return self.find(base, BUILT_TYPES)

    def _descendants(self, start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for child in self.child_map.get(todo.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen
