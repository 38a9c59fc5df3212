"""The dbt profile a run uses: the project's own for the DuckDB file, one rendered by sbdk for a server."""

from __future__ import annotations

import json
from pathlib import Path

from sbdk.errors import DbtError
from sbdk.settings import Settings, Target

# dbt reads the password from here; DBT_ENV_SECRET_* values are scrubbed from dbt's logs.
PASSWORD_ENV = "DBT_ENV_SECRET_SBDK_PASSWORD"


def dbt_profiles_dir(settings: Settings) -> Path:
    """The profiles dir for dbt: the project's own for "dev", one rendered by sbdk for a server.

    The rendered file holds no secret and is rewritten only when it changes, so dbt's partial-parse
    cache survives from run to run.
    """
    target = settings.active_target
    if target.type == "duckdb":
        return settings.paths.profiles_dir
    folder = settings.paths.state_dir / "profiles" / target.name
    text = _spark_profile(target) if target.type == "spark" else _server_profile(target)
    path = folder / "profiles.yml"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def _header(target: Target) -> str:
    """The start of a rendered profile: profile `sbdk`, its one output named after the target."""
    return (
        "# Rendered by sbdk from sbdk_config.json (targets." + target.name + "); do not edit.\n"
        "sbdk:\n"
        f"  target: {target.name}\n"
        "  outputs:\n"
        f"    {target.name}:\n"
    )


def _server_profile(target: Target) -> str:
    return _header(target) + (
        f"      type: {target.type}\n"
        f"      host: {json.dumps(target.host)}\n"
        f"      port: {target.port}\n"
        f"      user: {json.dumps(target.user)}\n"
        f"      password: \"{{{{ env_var('{PASSWORD_ENV}', '') }}}}\"\n"
        f"      dbname: {json.dumps(target.database)}\n"
        f"      schema: {target.schema}\n"
        "      threads: 4\n"
        f"      connect_timeout: {target.connect_timeout}\n"
    )


def _spark_profile(target: Target) -> str:
    """dbt-spark in session mode: dbt joins the Spark session sbdk started in this process
    (sbdk.stores.spark), with its catalog, lake and settings."""
    return _header(target) + (
        "      type: spark\n"
        "      method: session\n"
        "      host: NA\n"
        f"      schema: {target.schema}\n"
        "      threads: 1\n"
        "      server_side_parameters:\n"
        '        "spark.sql.session.timeZone": "UTC"\n'
    )


def check_project(settings: Settings) -> None:
    project = settings.paths.dbt_project_dir
    if not (project / "dbt_project.yml").is_file():
        raise DbtError(
            f"No dbt project at {project} (dbt_project.yml is missing).",
            hint="Fix dbt_path in sbdk_config.json, or run `sbdk init --force .` to restore the template.",
        )
    if not (dbt_profiles_dir(settings) / "profiles.yml").is_file():
        raise DbtError(
            f"No profiles.yml in {dbt_profiles_dir(settings)}.",
            hint="Fix profiles_dir in sbdk_config.json, or run `sbdk init --force .` to restore it.",
        )


def dbt_environment(settings: Settings) -> dict[str, str]:
    """What dbt reads from the environment during one invocation (set only around it)."""
    values = {
        # The profile reads the database path from here, so the rendered profile stays identical
        # from run to run and dbt keeps its partial-parse cache.
        "DBT_DUCKDB_PATH": str(settings.paths.duckdb_path),
        # Never phone home, never check PyPI for a newer version (there may be no network).
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_VERSION_CHECK": "false",
        # A server password lives in the environment only while dbt runs (dbt scrubs it from logs).
        PASSWORD_ENV: settings.active_target.password or "",
    }
    return values
