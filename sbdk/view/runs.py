"""Runs as the page and the MCP server show them: the history, one run in detail, the run going on now.

The history (sbdk.run.history) says how each run ended; each run's events file (sbdk.run.events) says
what it did, stage by stage and node by node, also while it runs. The last status of every dbt node
comes from the newest runs that ran it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sbdk.run import events as run_events
from sbdk.run import history
from sbdk.run.lock import IN_PROCESS, active_run, holder

SUMMARY_KEYS = ("run_id", "trigger", "status", "started_at", "ended_at", "seconds", "stages", "rows", "kept", "error")
_DBT_COUNTS = ("pass", "fail", "warn", "error", "skipped", "success")
# How many recent runs the last status of each node is looked up in.
STATUS_RUNS = 30


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    out = {key: entry.get(key) for key in SUMMARY_KEYS}
    out["stages"] = out["stages"] or {}
    out["rows"] = out["rows"] or {}
    out["kept"] = out["kept"] or []
    dbt = entry.get("dbt")
    out["dbt"] = {k: v for k, v in dbt.items() if k != "failures"} if isinstance(dbt, dict) else None
    return out


def building(state_dir: Path, lock_file: Path) -> dict[str, Any] | None:
    """The run going on now (in another process, or in this one), or None."""
    info = active_run(lock_file)
    if info is None and IN_PROCESS.writing:
        info = holder(lock_file)
    if not info:
        return None
    running = [r for r in history.read(state_dir) if r.get("status") == "running" and r.get("pid") == info.get("pid")]
    entry = running[-1] if running else {}
    return {
        "run_id": entry.get("run_id"),
        "trigger": entry.get("trigger") or info.get("command"),
        "started_at": entry.get("started_at"),
        "pid": info.get("pid"),
    }


def recent(state_dir: Path, limit: int) -> list[dict[str, Any]]:
    return [summary(entry) for entry in history.last(state_dir, limit)]


def detail(state_dir: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """One run: its record, its stages and every dbt node it ran, from its events file."""
    run = summary(entry)
    run.update({key: entry.get(key) for key in ("options", "dbt_skipped", "days")})
    events = run_events.read_events(state_dir, str(entry.get("run_id")))
    stages: list[dict[str, Any]] = []
    nodes: dict[str, dict[str, Any]] = {}
    tables: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "stage":
            stages.append({"name": event.get("stage"), "detail": event.get("detail"), "seconds": None})
        elif kind == "stage_finished" and stages:
            stages[-1]["seconds"] = event.get("seconds")
        elif kind == "node_started":
            key = f"running:{event.get('name')}"
            nodes[key] = {
                "unique_id": None,
                "name": event.get("name"),
                "resource_type": event.get("resource_type"),
                "status": "running",
                "seconds": None,
                "message": None,
            }
        elif kind == "node_finished":
            nodes.pop(f"running:{event.get('name')}", None)
            nodes[str(event.get("unique_id"))] = {
                "unique_id": event.get("unique_id"),
                "name": event.get("name"),
                "resource_type": event.get("resource_type"),
                "status": event.get("status"),
                "seconds": event.get("seconds"),
                "message": event.get("message"),
                "failures": event.get("failures"),
            }
        elif kind in ("table_done", "table_kept"):
            tables.append({"table": event.get("table"), "rows": event.get("rows"), "kept": kind == "table_kept"})
    # The history's stage seconds are the run's own figures; the events only fill in what it lacks.
    for stage in stages:
        recorded = run["stages"].get(stage["name"])
        if recorded is not None:
            stage["seconds"] = recorded
    if not stages:
        stages = [{"name": name, "detail": None, "seconds": secs} for name, secs in run["stages"].items()]
    return {
        "run": run,
        "live": entry.get("status") == "running",
        "stages": stages,
        "tables": tables,
        "nodes": list(nodes.values()),
        "events": len(events),
    }


def last_statuses(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The last status of each dbt node (by unique id), from the newest runs that ran it."""
    folder = run_events.events_dir(state_dir)
    try:
        files = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns, reverse=True)[:STATUS_RUNS]
    except OSError:
        return {}
    statuses: dict[str, dict[str, Any]] = {}
    for path in files:
        for event in run_events.read_events(state_dir, path.stem):
            if event.get("event") != "node_finished" or not event.get("unique_id"):
                continue
            uid = str(event["unique_id"])
            if uid in statuses and statuses[uid]["run_id"] != path.stem:
                continue  # a newer run ran it
            statuses[uid] = {
                "status": event.get("status"),
                "seconds": event.get("seconds"),
                "message": event.get("message"),
                "run_id": path.stem,
                "at": event.get("ts"),
            }
    return statuses


def test_counts(statuses: dict[str, dict[str, Any]], test_ids: set[str]) -> dict[str, int]:
    counts = dict.fromkeys(("pass", "fail", "warn", "error", "skipped"), 0)
    for uid in test_ids:
        status = (statuses.get(uid) or {}).get("status")
        if status in counts:
            counts[str(status)] += 1
    counts["total"] = len(test_ids)
    counts["not_run"] = len(test_ids) - sum(counts[k] for k in ("pass", "fail", "warn", "error", "skipped"))
    return counts
