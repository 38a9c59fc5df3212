"""Process-wide settings of sbdk's own processes (sbdk/process.py)."""

from __future__ import annotations

import gc

import pytest

from sbdk.run import process


@pytest.fixture
def single_run():
    process.set_single_run()
    try:
        yield
    finally:
        process.set_single_run(False)


def test_collector_stays_on_in_a_long_lived_process() -> None:
    with process.collector_paused():
        assert gc.isenabled()
    assert gc.isenabled()


def test_single_run_pauses_the_collector_and_hands_dbt_objects_to_the_oldest_generation(single_run) -> None:
    with process.collector_paused():
        assert not gc.isenabled()
        kept = [[i] for i in range(50_000)]  # young container objects, as dbt's would be
        assert gc.get_count()[0] >= 50_000

    assert gc.isenabled()
    # Nothing is left in the young generation for the next collection to walk.
    assert gc.get_count()[0] < 1_000
    assert gc.is_tracked(kept[0])


def test_collector_is_restored_when_the_build_raises(single_run) -> None:
    with pytest.raises(RuntimeError), process.collector_paused():
        raise RuntimeError("dbt failed")
    assert gc.isenabled()
