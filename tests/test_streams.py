"""Output that goes away never stops a run: a reader that exits early, a full disk, a closed stdout.

Real `sbdk` processes on a built project; each run must end on its own (no hang holding the project
lock), with the run's own exit code, no traceback, and a true history entry.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sbdk.run import history

pytestmark = pytest.mark.slow


def sbdk(root: Path, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SBDK")}
    return subprocess.Popen([sys.executable, "-m", "sbdk", *args], cwd=root, env=env, **popen)


def last_run(root: Path) -> dict:
    return history.last(root / ".sbdk", 1)[0]


def assert_lock_is_free(root: Path) -> None:
    again = sbdk(
        root, "-q", "dev", "--dbt-only", "--select", "stg_users", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err


@pytest.mark.parametrize(
    ("args", "lines"),
    [(("dev", "--dbt-only"), 3), (("-v", "dev", "--dbt-only", "--select", "funnel+"), 30), (("dev",), 5)],
    ids=["dbt-only | head -3", "-v select | head -30", "dev | head -5"],
)
def test_a_reader_that_exits_early_never_hangs_the_run(project_copy: Path, args: tuple[str, ...], lines: int) -> None:
    process = sbdk(project_copy, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    for _ in range(lines):
        process.stdout.readline()
    process.stdout.close()  # what `head` does when it has its lines
    try:
        code = process.wait(timeout=120)
    finally:
        process.kill()
    err = process.stderr.read().decode()
    assert code == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert last_run(project_copy)["status"] == "succeeded"
    assert_lock_is_free(project_copy)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_reported_in_one_line_and_the_run_still_counts(project_copy: Path) -> None:
    with open("/dev/full", "w") as full:
        process = sbdk(project_copy, "dev", "--dbt-only", stdout=full, stderr=subprocess.PIPE)
        _out, err = process.communicate(timeout=120)
    text = err.decode()
    assert process.returncode == 0, text
    assert "Standard output could not be written (No space left on device)" in text
    assert "Traceback" not in text
    assert last_run(project_copy)["status"] == "succeeded"


def test_a_closed_stdout_is_no_traceback_and_writes_nothing_into_the_database(project_copy: Path) -> None:
    process = sbdk(project_copy, "dev", stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    _out, err = process.communicate(timeout=120)
    text = err.decode()
    assert process.returncode == 0, text
    assert "Traceback" not in text and "NoneType" not in text
    assert last_run(project_copy)["status"] == "succeeded"
    assert_lock_is_free(project_copy)
