"""Property-based: malformed and hostile configs, environment overrides and project names always end
in a clear sbdk error (or a valid run), never a traceback, and never write outside the project."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests_support import SMALL
from typer.testing import CliRunner

from sbdk.cli.app import app
from sbdk.ops.scaffold import InitOptions, init_project

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
paths = st.sampled_from(
    [
        "data/dev.duckdb",
        "../outside.duckdb",
        "/tmp/elsewhere.duckdb",
        "data",
        "~/x.duckdb",
        "",
        "a\x00b",
        "dbt",
        "pipelines",
    ]
)
config_values = st.fixed_dictionaries(
    {},
    optional={
        "project": junk,
        "target": st.one_of(st.sampled_from(["dev", "prod", "staging", ""]), junk),
        "duckdb_path": st.one_of(paths, junk),
        "pipelines_path": st.one_of(paths, junk),
        "dbt_path": st.one_of(paths, junk),
        "profiles_dir": st.one_of(paths, junk),
        "seed": junk,
        "as_of": st.one_of(st.sampled_from(["2026-01-01", "2999-01-01", "yesterday"]), junk),
        "data_volume": st.one_of(
            junk,
            st.fixed_dictionaries({}, optional=dict.fromkeys(("users", "events", "orders"), junk)),
        ),
        "tracking": junk,
        "webhooks": junk,
        "webhook_secret": st.text(max_size=5),
        "ünïcode_kéy": junk,
    },
)
env_overrides = st.dictionaries(
    st.sampled_from(
        ["SBDK_DATA_VOLUME__USERS", "SBDK_SEED", "SBDK_TARGET", "SBDK_DUCKDB_PATH", "SBDK_DATA_VOLUME", "SBDK_AS_OF"]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
    max_size=3,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=st.one_of(config_values, junk), env=env_overrides, raw=st.sampled_from(["json", "broken", "dir"]))
def test_any_config_ends_in_a_clear_error_or_a_valid_run(config, env, raw):
    with tempfile.TemporaryDirectory() as sandbox:
        sandbox = Path(sandbox)
        root = init_project(InitOptions(folder=sandbox / "demo", **SMALL)).root
        config_file = root / "sbdk_config.json"
        if raw == "json":
            config_file.write_text(json.dumps(config))
        elif raw == "broken":
            config_file.write_text(json.dumps(config)[:-1] + ",")
        else:
            config_file.unlink()
            config_file.mkdir()
        outside_before = {p.name for p in sandbox.iterdir()}
        old = Path.cwd()
        os.chdir(root)
        try:
            result = CliRunner(env=env).invoke(app, ["dev", "--dbt-only"], catch_exceptions=True)
        finally:
            os.chdir(old)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code != 0
        assert "Traceback" not in result.output
        assert "error:" in result.stderr
        assert {p.name for p in sandbox.iterdir()} == outside_before
        assert not Path("/tmp/elsewhere.duckdb").exists()


@settings(max_examples=60, deadline=None)
# "." means "this folder" (like `git init .`): covered by test_init, not a new folder to look for.
@given(name=st.text(max_size=40).filter(lambda n: "/" not in n and not n.startswith("-") and n.strip() != "."))
def test_any_project_name_is_created_inside_or_refused_clearly(name):
    with tempfile.TemporaryDirectory() as sandbox:
        sandbox = Path(sandbox)
        old = Path.cwd()
        os.chdir(sandbox)
        try:
            result = CliRunner().invoke(app, ["init", name, "--no-input"], catch_exceptions=True)
        finally:
            os.chdir(old)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        created = [p.name for p in sandbox.iterdir()]
        if result.exit_code == 0:
            assert created == [name]
        else:
            assert result.exit_code == 2
            assert "error:" in result.stderr and "fix:" in result.stderr
            assert created == []
