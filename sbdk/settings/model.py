"""What the rest of sbdk receives: frozen settings values, and the constants they are checked against.

Standard library only, so that importing `sbdk.settings` stays cheap (`sbdk --help` does).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from sbdk.errors import UsageError

CONFIG_FILENAME = "sbdk_config.json"
ENV_PREFIX = "SBDK_"
# One table of 50 million rows is ~5 GB in DuckDB: a laptop sandbox past that is a mistake, not a plan.
MAX_ROWS_PER_TABLE = 50_000_000
MAX_SEED = 2**32 - 1
MAX_BACKUPS_KEPT = 1000
# The generated history reaches years before as_of; from a date near year 1 it would reach timestamps
# before the common era, which Python's datetime, pyarrow and DuckDB do not agree on.
EARLIEST_AS_OF = date(2000, 1, 1)
# "dev" is always the project's DuckDB file; other targets are declared under "targets".
DEV_TARGET = "dev"
TARGET_TYPES = ("duckdb", "postgres")

DEFAULTS: dict[str, Any] = {
    "project": None,  # defaults to the project folder's name
    "target": "dev",
    "duckdb_path": "data/dev.duckdb",
    "pipelines_path": "pipelines",
    "dbt_path": "dbt",
    "profiles_dir": "profiles",
    "seed": 42,
    # End of the generated history, so data is reproducible on any day (DESIGN.md §3).
    "as_of": "2026-01-01",
    "data_volume": {"users": 10_000, "events": 50_000, "orders": 20_000},
    "tracking": {"enabled": False, "uuid": None, "endpoint": "http://127.0.0.1:8000"},
    # branch None: follow the repository's default branch, as each delivery names it.
    "webhooks": {"branch": None, "cors_origins": []},
    "backups": {"keep": 0},
    "targets": {},
    # Where run notifications go: a list of {"url": <Apprise URL>, "events": [...]} (sbdk.notify).
    "notify": [],
    # Transient failures (a server refusing connections, a file briefly held) are retried this often.
    "retries": {"attempts": 3, "max_seconds": 30},
}
# What a notification target can ask for ("events"); the defaults are all but "succeeded".
NOTIFY_EVENTS = ("failed", "tests_failed", "recovered", "schema_changed", "succeeded")
DEFAULT_NOTIFY_EVENTS = ("failed", "tests_failed", "recovered", "schema_changed")
MAX_RETRY_ATTEMPTS = 10
# Keys that may only come from the environment or .env, never from a committed config file
# (and so do every target's password: targets.<name>.password).
SECRET_KEYS = ("webhook_secret",)


@dataclass(frozen=True)
class DataVolume:
    users: int
    events: int
    orders: int

    def as_dict(self) -> dict[str, int]:
        return {"users": self.users, "events": self.events, "orders": self.orders}


@dataclass(frozen=True)
class Tracking:
    enabled: bool
    uuid: str | None
    endpoint: str


@dataclass(frozen=True)
class Webhooks:
    branch: str | None  # None: the repository's default branch, as each delivery names it
    cors_origins: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """Where a run loads and builds: the local DuckDB file ("dev") or a server."""

    name: str
    type: str  # duckdb | postgres
    host: str | None = None
    port: int = 5432
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str = "analytics"  # where dbt builds its models (raw tables live in schema "raw")
    connect_timeout: int = 5

    @property
    def password_variable(self) -> str:
        return f"{ENV_PREFIX}TARGETS__{self.name.upper()}__PASSWORD"

    def describe(self) -> str:
        if self.type == "duckdb":
            return "the local DuckDB file"
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class NotifyTarget:
    """One place notifications go. `url` is an Apprise URL; `${NAME}` in it is replaced, when sending,
    by that variable of the environment or the project's .env, so a token never sits in the file."""

    url: str
    events: frozenset[str]


@dataclass(frozen=True)
class Retries:
    attempts: int  # tries in all, 1 = no retry
    max_seconds: int  # the longest a step may spend retrying


@dataclass(frozen=True)
class Backups:
    keep: int  # automatic backups kept before each full run (0: none)


@dataclass(frozen=True)
class ProjectPaths:
    """Every path sbdk touches, derived from the project root (so tests need only tmp_path)."""

    root: Path
    config_file: Path
    duckdb_path: Path
    pipelines_dir: Path
    dbt_project_dir: Path
    profiles_dir: Path

    @property
    def state_dir(self) -> Path:
        return self.root / ".sbdk"

    @property
    def dlt_dir(self) -> Path:
        return self.state_dir / "dlt"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "run.lock"

    @property
    def server_db(self) -> Path:
        return self.state_dir / "server.duckdb"

    @property
    def env_file(self) -> Path:
        return self.root / ".env"

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups"

    @property
    def run_logs_dir(self) -> Path:
        return self.root / "logs"


@dataclass(frozen=True)
class Settings:
    project: str
    target: str
    seed: int
    as_of: date
    data_volume: DataVolume
    tracking: Tracking
    webhooks: Webhooks
    backups: Backups
    paths: ProjectPaths
    targets: tuple[Target, ...] = ()
    notify: tuple[NotifyTarget, ...] = ()
    retries: Retries = Retries(attempts=3, max_seconds=30)
    webhook_secret: str | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    @property
    def active_target(self) -> Target:
        for target in self.targets:
            if target.name == self.target:
                return target
        return Target(name=DEV_TARGET, type="duckdb")

    def with_target(self, name: str) -> Settings:
        """The same settings, running against another declared target (`sbdk dev --target`)."""
        known = [DEV_TARGET, *(t.name for t in self.targets)]
        if name not in known:
            raise UsageError(
                f"--target {name!r} is not a target of this project (known: {', '.join(known)}).",
                hint='Declare it under "targets" in sbdk_config.json (see the README).',
            )
        return replace(self, target=name)
