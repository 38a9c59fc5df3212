"""Process-wide settings of sbdk's own processes (sbdk/run/process.py)."""

from __future__ import annotations

import gc

import pytest

from sbdk.run import process


def test_collector_stays_on_in_a_long_lived_process() -> None:
    with process.collector_paused(False):
        assert gc.isenabled()
    assert gc.isenabled()


def test_single_run_pauses_the_collector_and_hands_dbt_objects_to_the_oldest_generation() -> None:
    with process.collector_paused(True):
        assert not gc.isenabled()
        kept = [[i] for i in range(50_000)]  # young container objects, as dbt's would be
        assert gc.get_count()[0] >= 50_000

    assert gc.isenabled()
    # Nothing is left in the young generation for the next collection to walk.
    assert gc.get_count()[0] < 1_000
    assert gc.is_tracked(kept[0])


def test_collector_is_restored_when_the_build_raises() -> None:
    with pytest.raises(RuntimeError), process.collector_paused(True):
        raise RuntimeError("dbt failed")
    assert gc.isenabled()


def test_environment_is_put_back_as_it_was(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBDK_TEST_KEPT", "before")
    monkeypatch.delenv("SBDK_TEST_NEW", raising=False)
    with process.environment({"SBDK_TEST_KEPT": "during", "SBDK_TEST_NEW": "x"}):
        import os

        assert (os.environ["SBDK_TEST_KEPT"], os.environ["SBDK_TEST_NEW"]) == ("during", "x")
    import os

    assert os.environ["SBDK_TEST_KEPT"] == "before"
    assert "SBDK_TEST_NEW" not in os.environ
