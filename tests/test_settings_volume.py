"""The data volume rules, written once in sbdk.settings.volume: what `sbdk dev`'s options, `sbdk init`
and the settings validation each make of them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sbdk.errors import ConfigError, UsageError
from sbdk.ops.scaffold import InitOptions, init_project
from sbdk.settings import MAX_ROWS_PER_TABLE, DataVolume, load_settings, resolve_volume
from sbdk.settings.volume import check_options

CONFIGURED = DataVolume(users=100, events=1_000)


def usage_error(**options) -> UsageError:
    given = {"users": None, "events": None, "scale": None, **options}
    with pytest.raises(UsageError) as caught:
        resolve_volume(CONFIGURED, **given)
    return caught.value


def test_without_options_the_configured_volume_is_used() -> None:
    assert resolve_volume(CONFIGURED, users=None, events=None, scale=None) == CONFIGURED


def test_scale_multiplies_and_given_tables_replace() -> None:
    volume = resolve_volume(CONFIGURED, users=None, events=7, scale=0.25)

    assert volume == DataVolume(users=25, events=7)


def test_scale_zero_gives_empty_tables() -> None:
    assert resolve_volume(CONFIGURED, users=None, events=None, scale=0) == DataVolume(0, 0)


@pytest.mark.parametrize("scale", [-1.0, 50_001.0, float("nan"), float("inf")])
def test_a_scale_out_of_range_names_the_range_for_this_project(scale: float) -> None:
    error = usage_error(scale=scale)

    assert error.message == (
        f"--scale {scale} must be between 0 and 50,000 for this project (at most 50,000,000 rows per table)."
    )
    assert error.hint == "Give a positive factor such as 0.1, 2 or 10."


def test_the_largest_scale_is_allowed() -> None:
    assert resolve_volume(CONFIGURED, users=None, events=None, scale=50_000).events == MAX_ROWS_PER_TABLE


@pytest.mark.parametrize(("option", "count"), [("users", -1), ("events", MAX_ROWS_PER_TABLE + 1)])
def test_an_option_out_of_range_is_named(option: str, count: int) -> None:
    error = usage_error(**{option: count})

    assert error.message == f"--{option} {count} is outside 0..50,000,000."
    assert error.hint == "Give a number of rows in that range."


def test_zero_users_with_events_is_refused_whether_given_or_scaled() -> None:
    for options in ({"users": 0}, {"users": 0, "events": 1}, {"scale": 0.001}):
        error = usage_error(**options)

        assert error.message == "0 users with events: every event belongs to a user."
        assert error.hint == "Give --users 1 or more, or --events 0."


def test_init_options_follow_the_same_rules() -> None:
    assert check_options(0, 0) == DataVolume(0, 0)
    with pytest.raises(UsageError, match=r"^--events 50000001 is outside 0\.\.50,000,000\. "):
        check_options(1, MAX_ROWS_PER_TABLE + 1)
    with pytest.raises(UsageError, match=r"^0 users with events: "):
        check_options(0, 1)


counts = st.one_of(st.integers(-2, 3), st.integers(MAX_ROWS_PER_TABLE - 1, MAX_ROWS_PER_TABLE + 1))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("volume")
    return init_project(InitOptions(folder=folder / "demo", as_of=date(2026, 1, 1), users=1, events=1)).root


@settings(max_examples=150, deadline=None)
@given(users=counts, events=counts)
def test_init_options_and_the_config_accept_the_same_volumes(project: Path, users: int, events: int):
    """One rule, three surfaces: a volume `sbdk init` refuses is one the config refuses, and back."""
    config = project / "sbdk_config.json"
    data = json.loads(config.read_text())
    data["data_volume"] = {"users": users, "events": events}
    config.write_text(json.dumps(data))

    try:
        check_options(users, events)
        by_options = True
    except UsageError:
        by_options = False
    try:
        load_settings(config)
        by_config = True
    except ConfigError:
        by_config = False
    try:
        resolve_volume(DataVolume(1, 1), users=users, events=events, scale=None)
        by_dev = True
    except UsageError:
        by_dev = False

    assert by_options == by_config == by_dev
