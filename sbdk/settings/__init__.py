"""Load, layer and validate a project's settings.

Layers, lowest first: built-in defaults < sbdk_config.json < the project's .env < SBDK_* environment
variables (nested keys with `__`, e.g. SBDK_DATA_VOLUME__USERS=500). Dynaconf does the layering and
stays inside this module; everything else receives the frozen `Settings` it returns.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sbdk.errors import ConfigError, ProjectNotFoundError

CONFIG_FILENAME = "sbdk_config.json"
ENV_PREFIX = "SBDK_"
# One table of 50 million rows is ~5 GB in DuckDB: a laptop sandbox past that is a mistake, not a plan.
MAX_ROWS_PER_TABLE = 50_000_000
MAX_SEED = 2**32 - 1
# "dev" is always the project's DuckDB file; other targets are declared under "targets".
DEV_TARGET = "dev"
TARGET_TYPES = ("duckdb", "postgres")
_TARGET_KEYS = {"type", "host", "port", "database", "user", "password", "schema", "connect_timeout"}

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
    "webhooks": {"branch": "main", "cors_origins": []},
    "backups": {"keep": 0},
    "targets": {},
}
# Keys that may only come from the environment or .env, never from a committed config file.
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
    branch: str
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
        return f"SBDK_TARGETS__{self.name.upper()}__PASSWORD"

    def describe(self) -> str:
        if self.type == "duckdb":
            return "the local DuckDB file"
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.database}"


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
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

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
        from dataclasses import replace

        from sbdk.errors import UsageError

        known = [DEV_TARGET, *(t.name for t in self.targets)]
        if name not in known:
            raise UsageError(
                f"--target {name!r} is not a target of this project (known: {', '.join(known)}).",
                hint='Declare it under "targets" in sbdk_config.json (see the README).',
            )
        return replace(self, target=name)


def find_config(start: Path | None = None) -> Path:
    """The sbdk_config.json of the project containing `start` (the current folder by default)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
    raise ProjectNotFoundError(
        f"No {CONFIG_FILENAME} in {here} or any folder above it: this is not an sbdk project.",
        hint="Run `sbdk init myproject` to create one, then `cd myproject`; or pass --config-file PATH.",
    )


def load_settings(config_file: Path | str | None = None, *, start: Path | None = None) -> Settings:
    """Read and validate the settings of the project at `config_file` (or found from `start`)."""
    if config_file is None:
        path = find_config(start)
    else:
        path = Path(config_file).expanduser()
        if not path.is_absolute():
            path = (start or Path.cwd()) / path
        path = path.resolve()
        if path.is_dir():
            path = path / CONFIG_FILENAME
        if not path.is_file():
            raise ProjectNotFoundError(
                f"Config file {path} does not exist.",
                hint="Check the --config-file path, or run `sbdk init` to create a project.",
            )
    raw_file = _read_json(path)
    merged, env_keys = _layer(path, raw_file)
    return _validate(merged, path, file_keys=set(raw_file), env_keys=env_keys, raw_targets=raw_file.get("targets"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.", hint="Check that it is a readable UTF-8 text file.") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            hint=f"Fix the JSON in {path} (compare with sbdk_config.json.example).",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path.name} must hold a JSON object ({{...}}), not {type(data).__name__}.",
            hint="Compare with sbdk_config.json.example.",
        )
    return data


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, `export` and quotes allowed); {} if absent."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.", hint="Fix or remove the .env file.") from exc
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"{path.name} line {number} is not KEY=VALUE: {line[:60]!r}.",
                hint="Write one KEY=VALUE per line, e.g. SBDK_WEBHOOK_SECRET=s3cret.",
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _layer(path: Path, raw_file: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """defaults < file < .env < environment, merged by Dynaconf. Returns (settings, env-set keys)."""
    from dynaconf import Dynaconf
    from dynaconf.utils.parse_conf import parse_conf_data

    for key in SECRET_KEYS:
        if any(str(name).lower() == key for name in raw_file):
            raise ConfigError(
                f"{path.name} contains the secret {key!r}: secrets must not live in a committed file.",
                hint=f"Remove it and set SBDK_{key.upper()} in the project's .env or the environment.",
            )
    dotenv = read_dotenv(path.parent / ".env")
    # Secrets are taken verbatim: Dynaconf would read "0x1f" as 31 or "true" as True.
    raw_env = {
        **{k: v for k, v in dotenv.items() if k.startswith(ENV_PREFIX)},
        **{k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)},
    }
    secrets = {name: value for name, value in raw_env.items() if _is_secret(name)}
    try:
        # Defaults, then the file merged over them, then SBDK_* variables of the environment.
        settings = Dynaconf(
            environments=False,
            envvar_prefix=ENV_PREFIX.rstrip("_"),
            load_dotenv=False,  # never touch os.environ; .env is applied below
            merge_enabled=True,
            settings_files=[str(path)],
            **{key.upper(): value for key, value in DEFAULTS.items()},
        )
        # .env sits between the file and the environment: apply what the environment does not set.
        for name, value in sorted(dotenv.items()):
            if not name.startswith(ENV_PREFIX) or name in os.environ or not name[len(ENV_PREFIX) :]:
                continue
            settings.set(
                name[len(ENV_PREFIX) :].lower(), value if _is_secret(name) else parse_conf_data(value, tomlfy=True)
            )
        merged = _lower_keys(settings.as_dict())
    except ConfigError:
        raise
    except Exception as exc:  # Dynaconf's own parse errors, e.g. SBDK_SEED="@int x"
        raise ConfigError(
            f"Cannot read the settings (an SBDK_* variable or {path.name}): {exc}",
            hint='Fix or unset the variable; values are read like TOML (numbers, true/false, "text").',
        ) from exc
    for name, value in secrets.items():
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        node = merged
        for part in parts[:-1]:
            node = node.setdefault(part, {}) if isinstance(node.get(part, {}), dict) else {}
        node[parts[-1]] = value
    # Dotted keys set by the environment or .env ("data_volume.users"), to name them in errors.
    env_keys = {k[len(ENV_PREFIX) :].lower().replace("__", ".") for k in raw_env}
    return merged, env_keys


def _is_secret(variable: str) -> bool:
    name = variable[len(ENV_PREFIX) :].lower()
    return name in SECRET_KEYS or name.endswith("__password")


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    return value


def _targets(value: Any, raw_targets: Any, problems: list[str], where) -> tuple[Target, ...]:
    """The declared targets; passwords are accepted only from the environment or .env."""
    if value in (None, {}):
        return ()
    if not isinstance(value, dict):
        problems.append(f"{where('targets')} must be an object of named targets, got a {type(value).__name__}.")
        return ()
    targets = []
    for name, spec in value.items():
        key = f"targets.{name}"
        if name == DEV_TARGET:
            problems.append("targets.dev is reserved for the project's DuckDB file; choose another name.")
            continue
        if not str(name).isidentifier():
            problems.append(f"Target name {str(name)[:30]!r} must be a plain name (letters, digits, _).")
            continue
        if not isinstance(spec, dict):
            problems.append(f"{where(key)} must be an object, got a {type(spec).__name__}.")
            continue
        from_file = raw_targets.get(name) if isinstance(raw_targets, dict) else None
        if isinstance(from_file, dict) and any(str(k).lower() == "password" for k in from_file):
            problems.append(
                f"{key}.password is written in sbdk_config.json: passwords must not live in a committed "
                f"file. Set SBDK_TARGETS__{str(name).upper()}__PASSWORD in .env or the environment."
            )
        spec = {str(k).lower(): v for k, v in spec.items()}
        kind = spec.get("type")
        if kind not in TARGET_TYPES:
            problems.append(f"{where(key + '.type')} must be one of {', '.join(TARGET_TYPES)}, got {kind!r}.")
            continue
        for unknown in sorted(set(spec) - _TARGET_KEYS):
            problems.append(f"{key}.{unknown} is not a target setting (allowed: {', '.join(sorted(_TARGET_KEYS))}).")
        if kind == "duckdb":
            problems.append(f'{key}: a second DuckDB target is not supported; use target "dev".')
            continue
        missing = [k for k in ("host", "database", "user") if not isinstance(spec.get(k), str) or not spec.get(k)]
        if missing:
            problems.append(f"{key} needs {', '.join(missing)} (strings) for a postgres target.")
            continue
        port = spec.get("port", 5432)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            problems.append(f"{where(key + '.port')} must be a port number, got {port!r}.")
            continue
        timeout = spec.get("connect_timeout", 5)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 0 < timeout <= 60:
            problems.append(f"{where(key + '.connect_timeout')} must be 1..60 seconds, got {timeout!r}.")
            continue
        schema = spec.get("schema", "analytics")
        if not isinstance(schema, str) or not schema.isidentifier() or schema in ("raw", "_sbdk"):
            problems.append(f"{where(key + '.schema')} must be a plain schema name other than raw, got {schema!r}.")
            continue
        password = spec.get("password")
        targets.append(
            Target(
                name=str(name),
                type=kind,
                host=spec["host"],
                port=port,
                database=spec["database"],
                user=spec["user"],
                password=None if password in (None, "") else str(password),
                schema=schema,
                connect_timeout=timeout,
            )
        )
    return tuple(targets)


def _validate(
    data: dict[str, Any], path: Path, *, file_keys: set[str], env_keys: set[str], raw_targets: Any = None
) -> Settings:
    root = path.parent
    problems: list[str] = []
    warnings: list[str] = []
    known = set(DEFAULTS) | set(SECRET_KEYS) | {"load_dotenv"}
    for key in sorted(set(data) - known):
        origin = f"SBDK_{key.upper()} in the environment" if key in env_keys else path.name
        warnings.append(f"Unknown setting {key!r} (from {origin}) is ignored.")

    def where(key: str) -> str:
        """The key as the user wrote it: its SBDK_ variable when the environment or .env set it."""
        parts = key.split(".")
        for depth in range(len(parts), 0, -1):
            prefix = ".".join(parts[:depth])
            if prefix in env_keys:
                return f"SBDK_{key.upper().replace('.', '__')}"
        return key

    def text(key: str, value: Any, *, allow_none: bool = False) -> str | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{where(key)} must be a non-empty string, got {value!r}.")
            return None
        return value

    def integer(key: str, value: Any, low: int, high: int, unit: str = "") -> int | None:
        """The value if it is a whole number in low..high; else None (and the problem noted)."""
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
                value = int(value)
            else:
                problems.append(f"{where(key)} must be a whole number, got {value!r}.")
                return None
        if value < low:
            problems.append(f"{where(key)} must be at least {low:,}, got {value:,}.")
            return None
        if value > high:
            problems.append(f"{where(key)} = {value:,} is above the cap of {high:,}{unit}.")
            return None
        return value

    def section(key: str) -> dict[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            problems.append(f"{where(key)} must be an object ({{...}}), got {value!r}.")
            return dict(DEFAULTS[key])
        for sub in sorted(set(value) - set(DEFAULTS[key])):
            warnings.append(f"Unknown setting '{key}.{sub}' is ignored.")
        return {**DEFAULTS[key], **value}

    project = data.get("project")
    project = root.name if project is None else text("project", project) or root.name
    targets = _targets(data.get("targets"), raw_targets, problems, where)
    target = data.get("target")
    known = [DEV_TARGET, *(t.name for t in targets)]
    if target not in known:
        problems.append(
            f"{where('target')} must be one of {', '.join(known)} (the targets declared under "
            f'"targets"), got {target!r}.'
        )
        target = DEV_TARGET
    seed = integer("seed", data.get("seed"), 0, MAX_SEED)
    as_of_raw = data.get("as_of")
    as_of = date(2026, 1, 1)
    if isinstance(as_of_raw, date):
        as_of = as_of_raw
    else:
        try:
            as_of = date.fromisoformat(str(as_of_raw))
        except ValueError:
            problems.append(f"{where('as_of')} must be a date like 2026-11-30, got {as_of_raw!r}.")
    if as_of > date.today():
        problems.append(
            f"{where('as_of')} = {as_of.isoformat()} is in the future; the generated history ends "
            "at as_of and must lie in the past."
        )

    volume_raw = section("data_volume")
    volume = DataVolume(
        **{
            name: integer(f"data_volume.{name}", volume_raw[name], 0, MAX_ROWS_PER_TABLE, " rows")
            for name in ("users", "events", "orders")
        }
    )
    if volume.users == 0 and (volume.events or volume.orders):
        problems.append("data_volume.users is 0 but events or orders are not: every event and order belongs to a user.")

    tracking_raw = section("tracking")
    enabled = tracking_raw["enabled"]
    if not isinstance(enabled, bool):
        problems.append(f"{where('tracking.enabled')} must be true or false, got {enabled!r}.")
        enabled = False
    tracking = Tracking(
        enabled=enabled,
        uuid=text("tracking.uuid", tracking_raw["uuid"], allow_none=True),
        endpoint=text("tracking.endpoint", tracking_raw["endpoint"]) or DEFAULTS["tracking"]["endpoint"],
    )

    hooks_raw = section("webhooks")
    branch = text("webhooks.branch", hooks_raw["branch"]) or "main"
    origins = hooks_raw["cors_origins"]
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        problems.append(f"webhooks.cors_origins must be a list of URLs, got {origins!r}.")
        origins = []
    backups_raw = section("backups")
    backups = Backups(keep=integer("backups.keep", backups_raw["keep"], 0, 1000))

    secret = data.get("webhook_secret")
    if secret is not None and not isinstance(secret, str):
        secret = str(secret)

    paths = ProjectPaths(
        root=root,
        config_file=path,
        duckdb_path=_project_path("duckdb_path", data, root, problems, where),
        pipelines_dir=_project_path("pipelines_path", data, root, problems, where),
        dbt_project_dir=_project_path("dbt_path", data, root, problems, where),
        profiles_dir=_project_path("profiles_dir", data, root, problems, where),
    )
    if paths.duckdb_path.is_dir():
        problems.append(f"duckdb_path points at a folder ({paths.duckdb_path}), not a file.")

    if problems:
        listing = (
            " ".join(problems)
            if len(problems) == 1
            else " ".join(f"({i}) {p}" for i, p in enumerate(problems, start=1))
        )
        raise ConfigError(
            f"Invalid settings in {path}: {listing}",
            hint="Fix the values (every key is described in sbdk_config.json.example and the README).",
        )
    return Settings(
        project=project,
        target=target,
        seed=seed,
        as_of=as_of,
        data_volume=volume,
        tracking=tracking,
        webhooks=Webhooks(branch=branch, cors_origins=tuple(origins)),
        backups=backups,
        paths=paths,
        targets=targets,
        webhook_secret=secret or None,
        warnings=tuple(warnings),
    )


def _project_path(key: str, data: dict[str, Any], root: Path, problems: list[str], where) -> Path:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        problems.append(f"{where(key)} must be a path relative to the project, got {value!r}.")
        return root / str(DEFAULTS[key])
    resolved = (root / Path(value).expanduser()).resolve()
    if resolved != root and root not in resolved.parents:
        problems.append(
            f"{where(key)} = {value!r} points outside the project folder {root}; sbdk only writes inside its project."
        )
        return root / str(DEFAULTS[key])
    return resolved
