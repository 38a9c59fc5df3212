"""The dbt profile a run uses: the project's own for the DuckDB file, one rendered by sbdk for a server."""

from __future__ import annotations

import json
from pathlib import Path

from sbdk.settings import Settings

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
    text = (
        "# Rendered by sbdk from sbdk_config.json (targets." + target.name + "); do not edit.\n"
        "sbdk:\n"
        f"  target: {target.name}\n"
        "  outputs:\n"
        f"    {target.name}:\n"
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
    path = folder / "profiles.yml"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
