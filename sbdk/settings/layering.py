"""The four layers of a project's settings, merged by Dynaconf (the only module that imports it).

Lowest first: built-in defaults < sbdk_config.json < the project's .env < SBDK_* environment variables.
A variable names a nested key with `__` (SBDK_DATA_VOLUME__USERS=500) and its value is read like TOML
(numbers, true/false, "text"), as Dynaconf reads environment variables. Secrets (webhook_secret,
targets.<name>.password) are taken verbatim instead, and refused when the file holds them.

Objects merge key by key across the layers, except the data_profile knobs in `REPLACED`: whichever layer
gives one replaces it whole (a variable naming one entry, SBDK_DATA_PROFILE__COUNTRIES__US=0.5, replaces
that entry).
"""

from __future__ import annotations

import copy
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbdk.errors import ConfigError
from sbdk.settings.model import DEFAULTS, ENV_PREFIX, SECRET_KEYS
from sbdk.settings.wording import numbered, printable, shown

# Dynaconf is told to read nothing by itself. Left to its loaders it obeys SETTINGS_FILE_FOR_DYNACONF,
# INCLUDES_FOR_DYNACONF, PRELOAD_FOR_DYNACONF and DYNACONF_* variables of the environment (another
# project's Dynaconf setup would replace or extend sbdk_config.json), and load_dotenv writes the .env
# into os.environ. `layer` feeds it the four layers instead, in order.
_DYNACONF_OPTIONS: dict[str, Any] = {
    "dynaconf_skip_loaders": True,
    "load_dotenv": False,
    "merge_enabled": True,
    "nested_separator": "__",
    "dotted_lookup": True,
}
# Options above that Dynaconf also returns among the settings.
_DYNACONF_ECHOES = ("dynaconf_skip_loaders", "load_dotenv")
# Settings a layer gives whole: a user who writes "countries": {"US": 1} means only the US, and 24 hourly
# weights replace the 24 defaults. Dynaconf's merge would keep the other countries and append to the
# lists (merge_enabled concatenates lists), so `_apply` clears them before setting them.
REPLACED = tuple(("data_profile", knob) for knob in ("hourly", "weekly", "holidays", "countries", "prices"))
_ABSENT = object()


@dataclass(frozen=True)
class Layers:
    values: dict[str, Any]  # the merged settings, keys lower-case
    env_keys: frozenset[str]  # dotted keys that .env or the environment set, to name their variable


def layer(path: Path, file_values: dict[str, Any]) -> Layers:
    """defaults < file < .env < environment; `file_values` is the parsed `path`."""
    # mypy knows dynaconf only as the parent of its typed, vendored dotenv package (the one with a
    # py.typed marker), so it sees no Dynaconf there.
    from dynaconf import Dynaconf  # type: ignore[attr-defined]

    settings = Dynaconf(**_DYNACONF_OPTIONS, **{key.upper(): value for key, value in copy.deepcopy(DEFAULTS).items()})
    unreadable = _apply(settings, file_values, label=lambda key: f"{path.name}: {key}")
    _refuse_secrets_in_file(path.name, _evaluated(settings, path))
    sources = (_variables(read_dotenv(path.parent / ".env")), _variables(os.environ))
    secrets = {name: value for source in sources for name, value in source.items() if _is_secret(name)}
    # The environment is applied after .env: the same key set twice keeps its value, nested keys merge.
    for source in sources:
        values = {name[len(ENV_PREFIX) :]: value for name, value in source.items() if name not in secrets}
        unreadable += _apply(settings, values, label=lambda key: ENV_PREFIX + key, parse=True)
    if unreadable:
        raise ConfigError(
            f"Cannot read the settings (an SBDK_* variable or {path.name}): {numbered(unreadable)}",
            hint='Fix or unset the variable; values are read like TOML (numbers, true/false, "text").',
        )
    merged = _evaluated(settings, path)
    for echo in _DYNACONF_ECHOES:
        merged.pop(echo, None)
    for name, value in secrets.items():
        _put(merged, name[len(ENV_PREFIX) :].lower().split("__"), value)
    env_keys = frozenset(name[len(ENV_PREFIX) :].lower().replace("__", ".") for source in sources for name in source)
    return Layers(values=merged, env_keys=env_keys)


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, `export` and quotes allowed); {} if absent.

    Parsed by the python-dotenv parser that Dynaconf ships; nothing is exported to os.environ.
    """
    from dynaconf.vendor.dotenv.parser import parse_stream

    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}.", hint="Fix or remove the .env file.") from exc
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.key is not None and binding.value is not None:
            values[binding.key] = binding.value
        elif binding.error or binding.key is not None:
            # A binding's text starts with the blank lines before it: count them to name the right line.
            original = binding.original.string
            blank = original[: len(original) - len(original.lstrip())]
            raise ConfigError(
                f"{path.name} line {binding.original.line + blank.count(chr(10))} is not KEY=VALUE: "
                f"{original.strip()[:60]!r}.",
                hint="Write one KEY=VALUE per line, e.g. SBDK_WEBHOOK_SECRET=s3cret.",
            )
    return values


def _variables(source: Mapping[str, str]) -> dict[str, str]:
    """The SBDK_* entries of a .env or the environment (SBDK_ alone names no setting)."""
    return {name: value for name, value in source.items() if name.startswith(ENV_PREFIX) and name != ENV_PREFIX}


def _is_secret(variable: str) -> bool:
    name = variable[len(ENV_PREFIX) :].lower()
    return name in SECRET_KEYS or name.endswith("__password")


def _apply(settings: Any, values: Mapping[str, Any], *, label: Callable[[str], str], parse: bool = False) -> list[str]:
    """Set each value on the Dynaconf object; returns what could not be read, one sentence per key."""
    from dynaconf.utils.parse_conf import boolean_fix, parse_conf_data

    problems = []
    for key, value in values.items():
        try:
            # A variable is read exactly as Dynaconf's own environment loader reads one.
            parsed = parse_conf_data(boolean_fix(value), tomlfy=True, box_settings=settings) if parse else value
            for replaced in _replaced_by(key, parsed):
                # Dynaconf merges nothing into None: the value set next replaces what lower layers gave.
                settings.set(replaced, None)
            settings.set(key, parsed)
        except RecursionError:
            problems.append(f"{printable(label(key))} is nested too deeply to read.")
        except Exception as exc:  # Dynaconf's parse errors, e.g. SBDK_SEED="@int x"
            problems.append(f"{printable(label(key))} = {shown(value)}: {printable(str(exc))}")
    return problems


def _replaced_by(key: str, value: Any) -> list[str]:
    """The Dynaconf keys that setting `key` to `value` gives whole, among `REPLACED` and their entries:
    `key` itself when it is a knob or lies inside one, else each knob that `value` holds."""
    parts = key.lower().replace(".", "__").split("__")
    found = []
    for knob in REPLACED:
        if tuple(parts[: len(knob)]) == knob:
            return [key]
        if tuple(parts) == knob[: len(parts)] and _holds(value, knob[len(parts) :]):
            found.append("__".join(knob))
    return found


def _holds(value: Any, path: tuple[str, ...]) -> bool:
    """Whether the object `value` has the nested key `path`, its keys compared in any case (as Dynaconf
    compares them: SBDK_DATA_PROFILE__HOURLY names "hourly")."""
    for part in path:
        if not isinstance(value, Mapping):
            return False
        value = next((item for name, item in value.items() if str(name).lower() == part), _ABSENT)
        if value is _ABSENT:
            return False
    return True


def _evaluated(settings: Any, path: Path) -> dict[str, Any]:
    """The settings so far as plain values. Dynaconf evaluates lazy values (@format, @jinja,
    @read_file) only now, so their errors surface here, without the variable's name."""
    try:
        return _plain(settings.as_dict())
    except RecursionError:
        raise  # load_settings names it
    except Exception as exc:
        raise ConfigError(
            f"Cannot read the settings (an SBDK_* variable or {path.name}): {printable(str(exc))}",
            hint="Fix or unset the @format, @jinja or @read_file value.",
        ) from exc


def _refuse_secrets_in_file(file_name: str, from_file: dict[str, Any]) -> None:
    """Secrets must not live in a committed file: refuse each one the file set, in any spelling."""
    found = {
        f"{ENV_PREFIX}{key.upper()}": f"{file_name} contains the secret {key!r}: secrets must not live in a committed file."
        for key in SECRET_KEYS
        if key in from_file
    }
    targets = from_file.get("targets")
    for name, spec in targets.items() if isinstance(targets, dict) else ():
        if isinstance(spec, dict) and "password" in spec:
            found[f"{ENV_PREFIX}TARGETS__{name.upper()}__PASSWORD"] = (
                f"targets.{name}.password is written in {file_name}: passwords must not live in a committed file."
            )
    if found:
        raise ConfigError(
            numbered(list(found.values())),
            hint=f"Remove {'it' if len(found) == 1 else 'them'} and set {', '.join(found)} in the project's "
            ".env or the environment.",
        )


def _put(values: dict[str, Any], parts: list[str], value: str) -> None:
    """values[a][b][c] = value, creating objects on the way. Where a non-object is on the way the
    validation reports it, and the secret goes nowhere."""
    node = values
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return
        node = child
    node[parts[-1]] = value


def _plain(value: Any) -> Any:
    """Dynaconf's boxes as plain dicts and lists, every key lower-case (Dynaconf upper-cases them)."""
    if isinstance(value, dict):
        return {str(key).lower(): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
