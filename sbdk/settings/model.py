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
TARGET_TYPES = ("duckdb", "postgres", "spark")
# A spark target's lake and master when the config leaves them out.
DEFAULT_LAKE = "data/lake"
DEFAULT_MASTER = "local[*]"

# fmt: off
# How the synthetic product behaves (sbdk.generators.world; the README explains every knob).
_DATA_PROFILE: dict[str, Any] = {
    # Share of sessions that add a product to the cart; of those, that start checkout; of those, that pay.
    "funnel": {"add_to_cart": 0.18, "checkout": 0.55, "purchase": 0.7},
    # Relative traffic per hour of the day (UTC, 0-23) and per weekday (Monday first).
    "hourly": [
        0.25, 0.18, 0.13, 0.10, 0.10, 0.14, 0.28, 0.50, 0.75, 0.90, 1.00, 1.05,
        1.10, 1.05, 1.00, 1.00, 1.05, 1.15, 1.30, 1.45, 1.50, 1.30, 0.90, 0.50,
    ],
    "weekly": [0.95, 1.00, 1.00, 0.98, 1.02, 1.25, 1.20],
    # Days (month-day) with more traffic than usual, and by how much.
    "holidays": {"11-28": 2.5, "12-01": 1.8, "12-20": 1.5, "12-26": 1.6},
    # Signups grow by this share each month (0.05 = 5 % more signups every month).
    "monthly_growth": 0.05,
    # After signup: the share of users who never come back after their first day; how fast the
    # others' activity halves (days); the share of day-one activity that loyal users keep forever.
    "retention": {"never_return": 0.35, "half_life_days": 20, "long_term": 0.15},
    # Where users live (share of users per country code); the currency of an order follows it.
    "countries": {
        "US": 0.34, "GB": 0.12, "DE": 0.10, "FR": 0.08, "IN": 0.08,
        "BR": 0.07, "ES": 0.06, "IT": 0.06, "NL": 0.05, "SE": 0.04,
    },
    # Unit price range (USD) per product category.
    "prices": {
        "electronics": [25, 1200], "books": [6, 45], "home": [10, 400], "clothing": [12, 180],
        "sports": [10, 350], "beauty": [5, 90], "toys": [8, 120], "grocery": [3, 60],
    },
    # The first load stops this many days before as_of; each `sbdk dev --incremental` adds the next one.
    "incremental_days": 7,
}
# fmt: on

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
    # Orders are not a volume: every order comes from a purchase event (data_profile.funnel).
    "data_volume": {"users": 10_000, "events": 100_000},
    "data_profile": _DATA_PROFILE,
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
# Countries the generators know names and cities for (sbdk.generators._pools.COUNTRIES), and the
# product categories of the default catalogue; data_profile.countries may only name these countries.
COUNTRY_CODES = ("US", "GB", "DE", "FR", "IN", "BR", "ES", "IT", "NL", "SE")
# What a notification target can ask for ("events"); the defaults are all but "succeeded".
NOTIFY_EVENTS = ("failed", "tests_failed", "recovered", "schema_changed", "succeeded")
DEFAULT_NOTIFY_EVENTS = ("failed", "tests_failed", "recovered", "schema_changed")
MAX_RETRY_ATTEMPTS = 10
# Keys that may only come from the environment or .env, never from a committed config file
# (and so do every target's password: targets.<name>.password).
SECRET_KEYS = ("webhook_secret",)


@dataclass(frozen=True)
class DataVolume:
    """Rows of a full load: users and events exactly; orders follow from the purchases (data_profile)."""

    users: int
    events: int

    def as_dict(self) -> dict[str, int]:
        return {"users": self.users, "events": self.events}


@dataclass(frozen=True)
class Funnel:
    """Step rates of a session's story: view -> add_to_cart -> checkout -> purchase (each 0..1)."""

    add_to_cart: float  # share of sessions that add a product to the cart
    checkout: float  # share of carts that go on to checkout
    purchase: float  # share of checkouts that are paid (each one is an order)


@dataclass(frozen=True)
class Retention:
    never_return: float  # share of users active only on their signup day
    half_life_days: float  # the others' activity halves every this many days after signup...
    long_term: float  # ...down to this share of their first day's activity, kept for good


@dataclass(frozen=True)
class DataProfile:
    """How the synthetic product behaves; DEFAULTS["data_profile"] documents every value."""

    funnel: Funnel
    hourly: tuple[float, ...]  # 24 relative weights, hour of day in UTC
    weekly: tuple[float, ...]  # 7 relative weights, Monday first
    holidays: tuple[tuple[int, int, float], ...]  # (month, day, traffic multiplier)
    monthly_growth: float
    retention: Retention
    countries: tuple[tuple[str, float], ...]  # (country code, share of users)
    prices: tuple[tuple[str, float, float], ...]  # (category, lowest, highest unit price in USD)
    incremental_days: int

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataProfile:
        """From a checked `data_profile` section (or DEFAULTS["data_profile"])."""
        holidays = []
        for key, factor in values["holidays"].items():
            month, day = (int(part) for part in key.split("-"))
            holidays.append((month, day, float(factor)))
        return cls(
            funnel=Funnel(**{k: float(v) for k, v in values["funnel"].items()}),
            hourly=tuple(float(v) for v in values["hourly"]),
            weekly=tuple(float(v) for v in values["weekly"]),
            holidays=tuple(sorted(holidays)),
            monthly_growth=float(values["monthly_growth"]),
            retention=Retention(**{k: float(v) for k, v in values["retention"].items()}),
            countries=tuple((code, float(share)) for code, share in values["countries"].items()),
            prices=tuple((name, float(low), float(high)) for name, (low, high) in values["prices"].items()),
            incremental_days=int(values["incremental_days"]),
        )


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
    type: str  # duckdb | postgres | spark
    host: str | None = None
    port: int = 5432
    database: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str = "analytics"  # where dbt builds its models (raw tables live in schema "raw")
    connect_timeout: int = 5
    # spark: where dlt writes the raw tables as Parquet (a folder, absolute or relative to the project,
    # or an object-storage URL), which Spark to run on, and extra Spark settings (key, value).
    lake: str | None = None
    master: str = DEFAULT_MASTER
    conf: tuple[tuple[str, str], ...] = ()

    @property
    def password_variable(self) -> str:
        return f"{ENV_PREFIX}TARGETS__{self.name.upper()}__PASSWORD"

    def describe(self) -> str:
        if self.type == "duckdb":
            return "the local DuckDB file"
        if self.type == "spark":
            return f"the lake {self.lake} on Spark {self.master}"
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
    data_profile: DataProfile = field(default_factory=lambda: DataProfile.from_dict(DEFAULTS["data_profile"]))
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
