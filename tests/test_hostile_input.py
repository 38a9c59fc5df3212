"""Property-based: malformed and hostile configs, environment overrides and project names always end
in a clear sbdk error (or a valid run), never a traceback, and never write outside the project."""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import date
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from tests_support import SMALL
from typer.testing import CliRunner

from sbdk.cli.app import app
from sbdk.errors import ConfigError
from sbdk.ops.scaffold import InitOptions, init_project
from sbdk.settings import load_settings

# Values that used to end in a traceback, or that no parser should choke on.
DEEP = "[" * 100_000 + "]" * 100_000
HUGE = "9" * 5_000
OUTSIDE = ("../outside.duckdb", "/tmp/elsewhere.duckdb", "~/x.duckdb")
PATH_KEYS = {
    "duckdb_path": "duckdb_path",
    "pipelines_path": "pipelines_dir",
    "dbt_path": "dbt_project_dir",
    "profiles_dir": "profiles_dir",
}
# The dbt project may be one the user has elsewhere (issue #17): sbdk reads it and never edits it.
ANYWHERE = {"dbt_path"}

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**4_000, -(10**4_000), 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    # Lone surrogates: valid in JSON ("\ud800"), not encodable by a file system or a terminal.
    st.sampled_from(["\ud800", "data/\udcff.duckdb", "a" * 5_000]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
paths = st.sampled_from(
    ["data/dev.duckdb", *OUTSIDE, "data", "", "a\x00b", "dbt", "pipelines", "~nosuchuser/x", "~0/x", "a" * 300]
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
    st.one_of(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
        st.sampled_from([HUGE, DEEP, "nan", "inf", "-inf", "1e999", "@int x", "@json {", "0001-01-01"]),
        # Dynaconf's lazy values, evaluated only when the layers are merged.
        st.sampled_from(["@format {this.nope}", "@jinja {{ 1/0 }}", "@read_file /nonexistent", "@del"]),
        # A variable of bytes that are not UTF-8, as Python hands it over (surrogate escapes).
        st.sampled_from(["x\udcffy", "@int \udcff", "[\udcff"]),
    ),
    max_size=3,
)
# A .env as a user might write one, or any bytes at all (non-UTF-8 included).
dotenv_files = st.one_of(
    st.none(),
    st.binary(max_size=60),
    st.lists(
        st.sampled_from(
            [
                "# note",
                "",
                "export SBDK_SEED=7",
                "SBDK_SEED='8'",
                'SBDK_WEBHOOK_SECRET="a#b"',
                "SBDK_SEED",
                "=x",
                "SBDK_DATA_VOLUME__USERS=0",
                f"SBDK_SEED={HUGE}",
                f"SBDK_DATA_VOLUME={DEEP}",
                "not a line",
                "SBDK_X='open",
            ]
        ),
        max_size=5,
    ).map(lambda lines: "\n".join(lines).encode()),
)


def write_config(config_file: Path, config, raw: str) -> None:
    """The config as JSON, or broken in one of the ways a file can be."""
    if raw == "json":
        config_file.write_text(json.dumps(config))  # NaN and Infinity included, as Python writes them
    elif raw == "broken":
        config_file.write_text(json.dumps(config)[:-1] + ",")
    elif raw == "deep":
        config_file.write_text('{"data_volume": ' + DEEP + "}")
    elif raw == "huge":
        config_file.write_text('{"seed": ' + HUGE + "}")
    elif raw == "bytes":
        config_file.write_bytes(b'{"project": "\xff\xfe", "seed": 1}')
    else:
        config_file.unlink()
        config_file.mkdir()


def outside_paths(config) -> list[str]:
    """The path settings of `config` that point outside any project folder."""
    if not isinstance(config, dict):
        return []
    return [key for key in PATH_KEYS if key not in ANYWHERE and config.get(key) in OUTSIDE]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=st.one_of(config_values, junk),
    env=env_overrides,
    dotenv=dotenv_files,
    raw=st.sampled_from(["json", "json", "json", "broken", "dir", "deep", "huge", "bytes"]),
)
@example(config={"duckdb_path": "../outside.duckdb"}, env={}, dotenv=None, raw="json")
@example(config={"dbt_path": "/tmp/elsewhere.duckdb", "seed": -1}, env={}, dotenv=None, raw="json")
def test_any_config_ends_in_a_clear_error_or_a_valid_run(config, env, dotenv, raw):
    with tempfile.TemporaryDirectory() as sandbox:
        sandbox = Path(sandbox)
        root = init_project(InitOptions(folder=sandbox / "demo", **SMALL)).root
        write_config(root / "sbdk_config.json", config, raw)
        if dotenv is not None:
            (root / ".env").write_bytes(dotenv)
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
        # When only the file decides (no variable, no .env, no secret refused before the values are
        # checked), an outside path is refused by name, before anything runs.
        refused = outside_paths(config) if raw == "json" and not env and dotenv is None else []
        if refused and "webhook_secret" not in config:
            assert result.exit_code == 3
            stderr = " ".join(result.stderr.split())
            assert any(f"{key} = " in stderr for key in refused)
            assert "points outside the project folder" in stderr


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project for the examples that only load settings (they never write)."""
    folder = tmp_path_factory.mktemp("hostile").resolve()
    return init_project(InitOptions(folder=folder / "demo", as_of=date(2026, 1, 1), **SMALL)).root


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=st.one_of(config_values, junk),
    raw=st.sampled_from(["json", "json", "broken", "deep", "huge", "bytes"]),
    dotenv=dotenv_files,
    env=env_overrides,
)
def test_loading_any_input_gives_settings_or_one_printable_config_error(shared_root, config, raw, dotenv, env):
    write_config(shared_root / "sbdk_config.json", config, raw)
    (shared_root / ".env").write_bytes(dotenv or b"")
    with mock.patch.dict(os.environ, env):
        try:
            load_settings(shared_root / "sbdk_config.json")
        except ConfigError as error:
            # Shown on a terminal as it is: no lone surrogates or raw pydantic wording.
            error.message.encode("utf-8")
            (error.hint or "").encode("utf-8")
            assert "pydantic" not in error.message.lower()
            assert "Input should be" not in error.message


# Path settings: where a value lands is computed here without the file system (normpath), and the
# settings must agree: inside the project it resolves there, outside it is refused by name (but dbt_path).
path_parts = st.lists(
    st.sampled_from(["..", ".", "data", "dbt", "x.duckdb", "new dir", "ü", "~", "..."]), min_size=1, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(sorted(PATH_KEYS)),
    anchor=st.sampled_from(["project", "absolute", "filesystem", "home"]),
    parts=path_parts,
)
def test_a_path_inside_the_project_resolves_there_and_one_outside_is_refused(shared_root, key, anchor, parts):
    root = shared_root
    home = root / "data"
    relative = "/".join(parts)
    value = {
        "project": relative,
        "absolute": f"{root}/{relative}",
        "filesystem": f"/{relative}",
        "home": f"~/{relative}",
    }[anchor]
    # A leading ~ is the home folder (as in a shell), a leading / the file system's root.
    if value == "~" or value.startswith("~/"):
        lands = Path(os.path.normpath(home / value[2:]))
    else:
        lands = Path(os.path.normpath(root / value))
    (root / "sbdk_config.json").write_text(json.dumps({key: value}))
    (root / ".env").write_text("")

    with mock.patch.dict(os.environ, {"HOME": str(home)}):
        if key not in ANYWHERE and lands != root and root not in lands.parents:
            with pytest.raises(ConfigError) as caught:
                load_settings(root / "sbdk_config.json")
            assert caught.value.message == (
                f"Invalid settings in {root / 'sbdk_config.json'}: {key} = {value!r} points outside the project "
                f"folder {root}; sbdk only writes inside its project."
            )
        elif key == "duckdb_path" and lands.is_dir():
            with pytest.raises(ConfigError, match=re.escape(f"duckdb_path points at a folder ({lands}), not a file.")):
                load_settings(root / "sbdk_config.json")
        else:
            resolved = getattr(load_settings(root / "sbdk_config.json").paths, PATH_KEYS[key])
            assert resolved == lands
            assert key in ANYWHERE or resolved == root or root in resolved.parents


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
