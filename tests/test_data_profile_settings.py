"""The data_profile section (issue #16): how its layers merge, every rule and the message a user sees,
the legacy data_volume.orders key, and `sbdk dev --incremental` against the volume options."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import edit_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_docs import README, blocks

from sbdk.errors import ConfigError, ExitCode
from sbdk.settings import DEFAULTS, DataProfile, Settings, load_settings

PROFILE = DEFAULTS["data_profile"]
KNOWN = "US, GB, DE, FR, IN, BR, ES, IT, NL, SE"
LEGACY_ORDERS = (
    "every order now comes from a purchase event, so the number of orders follows from data_volume.events "
    "and data_profile.funnel."
)


def plain(output: str) -> str:
    """CLI output without colour codes and with Rich's line wrapping undone."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", output).split())


def load(root: Path) -> Settings:
    return load_settings(root / "sbdk_config.json")


def problems(root: Path, **profile) -> str:
    """The message of the ConfigError that a data_profile of `profile` gives, without its preamble."""
    edit_config(root, data_profile=profile)
    with pytest.raises(ConfigError) as caught:
        load(root)
    assert caught.value.exit_code == ExitCode.CONFIG
    return caught.value.message.split(": ", 1)[1]


# Layers: partial sections merge, the mapping and list knobs are replaced whole.


def test_a_new_project_writes_every_knob_and_loads_the_defaults(project: Path) -> None:
    written = json.loads((project / "sbdk_config.json").read_text())

    assert written["data_profile"] == PROFILE
    assert load(project).data_profile == DataProfile.from_dict(PROFILE)


def test_a_project_without_the_section_gets_the_defaults(project: Path) -> None:
    data = json.loads((project / "sbdk_config.json").read_text())
    del data["data_profile"]
    (project / "sbdk_config.json").write_text(json.dumps(data))

    assert load(project).data_profile == DataProfile.from_dict(PROFILE)


def test_one_funnel_rate_keeps_every_other_default(project: Path) -> None:
    edit_config(project, data_profile={"funnel": {"checkout": 0.3}})

    profile = load(project).data_profile

    assert profile.funnel.checkout == 0.3
    assert profile.funnel.add_to_cart == PROFILE["funnel"]["add_to_cart"]
    assert profile.funnel.purchase == PROFILE["funnel"]["purchase"]
    assert profile == DataProfile.from_dict({**PROFILE, "funnel": {**PROFILE["funnel"], "checkout": 0.3}})


def test_mappings_and_lists_in_the_file_replace_the_defaults_whole(project: Path) -> None:
    edit_config(
        project,
        data_profile={
            "countries": {"US": 1},
            "prices": {"books": [5, 20]},
            "holidays": {"07-04": 3},
            "hourly": [1] * 24,
            "weekly": [1, 1, 1, 1, 1, 0, 0],
        },
    )

    profile = load(project).data_profile

    assert profile.countries == (("US", 1.0),)
    assert profile.prices == (("books", 5.0, 20.0),)
    assert profile.holidays == ((7, 4, 3.0),)
    assert profile.hourly == (1.0,) * 24
    assert profile.weekly == (1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0)
    assert profile.funnel == DataProfile.from_dict(PROFILE).funnel


def test_an_empty_holidays_object_means_no_holidays(project: Path) -> None:
    edit_config(project, data_profile={"holidays": {}})

    assert load(project).data_profile.holidays == ()


def test_a_variable_sets_one_rate(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_DATA_PROFILE__FUNNEL__CHECKOUT", "0.3")

    profile = load(project).data_profile

    assert profile.funnel.checkout == 0.3
    assert profile.funnel.add_to_cart == PROFILE["funnel"]["add_to_cart"]


def test_variables_replace_the_files_mappings_and_lists(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit_config(project, data_profile={"countries": {"US": 1, "GB": 1}, "hourly": [2] * 24})
    (project / ".env").write_text("SBDK_DATA_PROFILE__COUNTRIES='{DE=1}'\n")
    monkeypatch.setenv("SBDK_DATA_PROFILE__HOURLY", "[" + ", ".join(["1"] * 24) + "]")

    profile = load(project).data_profile

    assert profile.countries == (("DE", 1.0),)
    assert profile.hourly == (1.0,) * 24


def test_a_variable_naming_one_entry_replaces_that_entry_only(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edit_config(project, data_profile={"countries": {"US": 1, "GB": 1}, "prices": {"books": [5, 20], "toys": [1, 9]}})
    monkeypatch.setenv("SBDK_DATA_PROFILE__COUNTRIES__GB", "3")
    monkeypatch.setenv("SBDK_DATA_PROFILE__PRICES__BOOKS", "[6, 30]")

    profile = load(project).data_profile

    assert profile.countries == (("US", 1.0), ("GB", 3.0))
    # Not [5, 20, 6, 30]: Dynaconf's merge would append to the list.
    assert profile.prices == (("books", 6.0, 30.0), ("toys", 1.0, 9.0))


def test_a_whole_section_from_a_variable_replaces_its_mappings(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_DATA_PROFILE", "{countries={FR=1}, funnel={purchase=0.5}}")

    profile = load(project).data_profile

    assert profile.countries == (("FR", 1.0),)
    assert profile.funnel.purchase == 0.5
    assert profile.funnel.checkout == PROFILE["funnel"]["checkout"]
    assert profile.prices == DataProfile.from_dict(PROFILE).prices


def test_country_codes_are_read_in_any_case(project: Path) -> None:
    edit_config(project, data_profile={"countries": {"us": 2, "De": 1}})

    assert load(project).data_profile.countries == (("US", 2.0), ("DE", 1.0))


def test_other_lists_still_merge_as_before(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Only the data_profile knobs are replaced whole; every other key layers as it always did.
    edit_config(project, webhooks={"cors_origins": ["http://a"]})
    monkeypatch.setenv("SBDK_WEBHOOKS__CORS_ORIGINS", '["http://b"]')

    assert load(project).webhooks.cors_origins == ("http://a", "http://b")


def test_the_readme_shows_the_defaults_and_its_fragment_validates(project: Path) -> None:
    [block] = [block for block in blocks(README) if block.lang == "json" and '"data_profile"' in block.text]
    fragment = json.loads("{" + block.text + "}")

    assert fragment["data_profile"] == PROFILE
    edit_config(project, data_profile={"funnel": {"checkout": 0.3}})
    edit_config(project, **fragment)
    assert load(project).data_profile == DataProfile.from_dict(PROFILE)


# Every rule, and the sentence a user reads.

RULES = [
    (
        {"funnel": {"checkout": 1.5}},
        "data_profile.funnel.checkout must be a number from 0 to 1 (0.15 is 15 %), got 1.5.",
    ),
    (
        {"funnel": {"add_to_cart": True}},
        "data_profile.funnel.add_to_cart must be a number from 0 to 1 (0.15 is 15 %), got True.",
    ),
    (
        {"funnel": {"purchase": "0.5"}},
        "data_profile.funnel.purchase must be a number from 0 to 1 (0.15 is 15 %), got '0.5'.",
    ),
    (
        {"hourly": [1] * 23},
        "data_profile.hourly must be a list of 24 numbers from 0 to 1,000,000, the relative traffic of each hour "
        f"of the day (UTC, 0 to 23), got {[1] * 23}.",
    ),
    (
        {"hourly": [1] * 23 + [-1]},
        "data_profile.hourly must be a list of 24 numbers from 0 to 1,000,000, the relative traffic of each hour "
        f"of the day (UTC, 0 to 23), got {[1] * 23 + [-1]}.",
    ),
    ({"hourly": [0] * 24}, "data_profile.hourly is all zeros: give at least one hour a weight above 0."),
    (
        {"weekly": [1, 1, 1, 1, 1, 1, False]},
        "data_profile.weekly must be a list of 7 numbers from 0 to 1,000,000, the relative traffic of each "
        "weekday (Monday first), got [1, 1, 1, 1, 1, 1, False].",
    ),
    ({"weekly": [0] * 7}, "data_profile.weekly is all zeros: give at least one weekday a weight above 0."),
    ({"holidays": []}, "data_profile.holidays must be an object ({...}), got []."),
    ({"holidays": {"02-30": 2}}, "data_profile.holidays.02-30 is not a day of the year written MM-DD, such as 11-28."),
    ({"holidays": {"12-1": 2}}, "data_profile.holidays.12-1 is not a day of the year written MM-DD, such as 11-28."),
    (
        {"holidays": {"12-24": 101}},
        "data_profile.holidays.12-24 must be a traffic factor from 0 to 100 (2.5 is 2.5 times the usual traffic), "
        "got 101.",
    ),
    ({"monthly_growth": -0.6}, "data_profile.monthly_growth must be a number from -0.5 to 1, got -0.6."),
    ({"monthly_growth": 1.01}, "data_profile.monthly_growth must be a number from -0.5 to 1, got 1.01."),
    (
        {"retention": {"never_return": -0.1}},
        "data_profile.retention.never_return must be a number from 0 to 1 (0.15 is 15 %), got -0.1.",
    ),
    (
        {"retention": {"half_life_days": 0}},
        "data_profile.retention.half_life_days must be a number of days above 0 and at most 3,650, got 0.",
    ),
    (
        {"retention": {"half_life_days": 3651}},
        "data_profile.retention.half_life_days must be a number of days above 0 and at most 3,650, got 3651.",
    ),
    (
        {"retention": {"long_term": 2}},
        "data_profile.retention.long_term must be a number from 0 to 1 (0.15 is 15 %), got 2.",
    ),
    (
        {"countries": {"US": 1, "XX": 1}},
        f"data_profile.countries.XX is not a country sbdk generates (known: {KNOWN}).",
    ),
    (
        {"countries": {"US": -1}},
        "data_profile.countries.US must be a number from 0 to 1,000,000 (its share relative to the other "
        "countries), got -1.",
    ),
    ({"countries": {"US": 0, "GB": 0}}, "data_profile.countries must give at least one country a share above 0."),
    ({"countries": {}}, "data_profile.countries must give at least one country a share above 0."),
    (
        {"prices": {"home & garden": [1, 2]}},
        "data_profile.prices.home & garden is not a category name: use 1 to 40 lower-case letters, digits or _.",
    ),
    (
        {"prices": {"books": [20, 5]}},
        "data_profile.prices.books must be [lowest, highest] unit prices in USD with 0 < lowest <= highest <= "
        "1,000,000, got [20, 5].",
    ),
    (
        {"prices": {"books": [0, 5]}},
        "data_profile.prices.books must be [lowest, highest] unit prices in USD with 0 < lowest <= highest <= "
        "1,000,000, got [0, 5].",
    ),
    (
        {"prices": {"books": 5}},
        "data_profile.prices.books must be [lowest, highest] unit prices in USD with 0 < lowest <= highest <= "
        "1,000,000, got 5.",
    ),
    ({"prices": {}}, "data_profile.prices must name 1 to 20 categories, got 0."),
    (
        {"prices": {f"c{number}": [1, 2] for number in range(21)}},
        "data_profile.prices must name 1 to 20 categories, got 21.",
    ),
    ({"incremental_days": 365}, "data_profile.incremental_days = 365 is above the cap of 364 days."),
    ({"incremental_days": -1}, "data_profile.incremental_days must be at least 0, got -1."),
    ({"incremental_days": 1.5}, "data_profile.incremental_days must be a whole number, got 1.5."),
    ({"funnel": None}, "data_profile.funnel must be an object ({...}), got None."),
]


@pytest.mark.parametrize(("profile", "message"), RULES, ids=[message[:60] for _, message in RULES])
def test_each_rule_names_the_key_the_value_and_what_is_allowed(project: Path, profile: dict, message: str) -> None:
    assert problems(project, **profile) == message


@pytest.mark.parametrize(
    "profile",
    [
        {"funnel": {"add_to_cart": 0, "checkout": 1, "purchase": 1}},
        {"hourly": [0] * 23 + [1_000_000], "weekly": [0, 0, 0, 0, 0, 0, 0.5]},
        {"holidays": {"02-29": 0, "01-01": 100}},
        {"monthly_growth": -0.5},
        {"monthly_growth": 1},
        {"retention": {"never_return": 1, "half_life_days": 3650, "long_term": 0}},
        {"retention": {"half_life_days": 0.5}},
        {"countries": {"SE": 1, "US": 0}},
        {"prices": {"a": [0.01, 0.01], "b_2": [1, 1_000_000]}},
        {"incremental_days": 0},
        {"incremental_days": 364},
    ],
)
def test_the_edges_of_each_range_are_allowed(project: Path, profile: dict) -> None:
    edit_config(project, data_profile=profile)

    assert isinstance(load(project).data_profile, DataProfile)


def test_every_problem_is_listed_at_once(project: Path) -> None:
    message = problems(project, funnel={"checkout": 2}, countries={"XX": 1}, incremental_days=400)

    assert message == (
        "(1) data_profile.funnel.checkout must be a number from 0 to 1 (0.15 is 15 %), got 2. "
        f"(2) data_profile.countries.XX is not a country sbdk generates (known: {KNOWN}). "
        "(3) data_profile.incremental_days = 400 is above the cap of 364 days."
    )


def test_a_bad_key_is_reported_once_not_with_its_value_too(project: Path) -> None:
    assert problems(project, holidays={"13-01": "lots"}) == (
        "data_profile.holidays.13-01 is not a day of the year written MM-DD, such as 11-28."
    )


def test_a_long_name_is_cut(project: Path) -> None:
    assert problems(project, countries={"X" * 500: 1}) == (
        f"data_profile.countries.{'X' * 37}... is not a country sbdk generates (known: {KNOWN})."
    )


def test_a_bad_value_from_a_variable_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_DATA_PROFILE__FUNNEL__CHECKOUT", "2")
    monkeypatch.setenv("SBDK_DATA_PROFILE__COUNTRIES__XX", "1")

    with pytest.raises(ConfigError) as caught:
        load(project)

    assert caught.value.message.split(": ", 1)[1] == (
        "(1) SBDK_DATA_PROFILE__FUNNEL__CHECKOUT must be a number from 0 to 1 (0.15 is 15 %), got 2. "
        f"(2) SBDK_DATA_PROFILE__COUNTRIES__XX is not a country sbdk generates (known: {KNOWN})."
    )


def test_unknown_keys_of_the_section_warn(project: Path) -> None:
    edit_config(project, data_profile={"funnel": {"signup": 0.5}, "colours": 3})

    assert load(project).warnings == (
        "Unknown setting 'data_profile.colours' is ignored.",
        "Unknown setting 'data_profile.funnel.signup' is ignored.",
    )


def test_the_cli_refuses_a_bad_profile_with_exit_code_3(project: Path, cli) -> None:
    edit_config(project, data_profile={"weekly": [1, 2, 3]})

    result = cli("dev", "--dbt-only", cwd=project)

    assert result.exit_code == ExitCode.CONFIG == 3
    assert (
        "data_profile.weekly must be a list of 7 numbers from 0 to 1,000,000, the relative traffic of each weekday "
        "(Monday first), got [1, 2, 3]." in plain(result.output)
    )


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(), st.floats(), st.text(max_size=3)), max_size=30),
    st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.floats(), st.lists(st.integers(), max_size=3))),
)
profiles = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(
        (
            "funnel",
            "hourly",
            "weekly",
            "holidays",
            "monthly_growth",
            "retention",
            "countries",
            "prices",
            "incremental_days",
        ),
        junk,
    ),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(profile=st.one_of(junk, profiles))
def test_any_profile_gives_settings_or_a_config_error(project: Path, profile) -> None:
    edit_config(project, data_profile=profile)

    try:
        loaded = load(project)
    except ConfigError as error:
        assert "has a value sbdk cannot use" not in error.message
    else:
        assert sum(loaded.data_profile.hourly) > 0 and sum(share for _, share in loaded.data_profile.countries) > 0


# The legacy data_volume.orders of every project made before issue #16.


def test_a_legacy_orders_volume_is_a_specific_warning_not_an_error(project: Path) -> None:
    edit_config(project, data_volume={"users": 200, "events": 1_000, "orders": 20_000})

    settings = load(project)

    assert settings.data_volume.as_dict() == {"users": 200, "events": 1_000}
    assert settings.warnings == (
        f"Setting 'data_volume.orders' is ignored: {LEGACY_ORDERS} Remove it from sbdk_config.json.",
    )


def test_a_legacy_orders_variable_names_the_variable(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_DATA_VOLUME__ORDERS", "400")

    assert load(project).warnings == (f"Setting SBDK_DATA_VOLUME__ORDERS is ignored: {LEGACY_ORDERS} Unset it.",)


def test_the_cli_shows_the_legacy_orders_warning_and_carries_on(project: Path, cli) -> None:
    edit_config(project, data_volume={"users": 200, "events": 1_000, "orders": "lots"})

    result = cli("dev", "--dbt-only", cwd=project)

    assert result.exit_code == ExitCode.DBT
    output = plain(result.output)
    assert f"warning: Setting 'data_volume.orders' is ignored: {LEGACY_ORDERS} Remove it from sbdk_config.json." in (
        output
    )
    assert "The raw tables do not exist yet" in output


# sbdk dev's options.

INCREMENTAL = "error: --incremental adds the next day at the rhythm of the data already loaded; "


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        (["--users", "5"], "--users sizes a full load.", "sbdk dev --users 5"),
        (["--events", "100"], "--events sizes a full load.", "sbdk dev --events 100"),
        (["--scale", "2"], "--scale sizes a full load.", "sbdk dev --scale 2"),
        (["--scale", "0.5", "--users", "5"], "--users and --scale size a full load.", "sbdk dev --users 5 --scale 0.5"),
        (
            ["--users", "5", "--events", "9", "--scale", "3"],
            "--users, --events and --scale size a full load.",
            "sbdk dev --users 5 --events 9 --scale 3",
        ),
    ],
)
def test_incremental_refuses_the_volume_options(project: Path, cli, options: list[str], message: str, hint: str):
    result = cli("dev", "--incremental", *options, cwd=project)

    assert result.exit_code == ExitCode.USAGE == 2
    assert plain(result.output) == (
        f"{INCREMENTAL}{message} fix: Run `{hint}` (without --incremental) to reload at another size."
    )
    assert not (project / ".sbdk").exists()


def test_incremental_with_a_seed_is_not_a_volume_conflict(project: Path, cli) -> None:
    result = cli("dev", "--incremental", "--seed", "-1", cwd=project)

    assert result.exit_code == 2
    assert "--seed -1 is outside" in plain(result.output)


@pytest.mark.parametrize("command", ["dev", "init"])
def test_orders_is_no_option_any_more(tmp_path: Path, cli, command: str) -> None:
    result = cli(command, *(["shop"] if command == "init" else []), "--orders", "5", cwd=tmp_path)

    assert result.exit_code == 2
    assert "No such option: --orders" in plain(result.output)


def help_text(output: str) -> str:
    """--help without Rich's panel borders, each option's help on one line."""
    return plain(re.sub(r"[│╭╮╰╯─]", " ", output))


def test_the_help_of_dev_says_what_incremental_appends(cli) -> None:
    output = help_text(cli("dev", "--help").output)

    assert "Append the next day (users, events, orders) after the last loaded day, up to as_of." in output
    assert "--orders" not in output


def test_inits_help_gives_the_real_defaults(cli) -> None:
    output = help_text(cli("init", "--help").output)

    volume = DEFAULTS["data_volume"]
    assert f"(default {volume['users']:,})" in output
    assert f"(default {volume['events']:,})" in output
    assert "--orders" not in output


def test_the_example_config_holds_the_defaults_and_validates(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "sbdk_config.json.example"
    data = json.loads(example.read_text(encoding="utf-8"))
    (tmp_path / "sbdk_config.json").write_text(json.dumps({**data, "as_of": "2025-01-01"}), encoding="utf-8")

    assert data["data_volume"] == DEFAULTS["data_volume"]
    assert data["data_profile"] == PROFILE
    assert load(tmp_path).warnings == ()
