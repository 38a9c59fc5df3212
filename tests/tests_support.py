"""Builders shared by slow test modules (kept out of conftest so fixtures stay explicit)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sbdk.config import load_settings
from sbdk.runner import RunPlan, run
from sbdk.scaffold import InitOptions, init_project

SMALL = {"users": 200, "events": 1_000, "orders": 400}


def build_project(parent: Path, name: str = "demo") -> Path:
    """`sbdk init` + a full `sbdk dev`, asserting it succeeded."""
    root = init_project(InitOptions(folder=parent / name, as_of=date(2026, 11, 1), **SMALL)).root
    report = run(load_settings(root / "sbdk_config.json"), RunPlan())
    assert report.success, [(n.name, n.message) for n in report.dbt.failures]
    return root
