"""Settings: layering, validation and the messages a user sees when a value is wrong."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from conftest import edit_config

from sbdk.errors import ConfigError, ExitCode, ProjectNotFoundError
from sbdk.settings import DEFAULTS, MAX_ROWS_PER_TABLE, Target, load_settings

EVENTS = DEFAULTS["data_volume"]["events"]


def plain(output: str) -> str:
    """CLI output without colour codes and with Rich's line wrapping undone."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def config_error(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(root / "sbdk_config.json")
    return caught.value


def volume(users=100, events=1_000) -> dict:
    return {"users": users, "events": events}


def test_a_fresh_project_loads_with_its_values_and_no_warnings(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")

    assert settings.project == "demo"
    assert settings.target == "dev"
    assert settings.data_volume.as_dict() == {"users": 200, "events": 1_000}
    assert settings.as_of.isoformat() == "2026-11-01"
    assert settings.warnings == ()
    assert settings.webhook_secret is None


def test_malformed_json_names_line_and_column(project: Path) -> None:
    (project / "sbdk_config.json").write_text('{\n  "seed": 1,\n  "target": "dev"\n  "x": 2\n}\n')

    error = config_error(project)

    assert error.exit_code == ExitCode.CONFIG == 3
    assert error.message == ("sbdk_config.json is not valid JSON: Expecting ',' delimiter at line 4, column 3.")


def test_json_that_is_not_an_object_is_refused(project: Path) -> None:
    (project / "sbdk_config.json").write_text("[1, 2]\n")

    assert config_error(project).message == ("sbdk_config.json must hold a JSON object ({...}), not list.")


def test_wrong_type_is_named_with_its_key_and_value(project: Path) -> None:
    edit_config(project, data_volume=volume(users="many"))

    error = config_error(project)

    assert error.exit_code == ExitCode.CONFIG
    assert "data_volume.users must be a whole number, got 'many'." in error.message


@pytest.mark.parametrize("bad", ["many", -1])
def test_a_bad_users_value_is_reported_once_not_as_zero_users(project: Path, bad) -> None:
    edit_config(project, data_volume=volume(users=bad))

    assert "is 0 but events are not" not in config_error(project).message


def test_negative_volume_is_refused(project: Path) -> None:
    edit_config(project, data_volume=volume(events=-5))

    assert config_error(project).message.endswith("data_volume.events must be at least 0, got -5.")


def test_volume_above_the_cap_names_the_cap(project: Path) -> None:
    edit_config(project, data_volume=volume(events=MAX_ROWS_PER_TABLE + 1))

    assert config_error(project).message.endswith(
        "data_volume.events = 50,000,001 is above the cap of 50,000,000 rows."
    )


def test_volume_at_the_cap_is_accepted(project: Path) -> None:
    edit_config(project, data_volume=volume(events=MAX_ROWS_PER_TABLE))

    assert load_settings(project / "sbdk_config.json").data_volume.events == 50_000_000


def test_target_must_be_dev_or_prod(project: Path) -> None:
    edit_config(project, target="staging")

    assert config_error(project).message.endswith(
        "target must be one of dev (the targets declared under \"targets\"), got 'staging'."
    )


def test_zero_users_with_events_is_an_error(project: Path) -> None:
    edit_config(project, data_volume=volume(users=0, events=5))

    assert config_error(project).message.endswith(
        "data_volume.users is 0 but events are not: every event belongs to a user."
    )


def test_zero_everything_is_allowed(project: Path) -> None:
    edit_config(project, data_volume=volume(0, 0))

    assert load_settings(project / "sbdk_config.json").data_volume.as_dict() == volume(0, 0)


def test_several_problems_are_numbered_in_one_message(project: Path) -> None:
    edit_config(project, target="qa", seed=-1)

    message = config_error(project).message
    assert "(1) target must be one of dev (the targets declared under \"targets\"), got 'qa'." in message
    assert "(2) seed must be at least 0, got -1." in message


def test_unknown_keys_warn_but_do_not_fail(project: Path) -> None:
    edit_config(project, colour="blue", data_volume={**volume(), "sessions": 4})

    settings = load_settings(project / "sbdk_config.json")

    assert settings.warnings == (
        "Unknown setting 'colour' (from sbdk_config.json) is ignored.",
        "Unknown setting 'data_volume.sessions' is ignored.",
    )


def test_unknown_key_from_the_environment_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_COLOUR", "blue")

    assert load_settings(project / "sbdk_config.json").warnings == (
        "Unknown setting 'colour' (from SBDK_COLOUR in the environment) is ignored.",
    )


def test_layers_defaults_then_file_then_dotenv_then_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = project / "sbdk_config.json"
    # The file sets only users: events fall back to the built-in default.
    edit_config(project, data_volume={"users": 100})
    assert load_settings(config).data_volume.as_dict() == {"users": 100, "events": EVENTS}

    (project / ".env").write_text("# local\nSBDK_DATA_VOLUME__USERS=300\nexport SBDK_SEED='7'\n")
    settings = load_settings(config)
    assert settings.data_volume.as_dict() == {"users": 300, "events": EVENTS}
    assert settings.seed == 7

    monkeypatch.setenv("SBDK_DATA_VOLUME__USERS", "500")
    settings = load_settings(config)
    assert settings.data_volume.as_dict() == {"users": 500, "events": EVENTS}
    assert settings.seed == 7


def test_loading_does_not_export_dotenv_into_the_environment(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".env").write_text("SBDK_SEED=7\n")

    load_settings(project / "sbdk_config.json")

    assert "SBDK_SEED" not in os.environ


def test_bad_environment_value_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_TARGET", "qa")

    assert config_error(project).message.endswith(
        "SBDK_TARGET must be one of dev (the targets declared under \"targets\"), got 'qa'."
    )


def test_bad_nested_environment_value_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_DATA_VOLUME__USERS", "60000000")

    assert config_error(project).message.endswith(
        "SBDK_DATA_VOLUME__USERS = 60,000,000 is above the cap of 50,000,000 rows."
    )


def test_a_file_value_is_not_blamed_on_an_unrelated_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit_config(project, data_volume=volume(events="lots"))
    monkeypatch.setenv("SBDK_DATA_VOLUME__USERS", "5")

    assert config_error(project).message.endswith("data_volume.events must be a whole number, got 'lots'.")


def test_malformed_dotenv_line_is_reported(project: Path) -> None:
    (project / ".env").write_text("SBDK_SEED=1\nnot a setting\n")

    assert config_error(project).message == ".env line 2 is not KEY=VALUE: 'not a setting'."


def test_paths_resolve_against_the_project_not_the_cwd(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    paths = load_settings(project / "sbdk_config.json").paths

    assert paths.root == project
    assert paths.duckdb_path == project / "data" / "dev.duckdb"
    assert paths.dbt_project_dir == project / "dbt"
    assert paths.profiles_dir == project / "profiles"
    assert paths.pipelines_dir == project / "pipelines"
    assert paths.lock_file == project / ".sbdk" / "run.lock"


def test_relative_config_file_is_found_from_start(project: Path, tmp_path: Path) -> None:
    assert load_settings("demo", start=tmp_path).paths.config_file == project / "sbdk_config.json"


def test_project_is_found_from_a_subfolder(project: Path) -> None:
    assert load_settings(start=project / "dbt" / "models").paths.root == project


@pytest.mark.parametrize("outside", ["../x.duckdb", "/tmp/x.duckdb", "data/../../x.duckdb"])
def test_duckdb_path_outside_the_project_is_refused(project: Path, outside: str) -> None:
    edit_config(project, duckdb_path=outside)

    assert config_error(project).message.endswith(
        f"duckdb_path = {outside!r} points outside the project folder {project}; sbdk only writes inside its project."
    )


def test_dbt_path_may_point_at_a_dbt_project_outside_the_sandbox(project: Path) -> None:
    # Issue #17: the user's own dbt project, left where it is (sbdk never edits it).
    edit_config(project, dbt_path="../shared_dbt")

    assert load_settings(project / "sbdk_config.json").paths.dbt_project_dir == (project.parent / "shared_dbt")


def test_pipelines_outside_the_project_are_still_refused(project: Path) -> None:
    edit_config(project, pipelines_path="../shared_pipelines")

    assert "pipelines_path = '../shared_pipelines' points outside the project folder" in config_error(project).message


def test_duckdb_path_pointing_at_a_folder_is_refused(project: Path) -> None:
    edit_config(project, duckdb_path="data")

    assert config_error(project).message.endswith(f"duckdb_path points at a folder ({project / 'data'}), not a file.")


def test_secret_in_the_config_file_is_refused(project: Path) -> None:
    edit_config(project, webhook_secret="s3cret")

    error = config_error(project)

    assert error.message == (
        "sbdk_config.json contains the secret 'webhook_secret': secrets must not live in a committed file."
    )
    assert error.hint == "Remove it and set SBDK_WEBHOOK_SECRET in the project's .env or the environment."


def test_secret_in_the_config_file_is_refused_in_any_case(project: Path) -> None:
    edit_config(project, WEBHOOK_SECRET="s3cret")

    assert "contains the secret" in config_error(project).message


def test_secret_comes_from_dotenv_or_environment_and_is_not_shown(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / ".env").write_text('SBDK_WEBHOOK_SECRET="from-dotenv"\n')
    settings = load_settings(project / "sbdk_config.json")
    assert settings.webhook_secret == "from-dotenv"
    assert "from-dotenv" not in repr(settings)

    monkeypatch.setenv("SBDK_WEBHOOK_SECRET", "from-env")
    assert load_settings(project / "sbdk_config.json").webhook_secret == "from-env"


def test_settings_are_frozen(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")

    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.seed = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.data_volume.users = 1  # type: ignore[misc]


def test_missing_project_is_project_not_found(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError) as caught:
        load_settings(start=tmp_path)

    assert caught.value.exit_code == ExitCode.CONFIG
    assert caught.value.message == (
        f"No sbdk_config.json in {tmp_path} or any folder above it: this is not an sbdk project."
    )


# Through the CLI: `sbdk dev --dbt-only` loads and validates the settings first; on a fresh project it
# then stops at once, because no raw tables exist yet (exit 5), without generating anything.


def test_cli_reports_malformed_json_with_exit_code_3(project: Path, cli) -> None:
    (project / "sbdk_config.json").write_text('{"seed": 1,,}')

    result = cli("dev", "--dbt-only", cwd=project)

    assert result.exit_code == 3
    assert (
        "error: sbdk_config.json is not valid JSON: Expecting property name enclosed in double "
        "quotes at line 1, column 12." in plain(result.output)
    )
    assert "Traceback" not in result.output


def test_cli_reports_a_bad_value_and_its_fix(project: Path, cli) -> None:
    edit_config(project, data_volume=volume(users=MAX_ROWS_PER_TABLE * 2))

    result = cli("dev", "--dbt-only", cwd=project)

    assert result.exit_code == ExitCode.CONFIG
    output = plain(result.output)
    assert "data_volume.users = 100,000,000 is above the cap of 50,000,000 rows." in output
    assert "fix: Fix the values" in output
    assert "raw tables do not exist" not in output


def test_cli_shows_warnings_and_carries_on(project: Path, cli) -> None:
    edit_config(project, colour="blue")

    result = cli("dev", "--dbt-only", cwd=project)

    assert result.exit_code == ExitCode.DBT
    output = plain(result.output)
    assert "warning: Unknown setting 'colour' (from sbdk_config.json) is ignored." in output
    assert "The raw tables do not exist yet" in output


def test_cli_environment_override_with_a_bad_value(project: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_DATA_VOLUME__USERS", "lots")

    result = cli("dev", "--dbt-only", cwd=project)

    assert result.exit_code == 3
    assert "SBDK_DATA_VOLUME__USERS must be a whole number, got 'lots'." in plain(result.output)


def test_cli_config_file_option_from_another_folder(project: Path, tmp_path: Path, cli) -> None:
    edit_config(project, target="qa")

    result = cli("--config-file", "demo/sbdk_config.json", "dev", "--dbt-only", cwd=tmp_path)

    assert result.exit_code == 3
    assert f"Invalid settings in {project / 'sbdk_config.json'}: target must be one of dev (the targets" in plain(
        result.output
    )


def test_cli_config_file_option_accepts_the_project_folder(project: Path, tmp_path: Path, cli) -> None:
    result = cli("dev", "--dbt-only", "--config-file", str(project), cwd=tmp_path)

    assert result.exit_code == ExitCode.DBT
    assert "The raw tables do not exist yet" in plain(result.output)


def test_cli_missing_config_file(tmp_path: Path, cli) -> None:
    result = cli("dev", "-c", "nowhere.json", cwd=tmp_path)

    assert result.exit_code == 3
    assert f"error: Config file {tmp_path / 'nowhere.json'} does not exist." in plain(result.output)


def test_dev_with_an_invalid_config_fails_before_running(project: Path, cli) -> None:
    edit_config(project, data_volume=volume(users=0, events=10))

    result = cli("dev", "--config-file", str(project / "sbdk_config.json"), cwd=project.parent)

    assert result.exit_code == 3
    assert "data_volume.users is 0 but events are not" in plain(result.output)
    assert not (project / "data" / "dev.duckdb").exists()
    assert not (project / ".sbdk").exists()


@pytest.mark.parametrize("command", ["start", "webhooks", "dev"])
def test_project_command_outside_a_project(tmp_path: Path, cli, command: str) -> None:
    result = cli(command, cwd=tmp_path)

    assert result.exit_code == ExitCode.CONFIG
    output = plain(result.output)
    assert f"error: No sbdk_config.json in {tmp_path} or any folder above it: this is not an sbdk project." in output
    assert "fix: Run `sbdk init myproject` to create one" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("args", [["--verbose", "start"], ["start", "--verbose"], ["-v", "webhooks"]])
def test_verbose_shows_the_traceback(tmp_path: Path, cli, args: list[str]) -> None:
    result = cli(*args, cwd=tmp_path)

    assert result.exit_code == 3
    output = plain(result.output)
    assert "Traceback (most recent call last):" in output
    assert "sbdk.errors.ProjectNotFoundError" in output
    assert "this is not an sbdk project." in output


def test_secrets_are_taken_verbatim_not_parsed(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_WEBHOOK_SECRET", "0x1f")
    (project / ".env").write_text("SBDK_TARGETS__PROD__PASSWORD=true\n")
    edit_config(project, targets={"prod": {"type": "postgres", "host": "h", "database": "d", "user": "u"}})

    settings = load_settings(project / "sbdk_config.json")

    assert settings.webhook_secret == "0x1f"
    assert settings.targets[0].password == "true"


def test_an_unparsable_variable_is_a_config_error(project: Path, cli, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_SEED", "@int x")

    result = cli("dev", "--dbt-only", cwd=project)

    assert result.exit_code == 3
    assert "Cannot read the settings (an SBDK_* variable or sbdk_config.json)" in plain(result.output)
    assert "Traceback" not in result.output


# as_of: a day, not in the future, and not so early that the history reaches before the common era.


@pytest.mark.parametrize("early", ["0001-01-01", "1999-12-31"])
def test_as_of_before_2000_is_refused_with_the_bound(project: Path, early: str) -> None:
    edit_config(project, as_of=early)

    assert config_error(project).message.endswith(f"as_of = {early} is too early: as_of must be 2000-01-01 or later.")


def test_as_of_on_the_first_day_of_2000_is_accepted(project: Path) -> None:
    edit_config(project, as_of="2000-01-01")

    assert load_settings(project / "sbdk_config.json").as_of.isoformat() == "2000-01-01"


def test_as_of_in_the_future_is_refused(project: Path) -> None:
    edit_config(project, as_of="2999-01-01")

    assert config_error(project).message.endswith(
        "as_of = 2999-01-01 is in the future; the generated history ends at as_of and must lie in the past."
    )


def test_as_of_with_a_time_from_the_environment_is_a_clear_error(project: Path, monkeypatch) -> None:
    # Read like TOML, this value is a datetime, which Python also counts as a date.
    monkeypatch.setenv("SBDK_AS_OF", "2025-01-01T10:00:00")

    assert config_error(project).message.endswith(
        "SBDK_AS_OF must be a date like 2026-11-30, got '2025-01-01T10:00:00'."
    )


# Inputs that used to end in a traceback.


def test_a_config_nested_100000_levels_deep_is_a_config_error(project: Path, cli) -> None:
    (project / "sbdk_config.json").write_text('{"colour": ' + "[" * 100_000 + "]" * 100_000 + "}")

    error = config_error(project)
    assert error.message.startswith("sbdk_config.json or an SBDK_* variable nests values too deeply to read")

    result = cli("dev", "--dbt-only", cwd=project)
    assert result.exit_code == ExitCode.CONFIG
    assert "Traceback" not in result.output


def test_a_variable_nested_too_deeply_is_named(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_COLOUR", "[" * 100_000 + "]" * 100_000)

    message = config_error(project).message
    assert message.startswith("Cannot read the settings (an SBDK_* variable or sbdk_config.json): SBDK_COLOUR")


@pytest.mark.parametrize("path", ["~nosuchuser/dev.duckdb", "~0/dev.duckdb"])
def test_a_home_folder_of_no_user_is_a_config_problem(project: Path, path: str) -> None:
    edit_config(project, duckdb_path=path)

    first = path.split("/")[0]
    assert config_error(project).message.endswith(
        f"duckdb_path = {path!r} starts with {first!r}, which is no user's home folder; write it relative to the project."
    )


def test_a_path_too_long_for_the_file_system_is_a_config_problem(project: Path) -> None:
    edit_config(project, duckdb_path="a" * 5_000)

    message = config_error(project).message
    assert "duckdb_path = 'aaaa" in message
    assert message.endswith("cannot be used as a path: File name too long.")


@pytest.mark.parametrize("name", ["sbdk_config.json", ".env"])
def test_a_file_that_is_not_utf8_is_a_config_error(project: Path, name: str) -> None:
    (project / name).write_bytes(b'{"seed": "\xff\xfe"}\n' if name.endswith("json") else b"SBDK_SEED=\xff\n")

    message = config_error(project).message
    assert message.startswith(f"Cannot read {project / name}: 'utf-8' codec can't decode byte 0xff")


def test_a_5000_digit_number_in_the_file_is_a_config_error(project: Path) -> None:
    (project / "sbdk_config.json").write_text('{"seed": ' + "9" * 5_000 + "}")

    assert config_error(project).message == (
        "sbdk_config.json holds a number of more than 4,300 digits; no setting takes one."
    )


def test_a_4000_digit_number_is_named_by_its_length(project: Path) -> None:
    edit_config(project, seed=int("9" * 4_000))

    assert config_error(project).message.endswith("seed = a number of 4,000 digits is above the cap of 4,294,967,295.")


def test_a_5000_digit_number_in_a_variable_names_the_variable(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_SEED", "9" * 5_000)

    message = config_error(project).message
    assert message.startswith("Cannot read the settings (an SBDK_* variable or sbdk_config.json): SBDK_SEED = '999")


@pytest.mark.parametrize(("literal", "shown"), [("NaN", "nan"), ("Infinity", "inf"), ("-Infinity", "-inf")])
def test_nan_and_infinity_are_not_whole_numbers(project: Path, literal: str, shown: str) -> None:
    (project / "sbdk_config.json").write_text('{"data_volume": {"users": ' + literal + "}}")

    assert config_error(project).message.endswith(f"data_volume.users must be a whole number, got {shown}.")


def test_an_unparsable_variable_is_named_with_its_value(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_SEED", "@int x")

    message = config_error(project).message
    assert message.startswith(
        "Cannot read the settings (an SBDK_* variable or sbdk_config.json): SBDK_SEED = '@int x': Cannot convert"
    )


# .env: the python-dotenv parser Dynaconf ships, with what the old hand-written parser accepted.


def test_dotenv_comments_export_quotes_and_spaces(project: Path) -> None:
    (project / ".env").write_text(
        "# a comment\n"
        "\n"
        "export SBDK_SEED=7\n"
        "SBDK_DATA_VOLUME__USERS='300'\n"
        'SBDK_DATA_VOLUME__EVENTS="600"\n'
        "  SBDK_BACKUPS__KEEP = 2\n"
        'SBDK_WEBHOOK_SECRET="s3cret with spaces"\n'
        "OTHER_TOOL=ignored\n"
    )

    settings = load_settings(project / "sbdk_config.json")

    assert settings.seed == 7
    assert settings.data_volume.as_dict() == {"users": 300, "events": 600}
    assert settings.backups.keep == 2
    assert settings.webhook_secret == "s3cret with spaces"
    assert settings.warnings == ()


def test_a_malformed_dotenv_line_is_named_by_its_number_after_blank_lines(project: Path) -> None:
    (project / ".env").write_text("SBDK_SEED=1\n\n\n# note\nnot a setting\n")

    error = config_error(project)
    assert error.message == ".env line 5 is not KEY=VALUE: 'not a setting'."
    assert error.hint == "Write one KEY=VALUE per line, e.g. SBDK_WEBHOOK_SECRET=s3cret."


def test_a_dotenv_key_without_a_value_is_malformed(project: Path) -> None:
    (project / ".env").write_text("SBDK_SEED\n")

    assert config_error(project).message == ".env line 1 is not KEY=VALUE: 'SBDK_SEED'."


def test_dotenv_values_are_not_interpolated_nor_exported(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    (project / ".env").write_text("SBDK_WEBHOOK_SECRET=${HOME}-x\nSBDK_SEED=3\n")

    settings = load_settings(project / "sbdk_config.json")

    assert settings.webhook_secret == "${HOME}-x"
    assert "SBDK_SEED" not in os.environ and "SBDK_WEBHOOK_SECRET" not in os.environ


def test_dotenv_true_reads_like_the_environment(project: Path, monkeypatch) -> None:
    (project / ".env").write_text("SBDK_BACKUPS__KEEP=2\n")
    monkeypatch.setenv("SBDK_TRACKING__ENABLED", "True")

    settings = load_settings(project / "sbdk_config.json")

    assert settings.backups.keep == 2
    assert settings.tracking.enabled is True


# Secrets: verbatim from .env or the environment, never from the file.


@pytest.mark.parametrize("secret", ["0x1f", "true", "1e3", "@int 5", "[1, 2]", "  padded  ", "'quoted'"])
def test_a_secret_from_the_environment_is_taken_verbatim(project: Path, monkeypatch, secret: str) -> None:
    monkeypatch.setenv("SBDK_WEBHOOK_SECRET", secret)

    assert load_settings(project / "sbdk_config.json").webhook_secret == secret


def test_a_dotenv_secret_is_unquoted_and_the_environment_wins(project: Path, monkeypatch) -> None:
    (project / ".env").write_text("SBDK_WEBHOOK_SECRET='a#b=c'\nSBDK_TARGETS__PROD__PASSWORD=\"0123\"\n")
    edit_config(project, targets={"prod": {"type": "postgres", "host": "h", "database": "d", "user": "u"}})

    settings = load_settings(project / "sbdk_config.json")
    assert settings.webhook_secret == "a#b=c"
    assert settings.targets[0].password == "0123"

    monkeypatch.setenv("SBDK_TARGETS__PROD__PASSWORD", "from-env")
    assert load_settings(project / "sbdk_config.json").targets[0].password == "from-env"


def test_a_password_for_a_target_the_file_does_not_declare_names_its_variable(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_TARGETS__PROD__PASSWORD", "s3cret")

    error = config_error(project)

    assert error.exit_code == ExitCode.CONFIG
    assert error.message == (
        f"Invalid settings in {project / 'sbdk_config.json'}: SBDK_TARGETS__PROD__PASSWORD is set (in the "
        'environment or .env) for a target prod that sbdk_config.json does not declare: declare it under "targets" '
        "or unset it."
    )
    assert "s3cret" not in error.message

    (project / ".env").write_text("SBDK_TARGETS__PROD__HOST=db\n")
    assert "SBDK_TARGETS__PROD__HOST, SBDK_TARGETS__PROD__PASSWORD are set" in config_error(project).message
    # A type from a variable declares the target: what is wrong with it is said as for any other key.
    monkeypatch.setenv("SBDK_TARGETS__PROD__TYPE", "mysql")
    assert (
        "SBDK_TARGETS__PROD__TYPE must be one of duckdb, postgres, spark, got 'mysql'." in config_error(project).message
    )


def test_a_password_in_the_config_file_is_refused(project: Path) -> None:
    edit_config(
        project, targets={"prod": {"type": "postgres", "host": "h", "database": "d", "user": "u", "password": "x"}}
    )

    error = config_error(project)

    assert error.exit_code == ExitCode.CONFIG
    assert error.message == (
        "targets.prod.password is written in sbdk_config.json: passwords must not live in a committed file."
    )
    assert error.hint == "Remove it and set SBDK_TARGETS__PROD__PASSWORD in the project's .env or the environment."


@pytest.mark.parametrize(
    "written",
    [
        {"TARGETS": {"PROD": {"PASSWORD": "x"}}},
        {"targets.prod.password": "x"},
        {"targets__prod__password": "x"},
    ],
)
def test_a_password_in_the_config_file_is_refused_in_any_spelling(project: Path, written: dict) -> None:
    edit_config(project, **written)

    assert config_error(project).message.startswith("targets.prod.password is written in sbdk_config.json")


def test_every_secret_in_the_config_file_is_refused_at_once(project: Path) -> None:
    edit_config(project, webhook_secret="s", targets={"prod": {"password": "p"}})

    error = config_error(project)

    assert error.message == (
        "(1) sbdk_config.json contains the secret 'webhook_secret': secrets must not live in a committed file. "
        "(2) targets.prod.password is written in sbdk_config.json: passwords must not live in a committed file."
    )
    assert error.hint == (
        "Remove them and set SBDK_WEBHOOK_SECRET, SBDK_TARGETS__PROD__PASSWORD in the project's .env or the "
        "environment."
    )


# Only the four documented layers: Dynaconf's own variables of the environment change nothing.


def test_dynaconf_variables_of_the_environment_are_ignored(project: Path, tmp_path: Path, monkeypatch) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"seed": 77, "duckdb_path": "/tmp/elsewhere.duckdb"}')
    for variable in ("SETTINGS_FILE_FOR_DYNACONF", "INCLUDES_FOR_DYNACONF", "PRELOAD_FOR_DYNACONF"):
        monkeypatch.setenv(variable, str(other))
    monkeypatch.setenv("DYNACONF_SEED", "99")
    monkeypatch.setenv("LOAD_DOTENV_FOR_DYNACONF", "true")
    monkeypatch.chdir(project)
    (project / ".env").write_text("SBDK_SEED=5\n")
    before = dict(os.environ)

    settings = load_settings(project / "sbdk_config.json")

    assert settings.seed == 5
    assert settings.warnings == ()
    assert dict(os.environ) == before


def test_a_section_of_null_then_one_key_from_the_environment_keeps_the_defaults(project: Path, monkeypatch) -> None:
    edit_config(project, data_volume=None)
    monkeypatch.setenv("SBDK_DATA_VOLUME__USERS", "5")

    assert load_settings(project / "sbdk_config.json").data_volume.as_dict() == {
        "users": 5,
        "events": EVENTS,
    }


def test_zero_users_set_by_a_variable_names_the_variable(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("SBDK_DATA_VOLUME__USERS", "0")

    assert config_error(project).message.endswith(
        "SBDK_DATA_VOLUME__USERS is 0 but events are not: every event belongs to a user."
    )


# Targets: every problem of a target at once, each named by its key.

SERVER = {"type": "postgres", "host": "db", "database": "shop", "user": "sbdk"}


def test_a_valid_server_target_loads_with_its_defaults(project: Path) -> None:
    edit_config(project, targets={"prod": SERVER}, target="prod")

    settings = load_settings(project / "sbdk_config.json")

    assert settings.active_target == Target(
        name="prod", type="postgres", host="db", port=5432, database="shop", user="sbdk", schema="analytics"
    )


def test_every_problem_of_a_target_is_reported_at_once(project: Path) -> None:
    edit_config(
        project,
        targets={"prod": {"type": "postgres", "host": "", "port": 0, "connect_timeout": 61, "schema": "raw", "x": 1}},
    )

    message = config_error(project).message

    assert "targets.prod needs host, database, user (strings) for a postgres target." in message
    assert "targets.prod.port must be a port number, got 0." in message
    assert "targets.prod.connect_timeout must be 1..60 seconds, got 61." in message
    assert "targets.prod.schema must be a plain schema name other than raw, got 'raw'." in message
    assert (
        "targets.prod.x is not a target setting (allowed: connect_timeout, database, host, password, port, "
        "schema, type, user for postgres; conf, connect_timeout, lake, master, schema, type for spark)." in message
    )


@pytest.mark.parametrize(
    ("targets", "problem"),
    [
        ({"prod": {"type": "mysql"}}, "targets.prod.type must be one of duckdb, postgres, spark, got 'mysql'."),
        (
            {"prod": {**SERVER, "type": "duckdb"}},
            'targets.prod: a second DuckDB target is not supported; use target "dev".',
        ),
        ({"prod": ["x"]}, "targets.prod must be an object, got a list."),
        ({"dev": {"type": "duckdb"}}, "targets.dev is reserved for the project's DuckDB file; choose another name."),
        ({"my-prod": SERVER}, "Target name 'my-prod' must be a plain name (letters, digits, _)."),
        (["prod"], "targets must be an object of named targets, got a list."),
    ],
)
def test_a_target_problem_is_one_message(project: Path, targets, problem: str) -> None:
    edit_config(project, targets=targets)

    assert config_error(project).message == f"Invalid settings in {project / 'sbdk_config.json'}: {problem}"


def test_a_target_with_problems_is_not_also_called_unknown(project: Path) -> None:
    edit_config(project, targets={"prod": {**SERVER, "port": "x"}}, target="prod")

    message = config_error(project).message

    assert message.endswith("targets.prod.port must be a port number, got 'x'.")
    assert "target must be one of" not in message


def test_an_unknown_target_lists_only_the_usable_ones(project: Path) -> None:
    edit_config(project, targets={"prod": SERVER, "qa": {**SERVER, "port": -1}}, target="staging")

    assert (
        "target must be one of dev, prod (the targets declared under \"targets\"), got 'staging'."
        in config_error(project).message
    )


@pytest.mark.parametrize("lazy", ["@format {this.nope}", "@jinja {{ 1/0 }}", "@read_file /nonexistent"])
def test_a_lazy_dynaconf_value_that_fails_is_a_config_error(project: Path, monkeypatch, lazy: str) -> None:
    monkeypatch.setenv("SBDK_PROJECT", lazy)

    error = config_error(project)

    assert error.message.startswith("Cannot read the settings (an SBDK_* variable or sbdk_config.json): ")
    assert error.hint == "Fix or unset the @format, @jinja or @read_file value."
