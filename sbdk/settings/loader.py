"""Find a project's config file and load its settings: read the JSON, layer, validate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sbdk.errors import ConfigError, ProjectNotFoundError
from sbdk.paths import user_path
from sbdk.settings.model import CONFIG_FILENAME, Settings


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
    # Dynaconf and pydantic load only here, never for `sbdk --help`.
    from sbdk.settings.layering import layer
    from sbdk.settings.validation import validate

    path = find_config(start) if config_file is None else _given_config(config_file, start)
    file_values = _read_json(path)
    try:
        layers = layer(path, file_values)
        return validate(layers.values, path=path, env_keys=layers.env_keys)
    except RecursionError:
        # A value nested hundreds of levels deep (in an unknown key, or read from a variable).
        raise _too_deep(path) from None


def _given_config(config_file: Path | str, start: Path | None) -> Path:
    """--config-file as given: a file, or the project folder holding one."""
    path = user_path(config_file)  # "~nosuchuser/..." is a UsageError, not pathlib's RuntimeError
    if not path.is_absolute():
        path = (start or Path.cwd()) / path
    try:
        path = path.resolve()
        if path.is_dir():
            path = path / CONFIG_FILENAME
        found = path.is_file()
    except (OSError, RuntimeError, ValueError):  # a name too long, a symbolic link loop, a NUL byte
        found = False
    if not found:
        raise ProjectNotFoundError(
            f"Config file {path} does not exist.",
            hint="Check the --config-file path, or run `sbdk init` to create a project.",
        )
    return path


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
            hint=f"Fix the JSON in {path}; `sbdk doctor` checks it again, and the Configuration section of "
            "sbdk's README lists every key.",
        ) from exc
    except RecursionError:
        raise _too_deep(path) from None
    except ValueError:
        # Python refuses to read an integer of more than sys.get_int_max_str_digits() digits.
        raise ConfigError(
            f"{path.name} holds a number of more than {sys.get_int_max_str_digits():,} digits; no setting takes one.",
            hint="The Configuration section of sbdk's README gives every setting's range.",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path.name} must hold a JSON object ({{...}}), not {type(data).__name__}.",
            hint="Write the settings as one object, as `sbdk init` does; the Configuration section of sbdk's "
            "README lists every key.",
        )
    return data


def _too_deep(path: Path) -> ConfigError:
    return ConfigError(
        f"{path.name} or an SBDK_* variable nests values too deeply to read; sbdk's settings nest at most "
        "three levels (targets.<name>.<key>).",
        hint="The Configuration section of sbdk's README lists every key; `sbdk doctor` checks the file.",
    )
