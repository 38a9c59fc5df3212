"""The watcher reads dbt's last parse from whichever of its files dbt wrote last: manifest.json or
the partial-parse cache (sbdk.watch.manifest). No dbt run here: small files in dbt's formats."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgpack

from sbdk.watch.manifest import MANIFEST_FILE, PARTIAL_PARSE_FILE, Manifest


def _node(name: str, resource_type: str = "model", depends_on: tuple[str, ...] = ()) -> dict:
    return {
        "name": name,
        "resource_type": resource_type,
        "original_file_path": f"models/{name}.sql",
        "database": "dev",
        "schema": "main",
        "alias": name,
        "config": {"materialized": "table"},
        "depends_on": {"macros": [], "nodes": list(depends_on)},
    }


SOURCE = {"source.p.raw.raw_events": {"source_name": "raw", "name": "raw_events", "identifier": "raw_events"}}
NODES = {
    "model.p.stg": _node("stg", depends_on=("source.p.raw.raw_events",)),
    "model.p.mart": _node("mart", depends_on=("model.p.stg",)),
    "test.p.not_null_mart_id": _node("not_null_mart_id", "test", depends_on=("model.p.mart",)),
}


def _write(target: Path, name: str, data: dict, *, age: int) -> None:
    """Write one of dbt's files as dbt would, `age` seconds ago."""
    path = target / name
    if name == PARTIAL_PARSE_FILE:
        path.write_bytes(msgpack.packb(data, use_bin_type=True))
    else:
        path.write_text(json.dumps(data))
    stamp = path.stat().st_mtime_ns - age * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


def test_the_partial_parse_cache_reads_as_the_manifest_with_its_child_map(tmp_path: Path) -> None:
    # dbt's cache holds the manifest's nodes and sources (and more), but no child map.
    _write(tmp_path, PARTIAL_PARSE_FILE, {"nodes": NODES, "sources": SOURCE, "macros": {}}, age=0)

    manifest = Manifest.read_partial_parse(tmp_path / PARTIAL_PARSE_FILE)

    assert manifest is not None
    assert manifest.count(("stg+",)) == 3
    assert manifest.count(("source:raw.raw_events+",)) == 3
    assert manifest.selectable_children("model.p.stg") == ["mart"]
    assert manifest.relations_from("models/mart.sql") == [("dev", "main", "mart")]


def test_the_file_dbt_wrote_last_is_the_one_read(tmp_path: Path) -> None:
    older = {"nodes": {"model.p.stg": NODES["model.p.stg"]}, "sources": SOURCE, "child_map": {}}
    _write(tmp_path, MANIFEST_FILE, older, age=10)
    _write(tmp_path, PARTIAL_PARSE_FILE, {"nodes": NODES, "sources": SOURCE}, age=5)
    assert Manifest.latest(tmp_path).count(()) == 3  # a rebuild with --no-write-json parsed last

    _write(tmp_path, MANIFEST_FILE, older, age=0)
    assert Manifest.latest(tmp_path).count(()) == 1  # then a build that wrote manifest.json


def test_an_unreadable_cache_falls_back_to_the_manifest(tmp_path: Path) -> None:
    assert Manifest.latest(tmp_path) is None
    _write(tmp_path, MANIFEST_FILE, {"nodes": NODES, "sources": SOURCE, "child_map": {}}, age=10)
    cut_short = msgpack.packb({"nodes": NODES})[:-3]  # dbt killed while writing it
    for damaged in (b"\xc1 not msgpack", cut_short, msgpack.packb(["a", "list"]), msgpack.packb({"nodes": "?"})):
        (tmp_path / PARTIAL_PARSE_FILE).write_bytes(damaged)
        assert Manifest.read_partial_parse(tmp_path / PARTIAL_PARSE_FILE) is None
        assert Manifest.latest(tmp_path).count(()) == 3
