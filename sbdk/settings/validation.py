"""One declarative check of the layered settings, with pydantic v2.

Each rule is written once, as a type or a validator of the models below; `_describe` turns pydantic's
errors into sentences that name the key as the user wrote it (or the SBDK_* variable that set it), the
bad value and what is allowed. Pydantic's own wording is never shown.

This module imports pydantic at its top, so only `load_settings` imports it, inside the function:
`sbdk --help` never pays for pydantic.
"""

from __future__ import annotations

import errno
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from sbdk.errors import ConfigError, UsageError
from sbdk.paths import user_path
from sbdk.settings import volume
from sbdk.settings.model import (
    COUNTRY_CODES,
    DEFAULT_LAKE,
    DEFAULT_MASTER,
    DEFAULT_NOTIFY_EVENTS,
    DEFAULTS,
    DEV_TARGET,
    EARLIEST_AS_OF,
    ENV_PREFIX,
    MAX_BACKUPS_KEPT,
    MAX_RETRY_ATTEMPTS,
    MAX_SEED,
    NOTIFY_EVENTS,
    TARGET_TYPES,
    Backups,
    DataProfile,
    DataVolume,
    NotifyTarget,
    ProjectPaths,
    Retries,
    Settings,
    Target,
    Tracking,
    Webhooks,
)
from sbdk.settings.wording import number, numbered, printable, shown


@dataclass(frozen=True)
class _Context:
    """What the validators need beyond the values: the project root and the declared target names."""

    root: Path
    declared_targets: tuple[str, ...]


def _fail(rule: str, **facts: Any) -> PydanticCustomError:
    """A broken rule; `_describe` words it. `facts` carry what the sentence needs; `at` names a key
    relative to where pydantic reports the error ("users" below it, ".." its parent)."""
    return PydanticCustomError(rule, rule, facts)


def _context(info: ValidationInfo) -> _Context:
    context = info.context
    assert isinstance(context, _Context)
    return context


# Types: each accepts exactly what the setting allows, and otherwise names the broken rule.


def _whole_number(low: int, high: int, *, unit: str = "", rule: str | None = None) -> PlainValidator:
    """A whole number in low..high. With `rule`, any failure is that rule, and only an int passes."""

    def check(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            whole = value
        elif rule is None and isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
            # JSON's 1e3 and an environment's 1000.0 are whole numbers too.
            whole = int(value)
        else:
            raise _fail(rule or "whole_number")
        if whole < low:
            raise _fail(rule or "too_small", low=low, got=number(whole))
        if whole > high:
            raise _fail(rule or "above_cap", high=high, unit=unit, got=number(whole))
        return whole

    return PlainValidator(check)


def _real(value: Any, low: float, high: float, *, above_low: bool = False) -> float | None:
    """`value` as a float when it is a number (not a bool) in low..high (above low when `above_low`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    # An int of thousands of digits compares exactly; NaN and the infinities (Python's JSON reads them) fail.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not low <= value <= high or (above_low and value == low):
        return None
    return float(value)


def _number(low: float, high: float, *, rule: str, above_low: bool = False) -> PlainValidator:
    """A number in low..high (a bool is none); anything else breaks `rule`."""

    def check(value: Any) -> float:
        checked = _real(value, low, high, above_low=above_low)
        if checked is None:
            raise _fail(rule, low=_figure(low), high=_figure(high))
        return checked

    return PlainValidator(check)


def _figure(value: float) -> str:
    """A bound as a sentence writes it: 1,000,000, 0.5, -0.5."""
    return f"{value:,}" if float(value).is_integer() else f"{value:g}"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail("text")
    # Names and URLs are printed on terminals and written to logs: a lone surrogate ("\ud800" in JSON)
    # cannot be encoded at all, and control characters would garble the screen.
    if not value.isprintable():  # surrogates and control characters are not
        raise _fail("printable")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail("flag")
    return value


def _origins(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(origin, str) for origin in value):
        raise _fail("origins")
    return tuple(value)


def _notify_targets(value: Any) -> tuple[NotifyTarget, ...]:
    """A list of {"url": <Apprise URL>, "events": [...]}; events default to every kind but "succeeded"."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail("notify_list")
    targets = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) - {"url", "events"} or "url" not in entry:
            raise _fail("notify_entry")
        url = _text(entry["url"])
        if "://" not in url:
            raise _fail("notify_url")
        events = entry.get("events", list(DEFAULT_NOTIFY_EVENTS))
        if not isinstance(events, list) or not events or not set(events) <= set(NOTIFY_EVENTS):
            raise _fail("notify_events")
        targets.append(NotifyTarget(url=url, events=frozenset(events)))
    return tuple(targets)


def _as_of(value: Any) -> date:
    # datetime is a date too: "2026-01-01T10:00" read from the environment is not a day.
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            day = date.fromisoformat(str(value))
        except ValueError:  # also str() of an int of more than 4,300 digits
            raise _fail("date") from None
    else:
        raise _fail("date")
    if day < EARLIEST_AS_OF:
        raise _fail("too_early", day=day.isoformat(), earliest=EARLIEST_AS_OF.isoformat())
    if day > date.today():
        raise _fail("future", day=day.isoformat())
    return day


def _anywhere(value: Any, info: ValidationInfo) -> Path:
    """A path relative to the project (or absolute, or from ~), resolved, wherever it is: the dbt project
    may be one the user already has elsewhere (issue #17), which sbdk reads and builds but never edits."""
    return _resolved(value, _context(info).root)


def _inside_project(value: Any, info: ValidationInfo) -> Path:
    """A path relative to the project (or absolute, or from ~) that stays inside it, resolved."""
    root = _context(info).root
    resolved = _resolved(value, root)
    if resolved != root and root not in resolved.parents:
        raise _fail("outside", root=str(root))
    return resolved


def _resolved(value: Any, root: Path) -> Path:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise _fail("path")
    try:
        resolved = (root / user_path(value)).resolve()
    except UsageError:
        raise _fail("no_home", first=shown(Path(value).parts[0])) from None
    except RuntimeError:  # pathlib's word for a symbolic link loop
        raise _fail("unusable_path", reason="a symbolic link on it loops back on itself") from None
    except (OSError, ValueError):  # ValueError: text the file system cannot encode (lone surrogates)
        raise _fail("unusable_path", reason="it holds characters the file system cannot store") from None
    _usable(resolved)
    return resolved


def _usable(path: Path) -> None:
    try:
        path.stat()
    except OSError as exc:
        # Not there yet is fine (sbdk creates it); a name the file system cannot hold is not.
        if exc.errno == errno.ENAMETOOLONG:
            raise _fail("unusable_path", reason=exc.strerror) from None


def _a_file(path: Path) -> Path:
    try:
        folder = path.is_dir()
    except OSError as exc:
        raise _fail("unusable_path", reason=exc.strerror) from None
    if folder:
        raise _fail("folder", path=str(path))
    return path


def _verbatim(value: Any) -> str | None:
    """A secret as written in .env or the environment (the layering never parses it)."""
    return None if value in (None, "") else value if isinstance(value, str) else str(value)


def _schema(value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier() or value in ("raw", "_sbdk"):
        raise _fail("schema")
    return value


def _target_name(name: str) -> str:
    if name == DEV_TARGET:
        raise _fail("reserved_target")
    if not name.isidentifier():
        raise _fail("target_name")
    return name


def _given(value: Any) -> str | None:
    """A server setting that must be a non-empty string: None when it is not (reported once, together)."""
    return value if isinstance(value, str) and value else None


# data_profile: weights and shares are relative, capped so that summing them stays a finite number.
MAX_WEIGHT = 1_000_000
MAX_PRICE = 1_000_000
MAX_CATEGORIES = 20
MAX_HOLIDAY_FACTOR = 100
MAX_HALF_LIFE_DAYS = 3650
MAX_INCREMENTAL_DAYS = 364  # HISTORY_DAYS - 1: the first load keeps at least one day
_CATEGORY = re.compile(r"[a-z0-9_]{1,40}")
_MONTH_DAY = re.compile(r"(\d\d)-(\d\d)")


def _weights(count: int, unit: str) -> PlainValidator:
    """Exactly `count` relative weights (one per `unit`), not all zero."""

    def check(value: Any) -> tuple[float, ...]:
        checked = [_real(item, 0, MAX_WEIGHT) for item in value] if isinstance(value, list) else []
        weights = tuple(weight for weight in checked if weight is not None)
        if len(weights) != count or len(checked) != count:
            raise _fail(f"{unit}_weights", count=count, high=_figure(MAX_WEIGHT))
        if not any(weights):
            raise _fail("no_traffic", unit=unit)
        return weights

    return PlainValidator(check)


def _month_day(value: Any) -> str:
    """A day of the year as MM-DD; 02-29 too (it is a holiday in leap years)."""
    match = _MONTH_DAY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _fail("holiday_day")
    try:
        # 2000 is a leap year: every real month-day is a day of it.
        date(2000, int(match.group(1)), int(match.group(2)))
    except ValueError:
        raise _fail("holiday_day") from None
    return match.group(0)


def _country_code(value: Any) -> str:
    if value not in COUNTRY_CODES:
        raise _fail("country")
    return str(value)


def _upper_keys(value: Any) -> Any:
    """Country codes in any case: the layering reads every key lower-case (SBDK_..._COUNTRIES__US too)."""
    return {str(key).upper(): share for key, share in value.items()} if isinstance(value, dict) else value


def _some_country(countries: dict[str, float]) -> dict[str, float]:
    if not any(countries.values()):
        raise _fail("no_country")
    return countries


def _category(value: Any) -> str:
    if not isinstance(value, str) or not _CATEGORY.fullmatch(value):
        raise _fail("category")
    return value


def _price_range(value: Any) -> tuple[float, float]:
    bounds = [_real(item, 0, MAX_PRICE, above_low=True) for item in value] if isinstance(value, list) else []
    if len(bounds) != 2 or bounds[0] is None or bounds[1] is None or bounds[0] > bounds[1]:
        raise _fail("price_range", high=_figure(MAX_PRICE))
    return bounds[0], bounds[1]


def _categories(prices: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    if not 1 <= len(prices) <= MAX_CATEGORIES:
        raise _fail("categories", high=MAX_CATEGORIES, count=len(prices))
    return prices


Rows = Annotated[int, _whole_number(volume.MIN_ROWS, volume.MAX_ROWS, unit=" rows")]
Text = Annotated[str, PlainValidator(_text)]
OptionalText = Annotated[str | None, PlainValidator(lambda value: None if value is None else _text(value))]
ProjectPath = Annotated[Path, PlainValidator(_inside_project)]
AnyPath = Annotated[Path, PlainValidator(_anywhere)]
Given = Annotated[str | None, PlainValidator(_given)]
_DEFAULT_SERVER = Target(name="", type="postgres")
# The keys each kind of target takes (an unknown key is an error; one of the other kind says so).
_KEYS_OF = {
    "postgres": {"type", "host", "port", "database", "user", "password", "schema", "connect_timeout"},
    "spark": {"type", "lake", "master", "conf", "schema", "connect_timeout"},
}
_ALL_KEYS = set().union(*_KEYS_OF.values())
# Where a lake may be besides a local folder: what dlt's filesystem destination and Spark both read.
LAKE_SCHEMES = ("file", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "hdfs")
_MASTER = re.compile(r"local(\[(\*|[1-9][0-9]{0,3})(,[0-9]{1,3})?\])?|(spark|sc|k8s)://[^\s/]+.*|yarn")


def _lake(value: Any) -> str:
    """A lake: an object-storage (or file://) URL as written, or a local folder, absolute or relative to
    the project (resolved by _settings, which knows the project's root)."""
    text = _text(value)
    scheme, sep, _rest = text.partition("://")
    if sep and scheme.lower() not in LAKE_SCHEMES:
        raise _fail("lake", schemes=", ".join(f"{s}://" for s in LAKE_SCHEMES))
    return text


def _master(value: Any) -> str:
    text = _text(value)
    if not _MASTER.fullmatch(text):
        raise _fail("master")
    return text


def _spark_conf(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k.startswith("spark.") for k in value):
        raise _fail("spark_conf")
    if not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
        raise _fail("spark_conf")
    return tuple(sorted((k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()))


class _Section(BaseModel):
    # Unknown keys of a section are warnings, not errors (see _unknown_keys). A key the layers leave
    # out (a section of null in the file, then one key of it from the environment) is its default.
    model_config = ConfigDict(extra="allow")


class _Volume(_Section):
    users: Rows = DEFAULTS["data_volume"]["users"]
    events: Rows = DEFAULTS["data_volume"]["events"]

    @model_validator(mode="after")
    def _users_for_every_row(self) -> _Volume:
        if volume.lacks_users(self.users, self.events):
            raise _fail("lacks_users", at="users")
        return self


_PROFILE = DEFAULTS["data_profile"]
Share = Annotated[float, _number(0, 1, rule="share")]
HalfLife = Annotated[float, _number(0, MAX_HALF_LIFE_DAYS, rule="half_life", above_low=True)]
IncrementalDays = Annotated[int, _whole_number(0, MAX_INCREMENTAL_DAYS, unit=" days")]


class _Funnel(_Section):
    add_to_cart: Share = _PROFILE["funnel"]["add_to_cart"]
    checkout: Share = _PROFILE["funnel"]["checkout"]
    purchase: Share = _PROFILE["funnel"]["purchase"]


class _Retention(_Section):
    never_return: Share = _PROFILE["retention"]["never_return"]
    half_life_days: HalfLife = _PROFILE["retention"]["half_life_days"]
    long_term: Share = _PROFILE["retention"]["long_term"]


class _Profile(_Section):
    funnel: _Funnel = Field(default_factory=_Funnel)
    hourly: Annotated[tuple[float, ...], _weights(24, "hour")] = tuple(_PROFILE["hourly"])
    weekly: Annotated[tuple[float, ...], _weights(7, "weekday")] = tuple(_PROFILE["weekly"])
    holidays: dict[
        Annotated[str, PlainValidator(_month_day)],
        Annotated[float, _number(0, MAX_HOLIDAY_FACTOR, rule="holiday_factor")],
    ] = _PROFILE["holidays"]
    monthly_growth: Annotated[float, _number(-0.5, 1, rule="number_range")] = _PROFILE["monthly_growth"]
    retention: _Retention = Field(default_factory=_Retention)
    countries: Annotated[
        dict[
            Annotated[str, PlainValidator(_country_code)],
            Annotated[float, _number(0, MAX_WEIGHT, rule="country_share")],
        ],
        BeforeValidator(_upper_keys),
        AfterValidator(_some_country),
    ] = _PROFILE["countries"]
    prices: Annotated[
        dict[Annotated[str, PlainValidator(_category)], Annotated[tuple[float, float], PlainValidator(_price_range)]],
        AfterValidator(_categories),
    ] = _PROFILE["prices"]
    incremental_days: IncrementalDays = _PROFILE["incremental_days"]

    def as_dict(self) -> dict[str, Any]:
        """The checked section in the shape of DEFAULTS["data_profile"] (unknown keys left out)."""
        return {
            "funnel": {name: getattr(self.funnel, name) for name in _Funnel.model_fields},
            "hourly": self.hourly,
            "weekly": self.weekly,
            "holidays": self.holidays,
            "monthly_growth": self.monthly_growth,
            "retention": {name: getattr(self.retention, name) for name in _Retention.model_fields},
            "countries": self.countries,
            "prices": self.prices,
            "incremental_days": self.incremental_days,
        }


class _Tracking(_Section):
    enabled: Annotated[bool, PlainValidator(_flag)] = DEFAULTS["tracking"]["enabled"]
    uuid: OptionalText = DEFAULTS["tracking"]["uuid"]
    endpoint: Text = DEFAULTS["tracking"]["endpoint"]


class _Webhooks(_Section):
    branch: OptionalText = DEFAULTS["webhooks"]["branch"]
    cors_origins: Annotated[tuple[str, ...], PlainValidator(_origins)] = tuple(DEFAULTS["webhooks"]["cors_origins"])


class _Backups(_Section):
    keep: Annotated[int, _whole_number(0, MAX_BACKUPS_KEPT)] = DEFAULTS["backups"]["keep"]


class _Retries(_Section):
    attempts: Annotated[int, _whole_number(1, MAX_RETRY_ATTEMPTS)] = DEFAULTS["retries"]["attempts"]
    max_seconds: Annotated[int, _whole_number(0, 600, unit=" seconds")] = DEFAULTS["retries"]["max_seconds"]


class _Server(BaseModel):
    """A declared target. Its keys are all known: an unknown one is an error, not a warning."""

    model_config = ConfigDict(extra="forbid")

    type: str
    host: Given = None
    database: Given = None
    user: Annotated[Given, Field(validate_default=True)] = None
    password: Annotated[str | None, PlainValidator(_verbatim)] = None
    port: Annotated[int, _whole_number(1, 65535, rule="port")] = _DEFAULT_SERVER.port
    # "schema" would shadow a BaseModel attribute: the field takes it as its alias.
    schema_: Annotated[str, PlainValidator(_schema), Field(alias="schema")] = _DEFAULT_SERVER.schema
    connect_timeout: Annotated[int, _whole_number(1, 60, rule="timeout")] = _DEFAULT_SERVER.connect_timeout
    lake: Annotated[str, PlainValidator(_lake)] = DEFAULT_LAKE
    master: Annotated[str, PlainValidator(_master)] = DEFAULT_MASTER
    conf: Annotated[tuple[tuple[str, str], ...], PlainValidator(_spark_conf)] = ()

    @model_validator(mode="before")
    @classmethod
    def _type_first(cls, spec: Any) -> Any:
        # The type decides what the other keys mean: a wrong one is the only thing worth saying.
        if not isinstance(spec, dict):
            raise _fail("target_object", kind=type(spec).__name__)
        if spec.get("type") not in TARGET_TYPES:
            raise _fail("target_type", at="type", kind=shown(spec.get("type")))
        if spec["type"] == "duckdb":
            raise _fail("second_duckdb")
        allowed = _KEYS_OF[spec["type"]]
        for key in spec:
            if key not in allowed and key in _ALL_KEYS:
                raise _fail("other_type_key", at=key, kind=spec["type"], allowed=", ".join(sorted(allowed)))
        return spec

    @field_validator("user")
    @classmethod
    def _needs_a_login(cls, user: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("type") != "postgres":
            return user
        given = {"host": info.data.get("host"), "database": info.data.get("database"), "user": user}
        missing = [key for key, value in given.items() if value is None]
        if missing:
            raise _fail("needs", at="..", missing=", ".join(missing))
        return user


def _targets(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail("targets_object", kind=type(value).__name__)
    return value


def _target(value: Any, info: ValidationInfo) -> str:
    """dev, or a declared target. When a declared one has problems of its own, those are reported
    there; naming it here is not a second problem."""
    validated = info.data.get("targets")
    declared = list(validated) if validated is not None else list(_context(info).declared_targets)
    if value != DEV_TARGET and value not in declared:
        raise _fail("target", declared=declared)
    return str(value)


class _Settings(BaseModel):
    # Fields are checked, and their problems listed, in this order.
    model_config = ConfigDict(extra="allow")

    project: OptionalText
    targets: Annotated[dict[Annotated[str, AfterValidator(_target_name)], _Server], BeforeValidator(_targets)]
    target: Annotated[str, PlainValidator(_target)]
    seed: Annotated[int, _whole_number(0, MAX_SEED)]
    as_of: Annotated[date, PlainValidator(_as_of)]
    data_volume: _Volume
    data_profile: _Profile
    tracking: _Tracking
    webhooks: _Webhooks
    backups: _Backups
    retries: _Retries
    notify: Annotated[tuple[NotifyTarget, ...], PlainValidator(_notify_targets)] = ()
    webhook_secret: Annotated[str | None, PlainValidator(_verbatim)] = None
    duckdb_path: Annotated[Path, PlainValidator(_inside_project), AfterValidator(_a_file)]
    pipelines_path: ProjectPath
    dbt_path: AnyPath
    profiles_dir: ProjectPath


_SECTIONS: dict[str, type[BaseModel]] = {
    "data_volume": _Volume,
    "data_profile": _Profile,
    "data_profile.funnel": _Funnel,
    "data_profile.retention": _Retention,
    "tracking": _Tracking,
    "webhooks": _Webhooks,
    "backups": _Backups,
    "retries": _Retries,
}

# One sentence per rule. {key} is the key as the user wrote it, {shown} the bad value; other fields
# are the facts the rule was raised with (see _fail).
_MESSAGES = {
    "whole_number": "{key} must be a whole number, got {shown}.",
    "too_small": "{key} must be at least {low:,}, got {got}.",
    "above_cap": "{key} = {got} is above the cap of {high:,}{unit}.",
    "text": "{key} must be a non-empty string, got {shown}.",
    "printable": "{key} must be printable text (no control characters or broken Unicode), got {shown}.",
    "flag": "{key} must be true or false, got {shown}.",
    "origins": "{key} must be a list of URLs, got {shown}.",
    "notify_list": "{key} must be a list of notification targets, got {shown}.",
    "notify_entry": '{key} entries must be objects with a "url" and, optionally, "events", got {shown}.',
    "notify_url": "{key} URLs must be Apprise URLs such as json://host/path or slack://..., got {shown}.",
    "notify_events": "{key} events must be a non-empty list of " + ", ".join(NOTIFY_EVENTS) + ", got {shown}.",
    "date": "{key} must be a date like 2026-11-30, got {shown}.",
    "too_early": "{key} = {day} is too early: as_of must be {earliest} or later.",
    "future": "{key} = {day} is in the future; the generated history ends at as_of and must lie in the past.",
    "lacks_users": f"{{key}} is 0 but events are not: {volume.NEEDS_USERS}.",
    "share": "{key} must be a number from 0 to 1 (0.15 is 15 %), got {shown}.",
    "number_range": "{key} must be a number from {low} to {high}, got {shown}.",
    "half_life": "{key} must be a number of days above 0 and at most {high}, got {shown}.",
    "hour_weights": "{key} must be a list of {count} numbers from 0 to {high}, the relative traffic of each hour "
    "of the day (UTC, 0 to 23), got {shown}.",
    "weekday_weights": "{key} must be a list of {count} numbers from 0 to {high}, the relative traffic of each "
    "weekday (Monday first), got {shown}.",
    "no_traffic": "{key} is all zeros: give at least one {unit} a weight above 0.",
    "holiday_day": "{key} is not a day of the year written MM-DD, such as 11-28.",
    "holiday_factor": "{key} must be a traffic factor from {low} to {high} (2.5 is 2.5 times the usual traffic), "
    "got {shown}.",
    "country": "{key} is not a country sbdk generates (known: " + ", ".join(COUNTRY_CODES) + ").",
    "country_share": "{key} must be a number from {low} to {high} (its share relative to the other countries), "
    "got {shown}.",
    "no_country": "{key} must give at least one country a share above 0.",
    "category": "{key} is not a category name: use 1 to 40 lower-case letters, digits or _.",
    "price_range": "{key} must be [lowest, highest] unit prices in USD with 0 < lowest <= highest <= {high}, "
    "got {shown}.",
    "categories": "{key} must name 1 to {high} categories, got {count}.",
    "target": '{key} must be one of {known} (the targets declared under "targets"), got {shown}.',
    "targets_object": "{key} must be an object of named targets, got a {kind}.",
    "reserved_target": "{key} is reserved for the project's DuckDB file; choose another name.",
    "target_name": "Target name {name} must be a plain name (letters, digits, _).",
    "target_object": "{key} must be an object, got a {kind}.",
    "target_type": f"{{key}} must be one of {', '.join(TARGET_TYPES)}, got {{kind}}.",
    "second_duckdb": '{key}: a second DuckDB target is not supported; use target "dev".',
    "needs": "{key} needs {missing} (strings) for a postgres target.",
    "other_type_key": "{key} is not a setting of a {kind} target (allowed: {allowed}).",
    "lake": "{key} must be a folder (relative to the project or absolute) or a URL starting with {schemes}, "
    "got {shown}.",
    "master": "{key} must be local, local[N], local[*], spark://host:port, sc://host:port, k8s://... or yarn, "
    "got {shown}.",
    "spark_conf": '{key} must be an object of Spark settings such as {{"spark.driver.memory": "2g"}}, got {shown}.',
    "port": "{key} must be a port number, got {shown}.",
    "timeout": "{key} must be 1..60 seconds, got {shown}.",
    "schema": "{key} must be a plain schema name other than raw, got {shown}.",
    "extra_forbidden": "{key} is not a target setting (allowed: "
    + "; ".join(f"{', '.join(sorted(keys))} for {kind}" for kind, keys in _KEYS_OF.items())
    + ").",
    "path": "{key} must be a path relative to the project, got {shown}.",
    "outside": "{key} = {shown} points outside the project folder {root}; sbdk only writes inside its project.",
    "no_home": "{key} = {shown} starts with {first}, which is no user's home folder; write it relative to the project.",
    "unusable_path": "{key} = {shown} cannot be used as a path: {reason}.",
    "folder": "{key} points at a folder ({path}), not a file.",
    # Pydantic's own rules that these models can still break.
    "missing": "{key} is missing.",
    "model_type": "{key} must be an object ({{...}}), got {shown}.",
    "model_attributes_type": "{key} must be an object ({{...}}), got {shown}.",
    "dict_type": "{key} must be an object ({{...}}), got {shown}.",
}
_UNEXPECTED = "{key} has a value sbdk cannot use: {shown}."


def validate(values: dict[str, Any], *, path: Path, env_keys: frozenset[str]) -> Settings:
    """The frozen settings of the project whose config file is `path`, or one ConfigError that lists
    every problem. `env_keys` are the dotted keys that .env or the environment set."""
    declared = values.get("targets")
    names = (
        [name for name in declared if name != DEV_TARGET and name.isidentifier()] if isinstance(declared, dict) else []
    )
    try:
        checked = _Settings.model_validate(values, context=_Context(root=path.parent, declared_targets=tuple(names)))
    except ValidationError as exc:
        problems = _problems(exc.errors(include_url=False), env_keys, path.name)
        raise ConfigError(
            f"Invalid settings in {path}: {numbered(problems)}",
            hint="Fix the values (the Configuration section of sbdk's README describes every key); "
            "`sbdk doctor` checks them again.",
        ) from None
    return _settings(checked, path, warnings=_unknown_keys(values, env_keys, path.name))


def _problems(errors: list[ErrorDetails], env_keys: frozenset[str], file_name: str) -> list[str]:
    """One sentence per problem, in the order of the fields; a key the environment or .env set is named
    by its SBDK_* variable."""
    where = _namer(env_keys)
    broken = {error["loc"][1] for error in errors if error["loc"][0] == "targets" and len(error["loc"]) > 1}
    refused = {error["loc"][:-1] for error in errors if error["loc"][-1] == "[key]"}
    sentences = []
    for error in errors:
        loc = error["loc"]
        if loc[-1] != "[key]" and any(loc[: len(key)] == key for key in refused):
            # Renaming the key (a target, a country...) is the fix; what it holds is checked under its new name.
            continue
        undeclared = _only_from_variables(error, env_keys)
        if undeclared:
            # A variable (a password, most often) for a target the file does not declare: that is the
            # mistake, not the target's missing type.
            named = ", ".join(ENV_PREFIX + key.upper().replace(".", "__") for key in undeclared)
            sentences.append(
                f"{named} {'is' if len(undeclared) == 1 else 'are'} set (in the environment or .env) for a "
                f'target {loc[1]} that {file_name} does not declare: declare it under "targets" or unset '
                f"{'it' if len(undeclared) == 1 else 'them'}."
            )
            continue
        if error["type"] == "target":
            # Offer only the targets that can be used as they are.
            usable = [name for name in error["ctx"]["declared"] if name not in broken]
            error["ctx"]["known"] = ", ".join([DEV_TARGET, *usable])
        sentences.append(_describe(error, where))
    return list(dict.fromkeys(sentences))


def _only_from_variables(error: ErrorDetails, env_keys: frozenset[str]) -> list[str]:
    """The dotted keys of a target that exists only because SBDK_TARGETS__<NAME>__* variables set its
    keys (it has no type: the file never declared it); [] for any other error."""
    spec, loc = error["input"], error["loc"]
    if error["type"] != "target_type" or not isinstance(spec, dict) or "type" in spec or len(loc) < 2:
        return []
    keys = [f"targets.{loc[1]}.{key}" for key in spec]
    return sorted(keys) if keys and all(key in env_keys for key in keys) else []


def _namer(env_keys: frozenset[str]) -> Callable[[str], str]:
    def where(key: str) -> str:
        """The key as the user wrote it: its SBDK_ variable when the environment or .env set it (or
        an object above it, e.g. SBDK_DATA_VOLUME='{users=5}')."""
        parts = key.lower().split(".")
        if any(".".join(parts[:depth]) in env_keys for depth in range(1, len(parts) + 1)):
            return ENV_PREFIX + key.upper().replace(".", "__")
        return key

    return where


def _describe(error: ErrorDetails, where: Callable[[str], str]) -> str:
    facts = dict(error.get("ctx") or {})
    parts = [str(part) for part in error["loc"] if part != "[key]"]
    at = facts.pop("at", None)
    if at == "..":
        parts = parts[:-1]
    elif at:
        parts.append(at)
    value = error["input"]
    if parts[0] == "data_profile":
        # The name of a holiday, country or category is the user's text: a long one is cut.
        parts = [part if len(part) <= 40 else part[:37] + "..." for part in parts]
    if error["type"] == "target_name":
        facts["name"] = repr(str(value)[:30])
    template = _MESSAGES.get(error["type"], _UNEXPECTED)
    return template.format(key=printable(where(".".join(parts))), shown=shown(value), **facts)


def _unknown_keys(values: dict[str, Any], env_keys: frozenset[str], file_name: str) -> tuple[str, ...]:
    """Warnings for keys no model declares (a typo, or a key of a newer sbdk): ignored, not refused."""
    found = []
    for key in sorted(set(values) - set(_Settings.model_fields)):
        origin = f"{ENV_PREFIX}{key.upper()} in the environment" if key in env_keys else file_name
        found.append(f"Unknown setting {key!r} (from {origin}) is ignored.")
    for key, model in _SECTIONS.items():
        section: Any = values
        for part in key.split("."):
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict):
            extra = sorted(set(section) - set(model.model_fields))
            found += [_unknown(f"{key}.{sub}", env_keys, file_name) for sub in extra]
    return tuple(found)


def _unknown(key: str, env_keys: frozenset[str], file_name: str) -> str:
    """The warning for a key of a section that no model declares; the old orders volume gets its own."""
    if key != "data_volume.orders":
        return f"Unknown setting '{printable(key)}' is ignored."
    # Every project made before issue #16 has "orders" in its file.
    if key in env_keys:
        setting, fix = f"{ENV_PREFIX}DATA_VOLUME__ORDERS", "Unset it."
    else:
        setting, fix = f"'{key}'", f"Remove it from {file_name}."
    return (
        f"Setting {setting} is ignored: every order now comes from a purchase event, so the number of orders "
        f"follows from data_volume.events and data_profile.funnel. {fix}"
    )


def _settings(checked: _Settings, path: Path, *, warnings: tuple[str, ...]) -> Settings:
    root = path.parent
    return Settings(
        project=checked.project or root.name,
        target=checked.target,
        seed=checked.seed,
        as_of=checked.as_of,
        data_volume=DataVolume(users=checked.data_volume.users, events=checked.data_volume.events),
        data_profile=DataProfile.from_dict(checked.data_profile.as_dict()),
        tracking=Tracking(
            enabled=checked.tracking.enabled, uuid=checked.tracking.uuid, endpoint=checked.tracking.endpoint
        ),
        webhooks=Webhooks(branch=checked.webhooks.branch, cors_origins=checked.webhooks.cors_origins),
        backups=Backups(keep=checked.backups.keep),
        notify=checked.notify,
        retries=Retries(attempts=checked.retries.attempts, max_seconds=checked.retries.max_seconds),
        paths=ProjectPaths(
            root=root,
            config_file=path,
            duckdb_path=checked.duckdb_path,
            pipelines_dir=checked.pipelines_path,
            dbt_project_dir=checked.dbt_path,
            profiles_dir=checked.profiles_dir,
        ),
        targets=tuple(
            Target(
                name=name,
                type=server.type,
                host=server.host,
                port=server.port,
                database=server.database,
                user=server.user,
                password=server.password,
                schema=server.schema_,
                connect_timeout=server.connect_timeout,
                **(_lake_settings(server, root) if server.type == "spark" else {}),
            )
            for name, server in checked.targets.items()
        ),
        webhook_secret=checked.webhook_secret,
        warnings=warnings,
    )


def _lake_settings(server: _Server, root: Path) -> dict[str, Any]:
    """A spark target's lake (a local folder made absolute against the project), master and conf."""
    lake = server.lake
    if "://" not in lake:
        lake = str((root / Path(lake).expanduser()).resolve())
    return {"lake": lake, "master": server.master, "conf": server.conf}
