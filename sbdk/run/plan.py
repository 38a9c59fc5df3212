"""What a run does: a value the CLI, the watcher and the server build and the runner carries out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from sbdk.settings import DataVolume


class Trigger(str, Enum):
    """Who started a run (recorded in the history and the run log)."""

    DEV = "sbdk dev"
    WATCH = "sbdk start"
    WEBHOOK = "sbdk webhooks"
    MCP = "sbdk mcp"  # a coding agent's build tool (`sbdk mcp --allow-runs`)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RunPlan:
    """What a run does. The defaults are a full `sbdk dev`."""

    pipelines: bool = True
    dbt: bool = True
    tables: frozenset[str] | None = None  # only these pipelines (table or file names); None = all
    select: tuple[str, ...] = ()  # dbt selection; () = everything
    deps: bool = False  # `dbt deps` first (packages.yml changed); missing packages are installed anyway
    incremental: bool = False
    # Keep the raw tables whose data is what their pipelines would make now (their fingerprint), and
    # build in dbt only what changed since the last successful build (`sbdk dev`; not with --fresh).
    keep_unchanged: bool = False
    full_build: bool = False  # a full dbt build even when dbt's state says nothing changed (--full)
    volume: DataVolume | None = None
    seed: int | None = None
    fail_fast: bool = False
    verbose: bool = False
    trigger: str = Trigger.DEV

    @property
    def full_reload(self) -> bool:
        """Every table replaced: the moment for an automatic backup."""
        return self.pipelines and not self.incremental and self.tables is None

    def options(self) -> dict[str, Any]:
        return {
            "pipelines": self.pipelines,
            "dbt": self.dbt,
            "tables": sorted(self.tables) if self.tables is not None else None,
            "select": list(self.select),
            "deps": self.deps,
            "incremental": self.incremental,
            "keep_unchanged": self.keep_unchanged,
            "full_build": self.full_build,
            "volume": self.volume.as_dict() if self.volume else None,
            "seed": self.seed,
            "fail_fast": self.fail_fast,
        }
