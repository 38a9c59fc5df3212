"""Settings: layering, validation and the messages a user sees when a value is wrong."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
from conftest import edit_config

from sbdk.errors import ConfigError, ExitCode, ProjectNotFoundError
from sbdk.settings import MAX_ROWS_PER_TABLE, load_settings


def plain(output: str) -> str:
    """CLI output without colour codes and with Rich's line wrapping undone."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def config_error(root: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(root / "sbdk_config.json")
    return caught.value


def volume(users=100, events=1_000, orders=400) -> dict:
    return {"users": users, "events": events, "orders": orders}


def test_a_fresh_project_loads_with_its_values_and_no_warnings(project: Path) -> None:
    settings = load_settings(project / "sbdk_config.json")

    assert settings.project == "demo"
    assert settings.target == "dev"
    assert settings.data_volume.as_dict() == {"users": 200, "events": 1_000, "orders": 400}
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

    assert "is 0 but events or orders are not" not in config_error(project).message


def test_negative_volume_is_refused(project: Path) -> None:
    edit_config(project, data_volume=volume(orders=-5))

    assert config_error(project).message.endswith("data_volume.orders must be at least 0, got -5.")


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
    edit_config(project, data_volume=volume(users=0, events=5, orders=0))

    assert config_error(project).message.endswith(
        "data_volume.users is 0 but events or orders are not: every event and order belongs to a user."
    )


def test_zero_everything_is_allowed(project: Path) -> None:
    edit_config(project, data_volume=volume(0, 0, 0))

    assert load_settings(project / "sbdk_config.json").data_volume.as_dict() == volume(0, 0, 0)


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
    # The file sets only users: events and orders fall back to the built-in defaults.
    edit_config(project, data_volume={"users": 100})
    assert load_settings(config).data_volume.as_dict() == {"users": 100, "events": 50_000, "orders": 20_000}

    (project / ".env").write_text("# local\nSBDK_DATA_VOLUME__USERS=300\nexport SBDK_SEED='7'\n")
    settings = load_settings(config)
    assert settings.data_volume.as_dict() == {"users": 300, "events": 50_000, "orders": 20_000}
    assert settings.seed == 7

    monkeypatch.setenv("SBDK_DATA_VOLUME__USERS", "500")
    settings = load_settings(config)
    assert settings.data_volume.as_dict() == {"users": 500, "events": 50_000, "orders": 20_000}
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


def test_dbt_path_outside_the_project_is_refused(project: Path) -> None:
    edit_config(project, dbt_path="../shared_dbt")

    assert "dbt_path = '../shared_dbt' points outside the project folder" in config_error(project).message


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
    edit_config(project, data_volume=volume(users=0, events=10, orders=0))

    result = cli("dev", "--config-file", str(project / "sbdk_config.json"), cwd=project.parent)

    assert result.exit_code == 3
    assert "data_volume.users is 0 but events or orders are not" in plain(result.output)
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
