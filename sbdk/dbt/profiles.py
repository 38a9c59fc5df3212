"""The dbt profile a run uses: the project's own for the DuckDB file, one rendered by sbdk for a server."""

from __future__ import annotations

import json
from pathlib import Path

from sbdk.errors import DbtError
from sbdk.settings import Settings, Target

# dbt reads the password from here; DBT_ENV_SECRET_* values are scrubbed from dbt's logs.
PASSWORD_ENV = "DBT_ENV_SECRET_SBDK_PASSWORD"


DEFAULT_PROFILE = "sbdk"


def profile_name(settings: Settings) -> str:
    """The profile the dbt project asks for (`profile:` in dbt_project.yml): sbdk's template asks for
    `sbdk`, a project the user brings (issue #17) for its own name."""
    from sbdk.watch.layout import read_yaml

    name = read_yaml(settings.paths.dbt_project_dir / "dbt_project.yml").get("profile")
    return str(name) if isinstance(name, str) and name.strip() else DEFAULT_PROFILE


def profile_args(settings: Settings) -> list[str]:
    """`--profile <name>` for a dbt project whose dbt_project.yml names no profile (dbt then refuses to
    run), so that it uses the one sbdk renders; nothing for a project that names its own."""
    from sbdk.watch.layout import read_yaml

    named = read_yaml(settings.paths.dbt_project_dir / "dbt_project.yml").get("profile")
    return [] if isinstance(named, str) and named.strip() else ["--profile", DEFAULT_PROFILE]


def dbt_profiles_dir(settings: Settings) -> Path:
    """The profiles dir for dbt: the project's own (`profiles_dir`) for "dev" when it defines the profile
    the dbt project asks for, else one rendered by sbdk under that profile's name (never ~/.dbt).

    The rendered file holds no secret and is rewritten only when it changes, so dbt's partial-parse
    cache survives from run to run.
    """
    target = settings.active_target
    name = profile_name(settings)
    if target.type == "duckdb":
        if profiles_define(settings, name):
            return settings.paths.profiles_dir
        text = _duckdb_profile(target, name)
    elif target.type == "spark":
        text = _spark_profile(target, name)
    else:
        text = _server_profile(target, name)
    folder = settings.paths.state_dir / "profiles" / target.name
    path = folder / "profiles.yml"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def profiles_define(settings: Settings, name: str) -> bool:
    """Whether the project's profiles.yml (`profiles_dir`) defines the profile `name`."""
    from sbdk.watch.layout import read_yaml

    return isinstance(read_yaml(settings.paths.profiles_dir / "profiles.yml").get(name), dict)


def _header(target: Target, name: str = DEFAULT_PROFILE) -> str:
    """The start of a rendered profile: the profile the dbt project asks for, its one output named
    after the target."""
    return (
        "# Rendered by sbdk from sbdk_config.json (targets." + target.name + "); do not edit.\n"
        f"{name}:\n"
        f"  target: {target.name}\n"
        "  outputs:\n"
        f"    {target.name}:\n"
    )


def _duckdb_profile(target: Target, name: str) -> str:
    """The project's DuckDB file (sbdk sets DBT_DUCKDB_PATH around each dbt call), as the template's
    profile has it, for a dbt project whose profile sbdk's profiles_dir does not define."""
    return _header(target, name) + (
        "      type: duckdb\n"
        "      path: \"{{ env_var('DBT_DUCKDB_PATH') }}\"\n"
        "      schema: main\n"
        "      threads: 4\n"
        "      settings:\n"
        '        memory_limit: "450MB"\n'
    )


def _server_profile(target: Target, name: str = DEFAULT_PROFILE) -> str:
    return _header(target, name) + (
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


def _spark_profile(target: Target, name: str = DEFAULT_PROFILE) -> str:
    """dbt-spark in session mode: dbt joins the Spark session sbdk started in this process
    (sbdk.stores.spark), with its catalog, lake and settings."""
    return _header(target, name) + (
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
